#!/usr/bin/env bash
# Offsite backup tools for tests and benchmarks, on top of test/prepare-machine.sh (which calls this
# near its end): restic and rclone from Debian sid (one .deb each, static Go binaries), an OpenSSH
# server stand-in image (SFTP target), and a check that moto_server (S3 emulator) is available.
# Idempotent. Appends its exports to $CACHE/env.sh once.
set -euo pipefail
CACHE=${LAZYFLOW_CACHE:-/var/cache/lazyflow-ci}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEBIAN_BASE=lazyflow-standin/debian:bookworm
SSHD_IMAGE=lazyflow-standin/sshd:bookworm-git
RESTIC_VERSION=0.19.1
TOOLS="$CACHE/offsite"
mkdir -p "$TOOLS"

archive_uri() { awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true; }
sid_download() { # package -> path of the .deb (same recipe as prepare-machine.sh)
  local pkg=$1 dir="$CACHE/sid"
  mkdir -p "$dir/lists/partial" "$dir/debs"
  local existing; existing=$(ls "$dir/debs/${pkg}"_*.deb 2>/dev/null | sed -n 1p || true)
  if [ -n "$existing" ]; then echo "$existing"; return 0; fi
  local uri; uri=$(archive_uri); uri=${uri:-http://deb.debian.org/debian}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" >"$dir/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=/dev/null -o "Dir::State::lists=$dir/lists" -o Debug::NoLocking=1)
  if [ ! -f "$dir/lists/.updated" ] || ! apt-cache "${opts[@]}" show "$pkg" >/dev/null 2>&1; then
    apt-get "${opts[@]}" update -qq >&2; touch "$dir/lists/.updated"
  fi
  (cd "$dir/debs" && apt-get "${opts[@]}" download "$pkg" >&2)
  ls "$dir/debs/${pkg}"_*.deb | sed -n 1p
}
extract_bin() { # package member dest
  local tmp; tmp=$(mktemp -d)
  dpkg-deb -x "$(sid_download "$1")" "$tmp"
  install -m 0755 "$tmp/$2" "$3"
  rm -rf "$tmp"
}

printf '\n==> restic %s\n' "$RESTIC_VERSION"
if ! "$TOOLS/restic" version 2>/dev/null | grep -q "restic $RESTIC_VERSION"; then
  extract_bin restic usr/bin/restic "$TOOLS/restic"
fi
"$TOOLS/restic" version

printf '\n==> rclone (restic REST server for tests)\n'
if ! "$TOOLS/rclone" version >/dev/null 2>&1; then
  extract_bin rclone usr/bin/rclone "$TOOLS/rclone"
fi
"$TOOLS/rclone" version | sed -n 1p

printf '\n==> SFTP target image %s\n' "$SSHD_IMAGE"
if docker image inspect "$SSHD_IMAGE" >/dev/null 2>&1; then
  echo "present"
else
  docker build -q --build-arg "BASE=$DEBIAN_BASE" -t "$SSHD_IMAGE" "$HERE/standins/sshd" >/dev/null
  echo "built"
fi

printf '\n==> moto_server (S3 emulator)\n'
MOTO=$(command -v moto_server || true)
if [ -z "$MOTO" ] || ! "$MOTO" --help >/dev/null 2>&1; then
  # Not installed here on purpose: the shared notes say this machine kind's Python carries it.
  echo "moto_server not found: the S3 offsite test will skip loudly (fails under REQUIRE_DOCKER=1)" >&2
  MOTO=""
else
  echo "$MOTO"
fi

add_env() { grep -qxF "$1" "$CACHE/env.sh" 2>/dev/null || echo "$1" >>"$CACHE/env.sh"; }
add_env "export LAZYFLOW_RESTIC_BIN=\"$TOOLS/restic\""
add_env "export LAZYFLOW_RCLONE_BIN=\"$TOOLS/rclone\""
add_env "export SSHD_IMAGE=\"$SSHD_IMAGE\""
[ -n "$MOTO" ] && add_env "export LAZYFLOW_MOTO_SERVER=\"$MOTO\""
add_env "export PATH=\"$TOOLS:\$PATH\""
echo ok
