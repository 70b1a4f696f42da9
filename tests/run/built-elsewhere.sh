#!/usr/bin/env bash
# Images that Bazel, Nix and the library example build with strata run in the real
# engines (issues #11, #21).
# tests/run/engines.sh runs it after the engine tests, with its engines up:
#
#   STRATA_ENGINES_DIR=/tmp/strata-engines-... tests/run/built-elsewhere.sh
#
#  1. Bazel (tests/run/bazel, Debian's Bazel 4.2.3, offline): `bazel run //:load`
#     (an oci_load of a static busybox image with an app layer holding /app/msg)
#     loads into the private dockerd with `strata load`; `docker run` prints
#     exactly the cmd's lines; the image ID is strata's config digest. Then
#     /app/msg changes (--define MSG=two) and the second `bazel run` sends only
#     that layer (strata's `sent …` line), and the image prints the new text.
#     The same launcher with OCI_LOAD_ENGINE=podman, then `podman run`.
#  2. Nix (tests/run/nix, Debian's nix-bin 2.8, offline, no nixpkgs): an image
#     `nix build` makes from a closure (a store bash referring to a store path
#     holding its libraries); its entrypoint runs the store bash with the
#     closure's libraries, which the container shows (/proc/self/maps).
#     `docker load -i result` + `docker run`, `podman load` + `podman run`;
#     once with the closure split by size (the default), once by popularity.
#     Then `nix run .#load1` and `.#load2` (loadImage of the size-split image
#     plus a layer holding /app/msg, "one" then "two"): the second sends only
#     the changed layer, and the container prints the new text; into docker,
#     then podman. Then `nix run .#load-linked`: the closure image as an OCI
#     layout whose blobs are symlinks into per-layer store paths
#     (layerDerivations), loaded and run in docker and podman.
#  3. The library example (examples/package_layers.rs, issue #21): built on a
#     base holding a static busybox, run twice (one digest); its docker-archive
#     `docker load`s and `docker run` prints every package's README and the
#     page; the image ID is strata's config digest; the same with podman.
#
# Any failure fails the script with the tool's or the engine's message (a
# container's stderr included). The Bazel server is shut down and the
# temporary directory removed at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
ROOT=$(cd ../.. && pwd)
T0=$SECONDS
step() { echo; echo "--- $* ($((SECONDS - T0)) s)"; }

[ -n "${STRATA_ENGINES_DIR:-}" ] && [ -f "$STRATA_ENGINES_DIR/env" ] || {
  echo "STRATA_ENGINES_DIR must hold the env file of tests/run/engines.sh start" >&2
  exit 2
}
set -a
# shellcheck disable=SC1091
. "$STRATA_ENGINES_DIR/env"
set +a

step "install"
missing=()
command -v bazel >/dev/null 2>&1 || missing+=(bazel-bootstrap)
[ -d /usr/share/bazel/rules/java ] || missing+=(bazel-rules-java)
command -v nix >/dev/null 2>&1 || missing+=(nix-bin)
static() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
static || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
static || { echo "FAIL: /bin/busybox is not a static binary (busybox-static)" >&2; exit 1; }
echo "bazel $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null), $(nix --version)"

step "cargo build --release"
STRATA=$(cd "$ROOT" && cargo build --release --locked -q && realpath "${CARGO_TARGET_DIR:-target}/release/strata")
echo "$STRATA"

