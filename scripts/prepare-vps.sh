#!/usr/bin/env bash
# Prepare a fresh Debian 12 or Ubuntu 24.04 VPS for the lazyflow toolkit, as root, idempotently:
# Docker Engine with Compose v2, Node >= 22.18 (with npm), restic >= 0.17, git, sqlite3, jq, curl,
# and a firewall that lets in only 22, 80 and 443 (ufw). Optionally the operator's sudo user.
# Every step checks first and changes nothing that is already right; run it again at any time.
#
#   curl -fsSLO https://raw.githubusercontent.com/YOUR-ACCOUNT/lazyflow-deploy/main/scripts/prepare-vps.sh
#   sudo bash prepare-vps.sh                       # or: sudo OPERATOR_USER=alice bash prepare-vps.sh
#
# Sources (official ones by default; each can be pointed elsewhere, e.g. a mirror):
#   DOCKER_SOURCE=docker   Docker's apt repository (DOCKER_APT_URL, default https://download.docker.com/linux/<os>):
#                          docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin
#                 distro   the distribution's docker.io, with the Compose v2 plugin from COMPOSE_DEB (a .deb URL)
#   NODE_DIST_URL          a nodejs.org dist directory (default https://nodejs.org/dist/latest-v24.x): the
#                          linux tarball named in its SHASUMS256.txt, checksum verified, unpacked to /usr/local
#   RESTIC_VERSION, RESTIC_BASE_URL   restic's release binary (default 0.18.0 from
#                          https://github.com/restic/restic/releases/download/v<version>), verified against the
#                          release's SHA256SUMS, installed as /usr/local/bin/restic
# Other settings:
#   OPERATOR_USER=name     create this user (sudo group; root's authorized_keys copied) if missing
#   SKIP_START=1           configure only: do not start Docker or enable the firewall (containers, tests)
# Exit status: 0 ready, 1 a step failed (named, with its output), 2 not root or not Debian/Ubuntu.
set -euo pipefail

DOCKER_SOURCE=${DOCKER_SOURCE:-docker}
NODE_DIST_URL=${NODE_DIST_URL:-https://nodejs.org/dist/latest-v24.x}
RESTIC_VERSION=${RESTIC_VERSION:-0.18.0}
RESTIC_BASE_URL=${RESTIC_BASE_URL:-https://github.com/restic/restic/releases/download/v$RESTIC_VERSION}
# the toolkit's minimums (scripts/lib/checks/preflight.mts: MIN_NODE, MIN_RESTIC_VERSION)
MIN_NODE=22.18.0
MIN_RESTIC=0.17.0
SKIP_START=${SKIP_START:-}
OPERATOR_USER=${OPERATOR_USER:-}
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
die() { echo "error: $*" >&2; exit "${2:-1}"; }
# version_ge A B: A >= B, both dotted numbers
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
fetch() { curl -fsSL --retry 3 --proto '=https,file' -o "$2" "$1" || die "cannot download $1"; }

[ "$(id -u)" = 0 ] || die "run it as root: sudo bash $0" 2
[ -r /etc/os-release ] || die "/etc/os-release is missing: Debian 12 or Ubuntu 24.04 expected" 2
. /etc/os-release
case "$ID" in debian|ubuntu) ;; *) die "$ID is not supported: Debian 12 or Ubuntu 24.04 expected" 2 ;; esac
ARCH=$(dpkg --print-architecture)
case "$ARCH" in amd64) NODE_ARCH=x64 ;; arm64) NODE_ARCH=arm64 ;; *) die "architecture $ARCH is not supported (amd64, arm64)" 2 ;; esac

