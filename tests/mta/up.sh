#!/usr/bin/env bash
# Start the relayscan MTA lab: real Postfix, Exim and OpenSMTPD instances on
# loopback (127.0.25.0/24, port 25) plus a loopback SMTP sink that receives
# everything they relay (127.0.26.1:2526) and, on a second address
# (127.0.26.2:2526), the mail they accept for their own domains.
# See README.md beside this file.
#
#   tests/mta/up.sh STATE_DIR
#
# Writes STATE_DIR/instances.tsv (name addr port software version policy
# expected sink_relays) and STATE_DIR/sink.addr; relayed messages land in
# STATE_DIR/sink/, locally delivered ones in STATE_DIR/mailbox/.
# Stop with tests/mta/down.sh STATE_DIR.
#
# Environment:
#   RELAYSCAN_MTA_PREFIX   where install.sh unpacked Exim/OpenSMTPD (/opt/relayscan-mta)
#   RELAYSCAN_MTA_WAIT     seconds to wait for all banners (default 30)
#   RELAYSCAN_MTA_INSTALL  0 = do not run install.sh first (default 1)
#   RELAYSCAN_MTA_ONLY     space-separated instance names to start (default: all)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF="$HERE/conf"
PREFIX="${RELAYSCAN_MTA_PREFIX:-/opt/relayscan-mta}"
EXIM="$PREFIX/exim4-daemon-light/usr/sbin/exim4"
SMTPD="$PREFIX/opensmtpd/usr/sbin/smtpd"
WAIT="${RELAYSCAN_MTA_WAIT:-30}"
SINK_ADDR=127.0.26.1    # the relay sink: mail the MTAs relay to foreign domains
MAILBOX_ADDR=127.0.26.2 # the same sink process: mail for the MTAs' own domains
SINK_PORT=2526
MARKER=.relayscan-mta-lab

# name  addr  software  policy  expected  sink_relays
INSTANCES=(
  "postfix-open     127.0.25.1  postfix    open    open-relay    yes"
  "postfix-closed   127.0.25.2  postfix    closed  closed        no"
  "postfix-auth     127.0.25.3  postfix    auth    closed        no"
  "postfix-tls      127.0.25.4  postfix    tls     closed        no"
  "exim-open        127.0.25.11 exim       open    open-relay    yes"
  "exim-closed      127.0.25.12 exim       closed  closed        no"
  "opensmtpd-open   127.0.25.21 opensmtpd  open    open-relay    yes"
  "opensmtpd-closed 127.0.25.22 opensmtpd  closed  possible-relay no"
  "opensmtpd-auth   127.0.25.23 opensmtpd  auth    auth-required no"
)

log() { printf 'mta/up: %s\n' "$*" >&2; }
selected() { # name
  [ -z "${RELAYSCAN_MTA_ONLY:-}" ] && return 0
  case " $RELAYSCAN_MTA_ONLY " in *" $1 "*) return 0 ;; esac
  return 1
}
die() { printf 'mta/up: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 STATE_DIR"
[ "$(id -u)" = 0 ] || die "must run as root (binds port 25, runs MTAs as their users)"
case "$1" in "" | / | /. | /..) die "refusing STATE_DIR '$1'" ;; esac

t_start="$(date +%s.%N)"

if [ "${RELAYSCAN_MTA_INSTALL:-1}" != 0 ]; then
  bash "$HERE/install.sh" </dev/null
fi
for bin in "$EXIM" "$SMTPD" /usr/sbin/postfix /usr/sbin/saslpasswd2 /usr/bin/openssl; do
  [ -x "$bin" ] || die "$bin missing: run tests/mta/install.sh"
done
command -v unshare >/dev/null || die "unshare (util-linux) missing"

# --- STATE_DIR: fresh, ours -----------------------------------------------------------
if [ -e "$1" ]; then
  if [ -e "$1/$MARKER" ]; then
    log "$1 holds a previous lab: stopping it first"
    bash "$HERE/down.sh" "$1"
  elif [ -n "$(ls -A "$1" 2>/dev/null)" ]; then
    die "STATE_DIR $1 exists, is not empty and was not made by up.sh"
  fi
