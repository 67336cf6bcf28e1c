#!/usr/bin/env bash
# The Docker engine that test/prepare-machine.sh starts, and only that one: the processes it started
# are recorded as "<pid> <start time in clock ticks>" in $LAZYFLOW_CACHE/dockerd.pid (and the
# containerd that dockerd runs in containerd.pid), and only a process whose pid, start time and
# command line all match its record is ever signalled, never one found by name.
#
# Sourced by test/prepare-machine.sh (start the engine), and run by test/support/engine.ts:
#   bash test/support/dockerd.sh restart   # what a reboot does to the engine: dockerd stops (its
#                                          # containers stop gracefully, as systemd stops docker.service),
#                                          # then starts again exactly as prepare-machine.sh starts it;
#                                          # containers with a restart policy come back
# Env: LAZYFLOW_CACHE (default /var/cache/lazyflow-ci)

CACHE=${CACHE:-${LAZYFLOW_CACHE:-/var/cache/lazyflow-ci}}
# What prepare-machine.sh started, as "<pid> <start time in clock ticks>": the only processes it ever stops.
OWN_DOCKERD_PIDFILE="$CACHE/dockerd.pid"
OWN_CONTAINERD_PIDFILE="$CACHE/containerd.pid"

proc_start_time() { # pid -> field 22 of /proc/<pid>/stat (start time since boot), or nothing
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  set -- $stat
  echo "${20}"
}
proc_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//'; }
alive_not_zombie() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
record_own() { # pidfile pid
  local start; start=$(proc_start_time "$2") || return 1
  printf '%s %s\n' "$2" "$start" >"$1.tmp" && mv -f "$1.tmp" "$1"
}
# Print the pid named by one of our own pid files when it is trustworthy: the file is ours (root's,
# not writable by others), names a live process with the recorded start time (not a reused pid),
# and that process's command line matches. Anything else: nothing, exit 1.
trusted_pid() { # pidfile cmdline-regex
  local file=$1 re=$2 pid start
  [ -f "$file" ] && [ -O "$file" ] && [ -z "$(find "$file" -perm /022 2>/dev/null)" ] || return 1
  read -r pid start <"$file" 2>/dev/null || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && alive_not_zombie "$pid" || return 1
  [ "$(proc_start_time "$pid")" = "$start" ] || return 1
  [[ "$(proc_cmdline "$pid")" =~ $re ]] || return 1
  echo "$pid"
}
stop_own() { # pidfile cmdline-regex what [half-seconds to wait before SIGKILL, default 30]
  local pid
  if pid=$(trusted_pid "$1" "$2"); then
    echo "stopping the $3 this script started (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "${4:-30}"); do alive_not_zombie "$pid" || break; sleep 0.5; done
    alive_not_zombie "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}
DOCKERD_RE='^dockerd$'
CONTAINERD_RE='^containerd --config /var/run/docker/containerd/containerd\.toml( |$)'
# Remember the containerd that our dockerd runs (its child), so that it can be cleared if it
# outlives that dockerd: once dockerd is gone, its parent no longer tells whose it was.
record_own_containerd() {
  local dpid cpid
  dpid=$(trusted_pid "$OWN_DOCKERD_PIDFILE" "$DOCKERD_RE") || return 0
  cpid=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
  [[ "$cpid" =~ ^[0-9]+$ ]] || return 0
  [ "$(awk '/^PPid:/ {print $2}' "/proc/$cpid/status" 2>/dev/null)" = "$dpid" ] || return 0
  [[ "$(proc_cmdline "$cpid")" =~ $CONTAINERD_RE ]] || return 0
  record_own "$OWN_CONTAINERD_PIDFILE" "$cpid"
}

wait_engine() { for _ in $(seq 1 "$1"); do docker info >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
# A dockerd killed with its session leaves a stale pid file (or a zombie), and the containerd it
# managed may outlive it: a new dockerd then waits for a socket that never comes. Clear what
# our own previous dockerd left; refuse, with the command, for anything we did not start.
start_dockerd() {
  stop_own "$OWN_CONTAINERD_PIDFILE" "$CONTAINERD_RE" "containerd (of a dockerd that is gone)"
  local other
  other=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [[ "$other" =~ ^[0-9]+$ ]] && alive_not_zombie "$other"; then
    echo "error: a dockerd this script did not start runs (pid $other, /var/run/docker.pid) but does not answer." >&2
    echo "  Stop it yourself (for example: systemctl stop docker, or kill $other), then run this again." >&2
    exit 1
  fi
  other=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
  if [[ "$other" =~ ^[0-9]+$ ]] && alive_not_zombie "$other"; then
    echo "error: a containerd this script cannot trace to its own dockerd still runs (pid $other," >&2
    echo "  /var/run/docker/containerd/containerd.pid: $(proc_cmdline "$other"))." >&2
    echo "  A new dockerd would wait for it forever. If it is an orphan of a dead dockerd: kill $other; then run this again." >&2
    exit 1
  fi
  rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  record_own "$OWN_DOCKERD_PIDFILE" "$!"
}

# A reboot, as far as the engine goes: stop the dockerd prepare-machine.sh started (by its record,
# refusing any other), wait until it has exited (up to 90 s, as long as its containers take to stop),
# then start it again the same way and wait until it answers.
restart_own_dockerd() {
  local pid
  if ! pid=$(trusted_pid "$OWN_DOCKERD_PIDFILE" "$DOCKERD_RE"); then
    echo "error: no dockerd started by test/prepare-machine.sh runs (no trustworthy $OWN_DOCKERD_PIDFILE): an engine it did not start is never restarted" >&2
    return 1
  fi
  record_own_containerd
  stop_own "$OWN_DOCKERD_PIDFILE" "$DOCKERD_RE" "dockerd" 180
  if alive_not_zombie "$pid"; then echo "error: dockerd (pid $pid) did not exit" >&2; return 1; fi
  start_dockerd
  if ! wait_engine 90; then
    echo "error: the restarted dockerd did not answer within 90 s; see /var/log/dockerd.log" >&2
    tail -n 20 /var/log/dockerd.log >&2
    return 1
  fi
  record_own_containerd
  echo "engine restarted (dockerd pid $(cut -d' ' -f1 "$OWN_DOCKERD_PIDFILE"))"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    restart) restart_own_dockerd ;;
    *) echo "usage: bash test/support/dockerd.sh restart" >&2; exit 2 ;;
  esac
fi
