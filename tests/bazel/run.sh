#!/usr/bin/env bash
# The Bazel suite: Debian's bazel-bootstrap (4.2.3), offline. `.ci/run` runs it.
#  0. buildifier (lint + format) over the Starlark, when it can be had;
#  1. bazel test //... in tests/bazel: the README example (//example) gives the
#     CLI's golden digests (tests/golden/hello.json), layer contents, configs,
#     a base from an oci_image and from a layout directory, an index, an
#     oci_load tarball, runfiles and tree artifacts in layers;
#  2. rules that must fail (//bad:*) fail with their message;
#  3. bazel clean + rebuild, and a second --output_base whose strata is built
#     by the default toolchain (cargo, from source): identical bytes;
#  4. a --disk_cache rebuild after bazel clean runs no strata action;
#  5. oci-image-tool, skopeo (and the oci_load tarball through skopeo) accept
#     the outputs; a missing tool is skipped unless STRATA_REQUIRE_TOOLS=1.
# The Bazel servers are shut down and the output bases removed at the end.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS
step() { echo; echo "--- $* ($((SECONDS - T0)) s)"; }

require() { # tool: 0 if present; else fail (STRATA_REQUIRE_TOOLS=1) or skip
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${STRATA_REQUIRE_TOOLS:-}" = 1 ]; then echo "FAIL: $1 is required" >&2; exit 1; fi
  echo "skipping the $1 checks: not installed"
  return 1
}