fi

# --- nothing else may hold our addresses --------------------------------------------
port_busy() { # addr port: something accepts connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
for a in "$SINK_ADDR" "$MAILBOX_ADDR"; do
  if port_busy "$a" "$SINK_PORT"; then
    die "$a:$SINK_PORT is already in use (another lab running? run down.sh on its STATE_DIR)"
  fi
done
for line in "${INSTANCES[@]}"; do
  read -r name addr _ <<<"$line"
  selected "$name" || continue
  if port_busy "$addr" 25; then
    die "$addr:25 ($name) is already in use (another lab running? run down.sh on its STATE_DIR)"
  fi
done

mkdir -p "$1"
STATE="$(cd "$1" && pwd -P)"
touch "$STATE/$MARKER"
chmod 755 "$STATE"
mkdir -p "$STATE/pids" "$STATE/ns" "$STATE/sink" "$STATE/mailbox"

# The MTAs drop root: their users must reach STATE_DIR.
if ! runuser -u postfix -- test -x "$STATE"; then
  die "STATE_DIR $STATE is not reachable by unprivileged users (a parent directory lacks o+x); use e.g. a directory under /tmp or target/"
fi

on_error() {
  local rc=$?
  log "failed; stopping what was started (logs kept in $STATE)"
  RELAYSCAN_MTA_KEEP_STATE=1 bash "$HERE/down.sh" "$STATE" || true
  exit "$rc"
}
trap on_error ERR

# --- private mount namespace: DNS cannot leave the machine ---------------------------
# Every daemon runs in its own mount namespace where /etc/resolv.conf names
# only 127.0.0.1 and /etc/hosts knows the lab's names. The configurations
# already do no DNS; this makes sure a forgotten lookup stays on loopback.
{
  echo "# relayscan MTA lab: DNS stays on loopback"
  echo "nameserver 127.0.0.1"
  echo "options timeout:1 attempts:1"
  echo "lookup file" # OpenSMTPD's resolver (libasr): /etc/hosts only
} >"$STATE/ns/resolv.conf"
{
  echo "127.0.0.1 localhost $(hostname)"
  echo "$SINK_ADDR sink.relayscan.test"
  echo "$MAILBOX_ADDR mailbox.relayscan.test"
  for line in "${INSTANCES[@]}"; do
    read -r name addr _ <<<"$line"
    echo "$addr $name.test"
  done
} >"$STATE/ns/hosts"
chmod 644 "$STATE/ns/resolv.conf" "$STATE/ns/hosts"

# in_ns [extra "src:dst" bind mounts...] -- command...
# It execs: call it in a subshell, `(in_ns ...)` or `in_ns ... &`, so that the
# daemon replaces the subshell and $! is the daemon's pid.
in_ns() {
  local binds=()
  while [ "$1" != "--" ]; do binds+=("$1"); shift; done
  shift
  exec unshare -m --propagation private -- /bin/sh -c '
    set -e
    mount --bind "$0" /etc/resolv.conf
    mount --bind "$1" /etc/hosts
    n=$2; shift 3
    while [ "$n" -gt 0 ]; do mount --bind "${1%%:*}" "${1#*:}"; shift; n=$((n - 1)); done
    exec "$@"' "$STATE/ns/resolv.conf" "$STATE/ns/hosts" "${#binds[@]}" -- "${binds[@]}" "$@"
}

render() { # template out name addr dir [extra sed expressions...]
  local tpl="$1" out="$2" name="$3" addr="$4" dir="$5"
  shift 5
  sed -e "s|@NAME@|$name|g" -e "s|@ADDR@|$addr|g" -e "s|@DIR@|$dir|g" \
    -e "s|@STATE@|$STATE|g" -e "s|@SINK_ADDR@|$SINK_ADDR|g" -e "s|@SINK_PORT@|$SINK_PORT|g" \
    -e "s|@MAILBOX_ADDR@|$MAILBOX_ADDR|g" \
    -e "s|@EXIM@|$EXIM|g" "$@" "$tpl" >"$out"
}

# --- the sink -----------------------------------------------------------------------
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
setsid "$PYTHON" "$HERE/sink.py" --listen "$SINK_ADDR:$SINK_PORT=$STATE/sink" \
  --listen "$MAILBOX_ADDR:$SINK_PORT=$STATE/mailbox" \
  --pidfile "$STATE/pids/sink.pid" </dev/null >>"$STATE/sink.log" 2>&1 &
echo "$!" >"$STATE/pids/sink.pid"
echo "$SINK_ADDR:$SINK_PORT" >"$STATE/sink.addr"

# A self-signed certificate for STARTTLS: DIR/cert.pem, DIR/key.pem (ECDSA
# P-256: quick to make). Note: Debian 12's OpenSMTPD 6.8.0p2 cannot finish a
# TLS handshake with OpenSSL 3 with any key ("EVP lib", upstream issues #1171
# and #1239), so opensmtpd-auth offers STARTTLS that always fails.
make_cert() { # name addr dir
  mkdir -p "$3"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=$1.test" \
    -addext "subjectAltName=DNS:$1.test,IP:$2" \
    -keyout "$3/key.pem" -out "$3/cert.pem" >/dev/null 2>&1 \
    || die "$1: openssl could not make a certificate"
  chmod 600 "$3/key.pem"
}

# A private CA and a certificate it issued, for postfix-auth's STARTTLS:
# DIR/ca.pem (the CA, for relayscan --auth-ca), DIR/cert.pem, DIR/key.pem
# (CA:FALSE, serverAuth, DNS:NAME.test and IP:ADDR). The CA's key is deleted
# once the certificate is signed.
make_ca_cert() { # name addr dir
  mkdir -p "$3"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=relayscan MTA lab CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" \
    -keyout "$3/ca-key.pem" -out "$3/ca.pem" >/dev/null 2>&1 \
    || die "$1: openssl could not make a CA"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1.test" \
    -keyout "$3/key.pem" -out "$3/cert.csr" >/dev/null 2>&1 \
    || die "$1: openssl could not make a certificate request"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$1.test,IP:$2" >"$3/cert.ext"
  openssl x509 -req -in "$3/cert.csr" -CA "$3/ca.pem" -CAkey "$3/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile "$3/cert.ext" -out "$3/cert.pem" >/dev/null 2>&1 \
    || die "$1: openssl could not sign a certificate"
  rm -f "$3/ca-key.pem" "$3/cert.csr" "$3/cert.ext" "$3/ca.srl"
  chmod 600 "$3/key.pem"
  chmod 644 "$3/ca.pem" "$3/cert.pem"
}

# --- Postfix -------------------------------------------------------------------------
start_postfix() { # name addr policy
  local name="$1" addr="$2" policy="$3" d="$STATE/$1"
  mkdir -p "$d/etc" "$d/log" "$d/data" "$d/spool"
  { cat "$CONF/postfix-main.cf"; echo; cat "$CONF/postfix-$policy.cf"; } >"$d/etc/main.cf.in"
  render "$d/etc/main.cf.in" "$d/etc/main.cf" "$name" "$addr" "$d"
  render "$CONF/postfix-master.cf" "$d/etc/master.cf" "$name" "$addr" "$d"
  rm -f "$d/etc/main.cf.in"
  chown postfix "$d/data"
  case "$policy" in
    auth)
      mkdir -p "$d/etc/sasl"
      render "$CONF/sasl-smtpd.conf" "$d/etc/sasl/smtpd.conf" "$name" "$addr" "$d"
      printf '%s' relaypass | saslpasswd2 -p -c -f "$d/etc/sasl/sasldb2" -u "$name.test" relayuser
      chown root:postfix "$d/etc/sasl/sasldb2"
      chmod 640 "$d/etc/sasl/sasldb2"
      make_ca_cert "$name" "$addr" "$d/tls"
      ;;
    tls) make_cert "$name" "$addr" "$d/tls" ;;
  esac
  # postfix(1) prints its reasons only to a terminal (else to maillog_file).
  if ! script -qec "postfix -c '$d/etc' check" /dev/null </dev/null >"$d/log/check.log" 2>&1; then
    cat "$d/log/check.log" >&2
    die "$name: 'postfix -c $d/etc check' failed (see $d/log/check.log, $d/log/maillog)"
  fi
  if ! (in_ns -- postfix -c "$d/etc" start) >"$d/log/start.log" 2>&1 </dev/null; then
    script -qec "postfix -c '$d/etc' start" /dev/null </dev/null >>"$d/log/start.log" 2>&1 || true
    cat "$d/log/start.log" >&2
    die "$name: postfix start failed (see $d/log/start.log, $d/log/maillog)"
  fi
  for _ in $(seq 50); do
    [ -s "$d/spool/pid/master.pid" ] && break
    sleep 0.1
  done
  local pid
  pid="$(tr -dc 0-9 <"$d/spool/pid/master.pid" 2>/dev/null || true)"
  echo "$pid" >"$STATE/pids/$name.pid"
  echo "postfix $d/etc" >"$STATE/pids/$name.kind"
}

