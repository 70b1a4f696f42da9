#!/usr/bin/env bash
# Real container engines for the "images run" tests (tests/engines.rs).
#
#   tests/run/engines.sh install   apt-get install docker.io podman runc busybox-static umoci skopeo
#   tests/run/engines.sh start     start a private dockerd (own data root, no iptables, no bridge,
#                                  unix socket only) and write podman config; prints the env file
#   tests/run/engines.sh stop      stop that dockerd by its pid file
#   tests/run/engines.sh test      install + start + the engine tests + stop (whatever happens)
#
# State lives under $STRATA_ENGINES_DIR (default /tmp/strata-engines). Nothing listens on a
# network port; containers run with --network none.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${STRATA_ENGINES_DIR:-/tmp/strata-engines}
ENV_FILE=$D/env

install() {
  local pkgs=(docker.io podman runc busybox-static umoci skopeo)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  /usr/sbin/dockerd --version
  podman --version
  runc --version | head -1
}

start() {
  stop >/dev/null 2>&1 || true
  rm -rf "$D"
  mkdir -p "$D/root" "$D/exec" "$D/podman/root" "$D/podman/runroot" "$D/runc"
  # Debian's dockerd (20.10), not the newer client that may be on PATH first.
  /usr/sbin/dockerd --data-root "$D/root" --exec-root "$D/exec" -H "unix://$D/d.sock" \
    --pidfile "$D/d.pid" --iptables=false --ip-forward=false --bridge=none \
    >"$D/dockerd.log" 2>&1 &
  cat >"$D/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  cat >"$D/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$D/podman/root"
runroot = "$D/podman/runroot"
CONF
  cat >"$ENV_FILE" <<ENV
export DOCKER_HOST=unix://$D/d.sock
export CONTAINERS_CONF=$D/containers.conf
export CONTAINERS_STORAGE_CONF=$D/storage.conf
export STRATA_RUNC_ROOT=$D/runc
export STRATA_ENGINES=1
ENV
  local i
  for i in $(seq 1 60); do
    if DOCKER_HOST=unix://$D/d.sock docker info >/dev/null 2>&1; then
      echo "dockerd ready after ${i} s (pid $(cat "$D/d.pid"))"
      echo "$ENV_FILE"
      return 0
    fi
    sleep 1
  done
  echo "dockerd did not come up; its log:" >&2
  cat "$D/dockerd.log" >&2
  return 1
}

stop() {
  if [ -f "$D/d.pid" ]; then
    local pid
    pid=$(cat "$D/d.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$D/d.pid"
  fi
  # Leftover containerd shims of the private daemon.
  pkill -f "$D/exec" 2>/dev/null || true
}

run_tests() {
  install
  trap 'stop; rm -rf "$D"' EXIT
  start
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  STRATA_ENGINES=1 cargo test --locked --test integration engines -- --test-threads 1
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  # A state directory of its own, so concurrent runs on one machine never collide.
  test)
    D=$(mktemp -d /tmp/strata-engines.XXXXXX)
    ENV_FILE=$D/env
    run_tests
    ;;
  *) echo "usage: tests/run/engines.sh install|start|stop|test" >&2; exit 2 ;;
esac
