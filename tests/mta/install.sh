#!/usr/bin/env bash
# Install what tests/mta/up.sh needs: Postfix (installed normally), Exim and
# OpenSMTPD (unpacked into a private prefix, because the three MTA packages
# conflict with each other in Debian), swaks, nmap, openssl and the Cyrus SASL
# tools. Idempotent and non-interactive: a second run only checks and exits.
#
# No daemon is started or enabled here: a policy-rc.d that answers 101 is put
# in place for the duration of the install (unless one already exists), and
# Postfix is preseeded as "No configuration" so its postinst writes no main.cf.
#
# Environment: RELAYSCAN_MTA_PREFIX (default /opt/relayscan-mta).
set -euo pipefail

PREFIX="${RELAYSCAN_MTA_PREFIX:-/opt/relayscan-mta}"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'mta/install: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs Debian packages)"
command -v apt-get >/dev/null || die "needs a Debian-like system with apt-get"

# Packages installed system-wide. The lib* entries are the run-time
# dependencies of exim4-daemon-light and opensmtpd, whose binaries we only
# unpack; installing the libraries is harmless and does not conflict.
APT_PKGS=(
  postfix libsasl2-modules sasl2-bin swaks nmap openssl python3 iproute2
  libnet-ssleay-perl libio-socket-ssl-perl
  libdb5.3 libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0 libcrypt1
  libevent-2.1-7 libpam0g libssl3 zlib1g
)
# Packages unpacked (dpkg -x) into $PREFIX/<name>, never configured.
UNPACK_PKGS=(exim4-daemon-light opensmtpd)

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing_apt() {
  local p
  for p in "${APT_PKGS[@]}"; do pkg_installed "$p" || printf '%s\n' "$p"; done
}

# The version apt would give us now (the candidate), for the unpack cache key.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }

unpacked_ok() {
  # $1 package: unpacked and its recorded version is still the candidate
  # (when apt knows a candidate at all).
  local p="$1" stamp="$PREFIX/$1/.version" cand
  [ -s "$stamp" ] || return 1
  cand="$(candidate "$p")"
  [ -z "$cand" ] || [ "$cand" = "(none)" ] || [ "$(cat "$stamp")" = "$cand" ]
}

apt_updated=0
apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  log "apt-get update"
  apt-get update -qq || die "apt-get update failed"
  apt_updated=1
}

# apt lists present at all? Without them nothing can be installed.
lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

users_ok() { id Debian-exim >/dev/null 2>&1 && id opensmtpd >/dev/null 2>&1 && id opensmtpq >/dev/null 2>&1; }
# smtpctl refuses to run unless setgid opensmtpq (as the package's postinst sets it).
SMTPCTL="$PREFIX/opensmtpd/usr/sbin/smtpctl"
smtpctl_ok() { [ -g "$SMTPCTL" ] && [ "$(stat -c %G "$SMTPCTL")" = opensmtpq ]; }

all_ok=1
[ -z "$(missing_apt)" ] || all_ok=0
for p in "${UNPACK_PKGS[@]}"; do [ -s "$PREFIX/$p/.version" ] || all_ok=0; done
users_ok || all_ok=0
smtpctl_ok || all_ok=0
if [ "$all_ok" = 1 ]; then
  # Fast path: everything is there. (The version check against the apt
  # candidate happens only when something else needs work, to stay fast.)
  log "already installed (prefix $PREFIX)"
  exit 0
fi

# --- keep package scripts from starting daemons --------------------------------
POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if [ "$created_policy" = 1 ]; then rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from relayscan tests/mta/install.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  created_policy=1
fi

lists_present || apt_update

# --- system-wide packages ---------------------------------------------------------
mapfile -t need < <(missing_apt)
if [ "${#need[@]}" -gt 0 ]; then
  postfix_was_installed=0
  pkg_installed postfix && postfix_was_installed=1
  # "No configuration": postinst leaves /etc/postfix/main.cf alone (absent).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  log "apt-get install ${need[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    apt_update
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || die "apt-get install ${need[*]} failed"
  fi
  # A postinst that started the system Postfix anyway (no policy-rc.d honoured):
  # stop it, but only if this run installed Postfix (never touch a system MTA
  # that was there before).
  if [ "$postfix_was_installed" = 0 ] && [ -s /var/spool/postfix/pid/master.pid ]; then
    pid="$(tr -dc 0-9 </var/spool/postfix/pid/master.pid)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      log "stopping the system Postfix that postinst started (pid $pid)"
      postfix stop >/dev/null 2>&1 || kill "$pid" || true
    fi
  fi
fi

# --- users the private Exim and OpenSMTPD need ----------------------------------------
# Exim's Debian build has exim_user Debian-exim compiled in; OpenSMTPD's Debian
# build drops privileges to opensmtpd (and opensmtpq for the queue process).
ensure_user() { # name home
  id "$1" >/dev/null 2>&1 && return 0
  getent group "$1" >/dev/null || groupadd --system "$1"
  useradd --system --gid "$1" --home-dir "$2" --no-create-home --shell /usr/sbin/nologin "$1"
}
ensure_user Debian-exim /var/spool/exim4
ensure_user opensmtpd /var/lib/opensmtpd/empty
ensure_user opensmtpq /var/lib/opensmtpd/empty

# --- unpacked packages ---------------------------------------------------------------
for p in "${UNPACK_PKGS[@]}"; do
  if unpacked_ok "$p"; then continue; fi
  ver="$(candidate "$p")"
  if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
    apt_update
    ver="$(candidate "$p")"
  fi
  [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no package $p"
  tmp="$(mktemp -d)"
  chmod 755 "$tmp" # apt-get download runs as _apt where it can
  log "unpacking $p $ver into $PREFIX/$p"
  (cd "$tmp" && apt-get download -qq "$p=$ver" 2>/dev/null) \
    || { apt_update; (cd "$tmp" && apt-get download -qq "$p=$ver" 2>/dev/null); } \
    || die "apt-get download $p=$ver failed"
  rm -rf "$PREFIX/$p.new"
  mkdir -p "$PREFIX/$p.new"
  dpkg -x "$tmp"/*.deb "$PREFIX/$p.new"
  printf '%s\n' "$ver" >"$PREFIX/$p.new/.version"
  rm -rf "${PREFIX:?}/${p:?}" "$tmp"
  mv "$PREFIX/$p.new" "$PREFIX/$p"
done

chgrp opensmtpq "$SMTPCTL"
chmod 2755 "$SMTPCTL"

# --- sanity: the unpacked binaries find their libraries ----------------------------------
for bin in "$PREFIX/exim4-daemon-light/usr/sbin/exim4" "$PREFIX/opensmtpd/usr/sbin/smtpd"; do
  [ -x "$bin" ] || die "missing $bin"
  if ldd "$bin" | grep -q 'not found'; then
    ldd "$bin" | grep 'not found' >&2
    die "$bin lacks shared libraries"
  fi
done
log "ok (prefix $PREFIX)"