# --- Exim ---------------------------------------------------------------------------
start_exim() { # name addr policy
  local name="$1" addr="$2" policy="$3" d="$STATE/$1" relay_from local_domains
  mkdir -p "$d/spool" "$d/log"
  chown Debian-exim:Debian-exim "$d/spool" "$d/log"
  case "$policy" in
    open) relay_from='*' local_domains="exim-open.test" ;;
    closed) relay_from='' local_domains="closed.test" ;;
    *) die "exim: unknown policy $policy" ;;
  esac
  render "$CONF/exim.conf" "$d/exim.conf" "$name" "$addr" "$d" \
    -e "s|@RELAY_FROM_HOSTS@|$relay_from|g" -e "s|@LOCAL_DOMAINS@|$local_domains|g"
  chmod 644 "$d/exim.conf"
  if ! "$EXIM" -C "$d/exim.conf" -bV >"$d/log/check.log" 2>&1; then
    cat "$d/log/check.log" >&2
    die "$name: exim rejects its configuration (see $d/log/check.log)"
  fi
  # -bdf: the daemon stays in the foreground, so $! is its pid.
  in_ns -- "$EXIM" -C "$d/exim.conf" -bdf -q1m </dev/null >>"$d/log/daemon.log" 2>&1 &
  echo "$!" >"$STATE/pids/$name.pid"
  echo "exim $d/exim.conf" >"$STATE/pids/$name.kind"
}