apt_updated=""
apt_install() { # packages not yet installed, installed in one go
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  echo "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step "Base tools: curl, git, sqlite3, jq, ufw"
apt_install ca-certificates curl gnupg git sqlite3 jq ufw openssl bzip2 xz-utils sudo dnsutils
echo "ok"

step "Docker Engine and Compose v2 ($DOCKER_SOURCE)"
compose_v2() { docker compose version --short 2>/dev/null | grep -Eq '^v?2\.'; }
case "$DOCKER_SOURCE" in
  docker)
    DOCKER_APT_URL=${DOCKER_APT_URL:-https://download.docker.com/linux/$ID}
    list=/etc/apt/sources.list.d/docker.list
    line="deb [arch=$ARCH signed-by=/etc/apt/keyrings/docker.asc] $DOCKER_APT_URL $VERSION_CODENAME stable"
    if [ ! -s /etc/apt/keyrings/docker.asc ] || [ "$(cat "$list" 2>/dev/null)" != "$line" ]; then
      install -m 0755 -d /etc/apt/keyrings
      fetch "$DOCKER_APT_URL/gpg" /etc/apt/keyrings/docker.asc
      chmod a+r /etc/apt/keyrings/docker.asc
      echo "$line" >"$list"
      apt_updated=""
    fi
    apt_install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
    ;;
  distro)
    apt_install docker.io
    if ! compose_v2; then
      [ -n "${COMPOSE_DEB:-}" ] || die "DOCKER_SOURCE=distro needs COMPOSE_DEB, the URL of a docker-compose (v2) .deb" 2
      tmp=$(mktemp -d)
      fetch "$COMPOSE_DEB" "$tmp/compose.deb"
      dpkg-deb -x "$tmp/compose.deb" "$tmp/x"
      plugin=$(find "$tmp/x" -path '*cli-plugins/docker-compose' -type f | head -n1)
      [ -n "$plugin" ] || die "$COMPOSE_DEB has no cli-plugins/docker-compose"
      install -D -m 0755 "$plugin" /usr/local/lib/docker/cli-plugins/docker-compose
      rm -rf "$tmp"
      echo "Compose plugin installed from $COMPOSE_DEB"
    fi
    ;;
  *) die "DOCKER_SOURCE must be docker or distro, not $DOCKER_SOURCE" 2 ;;
esac
docker --version
compose_v2 || die "docker compose is not v2: $(docker compose version 2>&1 | head -n1)"
docker compose version
if [ -n "$SKIP_START" ]; then
  echo "not started (SKIP_START)"
elif [ -d /run/systemd/system ]; then
  systemctl enable --now docker >/dev/null 2>&1 || die "systemctl enable --now docker failed: journalctl -u docker -n 50"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer: journalctl -u docker -n 50"
  echo "engine running"
else
  die "systemd does not run here: start dockerd yourself (or SKIP_START=1 to configure only)"
fi

step "Node >= $MIN_NODE"
node_version() { "$1" --version 2>/dev/null | sed 's/^v//'; }
if have node && version_ge "$(node_version node)" "$MIN_NODE" && have npm; then
  echo "node $(node_version node) and npm $(npm --version) already here"
else
  tmp=$(mktemp -d)
  fetch "$NODE_DIST_URL/SHASUMS256.txt" "$tmp/SHASUMS256.txt"
  file=""
  for ext in tar.xz tar.gz; do
    [ -n "$file" ] || file=$(awk -v a="-linux-$NODE_ARCH.$ext" '$2 ~ /^node-v[0-9.]+-linux-/ && substr($2, length($2) - length(a) + 1) == a { print $2; exit }' "$tmp/SHASUMS256.txt")
  done
  [ -n "$file" ] || die "$NODE_DIST_URL/SHASUMS256.txt names no node-v*-linux-$NODE_ARCH.tar.xz"
  fetch "$NODE_DIST_URL/$file" "$tmp/$file"
  (cd "$tmp" && grep " $file\$" SHASUMS256.txt | sha256sum -c --quiet -) || die "checksum of $file does not match $NODE_DIST_URL/SHASUMS256.txt"
  tar -xf "$tmp/$file" -C /usr/local --strip-components=1 --no-same-owner --exclude='*/CHANGELOG.md' --exclude='*/README.md' --exclude='*/LICENSE'
  rm -rf "$tmp"
  hash -r
  echo "installed ${file%.tar.*} into /usr/local"
fi
version_ge "$(node_version node)" "$MIN_NODE" || die "node $(node_version node) is older than $MIN_NODE (an older node first on PATH: $(command -v node))"
echo "node $(node_version node), npm $(npm --version)"