WORK=$(mktemp -d /tmp/strata-elsewhere.XXXXXX)
OB=$WORK/ob
# --max_idle_secs: the server goes away by itself should the shutdown below never run.
BZ=(bazel --output_base="$OB" --max_idle_secs=120)
cleanup() {
  if [ -d "$OB" ]; then (cd "$HERE/bazel" && "${BZ[@]}" shutdown >/dev/null 2>&1) || true; fi
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
# run NAME WANT CMD...: CMD's stdout must be WANT and its exit code 0; else its
# stderr (the engine's message, the container's stderr) and a diff.
run() {
  local name=$1 want=$2 rc=0
  shift 2
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  if [ $rc -ne 0 ] || [ "$(cat "$WORK/out")" != "$want" ]; then
    echo "FAIL: $name: \`$*\` exited $rc" >&2
    echo "--- its stderr:" >&2
    cat "$WORK/err" >&2
    echo "--- stdout, want vs got:" >&2
    diff <(echo "$want") "$WORK/out" >&2 || true
    exit 1
  fi
  echo "ok: $name"
  sed 's/^/    /' "$WORK/out"
}
# The image ID the engine gives IMAGE must be strata's config digest of ARCHIVE.
same_id() { # engine image archive
  local want got
  want=$("$STRATA" digest --json "$3" | grep -o '"config": *"sha256:[0-9a-f]*"' | grep -o 'sha256:[0-9a-f]*')
  got=$("$1" image inspect --format '{{.Id}}' "$2")
  got=sha256:${got#sha256:} # podman prints the hex only
  [ "$got" = "$want" ] || fail "$1 image ID of $2 is $got, strata's config digest is $want"
  echo "ok: $1 image ID of $2 = strata's config digest $want"
}

step "1. Bazel: bazel run //:load, then docker run / podman run"
cd "$HERE/bazel"
if command -v buildifier >/dev/null 2>&1; then
  buildifier -mode=check -lint=warn -r . || fail "buildifier: tests/run/bazel (buildifier -r tests/run/bazel fixes the format)"
fi
BZF=(--repo_env=STRATA_BINARY="$STRATA")
# bazel_load NAME [ENV=VALUE...]: `bazel run //:load` with the flags in MSGF; its stdout must
# be the image ID (strata's config digest of load.tar); its stderr's `sent …` line goes to SENT.
bazel_load() {
  local name=$1
  shift
  env "$@" "${BZ[@]}" run "${BZF[@]}" "${MSGF[@]}" //:load >"$WORK/load.out" 2>"$WORK/bazel.log" ||
    { cat "$WORK/bazel.log" >&2; fail "$name"; }
  TAR=$("${BZ[@]}" info "${BZF[@]}" "${MSGF[@]}" bazel-bin 2>/dev/null)/load.tar
  local want
  want=$("$STRATA" digest --json "$TAR" | grep -o '"config": *"sha256:[0-9a-f]*"' | grep -o 'sha256:[0-9a-f]*')
  [ "$(cat "$WORK/load.out")" = "$want" ] || fail "$name printed '$(cat "$WORK/load.out")', want the image ID $want"
  SENT=$(grep '^sent ' "$WORK/bazel.log") || { cat "$WORK/bazel.log" >&2; fail "$name: no 'sent' line"; }
  echo "ok: $name: $SENT"
}
# A reload after a one-file change (/app/msg) sends only that layer.
only_app_sent() {
  case "$SENT" in
    "sent "*" (1 layer), skipped "*" (1 layer the engine holds)") ;;
    *) fail "$1: the reload should send only the app layer: $SENT" ;;
  esac
}
WANT1='hello from bazel
GREETING=hi
one'
WANT2='hello from bazel
GREETING=hi
two'
MSGF=(--define=MSG=one)
bazel_load "bazel run //:load (docker)"
run "docker run strata-bazel-run:1" "$WANT1" docker run --rm --network none strata-bazel-run:1
same_id docker strata-bazel-run:1 "$TAR"
MSGF=(--define=MSG=two)
bazel_load "bazel run //:load (docker) after a change"
only_app_sent "bazel run //:load (docker)"
run "docker run strata-bazel-run:1" "$WANT2" docker run --rm --network none strata-bazel-run:1
same_id docker strata-bazel-run:1 "$TAR"
MSGF=(--define=MSG=one)
bazel_load "OCI_LOAD_ENGINE=podman bazel run //:load" OCI_LOAD_ENGINE=podman
run "podman run strata-bazel-run:1" "$WANT1" podman run --rm --network none docker.io/library/strata-bazel-run:1
same_id podman docker.io/library/strata-bazel-run:1 "$TAR"
MSGF=(--define=MSG=two)
bazel_load "OCI_LOAD_ENGINE=podman bazel run //:load after a change" OCI_LOAD_ENGINE=podman
only_app_sent "OCI_LOAD_ENGINE=podman bazel run //:load"
run "podman run strata-bazel-run:1" "$WANT2" podman run --rm --network none docker.io/library/strata-bazel-run:1
same_id podman docker.io/library/strata-bazel-run:1 "$TAR"
"${BZ[@]}" shutdown
echo "bazel server shut down"