# --- OpenSMTPD ----------------------------------------------------------------------
# Its spool (/var/spool/smtpd), control socket (/var/run/smtpd.sock), chroot
# (/var/lib/opensmtpd/empty) and helpers (/usr/libexec/opensmtpd) are
# compiled in: each instance gets private directories bind-mounted there in
# its own mount namespace. The host only gains empty mount points.
start_opensmtpd() { # name addr policy
  local name="$1" addr="$2" policy="$3" d="$STATE/$1"
  mkdir -p "$d/spool" "$d/run" "$d/log"
  chmod 711 "$d/spool"
  mkdir -p /var/spool/smtpd /var/lib/opensmtpd/empty /usr/libexec/opensmtpd
  render "$CONF/opensmtpd-$policy.conf" "$d/smtpd.conf" "$name" "$addr" "$d"
  if [ "$policy" = auth ]; then
    make_cert "$name" "$addr" "$d/tls"
    printf 'relayuser %s\n' "$(openssl passwd -6 relaypass)" >"$d/creds"
    chown root:opensmtpd "$d/creds"
    chmod 640 "$d/creds"
  fi
  chmod 644 "$d/smtpd.conf"
  if ! "$SMTPD" -n -f "$d/smtpd.conf" >"$d/log/check.log" 2>&1; then
    cat "$d/log/check.log" >&2
    die "$name: smtpd rejects its configuration (see $d/log/check.log)"
  fi
  in_ns "$d/spool:/var/spool/smtpd" "$d/run:/run" \
    "$PREFIX/opensmtpd/var/lib/opensmtpd/empty:/var/lib/opensmtpd/empty" \
    "$PREFIX/opensmtpd/usr/libexec/opensmtpd:/usr/libexec/opensmtpd" \
    -- "$SMTPD" -d -f "$d/smtpd.conf" </dev/null >>"$d/log/smtpd.log" 2>&1 &
  echo "$!" >"$STATE/pids/$name.pid"
  echo "opensmtpd $d" >"$STATE/pids/$name.kind"
}

