#!/usr/bin/env bash
# relayscan sharded over a Slurm job array: one task per shard.
#   sbatch --array=0-7 examples/distributed/slurm-array.sh
# then: relayscan merge results/shard-*.jsonl -o all.csv
# TARGETS names the networks you may scan (TARGETS="NETWORK/PREFIX ...",
# sbatch --export=ALL,TARGETS ...); the script refuses to run without it.
#SBATCH --job-name=relayscan
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
N=${SLURM_ARRAY_TASK_COUNT:?run me with sbatch --array=0-N}
K=${SLURM_ARRAY_TASK_ID:?}
TARGETS=${TARGETS:?set TARGETS to the networks you are allowed to scan}
mkdir -p results
# shellcheck disable=SC2086  # TARGETS may hold several networks
exec relayscan scan $TARGETS --shard "$K/$N" --rate 200 -q \
  --ehlo scanner.example.org \
  -o "results/shard-$K.jsonl" --resume "results/shard-$K.checkpoint"
