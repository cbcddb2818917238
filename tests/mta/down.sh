#!/usr/bin/env bash
# Stop everything tests/mta/up.sh started for STATE_DIR and remove STATE_DIR.
# Idempotent: a missing or already-stopped STATE_DIR is fine.
#
#   tests/mta/down.sh STATE_DIR
#
# Only processes named in STATE_DIR/pids are stopped (TERM, then KILL after a
# few seconds), and only if the pid still belongs to the expected program.
# RELAYSCAN_MTA_KEEP_STATE=1 keeps STATE_DIR (logs) after stopping.
set -uo pipefail

MARKER=.relayscan-mta-lab
log() { printf 'mta/down: %s\n' "$*" >&2; }

[ $# -eq 1 ] || { log "usage: $0 STATE_DIR"; exit 2; }
case "$1" in "" | / | /. | /..) log "refusing STATE_DIR '$1'"; exit 2 ;; esac
if [ ! -d "$1" ]; then
  exit 0
fi
STATE="$(cd "$1" && pwd -P)"
if [ ! -e "$STATE/$MARKER" ]; then
  log "$STATE was not made by up.sh (no $MARKER): leaving it alone"
  exit 2
fi

# Alive and not a zombie (a daemon's orphans may never be reaped here).
alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# The program a pid file may point at (guards against a recycled pid).
expected_comm() { # name
  case "$1" in
    sink) echo "python3" ;;
    postfix-*) echo "master" ;;
    exim-*) echo "exim4" ;;
    opensmtpd-*) echo "smtpd" ;;
  esac
}

ours() { # pid name
  local comm
  comm="$(cat "/proc/$1/comm" 2>/dev/null)" || return 1
  case "$comm" in "$(expected_comm "$2")"*) return 0 ;; esac
  return 1
}

pids=()
names=()
if [ -d "$STATE/pids" ]; then
  for f in "$STATE"/pids/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    pid="$(tr -dc 0-9 <"$f")"
    # Postfix: the graceful way first (master stops its children).
    if [ -f "$STATE/pids/$name.kind" ]; then
      read -r kind arg <"$STATE/pids/$name.kind"
      if [ "$kind" = postfix ] && alive "$pid" && ours "$pid" "$name"; then
        postfix -c "$arg" stop >/dev/null 2>&1 || true
      fi
    fi
    if alive "$pid" && ours "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
  done
fi

# Wait up to 10 s, then KILL what is left.
for _ in $(seq 100); do
  left=0
  for i in "${!pids[@]}"; do alive "${pids[$i]}" && left=1; done
  [ "$left" = 0 ] && break
  sleep 0.1
done
for i in "${!pids[@]}"; do
  if alive "${pids[$i]}" && ours "${pids[$i]}" "${names[$i]}"; then
    log "${names[$i]} (pid ${pids[$i]}) ignored TERM: killing it"
    kill -KILL "${pids[$i]}" 2>/dev/null || true
  fi
done

# Children that outlived their master (Postfix daemons, Exim deliveries,
# OpenSMTPD's privilege-separated processes) are found by their working
# directory or command line pointing into STATE_DIR, among the programs the
# lab runs (never a shell or anything else that happens to sit in STATE_DIR).
LEFTOVER_COMMS="master pickup qmgr smtpd cleanup trivial-rewrite smtp postlogd anvil tlsmgr
  proxymap bounce showq error scache verify flush local discard lmtp virtual exim4 python3"
LEFTOVER_COMMS="$(echo $LEFTOVER_COMMS)"
for p in /proc/[0-9]*; do
  pid="${p#/proc/}"
  [ "$pid" = "$$" ] && continue
  comm="$(cat "$p/comm" 2>/dev/null)" || continue
  case " $LEFTOVER_COMMS " in *" $comm "*) ;; *) continue ;; esac
  cwd="$(readlink "$p/cwd" 2>/dev/null)" || continue
  cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
  case "$cwd/ $cmd" in
    "$STATE"/* | *" $STATE/"* | *"=$STATE/"*)
      kill -KILL "$pid" 2>/dev/null && log "killed leftover pid $pid ($cmd)"
      ;;
  esac
done

if [ "${RELAYSCAN_MTA_KEEP_STATE:-0}" = 1 ]; then
  rm -rf "$STATE/pids"
  log "stopped; kept $STATE"
else
  rm -rf "$STATE"
  log "stopped; removed $STATE"
fi
exit 0