version_of() { # software
  case "$1" in
    postfix) postconf -d -h mail_version 2>/dev/null ;;
    exim) "$EXIM" -C /dev/null -bV 2>/dev/null | awk '/^Exim version/ {print $3; exit}' ;;
    opensmtpd) "$SMTPD" -h 2>&1 | awk '/^version:/ {print $3; exit}' ;;
  esac
}
software_name() {
  case "$1" in postfix) echo Postfix ;; exim) echo Exim ;; opensmtpd) echo OpenSMTPD ;; esac
}

# Start the instances in parallel (each start is a few postconf/postfix-script
# runs, mostly waiting); a failing start names itself and fails up.sh.
starters=()
for line in "${INSTANCES[@]}"; do
  read -r name addr sw policy _ <<<"$line"
  selected "$name" || continue
  ("start_$sw" "$name" "$addr" "$policy") &
  starters+=("$! $name")
done
for s in "${starters[@]}"; do
  read -r pid name <<<"$s"
  wait "$pid" || die_later="${die_later:-} $name"
done
if [ -n "${die_later:-}" ]; then
  log "could not start:${die_later}"
  false # -> on_error
fi

# --- wait for every banner -----------------------------------------------------------
banner() { # addr port -> first line of the greeting, or nothing
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    printf "QUIT\r\n" >&3
    printf "%s\n" "${line%$'"'"'\r'"'"'}"' "$1" "$2" 2>/dev/null || true
}
log_of() { # name -> the log to read when it fails
  case "$1" in
    postfix-*) echo "$STATE/$1/log/maillog" ;;
    exim-*) echo "$STATE/$1/log/mainlog (and paniclog, daemon.log)" ;;
    opensmtpd-*) echo "$STATE/$1/log/smtpd.log" ;;
    sink) echo "$STATE/sink.log" ;;
  esac
}

deadline=$(($(date +%s) + WAIT))
pending=("sink $SINK_ADDR $SINK_PORT" "sink $MAILBOX_ADDR $SINK_PORT")
for line in "${INSTANCES[@]}"; do
  read -r name addr _ <<<"$line"
  selected "$name" && pending+=("$name $addr 25")
done
while [ "${#pending[@]}" -gt 0 ]; do
  still=()
  for p in "${pending[@]}"; do
    read -r name addr port <<<"$p"
    b="$(banner "$addr" "$port")"
    case "$b" in
      220*) log "$name $addr:$port up: $b" ;;
      *) still+=("$p") ;;
    esac
  done
  pending=("${still[@]+"${still[@]}"}")
  [ "${#pending[@]}" -eq 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    for p in "${pending[@]}"; do
      read -r name addr port <<<"$p"
      log "$name did not answer with a 220 banner on $addr:$port within ${WAIT}s; log: $(log_of "$name")"
      f="$(log_of "$name")"
      f="${f%% *}"
      [ -f "$f" ] && tail -n 15 "$f" >&2
    done
    false # -> on_error
  fi
  sleep 0.2
done

# --- instances.tsv -------------------------------------------------------------------
{
  printf 'name\taddr\tport\tsoftware\tversion\tpolicy\texpected\tsink_relays\n'
  for line in "${INSTANCES[@]}"; do
    read -r name addr sw policy expected sink_relays <<<"$line"
    selected "$name" || continue
    printf '%s\t%s\t25\t%s\t%s\t%s\t%s\t%s\n' "$name" "$addr" "$(software_name "$sw")" \
      "$(version_of "$sw")" "$policy" "$expected" "$sink_relays"
  done
} >"$STATE/instances.tsv.tmp"
mv "$STATE/instances.tsv.tmp" "$STATE/instances.tsv"

trap - ERR
log "all up in $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s; instances: $STATE/instances.tsv, sink: $SINK_ADDR:$SINK_PORT -> $STATE/sink/"