step "install"
if ! command -v bazel >/dev/null 2>&1 || [ ! -d /usr/share/bazel/rules/java ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 bazel-bootstrap bazel-rules-java >/dev/null
fi
echo "bazel: $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null || bazel --version)"
if ! command -v buildifier >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  npm install -g --silent @bazel/buildifier >/dev/null 2>&1 || echo "npm install -g @bazel/buildifier failed"
fi

STARLARK=("$ROOT/WORKSPACE" "$ROOT/BUILD.bazel" "$ROOT/MODULE.bazel" "$ROOT/rules" "$ROOT/tests/bazel")
if command -v buildifier >/dev/null 2>&1; then
  step "buildifier $(buildifier --version | sed -n 's/^buildifier version: //p')"
  buildifier -mode=check -lint=warn -r "${STARLARK[@]}"
  echo "buildifier: clean"
else
  echo "skipping buildifier: not installed (npm install -g @bazel/buildifier)"
fi

# The README's BUILD example is tests/bazel/example/BUILD.bazel (from its load).
readme_example=$(awk '/^## Bazel/ { s = 1; next } s && /^## / { exit }
  s && /tests\/bazel\/example\/BUILD.bazel/ { f = 1 }
  f && /^```/ { if (b) exit; b = 1; next } b { print }' "$ROOT/README.md")
if [ -z "$readme_example" ]; then
  echo "note: README's Bazel section does not quote tests/bazel/example/BUILD.bazel yet"
elif [ "$readme_example" != "$(sed -n '/^load(/,$p' example/BUILD.bazel)" ]; then
  diff <(echo "$readme_example") <(sed -n '/^load(/,$p' example/BUILD.bazel) || true
  echo "FAIL: README's BUILD example differs from tests/bazel/example/BUILD.bazel" >&2
  exit 1
else
  echo "README's BUILD example = tests/bazel/example/BUILD.bazel"
fi

step "cargo build --release"
(cd "$ROOT" && cargo build --release --locked -q)
STRATA_BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/release/strata
case $STRATA_BINARY in /*) ;; *) STRATA_BINARY=$ROOT/$STRATA_BINARY ;; esac
test -x "$STRATA_BINARY"

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

# Output base 1 takes the binary just built (STRATA_BINARY, a prebuilt binary
# as users pin one); output base 2 lets the toolchain build it from source.
B1=(bazel --output_base="$OB1")
B2=(bazel --output_base="$OB2")
F1=(--repo_env=STRATA_BINARY="$STRATA_BINARY")
F2=(--repo_env=STRATA_BINARY=)

outputs() { # output_base flags...: a digest of every byte the rules wrote
  local ob=$1 bin
  shift
  bin=$(bazel --output_base="$ob" info "$@" bazel-bin 2>/dev/null)
  for t in hello app app_arm64 multi app_load; do
    printf 'example/%s %s\n' "$t" "$(cat "$bin/example/$t.digest" 2>/dev/null || sha256sum <"$bin/example/$t.tar" | cut -c1-64)"
  done
  # Every output file (layouts, blobs, descriptors, specs, tarballs); not the
  # runfiles trees or manifests (they name the output base).
  (cd "$bin" && find . -type f ! -path '*.runfiles*' ! -name '*.runfiles_manifest' -print0 |
    sort -z | xargs -0 sha256sum)
}

step "bazel test //... (output base 1)"
"${B1[@]}" test "${F1[@]}" //...
outputs "$OB1" "${F1[@]}" >"$WORK/first"
grep '^example/' "$WORK/first"
echo "$(wc -l <"$WORK/first") output files"

step "rules that must fail"
expect_failure() { # target message
  if "${B1[@]}" build "${F1[@]}" "$1" >"$WORK/bad.log" 2>&1; then
    echo "FAIL: $1 built" >&2
    exit 1
  fi
  grep -q -F -- "$2" "$WORK/bad.log" || { cat "$WORK/bad.log"; echo "FAIL: $1: no \"$2\"" >&2; exit 1; }
  echo "ok: $1: $2"
}
expect_failure //bad:modes_typo 'modes["/etc/mtod"] names no file'
expect_failure //bad:outside_strip_prefix 'is not under strip_prefix'
expect_failure //bad:two_files_one_path 'two files for /etc/motd'
expect_failure //bad:os_without_arch "'os' and 'architecture' go together"
expect_failure //bad:two_tags "'repo_tags' has 2 tags"

step "bazel clean + rebuild: identical outputs"
"${B1[@]}" clean
"${B1[@]}" build "${F1[@]}" //...
outputs "$OB1" "${F1[@]}" >"$WORK/second"
diff "$WORK/first" "$WORK/second"
echo "identical"

step "a second output base, strata built from source by the toolchain: identical outputs"
"${B2[@]}" build "${F2[@]}" //...
readlink "$OB2/external/strata_bin/strata"
outputs "$OB2" "${F2[@]}" >"$WORK/third"
diff "$WORK/first" "$WORK/third"
echo "identical"
"${B2[@]}" shutdown

step "--disk_cache: after bazel clean, no strata action runs"
n=$("${B1[@]}" aquery "${F1[@]}" 'mnemonic("Strata.*", //...)' --output=text 2>/dev/null | grep -c '^action ')
"${B1[@]}" clean
"${B1[@]}" build "${F1[@]}" --disk_cache="$CACHE" //...
"${B1[@]}" clean
"${B1[@]}" build "${F1[@]}" --disk_cache="$CACHE" //... 2>&1 | tee "$WORK/cached.log" | grep -E 'processes|Elapsed'
summary=$(grep -E '^INFO: [0-9]+ process' "$WORK/cached.log" | tail -1)
hits=$(echo "$summary" | sed -n 's/.* \([0-9][0-9]*\) remote cache hit.*/\1/p')
if echo "$summary" | grep -qE 'sandbox|local|worker|remote[,.]'; then
  echo "FAIL: actions ran again instead of coming from the disk cache: $summary" >&2
  exit 1
fi
[ "${hits:-0}" -eq "$n" ] || { echo "FAIL: $n strata actions, ${hits:-0} cache hits" >&2; exit 1; }
echo "ok: all $n strata actions came from the disk cache"
outputs "$OB1" "${F1[@]}" >"$WORK/fourth"
diff "$WORK/first" "$WORK/fourth"

step "consumers"
BIN=$("${B1[@]}" info "${F1[@]}" bazel-bin 2>/dev/null)
for t in hello app on_layout_dir multi; do
  d=$BIN/example/$t
  [ -d "$d" ] || d=$BIN/$t
  "$STRATA_BINARY" verify "$d"
done
if require oci-image-tool; then
  for t in example/hello example/app on_layout_dir; do
    oci-image-tool validate --type image "$BIN/$t"
  done
fi
if require skopeo; then
  for t in example/hello example/app on_layout_dir; do
    got=$(skopeo inspect --format '{{.Digest}}' "oci:$BIN/$t")
    [ "$got" = "$(cat "$BIN/$t.digest")" ] || { echo "FAIL: skopeo sees $got for $t" >&2; exit 1; }
    echo "ok: skopeo inspect oci:$t: $got"
  done
  skopeo inspect --raw "oci:$BIN/example/multi" | grep -q '"arm64"'
  skopeo --insecure-policy copy -q "docker-archive:$BIN/example/app_load.tar" "oci:$WORK/loaded:1"
  "$STRATA_BINARY" verify "$WORK/loaded"
  echo "ok: skopeo copy docker-archive:app_load.tar"
fi

step "bazel suite: ok"