step "2. Nix: nix build of a closure, then docker load / podman load and run"
# Offline: no build users, no sandbox, no substituters, an empty flake
# registry; through NIX_CONFIG, so /etc is left alone (as tests/nix/run.sh).
echo '{"flakes":[],"version":2}' >"$WORK/registry.json"
export NIX_CONFIG="build-users-group =
experimental-features = nix-command flakes
sandbox = false
substituters =
flake-registry = $WORK/registry.json"
# The flake outside any git repository (a path: flake), strata beside it.
F=$WORK/flake
mkdir -p "$F"
cp "$HERE/nix/flake.nix" "$F/"
cp -r "$ROOT/nix" "$F/nix"
cp "$STRATA" "$F/strata"
cd "$F"
nix build --no-link .#libs .#bash 2>"$WORK/nix.log" || { cat "$WORK/nix.log" >&2; fail "nix build .#libs .#bash"; }
LIBS=$(nix path-info .#libs)
BASH_OUT=$(nix path-info .#bash)
# The closure split by size (the default) and by popularity: each image runs.
# Their layer counts (bash and libs alone; one layer) make the images differ.
for pkg in image:strata-nix-run:2 image-popularity:strata-nix-run-pop:1; do
  attr=${pkg%%:*} tag=${pkg#*:} n=${tag##*:} tag=${tag%:*}:1
  nix build ".#$attr" 2>"$WORK/nix.log" || { cat "$WORK/nix.log" >&2; fail "nix build .#$attr"; }
  IMG=$(readlink result)
  echo "result -> $IMG"
  # The closure: bash and libs under /nix/store, nothing else in the image.
  got=$("$STRATA" inspect --json "$IMG" | grep -o '"diffId":"sha256:[0-9a-f]*"' | wc -l)
  [ "$got" = "$n" ] || fail "$attr: $got layers, want $n"
  echo "ok: $attr: $n layers"
  WANT="ok from nix
$BASH_OUT/bin/bash
GREETING=hi
$(cd "$LIBS/lib" && LC_ALL=C ls | while read -r f; do echo "$f $LIBS/lib/$f"; done)
no /lib64, no /bin"
  [ "$(echo "$WANT" | grep -c ' /nix/store/')" -ge 3 ] || fail "libs holds fewer than 3 files: $(ls "$LIBS/lib")"
  docker load -i result >"$WORK/load.out" 2>&1 || { cat "$WORK/load.out" >&2; fail "docker load -i result"; }
  cat "$WORK/load.out"
  run "docker run $tag" "$WANT" docker run --rm --network none "$tag"
  same_id docker "$tag" result
  podman load -i result >"$WORK/load.out" 2>&1 || { cat "$WORK/load.out" >&2; fail "podman load -i result"; }
  tail -1 "$WORK/load.out"
  run "podman run $tag" "$WANT" podman run --rm --network none "docker.io/library/$tag"
  same_id podman "docker.io/library/$tag" result
  rm result
done
# nix run .#load1, then .#load2 (the image + a layer holding /app/msg, "one" then
# "two"): strata load; the second sends only the changed layer, and it runs.
APPRUN=(--entrypoint "$LIBS/lib/ld-linux-x86-64.so.2" strata-nix-app:1 --library-path "$LIBS/lib" "$BASH_OUT/bin/bash" -c 'read -r m </app/msg; echo "$m"')
nix_load() { # NAME ATTR [strata load flags]
  local name=$1 attr=$2
  shift 2
  nix run ".#$attr" -- "$@" >"$WORK/load.out" 2>"$WORK/nix.log" || { cat "$WORK/nix.log" >&2; fail "$name"; }
  SENT=$(grep '^sent ' "$WORK/nix.log") || { cat "$WORK/nix.log" >&2; fail "$name: no 'sent' line"; }
  echo "ok: $name: $SENT"
}
nix_load "nix run .#load1" load1
run "docker run strata-nix-app:1 (one)" one docker run --rm --network none "${APPRUN[@]}"
nix_load "nix run .#load2" load2
case "$SENT" in "sent "*" (1 layer), skipped "*) ;; *) fail "nix run .#load2 should send only the changed layer: $SENT" ;; esac
run "docker run strata-nix-app:1 (two)" two docker run --rm --network none "${APPRUN[@]}"
nix_load "nix run .#load1 -- --engine podman" load1 --engine podman
run "podman run strata-nix-app:1 (one)" one podman run --rm --network none "${APPRUN[@]/#strata-nix-app:1/docker.io/library/strata-nix-app:1}"
nix_load "nix run .#load2 -- --engine podman" load2 --engine podman
case "$SENT" in "sent "*" (1 layer), skipped "*) ;; *) fail "nix run .#load2 --engine podman should send only the changed layer: $SENT" ;; esac
run "podman run strata-nix-app:1 (two)" two podman run --rm --network none "${APPRUN[@]/#strata-nix-app:1/docker.io/library/strata-nix-app:1}"
# The same closure as an OCI layout of symlinks into per-layer store paths
# (layerDerivations, linkLayers): strata load reads it, and it runs.
nix_load "nix run .#load-linked" load-linked
case "$SENT" in "sent "*" (2 layers), "*) ;; *) fail "nix run .#load-linked should send both closure layers: $SENT" ;; esac
run "docker run strata-nix-linked:1" "$WANT" docker run --rm --network none strata-nix-linked:1
nix_load "nix run .#load-linked -- --engine podman" load-linked --engine podman
case "$SENT" in "sent "*" (2 layers), "*) ;; *) fail "nix run .#load-linked --engine podman should send both closure layers: $SENT" ;; esac
run "podman run strata-nix-linked:1" "$WANT" podman run --rm --network none docker.io/library/strata-nix-linked:1

