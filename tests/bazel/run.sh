#!/usr/bin/env bash
# The Bazel suite: Debian's bazel-bootstrap (4.2.3), offline. `.ci/run` runs it.
#  0. buildifier (lint + format) over the Starlark (.ci/buildifier installs it);
#  1. bazel test //... in tests/bazel: the README example (//example) gives the
#     CLI's golden digests (tests/golden/hello.json), layer contents, configs,
#     a base from an oci_image and from a layout directory, an index, an
#     oci_load tarball, runfiles and tree artifacts in layers, the image
#     spec's annotations, stamping (stamp = 1 and 0 by tests; stamp = -1 built
#     with --stamp and --nostamp: status.sh's revision only with --stamp);
#  2. rules that must fail (//bad:*) fail with their message;
#  3. bazel clean + rebuild, and a second --output_base whose strata is built
#     by the default toolchain (cargo, from source; cargo's target directory,
#     so the same binary), then strata's debug build (an independent
#     compilation): identical bytes;
#  4. a --disk_cache rebuild after bazel clean runs no strata action;
#  5. oci-image-tool, skopeo (and the oci_load tarball through skopeo) accept
#     the outputs; a missing tool is skipped unless STRATA_REQUIRE_TOOLS=1;
#  5b. with --strategy=StrataImage=processwrapper-sandbox, an image layout's
#     layer blob is the layer's output file (a hard link: same inode);
#  5c. oci_attest and oci_image(sbom, provenance): the golden image's attachments = tests/golden/hello-attest.json
#     (the CLI's and Nix's digests); oci_layer packages in the SBOMs; the
#     same layout as `strata attach`; oci_push of an oci_attest sends the
#     attachments (the registry lists them under the tag sha256-<hex>).
#  6. oci_pull/oci_push (the workspace tests/bazel/push) against two loopback
#     docker-registry instances: a 120 MB base pushed to A is pulled shallow,
#     composed on and pushed to A (base layers mounted) and to B (streamed
#     A->B); the registries hold strata's digest; the output base and disk
#     cache keep < 1% of the base's layer bytes;
#  6b. oci_pull with platform (from an index), shallow = False (every blob)
#     and credentials (a third registry with htpasswd: refused without,
#     pulled with DOCKER_CONFIG's config.json); toolchains with url + sha256
#     (served by a loopback python3 -m http.server; a wrong sha256 fails) and
#     binary_path, chosen with --extra_toolchains: same layer bytes.
# The Bazel servers are shut down and the output bases removed at the end.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
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
# bazel; docker-registry and skopeo for oci_pull/oci_push (step 6).
missing=()
command -v bazel >/dev/null 2>&1 || missing+=(bazel-bootstrap)
[ -d /usr/share/bazel/rules/java ] || missing+=(bazel-rules-java)
[ -d /usr/share/bazel/tools/skylib ] || missing+=(bazel-skylib) # bzl_library for @strata//rules/bzl
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils) # oci_pull credentials (step 6b)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
echo "bazel: $(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null || bazel --version)"

step "buildifier"
bash "$ROOT/.ci/buildifier"

