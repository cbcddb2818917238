#!/usr/bin/env bash
# Ask every running instance of the lab in STATE_DIR to retry its queue now
# (each delivers at once anyway; this is for mail deferred while the sink was
# unreachable).
#
#   tests/mta/flush.sh STATE_DIR
set -uo pipefail

PREFIX="${RELAYSCAN_MTA_PREFIX:-/opt/relayscan-mta}"
EXIM="$PREFIX/exim4-daemon-light/usr/sbin/exim4"
SMTPCTL="$PREFIX/opensmtpd/usr/sbin/smtpctl"

[ $# -eq 1 ] || { echo "usage: $0 STATE_DIR" >&2; exit 2; }
STATE="$(cd "$1" && pwd -P)" || exit 2
rc=0
for kindfile in "$STATE"/pids/*.kind; do
  [ -e "$kindfile" ] || continue
  name="$(basename "$kindfile" .kind)"
  read -r kind arg <"$kindfile"
  case "$kind" in
    postfix) postqueue -c "$arg" -f || rc=1 ;;
    exim) "$EXIM" -C "$arg" -qff || rc=1 ;;
    # smtpctl talks to /var/run/smtpd.sock, which exists only in the
    # instance's private mount namespace.
    opensmtpd)
      nsenter -m -t "$(cat "$STATE/pids/$name.pid")" "$SMTPCTL" schedule all >/dev/null || rc=1
      ;;
  esac
done
exit "$rc"