step "3. The library example: cargo run --example package_layers, then docker load / podman load and run"
cd "$ROOT"
EXW=$WORK/example
mkdir -p "$EXW"
# The base: a shell (Debian's static busybox), as the engine tests build it.
cat >"$EXW/busybox.json" <<'SPEC'
{"version":1,"entries":[{"type":"file","path":"bin/busybox","src":"/bin/busybox","mode":"0755"},
 {"type":"symlink","path":"bin/sh","target":"busybox"},{"type":"symlink","path":"bin/cat","target":"busybox"}]}
SPEC
"$STRATA" layer -q --spec "$EXW/busybox.json" --out "$EXW/busybox.tgz"
"$STRATA" image -q --layer "$EXW/busybox.tgz" --out "$EXW/base.oci"
cargo build --locked -q --example package_layers
EXAMPLE=$(realpath "${CARGO_TARGET_DIR:-target}/debug/examples/package_layers")
D1=$("$EXAMPLE" "$EXW/1" --base "$EXW/base.oci") || fail "package_layers $EXW/1 --base $EXW/base.oci"
D2=$("$EXAMPLE" "$EXW/2" --base "$EXW/base.oci") || fail "package_layers $EXW/2 --base $EXW/base.oci"
[ "$D1" = "$D2" ] && cmp -s "$EXW/1/image.tar" "$EXW/2/image.tar" ||
  fail "package_layers is not deterministic: $D1, then $D2"
echo "ok: package_layers twice: $D1"
WANT="python 3.12.7
numpy 2.1.2
pandas 2.2.3
openssl 3.3.2
$(cat examples/hello/www/index.html)"
docker load -i "$EXW/1/image.tar" >"$WORK/load.out" 2>&1 || { cat "$WORK/load.out" >&2; fail "docker load -i $EXW/1/image.tar"; }
cat "$WORK/load.out"
run "docker run strata-packages:1" "$WANT" docker run --rm --network none strata-packages:1
same_id docker strata-packages:1 "$EXW/1/image.tar"
podman load -i "$EXW/1/image.tar" >"$WORK/load.out" 2>&1 || { cat "$WORK/load.out" >&2; fail "podman load -i $EXW/1/image.tar"; }
tail -1 "$WORK/load.out"
run "podman run strata-packages:1" "$WANT" podman run --rm --network none docker.io/library/strata-packages:1
same_id podman docker.io/library/strata-packages:1 "$EXW/1/image.tar"

step "built elsewhere: ok"