# The README's BUILD example is tests/bazel/example/BUILD.bazel (from its load).
readme_example=$(awk '/^## Bazel/ { s = 1; next } s && /^## / { exit }
  s && /tests\/bazel\/example\/BUILD.bazel/ { f = 1 }
  f && /^```/ { if (b) exit; b = 1; next } b { print }' "$ROOT/README.md")
if [ -z "$readme_example" ]; then
  echo "FAIL: README's Bazel section does not quote tests/bazel/example/BUILD.bazel" >&2
  exit 1
elif [ "$readme_example" != "$(sed -n '/^load(/,$p' example/BUILD.bazel)" ]; then
  diff <(echo "$readme_example") <(sed -n '/^load(/,$p' example/BUILD.bazel) || true
  echo "FAIL: README's BUILD example differs from tests/bazel/example/BUILD.bazel" >&2
  exit 1
else
  echo "README's BUILD example = tests/bazel/example/BUILD.bazel"
fi

step "cargo build --release, cargo build (debug)"
(cd "$ROOT" && cargo build --release --locked -q && cargo build --locked -q --bin strata)
STRATA_BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/release/strata
case $STRATA_BINARY in /*) ;; *) STRATA_BINARY=$ROOT/$STRATA_BINARY ;; esac
STRATA_DEBUG=${STRATA_BINARY%/release/strata}/debug/strata
test -x "$STRATA_BINARY"
test -x "$STRATA_DEBUG"

WORK=$(mktemp -d /tmp/strata-bazel.XXXXXX)
OB1=$WORK/ob1
OB2=$WORK/ob2
CACHE=$WORK/disk-cache
OB3=$WORK/ob3
cleanup() {
  bazel --output_base="$OB1" shutdown >/dev/null 2>&1 || true
  bazel --output_base="$OB2" shutdown >/dev/null 2>&1 || true
  (cd "$HERE/push" && bazel --output_base="$OB3" shutdown >/dev/null 2>&1) || true
  local pid
  for pid in "$WORK"/registry-*/pid; do
    [ -f "$pid" ] || continue
    kill "$(cat "$pid")" 2>/dev/null || true
  done
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
# The bzl_library targets (the one package that loads @bazel_skylib).
"${B1[@]}" build "${F1[@]}" @strata//rules/bzl:all
outputs "$OB1" "${F1[@]}" >"$WORK/first"
grep '^example/' "$WORK/first"
echo "$(wc -l <"$WORK/first") output files"
# stamp = -1 (the default) follows --stamp: the status's revision only then.
stamp_revision() { # flags...: the revision annotation of //:follows_stamp
  "${B1[@]}" build "${F1[@]}" "$@" //:follows_stamp >"$WORK/stamp.log" 2>&1 || { cat "$WORK/stamp.log"; exit 1; }
  "$STRATA_BINARY" inspect --json "$("${B1[@]}" info "${F1[@]}" "$@" bazel-bin 2>/dev/null)/follows_stamp" |
    grep -o '"org.opencontainers.image.revision":"[^"]*"' || true
}
[ "$(stamp_revision --stamp)" = '"org.opencontainers.image.revision":"0123abcd"' ] || { echo "FAIL: --stamp: no stamped revision" >&2; exit 1; }
[ -z "$(stamp_revision --nostamp)" ] || { echo "FAIL: --nostamp: a revision" >&2; exit 1; }
echo "ok: stamp = -1 stamps under --stamp only"

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
expect_failure //bad:bad_tag 'tag "not a tag": expected NAME[:TAG]'

step "bazel clean + rebuild: identical outputs"
"${B1[@]}" clean
"${B1[@]}" build "${F1[@]}" //...
outputs "$OB1" "${F1[@]}" >"$WORK/second"
diff "$WORK/first" "$WORK/second"
echo "identical"

step "a second output base, strata built from source by the toolchain: identical outputs"
# The toolchain's cargo build goes to cargo's own target directory, so it is
# the release binary output base 1 runs (checked): this shows that no path or
# state of the output base reaches the bytes, not that another compilation
# agrees. That is the next build's job.
"${B2[@]}" build "${F2[@]}" //...
built=$(readlink "$OB2/external/strata_bin/strata")
[ "$(realpath "$built")" = "$(realpath "$STRATA_BINARY")" ] || { echo "FAIL: the toolchain built $built, not $STRATA_BINARY" >&2; exit 1; }
echo "the toolchain's build: $built (cargo's target directory: output base 1's binary)"
outputs "$OB2" "${F2[@]}" >"$WORK/third"
diff "$WORK/first" "$WORK/third"
echo "identical"

step "the same output base, strata's debug build (another compilation: opt-level 0, no LTO): identical outputs"
F2D=(--repo_env=STRATA_BINARY="$STRATA_DEBUG")
cmp -s "$STRATA_DEBUG" "$STRATA_BINARY" && { echo "FAIL: the debug and release binaries are the same bytes" >&2; exit 1; }
"${B2[@]}" build "${F2D[@]}" //... >"$WORK/debug.log" 2>&1 || { cat "$WORK/debug.log"; echo "FAIL: build with the debug strata" >&2; exit 1; }
grep -E '^INFO: [0-9]+ process' "$WORK/debug.log"
[ "$(grep -E '^INFO: [0-9]+ process' "$WORK/debug.log" | grep -oE '^INFO: [0-9]+' | grep -oE '[0-9]+')" -gt 0 ] ||
  { echo "FAIL: no action ran with the debug strata" >&2; exit 1; }
outputs "$OB2" "${F2D[@]}" >"$WORK/third-debug"
diff "$WORK/first" "$WORK/third-debug"
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

step "oci_sbom: the validators accept it, and it is the CLI's bytes"
# Self-contained (issue #24): //:hello_sbom (SPDX) and //:hello_sbom_cyclonedx
# (with files), built by `bazel test //...` above.
SBOM_PY=${STRATA_SBOM_PYTHON:-python3}
if "$SBOM_PY" -c 'import spdx_tools, cyclonedx.validation.json' 2>/dev/null; then
  "$SBOM_PY" -m spdx_tools.spdx.clitools.pyspdxtools -i "$BIN/hello_sbom.spdx.json"
  "$SBOM_PY" -c 'import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
sys.exit(f"invalid: {e}" if e else 0)' "$BIN/hello_sbom_cyclonedx.cdx.json"
  echo "ok: pyspdxtools and JsonStrictValidator 1.6 accept the oci_sbom outputs"
elif [ "${STRATA_REQUIRE_TOOLS:-}" = 1 ]; then
  echo "FAIL: $SBOM_PY lacks spdx-tools / cyclonedx-python-lib (.ci/run installs them)" >&2
  exit 1
else
  echo "skipping the SBOM validators: not installed"
fi
"$STRATA_BINARY" sbom "$BIN/example/hello" --format spdx --out "$WORK/hello.spdx.json"
"$STRATA_BINARY" sbom "$BIN/example/hello" --format cyclonedx --files --out "$WORK/hello.cdx.json"
cmp "$WORK/hello.spdx.json" "$BIN/hello_sbom.spdx.json"
cmp "$WORK/hello.cdx.json" "$BIN/hello_sbom_cyclonedx.cdx.json"
echo "ok: oci_sbom = strata sbom, byte for byte ($(sha256sum <"$BIN/hello_sbom.spdx.json" | cut -c1-16)…, $(sha256sum <"$BIN/hello_sbom_cyclonedx.cdx.json" | cut -c1-16)…)"

step "oci_attest: the golden image's attachments; declared packages in the SBOM"
# Self-contained (issue #24): //:hello_attested and //:vendored_attested,
# built by `bazel test //...` above (and compared across output bases and
# strata builds with every other output).
bash "$ROOT/tests/golden/check-attest.sh" "$STRATA_BINARY" "$BIN/hello_attested"
bash "$ROOT/tests/golden/check-attest.sh" "$STRATA_BINARY" "$BIN/hello_inline_attested"
[ "$(cat "$BIN/hello_inline_attested.digest")" = "$("$STRATA_BINARY" digest "$BIN/hello_inline_attested")" ] || { echo "FAIL: hello_inline_attested.digest" >&2; exit 1; }
attached() { # LAYOUT ARTIFACT_TYPE: the path of the attached document
  local m
  m=$(grep -o "\"artifactType\":\"$2\",\"digest\":\"sha256:[0-9a-f]*\"" "$1/index.json" | cut -d'"' -f8)
  [ -n "$m" ] || { echo "FAIL: no $2 attachment in $1" >&2; exit 1; }
  m=$(grep -o '"layers":\[{"digest":"sha256:[0-9a-f]*"' "$1/blobs/sha256/${m#sha256:}" | cut -d'"' -f6)
  echo "$1/blobs/sha256/${m#sha256:}"
}
V=$BIN/vendored_attested
for purl in 'pkg:generic/zlib@1.3.1' 'pkg:golang/github.com/example/tool@v1.2.3?type=module'; do
  grep -qF "\"referenceLocator\":\"$purl\"" "$(attached "$V" application/spdx+json)" || { echo "FAIL: $purl is not in the SPDX SBOM" >&2; exit 1; }
  grep -qF "\"purl\":\"$purl\"" "$(attached "$V" application/vnd.cyclonedx+json)" || { echo "FAIL: $purl is not in the CycloneDX SBOM" >&2; exit 1; }
done
grep -qF '"parameters":{"release":"1"}' "$(attached "$V" application/vnd.in-toto+json)" || { echo "FAIL: params are not in the provenance" >&2; exit 1; }
env -u SOURCE_DATE_EPOCH "$STRATA_BINARY" attach "$BIN/vendored" --sbom spdx --sbom cyclonedx --provenance --param release=1 \
  --packages "$BIN/vendored_layer.descriptor.json=$BIN/vendored_layer.purls" --out "$WORK/vendored_attested" >/dev/null
diff -r "$V" "$WORK/vendored_attested" || { echo "FAIL: oci_attest and strata attach differ" >&2; exit 1; }
env -u SOURCE_DATE_EPOCH "$STRATA_BINARY" attach "$BIN/vendored" --sbom spdx --packages "$BIN/vendored_layer.descriptor.json=$BIN/vendored_layer.purls" \
  --out "$WORK/vendored_inline" >/dev/null
diff -r "$BIN/vendored_inline" "$WORK/vendored_inline" || { echo "FAIL: oci_image(sbom) and strata attach differ" >&2; exit 1; }
if "$SBOM_PY" -c 'import spdx_tools, cyclonedx.validation.json' 2>/dev/null; then
  cp "$(attached "$V" application/spdx+json)" "$WORK/vendored.spdx.json"
  "$SBOM_PY" -m spdx_tools.spdx.clitools.pyspdxtools -i "$WORK/vendored.spdx.json"
  "$SBOM_PY" -c 'import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
sys.exit(f"invalid: {e}" if e else 0)' "$(attached "$V" application/vnd.cyclonedx+json)"
  echo "ok: the SBOMs with declared packages pass pyspdxtools and JsonStrictValidator 1.6"
fi
echo "ok: oci_layer packages reach oci_attest's and oci_image(sbom)'s SBOMs (SPDX, CycloneDX) under their layer; both = strata attach, byte for byte"

step "processwrapper-sandbox: image layouts hard-link their layer blobs"
# Under linux-sandbox the inputs sit on bind mounts and link(2) fails (EXDEV),
# so strata copies; processwrapper-sandbox symlinks inputs on the same mount,
# so the layout's blob is the layer file itself (same inode, no bytes copied).
"${B1[@]}" clean
"${B1[@]}" build "${F1[@]}" --strategy=StrataImage=processwrapper-sandbox //example:app
BIN=$("${B1[@]}" info "${F1[@]}" bazel-bin 2>/dev/null)
hex=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$BIN/example/app_layer.descriptor.json")
[ -n "$hex" ] || { echo "FAIL: no digest in app_layer.descriptor.json" >&2; exit 1; }
blob=$BIN/example/app/blobs/sha256/$hex
a=$(stat -L -c %d:%i "$BIN/example/app_layer.tar.gz")
b=$(stat -c %d:%i "$blob")
[ "$a" = "$b" ] || { echo "FAIL: $blob is a copy ($b), not app_layer.tar.gz ($a)" >&2; exit 1; }
echo "ok: example/app's layer blob is app_layer.tar.gz (inode $b, $(stat -c %h "$blob") links)"

step "oci_pull (shallow) -> oci_image -> oci_push, two loopback registries"
start_registry() { # name [yaml]: a docker-registry on a free 127.0.0.1 port; $WORK/registry-<name>/{port,pid,access.log}
  local d=$WORK/registry-$1 port
  mkdir -p "$d/storage"
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
      "$d/storage" "$port" >"$d/config.yml"
    printf '%s' "${2:-}" >>"$d/config.yml"
    # The access log goes to stdout, the rest to stderr.
    docker-registry serve "$d/config.yml" >"$d/access.log" 2>"$d/registry.log" &
    echo $! >"$d/pid"
    for _ in $(seq 200); do
      kill -0 "$(cat "$d/pid")" 2>/dev/null || break # died: port taken?
      if grep -q "listening on 127.0.0.1:$port" "$d/registry.log"; then
        echo "$port" >"$d/port"
        return 0
      fi
      sleep 0.1
    done
    kill "$(cat "$d/pid")" 2>/dev/null || true
    rm -f "$d/pid"
  done
  cat "$d/registry.log" >&2
  echo "FAIL: docker-registry $1 did not start" >&2
  exit 1
}
must_fail() { # what log ere cmd...: cmd must fail, its output (in log) matching ere
  local what=$1 log=$2 ere=$3
  shift 3
  if "$@" >"$log" 2>&1; then
    echo "FAIL: $what: succeeded" >&2
    exit 1
  fi
  grep -qiE -- "$ere" "$log" || { cat "$log"; echo "FAIL: $what: no /$ere/ in the output" >&2; exit 1; }
}
size_sum() { grep -h -o '"size":[0-9]*' "$@" | cut -d: -f2 | awk '{ s += $1 } END { print s }'; }
registry_digest() { skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
layer_requests() { # log ERE: matching lines, LAYER standing for each base layer's hex digest
  local d c n=0
  for d in $LAYERS; do
    c=$(grep -c -E "${2//LAYER/$d}" "$1" || true)
    n=$((n + c))
  done
  echo "$n"
}
GET_BASE='"GET /v2/base/blobs/sha256:LAYER HTTP/1\.1" 200 '
MOUNT_APP='"POST /v2/app/blobs/uploads/\?mount=sha256%3ALAYER&from=base HTTP/1\.1" 201 '
PUT_APP='"PUT /v2/app/blobs/uploads/[^ ]*digest=sha256%3ALAYER HTTP/1\.1" 201 '

push_suite() {
  start_registry A
  start_registry B
  local PA PB
  PA=$(cat "$WORK/registry-A/port")
  PB=$(cat "$WORK/registry-B/port")
  echo "registry A: 127.0.0.1:$PA, registry B: 127.0.0.1:$PB"

  # A 120 MB base (two incompressible layers), built and pushed by the CLI.
  local b=$WORK/base
  mkdir -p "$b/l1/data" "$b/l2/data"
  head -c 60000000 /dev/urandom >"$b/l1/data/random1"
  head -c 60000000 /dev/urandom >"$b/l2/data/random2"
  "$STRATA_BINARY" layer "$b/l1" --out "$b/l1.tar.gz" --descriptor "$b/l1.json" >/dev/null
  "$STRATA_BINARY" layer "$b/l2" --out "$b/l2.tar.gz" --descriptor "$b/l2.json" >/dev/null
  "$STRATA_BINARY" image --out "$b/layout" --layer "$b/l1.tar.gz:$b/l1.json" --layer "$b/l2.tar.gz:$b/l2.json" \
    --cmd /bin/sh --digest-file "$b/digest" >/dev/null
  "$STRATA_BINARY" push -q "$b/layout" "http://127.0.0.1:$PA/base:1"
  local base_digest base_bytes
  base_digest=$(cat "$b/digest")
  base_bytes=$(size_sum "$b/l1.json" "$b/l2.json")
  LAYERS=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$b/l1.json" "$b/l2.json")
  rm -rf "$b"
  echo "base: $base_digest, layers $base_bytes bytes"

  local B3=(bazel --output_base="$OB3")
  local F3=(--repo_env=STRATA_BINARY="$STRATA_BINARY" --repo_env=REGISTRY="127.0.0.1:$PA"
    --repo_env=BASE_DIGEST="$base_digest" --disk_cache="$WORK/push-cache")
  # Where strata would cache layer bytes it needed (it needs none here).
  export STRATA_CACHE_DIR=$WORK/strata-cache
  cd "$HERE/push"
  local t=$SECONDS
  "${B3[@]}" build "${F3[@]}" //...
  echo "oci_pull + oci_image + launchers: $((SECONDS - t)) s (server start included)"
  local bin ext want
  bin=$("${B3[@]}" info "${F3[@]}" bazel-bin 2>/dev/null)
  ext=$("${B3[@]}" info "${F3[@]}" output_base 2>/dev/null)/external/base
  want=$(cat "$bin/app.digest")
  [ "$("$STRATA_BINARY" digest "$bin/app")" = "$want" ] || { echo "FAIL: strata digest of //:app is not $want" >&2; exit 1; }
  [ "$(cat "$ext/digest")" = "$base_digest" ] || { echo "FAIL: @base//:digest is not the pin" >&2; exit 1; }
  [ "$(size_sum "$ext/layout/strata-remote.json")" = "$base_bytes" ] || { echo "FAIL: strata-remote.json does not record the base layers" >&2; exit 1; }
  [ "$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")" = 0 ] || { echo "FAIL: oci_pull fetched base layers" >&2; exit 1; }
  echo "ok: @base is shallow, //:app = $want"

  t=$SECONDS
  "${B3[@]}" run "${F3[@]}" //:push 2>&1 | tee "$WORK/push-a.log"
  echo "push to A: $((SECONDS - t)) s"
  local mounts
  mounts=$(layer_requests "$WORK/registry-A/access.log" "$MOUNT_APP")
  [ "$mounts" = 2 ] || { echo "FAIL: $mounts mount POSTs with 201 for the 2 base layers in A's log" >&2; exit 1; }
  [ "$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")" = 0 ] || { echo "FAIL: the push to A read base layers" >&2; exit 1; }
  echo "ok: A's log shows a 201 mount for each base layer, no base layer read"

  t=$SECONDS
  "${B3[@]}" run "${F3[@]}" //:push -- --repository "127.0.0.1:$PB/app" --tag 2 2>&1 | tee "$WORK/push-b.log"
  echo "push to B: $((SECONDS - t)) s"
  [ "$(grep -c ' streamed ' "$WORK/push-b.log")" = 2 ] || { echo "FAIL: base layers not streamed A->B" >&2; exit 1; }
  [ "$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")" = 2 ] || { echo "FAIL: each base layer should be read once from A" >&2; exit 1; }
  [ "$(layer_requests "$WORK/registry-B/access.log" "$PUT_APP")" = 2 ] || { echo "FAIL: B did not receive the base layers" >&2; exit 1; }
  echo "ok: base layers streamed A->B"

  OCI_PUSH_REPOSITORY="127.0.0.1:$PA/app-env" "${B3[@]}" run "${F3[@]}" //:push_tags_file 2>&1 | tail -1

  local ref got
  for ref in "$PA/app:1" "$PB/app:1" "$PB/app:2" "$PA/app-env:1" "$PA/app-env:latest"; do
    got=$(registry_digest "127.0.0.1:$ref")
    [ "$got" = "$want" ] || { echo "FAIL: 127.0.0.1:$ref is $got, not strata digest $want" >&2; exit 1; }
    echo "ok: 127.0.0.1:$ref = strata digest $want"
  done
  [ -z "$(ls -A "$STRATA_CACHE_DIR" 2>/dev/null)" ] || { echo "FAIL: layer bytes in strata's cache" >&2; ls -lR "$STRATA_CACHE_DIR"; exit 1; }

  # What the build keeps of the base: the pulled repository, the disk cache,
  # the whole output base (logs and action cache included).
  local what n limit=$((base_bytes / 100))
  for what in "$ext" "$WORK/push-cache" "$OB3"; do
    n=$(du -sb "$what" | cut -f1)
    printf '%10d bytes (%s%% of the base layers) in %s\n' "$n" "$(awk "BEGIN { printf \"%.3f\", 100 * $n / $base_bytes }")" "$what"
    [ "$n" -lt "$limit" ] || { echo "FAIL: $what holds $n bytes, 1% of the base is $limit" >&2; exit 1; }
  done

  # oci_load on the shallow base: its action fetches the base layers once.
  local before
  before=$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")
  "${B3[@]}" build "${F3[@]}" //:app_load
  "$STRATA_BINARY" verify "$bin/app_load.tar"
  [ "$("$STRATA_BINARY" digest "$bin/app_load.tar")" = "$want" ] || { echo "FAIL: app_load.tar is not $want" >&2; exit 1; }
  [ "$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")" = $((before + 2)) ] || { echo "FAIL: oci_load should read each base layer once" >&2; exit 1; }
  ls -a "$bin" | grep -q '^\.strata-tmp-' && { echo "FAIL: a fetch directory was left in bazel-bin" >&2; exit 1; }
  echo "ok: oci_load of the shallow image: every base layer fetched once, verified, = $want"

  # oci_attest(sbom) on the shallow base: its action fetches the base layers
  # once too, and attaches what `strata attach --sbom` does with a cache.
  before=$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")
  "${B3[@]}" build "${F3[@]}" //:app_sbom
  [ "$(layer_requests "$WORK/registry-A/access.log" "$GET_BASE")" = $((before + 2)) ] || { echo "FAIL: oci_attest(sbom) should read each base layer once" >&2; exit 1; }
  "$STRATA_BINARY" attach -q "$bin/app" --sbom spdx --provenance --out "$WORK/app-sbom-cli" --cache-dir "$WORK/sbom-cache"
  cmp -s "$bin/app_sbom/index.json" "$WORK/app-sbom-cli/index.json" || { echo "FAIL: oci_attest(sbom) on the shallow base differs from strata attach" >&2; exit 1; }
  [ -f "$bin/app_sbom/strata-remote.json" ] || { echo "FAIL: oci_attest(sbom) output is no longer shallow" >&2; exit 1; }
  ls -a "$bin" | grep -q '^\.strata-tmp-\|\.fetch$' && { echo "FAIL: a fetch directory was left in bazel-bin" >&2; exit 1; }
  echo "ok: oci_attest(sbom) of the shallow image: base layers fetched once, = strata attach --sbom, still shallow"

  # A wrong pin fails the fetch with strata's message.
  must_fail "oci_pull of an unknown digest" "$WORK/pin.log" 'oci_pull base: `strata pull .*` failed' \
    "${B3[@]}" build "${F3[@]}" --repo_env=BASE_DIGEST="sha256:$(printf '%064d' 0)" //:app
  echo "ok: a wrong pin fails: $(grep -m1 -o 'strata: .*' "$WORK/pin.log")"
  # oci_attest + oci_push: the image, then its attachments; docker-registry
  # has no referrers API, so they are listed under the tag sha256-<hex>.
  "${B3[@]}" run "${F3[@]}" //:push_attested 2>&1 | tail -2
  local img refs types d
  img=$(cat "$bin/app_only.digest")
  got=$(registry_digest "127.0.0.1:$PA/attested:1")
  [ "$got" = "$img" ] || { echo "FAIL: 127.0.0.1:$PA/attested:1 is $got, not $img" >&2; exit 1; }
  refs=$(skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$PA/attested:sha256-${img#sha256:}")
  types=$(echo "$refs" | grep -o '"artifactType":"[^"]*"' | cut -d'"' -f4 | sort | paste -sd' ')
  [ "$types" = "application/spdx+json application/vnd.in-toto+json" ] || { echo "FAIL: the referrers tag lists [$types]" >&2; exit 1; }
  for d in $(grep -o '"artifactType":"[^"]*","digest":"sha256:[0-9a-f]*"' "$bin/app_attested/index.json" | cut -d'"' -f8); do
    echo "$refs" | grep -qF "\"digest\":\"$d\"" || { echo "FAIL: $d is not in the referrers tag" >&2; exit 1; }
    [ "$(registry_digest "127.0.0.1:$PA/attested@$d")" = "$d" ] || { echo "FAIL: the registry's $d has other bytes" >&2; exit 1; }
  done
  "$STRATA_BINARY" pull -q --insecure --referrers --out "$WORK/attested-pulled" "127.0.0.1:$PA/attested:1"
  [ "$(grep -o '"artifactType":"[^"]*","digest":"sha256:[0-9a-f]*"' "$WORK/attested-pulled/index.json")" = \
    "$(grep -o '"artifactType":"[^"]*","digest":"sha256:[0-9a-f]*"' "$bin/app_attested/index.json")" ] ||
    { echo "FAIL: strata pull --referrers does not bring back oci_attest's attachments" >&2; exit 1; }
  echo "ok: oci_push of oci_attest: 127.0.0.1:$PA/attested:1 = $img, its tag sha256-<hex> lists the SBOM and provenance, pull --referrers brings them back"
  pull_and_toolchains "$PA"
  "${B3[@]}" shutdown
  cd "$HERE"
  for pid in "$WORK"/registry-*/pid; do
    kill "$(cat "$pid")"
    rm "$pid"
  done
}
# 6b. oci_pull's platform, shallow = False and credentials; toolchains from
# url + sha256 (a loopback HTTP server) and binary_path. Runs in push_suite,
# registry A up ($1: its port), in tests/bazel/push.
pull_and_toolchains() {
  local PA=$1 PC s=$WORK/small
  step "oci_pull: platform, shallow = False, credentials; toolchains: url + sha256, binary_path"
  htpasswd -Bbn strata s3cret >"$WORK/htpasswd"
  start_registry C "$(printf 'auth:\n  htpasswd:\n    realm: strata-test\n    path: %s\n' "$WORK/htpasswd")"
  PC=$(cat "$WORK/registry-C/port")
  mkdir -p "$s"
  "$STRATA_BINARY" layer "$ROOT/examples/hello" --out "$s/l.tgz" --descriptor "$s/l.json" >/dev/null
  "$STRATA_BINARY" image --out "$s/amd64" --layer "$s/l.tgz:$s/l.json" --digest-file "$s/amd64.digest" >/dev/null
  "$STRATA_BINARY" image --out "$s/arm64" --layer "$s/l.tgz:$s/l.json" --platform linux/arm64/v8 --digest-file "$s/arm64.digest" >/dev/null
  "$STRATA_BINARY" index --out "$s/multi" --digest-file "$s/multi.digest" "$s/amd64" "$s/arm64" >/dev/null
  "$STRATA_BINARY" push -q "$s/multi" "http://127.0.0.1:$PA/multi:1" >/dev/null
  "$STRATA_BINARY" push -q "$s/amd64" "http://127.0.0.1:$PA/small:1" >/dev/null
  echo s3cret | "$STRATA_BINARY" push -q --username strata --password-stdin "$s/amd64" "http://127.0.0.1:$PC/small:1" >/dev/null
  mkdir -p "$WORK/docker-creds" "$WORK/docker-none"
  printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$PC" "$(printf strata:s3cret | base64)" >"$WORK/docker-creds/config.json"
  echo '{}' >"$WORK/docker-none/config.json"

  local B3=(bazel --output_base="$OB3")
  local F4=(--repo_env=STRATA_BINARY="$STRATA_BINARY" --repo_env=REGISTRY="127.0.0.1:$PA"
    --repo_env=BASE_DIGEST="$base_digest" --repo_env=INDEX_DIGEST="$(cat "$s/multi.digest")"
    --repo_env=SMALL_DIGEST="$(cat "$s/amd64.digest")" --repo_env=AUTH_REGISTRY="127.0.0.1:$PC")
  local ext
  ext=$("${B3[@]}" info "${F4[@]}" output_base 2>/dev/null)/external

  # platform: @index_arm64 is the arm64 manifest of the index; shallow = False: every blob.
  "${B3[@]}" build "${F4[@]}" //:on_arm64 //:on_full
  [ "$(cat "$ext/index_arm64/digest")" = "$(cat "$s/arm64.digest")" ] ||
    { echo "FAIL: @index_arm64//:digest is $(cat "$ext/index_arm64/digest"), not the arm64 manifest $(cat "$s/arm64.digest")" >&2; exit 1; }
  "$STRATA_BINARY" inspect --json "$ext/index_arm64/layout" >"$WORK/arm64.json"
  grep -q '"platform":"linux/arm64/v8"' "$WORK/arm64.json" || { cat "$WORK/arm64.json"; echo "FAIL: @index_arm64 is not arm64" >&2; exit 1; }
  echo "ok: oci_pull platform = \"linux/arm64/v8\" picks the arm64 manifest from the index"
  [ ! -e "$ext/small_full/layout/strata-remote.json" ] || { echo "FAIL: shallow = False left strata-remote.json" >&2; exit 1; }
  "$STRATA_BINARY" verify --require-complete "$ext/small_full/layout" >/dev/null
  [ -f "$ext/small_full/layout/blobs/sha256/$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$s/l.json")" ] ||
    { echo "FAIL: shallow = False did not download the layer" >&2; exit 1; }
  echo "ok: oci_pull shallow = False holds every blob (verify --require-complete)"

  # Credentials: refused without them, pulled with Docker's config.json.
  must_fail "oci_pull from the htpasswd registry without credentials" "$WORK/private.log" '401|credentials|unauthorized' \
    "${B3[@]}" build "${F4[@]}" --repo_env=DOCKER_CONFIG="$WORK/docker-none" //:on_private
  echo "ok: without credentials: $(grep -m1 -o 'strata: .*' "$WORK/private.log")"
  "${B3[@]}" build "${F4[@]}" --repo_env=DOCKER_CONFIG="$WORK/docker-creds" //:on_private
  [ "$(cat "$ext/private/digest")" = "$(cat "$s/amd64.digest")" ] || { echo "FAIL: @private is not the pin" >&2; exit 1; }
  grep -q '"GET /v2/small/manifests/sha256:[0-9a-f]* HTTP/1.1" 200 ' "$WORK/registry-C/access.log" ||
    { echo "FAIL: registry C served no authenticated manifest" >&2; exit 1; }
  echo "ok: oci_pull with DOCKER_CONFIG's config.json (auths) pulls from the htpasswd registry"

  # Toolchains: url + sha256 from a loopback HTTP server, binary_path; the
  # environment's STRATA_BINARY emptied so that it does not win.
  local srv=$WORK/http port sha want got
  mkdir -p "$srv"
  cp "$STRATA_BINARY" "$srv/strata"
  sha=$(sha256sum <"$srv/strata" | cut -c1-64)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/registry-http"
  python3 -m http.server --bind 127.0.0.1 --directory "$srv" "$port" >"$WORK/http.log" 2>&1 &
  echo $! >"$WORK/registry-http/pid" # stopped with the registries
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # No repository cache: the download must reach the server every run.
  local T=(--repository_cache= --repo_env=STRATA_BINARY= --repo_env=TOOLCHAIN_URL="http://127.0.0.1:$port/strata"
    --repo_env=TOOLCHAIN_SHA256="$sha" --repo_env=TOOLCHAIN_PATH="$srv/strata")
  want=$(cat "$("${B3[@]}" info "${F4[@]}" bazel-bin 2>/dev/null)/app_layer.descriptor.json")
  for tc in strata_url strata_path; do
    "${B3[@]}" build "${F4[@]}" "${T[@]}" --extra_toolchains="@$tc//:toolchain" //:app_layer
    "${B3[@]}" aquery "${F4[@]}" "${T[@]}" --extra_toolchains="@$tc//:toolchain" 'mnemonic("StrataLayer", //:app_layer)' \
      --output=text >"$WORK/aquery-$tc.txt" 2>/dev/null
    grep -q "external/$tc/strata" "$WORK/aquery-$tc.txt" || { cat "$WORK/aquery-$tc.txt"; echo "FAIL: //:app_layer does not run @$tc's strata" >&2; exit 1; }
    got=$(cat "$("${B3[@]}" info "${F4[@]}" "${T[@]}" bazel-bin 2>/dev/null)/app_layer.descriptor.json")
    [ "$got" = "$want" ] || { echo "FAIL: @$tc's layer differs: $got" >&2; exit 1; }
    echo "ok: toolchain @$tc runs external/$tc/strata, same layer"
  done
  cmp "$ext/strata_url/strata" "$STRATA_BINARY" || { echo "FAIL: @strata_url's binary is not the one served" >&2; exit 1; }
  grep -q '"GET /strata HTTP/1.[01]" 200' "$WORK/http.log" || { echo "FAIL: the toolchain did not download from the HTTP server" >&2; exit 1; }
  [ "$(readlink "$ext/strata_path/strata")" = "$srv/strata" ] || { echo "FAIL: @strata_path does not link binary_path" >&2; exit 1; }
  # A wrong sha256 fails the fetch.
  must_fail "a wrong sha256 for the toolchain's url" "$WORK/sha.log" checksum \
    "${B3[@]}" build "${F4[@]}" "${T[@]}" --repo_env=TOOLCHAIN_SHA256="$(printf '%064d' 0)" \
    --extra_toolchains=@strata_url//:toolchain //:app_layer
  echo "ok: a wrong sha256: $(grep -m1 -io '[^:]*checksum.*' "$WORK/sha.log" | cut -c1-160)"
}

if require docker-registry && require skopeo && require htpasswd; then
  push_suite
fi

step "bazel suite: ok"
