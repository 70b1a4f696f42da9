#!/usr/bin/env bash
# The Nix suite, with Debian's nix-bin (2.8), offline, no nixpkgs:
# copies tests/nix/flake.nix, nix/, examples/hello and a cargo-built strata
# into a temporary git repository (flakes see only tracked files), then
#  1. builds the golden hello image and checks its digests against
#     tests/golden/hello.json (the CLI's and Bazel's);
#  2. rebuilds it with --rebuild (Nix fails on any non-determinism);
#  3. builds an image of store paths on top of it and a docker-archive;
#  4. strata verify, oci-image-tool, skopeo and umoci accept them.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export DEBIAN_FRONTEND=noninteractive
if ! command -v nix >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nix-bin >/dev/null
fi
(cd "$ROOT" && cargo build --release --locked -q)
STRATA=$ROOT/target/release/strata

WORK=$(mktemp -d /tmp/strata-nix.XXXXXX)
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
echo '{"flakes":[],"version":2}' > "$WORK/registry.json"
export NIX_CONFIG="build-users-group =
experimental-features = nix-command flakes
sandbox = false
substituters =
flake-registry = $WORK/registry.json"

R=$WORK/repo
mkdir -p "$R/examples"
cp "$ROOT/tests/nix/flake.nix" "$R/flake.nix"
cp -r "$ROOT/nix" "$R/nix"
cp -r "$ROOT/examples/hello" "$R/examples/hello"
cp "$STRATA" "$R/strata"
git -C "$R" init -q
git -C "$R" add -A

out() { nix path-info "$R#$1"; }
want() { sed -n 's/.*"'"$1"'": "\(sha256:[0-9a-f]*\)".*/\1/p' "$ROOT/tests/golden/hello.json"; }
desc() { sed -n 's/.*"'"$2"'":"\(sha256:[0-9a-f]*\)".*/\1/p' "$1"; }

echo "--- golden hello image"
nix build --offline --no-link "$R#hello"
HELLO=$(out hello)
LAYER_DESC=$(nix path-info "$R#hello-layer.descriptor")
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok   $1 $2"; else echo "FAIL $1: golden $2, nix built $3"; fail=1; fi; }
check layer "$(want layer)" "$(desc "$LAYER_DESC" digest)"
check diff_id "$(want diff_id)" "$(desc "$LAYER_DESC" diffId)"
check manifest "$(want manifest)" "$("$STRATA" digest "$HELLO")"
[ $fail = 0 ]

echo "--- rebuild: nix checks the outputs are bit-identical"
nix build --offline --no-link --rebuild "$R#hello"
nix build --offline --no-link --rebuild "$R#hello-layer"

echo "--- store paths on a base image, and a docker-archive"
nix build --offline --no-link "$R#app-image" "$R#www-archive"
APP=$(out app-image)
"$STRATA" verify "$HELLO"
"$STRATA" verify "$APP"
"$STRATA" verify "$(out www-archive)"
require() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${STRATA_REQUIRE_TOOLS:-}" = 1 ]; then echo "FAIL: $1 is required" >&2; exit 1; fi
  echo "skipping $1 checks: not installed"
  return 1
}
if require oci-image-tool; then oci-image-tool validate --type image "$APP"; fi
if require skopeo; then
  test "$(skopeo inspect --format '{{.Digest}}' "oci:$APP")" = "$("$STRATA" digest "$APP")"
fi
if require umoci; then
  umoci unpack --rootless --image "$APP:1" "$WORK/bundle" >/dev/null
  ls "$WORK/bundle/rootfs/nix/store" | tee "$WORK/store.txt"
  grep -q -- '-lib1$' "$WORK/store.txt"
  grep -q -- '-app$' "$WORK/store.txt"
  test "$(cat "$WORK"/bundle/rootfs/nix/store/*-lib1)" = "shared library"
  test "$(stat -c %a "$WORK/bundle/rootfs/tmp")" = 1777
  test -f "$WORK/bundle/rootfs/www/index.html"
fi
echo "--- nix suite: ok"