step "restic >= $MIN_RESTIC"
restic_version() { restic version 2>/dev/null | awk '{print $2}'; }
if have restic && version_ge "$(restic_version)" "$MIN_RESTIC"; then
  echo "restic $(restic_version) already here"
else
  tmp=$(mktemp -d)
  file="restic_${RESTIC_VERSION}_linux_${ARCH}.bz2"
  fetch "$RESTIC_BASE_URL/SHA256SUMS" "$tmp/SHA256SUMS"
  fetch "$RESTIC_BASE_URL/$file" "$tmp/$file"
  (cd "$tmp" && grep " \*\?$file\$" SHA256SUMS | sed 's/ \*/  /' | sha256sum -c --quiet -) || die "checksum of $file does not match $RESTIC_BASE_URL/SHA256SUMS"
  bunzip2 -c "$tmp/$file" >"$tmp/restic"
  install -m 0755 "$tmp/restic" /usr/local/bin/restic
  rm -rf "$tmp"
  hash -r
  echo "installed restic $(restic_version) as /usr/local/bin/restic"
fi
version_ge "$(restic_version)" "$MIN_RESTIC" || die "restic $(restic_version) is older than $MIN_RESTIC (an older one first on PATH: $(command -v restic))"

step "Firewall: 22, 80, 443 in; everything else out only"
rules=$(ufw show added 2>/dev/null || true)
for r in 22/tcp 80/tcp 443/tcp 443/udp; do
  grep -qx "ufw allow $r" <<<"$rules" || { ufw allow "$r" >/dev/null; echo "allowed $r"; }
done
grep -q '^DEFAULT_INPUT_POLICY="DROP"' /etc/default/ufw || { ufw default deny incoming >/dev/null; echo "incoming: deny"; }
grep -q '^DEFAULT_OUTPUT_POLICY="ACCEPT"' /etc/default/ufw || { ufw default allow outgoing >/dev/null; echo "outgoing: allow"; }
if [ -n "$SKIP_START" ]; then
  echo "rules written, not enabled (SKIP_START)"
elif grep -q '^ENABLED=yes' /etc/ufw/ufw.conf; then
  echo "enabled"
else
  ufw --force enable >/dev/null   # --force: never a prompt (it would eat the next pasted line)
  echo "enabled now"
fi
echo "Docker publishes Caddy's 80/443 itself (its own iptables rules); nothing else of the stack is published."

if [ -n "$OPERATOR_USER" ]; then
  step "Operator user $OPERATOR_USER"
  if id "$OPERATOR_USER" >/dev/null 2>&1; then
    echo "exists"
  else
    useradd -m -s /bin/bash "$OPERATOR_USER"
    echo "created"
  fi
  id -nG "$OPERATOR_USER" | tr ' ' '\n' | grep -qx sudo || { usermod -aG sudo "$OPERATOR_USER"; echo "added to sudo"; }
  home=$(getent passwd "$OPERATOR_USER" | cut -d: -f6)
  if [ -s /root/.ssh/authorized_keys ] && [ ! -s "$home/.ssh/authorized_keys" ]; then
    install -d -m 700 -o "$OPERATOR_USER" -g "$OPERATOR_USER" "$home/.ssh"
    install -m 600 -o "$OPERATOR_USER" -g "$OPERATOR_USER" /root/.ssh/authorized_keys "$home/.ssh/authorized_keys"
    echo "root's authorized_keys copied: ssh $OPERATOR_USER@<this host> works with the same key"
  fi
  passwd -S "$OPERATOR_USER" 2>/dev/null | awk '{print $2}' | grep -q '^P' || echo "note: $OPERATOR_USER has no password; sudo asks for one: sudo passwd $OPERATOR_USER"
fi

step "Ready"
printf '%-8s %s\n' docker "$(docker --version | sed 's/^Docker version //')" compose "$(docker compose version --short)" node "$(node_version node)" npm "$(npm --version)" restic "$(restic_version)" sqlite3 "$(sqlite3 --version | awk '{print $1}')" jq "$(jq --version)" git "$(git --version | awk '{print $3}')"
echo "next: clone your repository and run the toolkit's setup (RUNBOOK.md, First deploy)"
