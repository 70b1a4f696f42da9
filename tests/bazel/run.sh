#!/usr/bin/env bash
# The Bazel suite, with Debian's bazel-bootstrap (4.2.3), offline:
#  1. bazel test //... in tests/bazel (golden digests = the CLI's, base images,
#     an index, an oci_load tarball);
#  2. bazel clean + rebuild, and a second --output_base: identical digests;
#  3. a --disk_cache run after bazel clean re-executes no strata action;
#  4. oci-image-tool, skopeo (and the docker-archive via skopeo) accept the outputs.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export DEBIAN_FRONTEND=noninteractive
if ! command -v bazel >/dev/null 2>&1 || [ ! -d /usr/share/bazel/rules/java ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends bazel-bootstrap bazel-rules-java >/dev/null
fi
(cd "$ROOT" && cargo build --release --locked -q)
export STRATA_BINARY=$ROOT/target/release/strata

WORK=$(mktemp -d /tmp/strata-bazel.XXXXXX)
OB1=$WORK/ob1
OB2=$WORK/ob2
CACHE=$WORK/disk-cache
cleanup() {
  bazel --output_base="$OB1" shutdown >/dev/null 2>&1 || true
  bazel --output_base="$OB2" shutdown >/dev/null 2>&1 || true
  chmod -R u+w "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# STRATA_BINARY must reach the repository rule (it is declared in `environ`).
B1=(bazel --output_base="$OB1")
B2=(bazel --output_base="$OB2")
FLAGS=(--repo_env=STRATA_BINARY="$STRATA_BINARY" --action_env=STRATA_UNUSED=1)

digests() { # output_base
  local bin
  bin=$(bazel --output_base="$1" info "${FLAGS[@]}" bazel-bin 2>/dev/null)
  for t in hello app app_arm64 multi; do printf '%s %s\n' "$t" "$(cat "$bin/$t.digest")"; done
  for l in hello_layer app_layer; do printf '%s %s\n' "$l" "$(cat "$bin/$l.descriptor.json")"; done
  printf 'app_load.tar %s\n' "$(sha256sum "$bin/app_load.tar" | cut -d' ' -f1)"
}

echo "--- bazel test //..."
"${B1[@]}" test "${FLAGS[@]}" //...
"${B1[@]}" build "${FLAGS[@]}" //...
digests "$OB1" | tee "$WORK/first"

echo "--- bazel clean + rebuild"
"${B1[@]}" clean
"${B1[@]}" build "${FLAGS[@]}" //...
digests "$OB1" > "$WORK/second"
diff "$WORK/first" "$WORK/second"

echo "--- a second output base"
"${B2[@]}" build "${FLAGS[@]}" //...
digests "$OB2" > "$WORK/third"
diff "$WORK/first" "$WORK/third"

echo "--- disk cache: after bazel clean, no strata action runs again"
"${B1[@]}" clean
"${B1[@]}" build "${FLAGS[@]}" --disk_cache="$CACHE" //...
"${B1[@]}" clean
"${B1[@]}" build "${FLAGS[@]}" --disk_cache="$CACHE" //... 2>&1 | tee "$WORK/cached.log"
if grep -E "[0-9]+ (processwrapper-sandbox|linux-sandbox|local|worker)" "$WORK/cached.log"; then
  echo "FAIL: strata actions ran again instead of coming from the disk cache" >&2
  exit 1
fi
grep -E "remote cache hit|disk cache hit" "$WORK/cached.log"

echo "--- consumers"
BIN=$("${B1[@]}" info "${FLAGS[@]}" bazel-bin 2>/dev/null)
require() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${STRATA_REQUIRE_TOOLS:-}" = 1 ]; then echo "FAIL: $1 is required" >&2; exit 1; fi
  echo "skipping $1 checks: not installed"
  return 1
}
"$STRATA_BINARY" verify "$BIN/app"
"$STRATA_BINARY" verify "$BIN/multi"
if require oci-image-tool; then
  oci-image-tool validate --type image "$BIN/hello"
  oci-image-tool validate --type image "$BIN/app"
fi
if require skopeo; then
  test "$(skopeo inspect --format '{{.Digest}}' "oci:$BIN/app")" = "$(cat "$BIN/app.digest")"
  skopeo --insecure-policy copy "docker-archive:$BIN/app_load.tar" "oci:$WORK/loaded:1"
  "$STRATA_BINARY" verify "$WORK/loaded"
fi
echo "--- bazel suite: ok"
