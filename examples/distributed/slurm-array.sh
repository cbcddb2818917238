#!/usr/bin/env bash
# relayscan sharded over a Slurm job array: one task per shard.
#   sbatch --array=0-7 examples/distributed/slurm-array.sh
# then: relayscan merge results/shard-*.jsonl -o all.csv
# 192.0.2.0/24 is a documentation range: put the networks you may scan there.
#SBATCH --job-name=relayscan
#SBATCH --cpus-per-task=2
#SBATCH --time=02:00:00
set -euo pipefail
N=${SLURM_ARRAY_TASK_COUNT:?run me with sbatch --array=0-N}
K=${SLURM_ARRAY_TASK_ID:?}
mkdir -p results
exec relayscan scan 192.0.2.0/24 --shard "$K/$N" --rate 200 -q \
  --ehlo scanner.example.org \
  -o "results/shard-$K.jsonl" --resume "results/shard-$K.checkpoint"
