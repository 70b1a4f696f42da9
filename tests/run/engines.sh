#!/usr/bin/env bash
# Real container engines for the "images run" tests (tests/engines.rs).
#
#   tests/run/engines.sh install  apt-get install docker.io podman runc busybox-static umoci skopeo
#                                 debootstrap
#                                 (only what is missing)
#   tests/run/engines.sh start    start a private dockerd (own data root, no iptables, no bridge,
#                                 unix socket only) and write podman's config; prints the line
#                                 `export STRATA_ENGINES_DIR=...` the tests read
#   tests/run/engines.sh stop     stop that dockerd (and its containerd and shims) by their pid
#                                 files, remove leftover runc and podman containers, unmount what
#                                 is left, remove the state
#   tests/run/engines.sh test     install + start + the engine tests + the Bazel, Nix and library-example images
#                                 (tests/run/built-elsewhere.sh) + stop, whatever happens
#
# State lives under $STRATA_ENGINES_DIR (default for start/stop: /tmp/strata-engines; `test`
# makes a fresh one per run, so concurrent runs never collide). Its path must be lowercase
# (`podman run oci:PATH` needs that; the tests put their layouts under it). Files in it:
#   env        DOCKER_HOST, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, STRATA_RUNC_ROOT (KEY=VALUE)
#   d.sock     dockerd's API socket; d.pid its pid; dockerd.log its log
# Nothing listens on a network port; the tests run every container with --network none.
set -euo pipefail
cd "$(dirname "$0")/../.."

PKGS=(docker.io podman runc busybox-static umoci skopeo debootstrap)
DOCKERD=/usr/sbin/dockerd # Debian's 20.10, not a newer client-only docker on PATH

install() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  fi
  dpkg-query -W -f='${Package} ${Version}\n' "${PKGS[@]}"
}

check_dir() {
  case "$D" in
    /*) ;;
    *) echo "STRATA_ENGINES_DIR must be absolute: $D" >&2; exit 2 ;;
  esac
  if [[ "$D" =~ [^a-z0-9/._-] ]]; then
    echo "STRATA_ENGINES_DIR may hold only [a-z0-9/._-] (podman oci: needs lowercase): $D" >&2
    exit 2
  fi
}

start() {
  check_dir
  if [ -e "$D/d.pid" ]; then stop; fi
  rm -rf "$D"
  mkdir -p "$D/root" "$D/exec" "$D/podman/root" "$D/podman/runroot" "$D/podman/tmp" "$D/runc" "$D/work"
  setsid "$DOCKERD" --data-root "$D/root" --exec-root "$D/exec" -H "unix://$D/d.sock" \
    --pidfile "$D/d.pid" --iptables=false --ip-forward=false --bridge=none \
    </dev/null >"$D/dockerd.log" 2>&1 &
  echo $! >"$D/d.pid.start" # the pid even if dockerd dies before writing its pid file
  cat >"$D/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
runtime = "runc"
# Nothing shared with another podman on the machine (default: /run/libpod, /libpod_lock).
tmp_dir = "$D/podman/tmp"
lock_type = "file"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  cat >"$D/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$D/podman/root"
runroot = "$D/podman/runroot"
CONF
  cat >"$D/env" <<ENV
DOCKER_HOST=unix://$D/d.sock
CONTAINERS_CONF=$D/containers.conf
CONTAINERS_STORAGE_CONF=$D/storage.conf
STRATA_RUNC_ROOT=$D/runc
ENV
  local i
  for i in $(seq 1 60); do
    if DOCKER_HOST="unix://$D/d.sock" docker info >/dev/null 2>&1; then
      echo "dockerd $("$DOCKERD" --version | cut -d' ' -f3 | tr -d ,) ready after ${i} s (pid $(cat "$D/d.pid"), $D)"
      echo "export STRATA_ENGINES_DIR=$D"
      return 0
    fi
    if ! kill -0 "$(cat "$D/d.pid.start")" 2>/dev/null; then break; fi
    sleep 1
  done
  echo "dockerd did not come up; its log:" >&2
  tail -n 40 "$D/dockerd.log" >&2
  return 1
}

# Kill the process in pid file $1 if it is alive and its command line mentions $D
# (a recycled pid is never touched); TERM, then KILL after $2 seconds.
kill_pidfile() {
  local f=$1 wait=$2 pid i
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$D" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "pid $pid ($f) did not stop in ${wait} s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  check_dir
  [ -d "$D" ] || return 0
  local f id
  # runc containers an interrupted test left behind.
  if [ -d "$D/runc" ]; then
    for id in $(runc --root "$D/runc" list -q 2>/dev/null); do
      runc --root "$D/runc" delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  # podman containers an interrupted test left behind (podman has no daemon).
  if [ -f "$D/containers.conf" ]; then
    CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf \
      podman rm --all --force --time 0 >/dev/null 2>&1 || true
  fi
  kill_pidfile "$D/d.pid" 30
  kill_pidfile "$D/d.pid.start" 5
  # dockerd stops its containerd and shims itself; after a SIGKILL they are left: by pid file.
  for f in "$D"/exec/containerd/daemon/io.containerd.runtime.v2.task/*/*/shim.pid \
    "$D"/exec/containerd/containerd.pid; do
    kill_pidfile "$f" 5
  done
  rm -f "$D/d.pid" "$D/d.pid.start"
  # Mounts a killed daemon left under the state dir (deepest first).
  awk -v d="$D/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# The one-shot CI entry: a fresh state dir, engines up, the tests, engines down (trap).
run_tests() {
  local t0=$SECONDS
  install
  local i
  for i in $(seq 1 100); do
    D=/tmp/strata-engines-$$-$RANDOM
    mkdir -m 700 "$D" 2>/dev/null && break
  done
  export STRATA_ENGINES_DIR=$D
  # Whatever happens (failure, INT, TERM): the tests stop, then the engines.
  TEST_PID=
  trap 'status=$?; [ -z "$TEST_PID" ] || kill -TERM -- "-$TEST_PID" 2>/dev/null; stop; rm -rf "$D"; exit $status' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start
  echo "engines up after $((SECONDS - t0)) s"
  local t1=$SECONDS status=0
  # In the background so that a signal is handled at once, not after the tests.
  # In a process group of its own (setsid), so that the trap stops the test binary and
  # the engine clients it runs too, not only cargo.
  STRATA_REQUIRE_TOOLS=1 setsid cargo test --locked --test integration engines:: &
  TEST_PID=$!
  wait "$TEST_PID" || status=$?
  TEST_PID=
  echo "engine tests: $((SECONDS - t1)) s (exit $status)"
  # Images Bazel (oci_load's `bazel run`) and Nix (nix build of a closure) make
  # run in the same engines; also when the engine tests failed. The same way
  # as the tests: a process group of its own that the trap can stop.
  local t2=$SECONDS s2=0
  setsid bash tests/run/built-elsewhere.sh &
  TEST_PID=$!
  wait "$TEST_PID" || s2=$?
  TEST_PID=
  echo "bazel and nix images: $((SECONDS - t2)) s (exit $s2)"
  [ $status -ne 0 ] || status=$s2
  if [ $status -ne 0 ]; then
    echo "--- last lines of dockerd.log" >&2
    tail -n 20 "$D/dockerd.log" >&2
  fi
  return $status
}

D=${STRATA_ENGINES_DIR:-/tmp/strata-engines}
case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop && rm -rf "$D" ;;
  test) run_tests ;;
  *)
    echo "usage: tests/run/engines.sh install|start|stop|test" >&2
    exit 2
    ;;
esac
