#!/usr/bin/env bash
# The Nix suite, with Debian's nix-bin (2.8), offline, no nixpkgs.
#
# Lays out, under a temporary directory, as `path:` flakes (no git needed):
#   strata/   tests/nix/flake.nix (no inputs) + nix/ + examples/hello + the
#             cargo-built strata binary: the stand-in for the root flake;
#   example/  tests/nix/example/flake.nix, the README's flake, locked to
#             strata/ with --override-input;
#   root/     the repository's flake.nix + nix/, with nixpkgs overridden by
#             tests/nix/fake-nixpkgs (which packages the same binary).
# Then:
#  1. the README's image equals tests/golden/hello.json (the CLI's and
#     Bazel's digests), and so do the image from a directory (copyToRoot) and
#     the root flake's packages.<system>.image;
#  2. closure layering: the closure of raw derivations referring to each
#     other lands under /nix/store, split by popularity or by size into
#     maxLayers layers; a second release built with the first's lock
#     (previousLayers) shares every unchanged layer blob;
#     left out where an explicit layer holds it, referred to by copyToRoot,
#     on an OCI layout base and an oci-archive base; the root flake's lib
#     (on fake nixpkgs' strata package) makes the same image as the stand-in;
# 2b. one derivation per closure layer (layerDerivations, import-from-
#     derivation) and blobs as symlinks into layer store paths (linkLayers):
#     the same image byte for byte as one derivation; 3 images on one base
#     hold the base layer's bytes once (NAR bytes of their closures, printed
#     beside copies'); after a leaf change `nix build --dry-run` lists only
#     the changed layer and the image, and the other layers are the first
#     release's store paths (wall times printed);
#  3. nix build --rebuild finds every image and layer bit-identical (the
#     split and per-layer derivations too);
#  4. strata verify, oci-image-tool, skopeo and umoci (--rootless) accept them
#     (linked ones too, and a docker-archive on a linked image)
#     (skipped when not installed, unless STRATA_REQUIRE_TOOLS=1);
#  5. registries (needs Debian's docker-registry and skopeo; skipped when not
#     installed, unless STRATA_REQUIRE_TOOLS=1): a registry on a free loopback
#     port holds a base pushed by the CLI; tests/nix/registry/flake.nix
#     pins it with pullImage (the hash of a CLI `pull --shallow`, written to
#     its pinned.nix), builds on it and pushes with pushImage: the pulled base
#     is a few KB without layer bytes, the push mounts every base layer
#     (registry access log), the registry's digest is `strata digest`'s,
#     --rebuild finds the pull bit-identical, and the image rebuilds with the
#     registry stopped; a docker-archive on the pulled base fetches its
#     layers at build time (no sandbox), and so does buildImage { sbom = true; }
#     on it (the CLI's attachments); the root flake's pushImage (fake nixpkgs' coreutils)
#     pushes the golden image; strata push and skopeo copy of images with
#     linked blobs; the second of two releases (part 2), pushed
#     after the first, uploads only its new layers and its config;
#  6. the README's "Nix" flake is tests/nix/example/flake.nix (the README
#     must mark it).
#  7. the root flake's strata package (nix/package.nix) builds from a source
#     filtered to Cargo.toml, Cargo.lock and src/: its derivation path stays
#     the same when README.md changes or tests/ appears, and changes with
#     src/ (fake nixpkgs' buildRustPackage depends on src, as nixpkgs' does).
#  9. attest (nix/attest.nix), and buildImage { sbom; provenance; }: the
#     golden image with its SBOMs and provenance attached gives
#     tests/golden/hello-attest.json's digests (as the CLI and Bazel do), valid SBOMs; on the closure image the attached
#     SBOM is nix/sbom.nix's; --rebuild bit-identical.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
ROOT=$(cd ../.. && pwd)
export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS
lap() { echo "    (at $((SECONDS - T0)) s)"; }

if ! command -v nix >/dev/null 2>&1; then
  echo "--- installing nix-bin"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 nix-bin >/dev/null
fi
nix --version
echo "--- cargo build --release"
STRATA=$(cd "$ROOT" && cargo build --release --locked -q && realpath "${CARGO_TARGET_DIR:-target}/release/strata")
lap

WORK=$(mktemp -d /tmp/strata-nix.XXXXXX)
REG_PID=
trap '[ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null; chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
# Offline: no build users, no sandbox, no substituters, an empty flake
# registry; through NIX_CONFIG, so /etc is left alone.
echo '{"flakes":[],"version":2}' >"$WORK/registry.json"
export NIX_CONFIG="build-users-group =
experimental-features = nix-command flakes
sandbox = false
substituters =
flake-registry = $WORK/registry.json"

mkdir -p "$WORK/strata/examples" "$WORK/example/examples" "$WORK/root/examples" "$WORK/fake-nixpkgs"
cp "$HERE/flake.nix" "$WORK/strata/flake.nix"
cp -r "$ROOT/nix" "$WORK/strata/nix"
cp "$STRATA" "$WORK/strata/strata"
# A new app for the leaf releases (2b) on each run, even in a store that holds the last run's.
printf %s "$WORK" >"$WORK/strata/nonce"
cp "$HERE/example/flake.nix" "$WORK/example/flake.nix"
cp "$ROOT/flake.nix" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$ROOT/README.md" "$WORK/root/"
cp -r "$ROOT/src" "$WORK/root/src"
cp -r "$ROOT/nix" "$WORK/root/nix"
cp "$HERE/fake-nixpkgs/flake.nix" "$WORK/fake-nixpkgs/flake.nix"
cp "$STRATA" "$WORK/fake-nixpkgs/strata"
for d in strata example root; do cp -r "$ROOT/examples/hello" "$WORK/$d/examples/hello"; done
LIB=path:$WORK/strata
EX=path:$WORK/example
RT=path:$WORK/root
lock() { nix flake lock --offline --override-input "$@" 2>"$WORK/lock.log" || { cat "$WORK/lock.log"; exit 1; }; }
lock strata "$LIB" "$EX"
lock nixpkgs "path:$WORK/fake-nixpkgs" "$RT"

build() { nix build --offline --no-link "$@"; }
out() { nix path-info --offline "$1"; }
fail=0
# check NAME WANT GOT [WHY]: GOT must be WANT. Both empty proves nothing (a
# broken pipeline gives "" too), so that passes only with WHY, the reason
# "" is meaningful (e.g. the pipeline's exit status was checked before).
check() {
  if [ -z "$2" ] && [ -z "$3" ] && [ -z "${4:-}" ]; then
    echo "FAIL $1: want and got are both empty (say why \"\" shows the claim)"
    fail=1
  elif [ "$2" = "$3" ]; then echo "ok   $1: ${2:-\"\" (${4:-})}"; else
    echo "FAIL $1: want $2, got $3"
    fail=1
  fi
}
# capture VAR CMD...: VAR=$(CMD...), failing the suite when CMD (every
# command of its pipelines: pipefail) exits non-zero.
capture() {
  local __v=$1 __out
  shift
  if __out=$("$@"); then printf -v "$__v" '%s' "$__out"; else
    echo "FAIL $*: exit $?"
    fail=1
    printf -v "$__v" '%s' "<failed: $*>"
  fi
}
golden() { sed -n 's/.*"'"$1"'": "\(sha256:[0-9a-f]*\)".*/\1/p' "$ROOT/tests/golden/hello.json"; }
# Layer digests of an image, bottom first; diff_ids; a layer's top-level entries.
layers() { "$STRATA" inspect --json "$1" | grep -o '"digest":"sha256:[0-9a-f]*","mediaType":"application/vnd.oci.image.layer' | cut -d'"' -f4; }
diffids() { "$STRATA" inspect --json "$1" | grep -o '"diffId":"sha256:[0-9a-f]*"' | cut -d'"' -f4; }
# "lib1 tmp": the store path names (hash dropped) and other top-level entries.
entries() {
  tar -tzf "$1/blobs/sha256/${2#sha256:}" |
    sed -n -e 's|^nix/store/[0-9a-z]*-\([^/]*\)/\{0,1\}$|\1|p;t' -e 's|^\([^/]*\)/\{0,1\}$|\1|p' |
    grep -vx nix | sort | paste -sd' '
}
nth() { sed -n "$1p"; }

echo "--- 1. golden: the README's image, an image from a directory, the root flake's image"
[ -f "$ROOT/tests/golden/hello.json" ] || { echo "FAIL: tests/golden/hello.json is missing" >&2; exit 1; }
build "$EX#image" "$LIB#dir" "$LIB#dir-archive" "$RT#packages.x86_64-linux.image"
HELLO=$(out "$EX#image")
check "layer digest" "$(golden layer)" "$(layers "$HELLO")"
check "layer diff_id" "$(golden diff_id)" "$(diffids "$HELLO")"
check "manifest" "$(golden manifest)" "$("$STRATA" digest "$HELLO")"
check "copyToRoot image manifest" "$(golden manifest)" "$("$STRATA" digest "$(out "$LIB#dir")")"
check "root flake image manifest" "$(golden manifest)" "$("$STRATA" digest "$(out "$RT#packages.x86_64-linux.image")")"
lap

echo "--- 2. closure layering"
build "$EX#greet" "$LIB#closure" "$LIB#layered" "$LIB#hello-archive" "$LIB#rootenv"
GREET=$(out "$EX#greet")
CLOSURE=$(out "$LIB#closure")
LAYERED=$(out "$LIB#layered")
ROOTENV=$(out "$LIB#rootenv")
L=$(layers "$GREET")
check "greet: base layer" "$(golden layer)" "$(echo "$L" | nth 1)"
check "greet: layers (by size: greet is larger)" "hello|greet|words" "$(for i in 1 2 3; do entries "$GREET" "$(echo "$L" | nth $i)" | sed 's/^etc www$/hello/'; done | paste -sd'|')"
L=$(layers "$CLOSURE")
check "closure: maxLayers 3, by popularity" "lib1|lib2|app link tool" "$(for d in $L; do entries "$CLOSURE" "$d"; done | paste -sd'|')"
# The root flake's lib (strata as a package, not a path) makes the same image.
cat >"$WORK/root-closure.nix" <<EOF
let
  s = (builtins.getFlake "$RT").lib.x86_64-linux;
  t = (builtins.getFlake "$LIB").packages.x86_64-linux;
in
s.buildImage { name = "closure"; storePaths = [ t.tool ]; config.Entrypoint = [ "\${t.app}/bin/app" ]; maxLayers = 3; layering = "popularity"; }
EOF
build -f "$WORK/root-closure.nix"
check "closure: the root flake's lib, same manifest" "$("$STRATA" digest "$CLOSURE")" \
  "$("$STRATA" digest "$(nix path-info --offline -f "$WORK/root-closure.nix")")"
check "rootenv: copyToRoot's references, then copyToRoot" "app lib1 lib2 link|bin" \
  "$(for d in $(layers "$ROOTENV"); do entries "$ROOTENV" "$d"; done | paste -sd'|')"
L=$(layers "$LAYERED")
check "layered: oci-archive base" "$(golden layer)" "$(echo "$L" | nth 1)"
check "layered: explicit layer, then the rest of the closure" "lib1 lib2 tmp|link|app" \
  "$(for i in 2 3 4; do entries "$LAYERED" "$(echo "$L" | nth $i)"; done | paste -sd'|')"
check "layered: 4 layers" 4 "$(echo "$L" | wc -l)"
build "$LIB#sized" "$LIB#release1" "$LIB#release2" "$LIB#grouped"
GROUPED=$(out "$LIB#grouped")
L=$(layers "$GROUPED")
check "grouped: layerGroups [ [ \"lib*\" ] ] first, then the split" "lib1 lib2|app|link tool" \
  "$(entries "$GROUPED" "$(echo "$L" | nth 1)")|$(for d in $(echo "$L" | sed 1d); do entries "$GROUPED" "$d"; done | sort | paste -sd'|')"
SIZED=$(out "$LIB#sized")
check "sized: maxLayers 3, by size (the applications alone)" "lib1 lib2 link|app|tool" \
  "$(for d in $(layers "$SIZED"); do entries "$SIZED" "$d"; done | paste -sd'|')"
R1=$(out "$LIB#release1")
R2=$(out "$LIB#release2")
# nix build LIB#release1.layers: the lock, an output of its own.
R1LOCK=$(nix path-info --offline "$LIB#release1.layers")
check "release1: the lock names 5 store paths" 5 "$(grep -o '"path":' "$R1LOCK" | wc -l)"
check "release1: maxLayers 100 by default, every path alone" "app|lib1|lib2|link|tool" \
  "$(for d in $(layers "$R1"); do entries "$R1" "$d"; done | sort | paste -sd'|')"
# Layer digest and store path names of every layer, for the two releases.
named() { for d in $(layers "$1"); do echo "$d $(entries "$1" "$d")"; done | sort; }
check "release2 (previousLayers = release1.layers): the unchanged layers are the same blobs" \
  "lib1 lib2 link tool" "$(join <(named "$R1") <(named "$R2") | cut -d' ' -f2 | sort | paste -sd' ')"
check "release2: app and extra in new layers of their own" "app|extra" \
  "$(comm -13 <(named "$R1" | cut -d' ' -f1) <(named "$R2" | cut -d' ' -f1) | while read -r d; do entries "$R2" "$d"; done | sort | paste -sd'|')"
build "$LIB#onclosure"
ONCLOSURE=$(out "$LIB#onclosure")
L=$(layers "$ONCLOSURE")
check "onclosure: the base's layers, then only what the base lacks" "lib1|lib2|app link tool|extra" \
  "$(for d in $L; do entries "$ONCLOSURE" "$d"; done | paste -sd'|')"
lap

echo "--- 2b. a derivation per closure layer (layerDerivations), blobs as symlinks (linkLayers)"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# The layer store path (hash dropped) each layer blob of an image links to, bottom first.
linked() {
  for d in $(layers "$1"); do
    f=$1/blobs/sha256/${d#sha256:}
    if [ -L "$f" ]; then readlink "$f" | sed 's|^/nix/store/[0-9a-z]\{32\}-||'; else echo "not a link"; fi
  done | paste -sd' '
}
build "$LIB#sized-ifd"
SIZED_IFD=$(out "$LIB#sized-ifd")
check "sized-ifd: the same image as sized, byte for byte" "$("$STRATA" digest "$SIZED")" "$("$STRATA" digest "$SIZED_IFD")"
check "sized-ifd: every layer blob links to its layer's store path" "lib1-layer app-layer tool-layer" "$(linked "$SIZED_IFD")"
check "sized-ifd: the image refers to those store paths" "app-layer lib1-layer tool-layer" \
  "$(nix-store --query --references "$SIZED_IFD" | grep -- -layer$ | sed 's|^/nix/store/[0-9a-z]*-||' | sort | paste -sd' ')"
check "sized: closure layers built inside the image are files" "not a link not a link not a link" "$(linked "$SIZED")"
# Where import-from-derivation is forbidden (Hydra), the default still evaluates; layerDerivations cannot.
if nix eval --offline --option allow-import-from-derivation false --raw "$LIB#sized.drvPath" >/dev/null; then echo "ok   sized: evaluates without import-from-derivation"; else
  echo "FAIL sized: does not evaluate with allow-import-from-derivation false"
  fail=1
fi
if nix eval --offline --option allow-import-from-derivation false --raw "$LIB#sized-ifd.drvPath" >/dev/null 2>"$WORK/ifd.log"; then
  echo "FAIL sized-ifd: evaluated with allow-import-from-derivation false"
  fail=1
else
  check "sized-ifd: Nix names the forbidden import-from-derivation" 1 "$(grep -c "allow-import-from-derivation' is disabled" "$WORK/ifd.log")"
fi
# N = 3 images on one base: the base's layer bytes once in the store.
build "$LIB#shared1" "$LIB#shared2" "$LIB#shared3" "$LIB#copies1" "$LIB#copies2" "$LIB#copies3"
SHARED1=$(out "$LIB#shared1")
NOISE=$(nix-store --query --references "$SHARED1" | grep -- '-noise-layer$')
NOISE_BYTES=$(stat -c %s "$NOISE")
check "shared1..3: the base layer blob of each links to one store path" "$NOISE $NOISE $NOISE" \
  "$(for i in 1 2 3; do I=$(out "$LIB#shared$i"); readlink "$I/blobs/sha256/$(layers "$I" | nth 1 | cut -d: -f2)"; done | paste -sd' ')"
# Store bytes: the NAR sizes of the union of the closures (what nix copy
# moves, and what a store holds without hard links), and du of it.
store_bytes() {
  local ps
  ps=$(for a do out "$LIB#$a"; done)
  echo "$(nix path-info --offline -rs $ps | awk '{ s += $2 } END { print s }') $(du -scb $(nix-store --query --requisites $ps) | tail -1 | cut -f1)"
}
read -r SHARED_NAR SHARED_DU <<<"$(store_bytes shared1 shared2 shared3)"
read -r COPIES_NAR COPIES_DU <<<"$(store_bytes copies1 copies2 copies3)"
echo "    base layer: $NOISE_BYTES bytes; 3 images on it, closure NAR bytes: $SHARED_NAR linked, $COPIES_NAR with copies (du: $SHARED_DU, $COPIES_DU; strata hard-links copies within one store)"
check "3 linked images: the base layer's bytes once (NAR bytes < 1.1x the layer)" yes \
  "$([ "$SHARED_NAR" -lt $((NOISE_BYTES * 11 / 10)) ] && echo yes || echo "no: $SHARED_NAR")"
check "3 images with copies: the base layer's bytes 3 times (the control)" yes \
  "$([ "$COPIES_NAR" -ge $((NOISE_BYTES * 3)) ] && echo yes || echo "no: $COPIES_NAR")"
# A leaf change: only the changed layer (and the image) is built again.
t=$(now)
build "$LIB#leaf1"
T_FIRST=$(secs "$t" "$(now)")
nix build --offline --no-link --dry-run "$LIB#leaf2" 2>"$WORK/dry.log" || { cat "$WORK/dry.log"; fail=1; }
# (leaf-image-spec.json: the image spec, a few hundred bytes naming the layers)
check "leaf2 (app changed), after leaf1: nix builds only app's layer and the image (and its spec)" "app-layer leaf-image leaf-image-spec.json" \
  "$(sed -n 's|^  /nix/store/[0-9a-z]\{32\}-\(.*\)\.drv$|\1|p' "$WORK/dry.log" | sort | paste -sd' ')"
t=$(now)
build "$LIB#leaf2"
T_LEAF=$(secs "$t" "$(now)")
LEAF1=$(out "$LIB#leaf1")
LEAF2=$(out "$LIB#leaf2")
check "leaf2: every unchanged layer is leaf1's store path" "app-layer" \
  "$(comm -13 <(nix-store -q --references "$LEAF1" | grep -- -layer$ | sort) <(nix-store -q --references "$LEAF2" | grep -- -layer$ | sort) | sed 's|^/nix/store/[0-9a-z]*-||' | paste -sd' ')"
echo "    nix build, wall time: leaf1 (first build) $T_FIRST s; leaf2 (a leaf change) $T_LEAF s"
lap

echo "--- 3. rebuild: nix checks the outputs are bit-identical"
LAYER_DRV=$(nix-store --query --requisites "$(nix path-info --offline --derivation "$EX#image")" | grep -- '-hello-layer\.drv$')
# layerDerivations: the split and every layer of leaf2 and shared1 too.
IFD_DRVS=$(for a in leaf2 shared1; do
  nix-store --query --requisites "$(nix path-info --offline --derivation "$LIB#$a")" | grep -- '-layer\.drv$'
  nix path-info --offline --derivation "$LIB#$a.layers"
done)
if build --rebuild "$EX#image" "$LAYER_DRV" "$EX#greet" "$LIB#closure" "$LIB#layered" "$LIB#rootenv" "$LIB#dir-archive" "$LIB#sized" "$LIB#release2" \
  "$LIB#sized-ifd" "$LIB#leaf2" "$LIB#shared1" $IFD_DRVS 2>"$WORK/rebuild.log"; then
  echo "ok   nix build --rebuild: $(grep -c '^checking outputs of' "$WORK/rebuild.log") derivations bit-identical"
else
  cat "$WORK/rebuild.log"
  echo "FAIL nix build --rebuild"
  fail=1
fi
lap

echo "--- 4. consumers"
require() {
  if command -v "$1" >/dev/null 2>&1; then return 0; fi
  if [ "${STRATA_REQUIRE_TOOLS:-}" = 1 ]; then
    echo "FAIL: $1 is required" >&2
    exit 1
  fi
  echo "skipping $1 checks: not installed"
  return 1
}
for img in "$HELLO" "$GREET" "$CLOSURE" "$LAYERED" "$ROOTENV" "$(out "$LIB#dir-archive")" "$(out "$LIB#hello-archive")" "$SIZED" "$R1" "$R2" \
  "$SIZED_IFD" "$SHARED1" "$LEAF2"; do
  "$STRATA" verify "$img"
done
# Linked blobs (SIZED_IFD, SHARED1, LEAF2) read back: a docker-archive on one
# holds every layer's bytes.
"$STRATA" image -q --out "$WORK/shared1.tar" --format docker-archive --base "$SHARED1"
"$STRATA" verify "$WORK/shared1.tar"
check "docker-archive on a linked image: the same layers" "$(layers "$SHARED1" | paste -sd' ')" "$(layers "$WORK/shared1.tar" | paste -sd' ')"
if require oci-image-tool; then
  for img in "$HELLO" "$GREET" "$CLOSURE" "$LAYERED" "$ROOTENV" "$SIZED_IFD" "$SHARED1" "$LEAF2"; do
    oci-image-tool validate --type image "$img" >/dev/null
  done
  echo "ok   oci-image-tool validate"
fi
if require skopeo; then
  for img in "$HELLO" "$GREET" "$CLOSURE" "$LAYERED" "$ROOTENV" "$SIZED_IFD" "$SHARED1" "$LEAF2"; do
    check "skopeo inspect oci:${img#/nix/store/}" "$("$STRATA" digest "$img")" "$(skopeo inspect --format '{{.Digest}}' "oci:$img")"
  done
  if skopeo inspect "docker-archive:$(out "$LIB#dir-archive")" >/dev/null; then echo "ok   skopeo inspect docker-archive"; else
    echo "FAIL skopeo inspect docker-archive:$(out "$LIB#dir-archive")"
    fail=1
  fi
fi
if require umoci; then
  # Store path names (hash dropped) under a rootfs, and every /nix/store
  # reference (in files and symlinks) that does not resolve inside it.
  names() { ls "$1/nix/store" | sed 's/^[0-9a-z]*-//' | sort | paste -sd' '; }
  dangling() {
    { grep -rhoa "$P" "$1/nix/store" || true; find "$1/nix/store" -type l -printf '%l\n' | { grep -o "$P" || true; }; } |
      sort -u | while read -r r; do [ -e "$1$r" ] || [ -L "$1$r" ] || echo "$r"; done | paste -sd' '
  }
  P='/nix/store/[0-9a-z]\{32\}-[-+._?=0-9A-Za-z]*'
  # A control: dangling() finds a planted reference that does not resolve,
  # in a file and in a symlink, and not one that does.
  mkdir -p "$WORK/control/nix/store/00000000000000000000000000000000-here"
  printf 'x /nix/store/11111111111111111111111111111111-gone/bin/x\n' >"$WORK/control/nix/store/00000000000000000000000000000000-here/f"
  ln -s /nix/store/22222222222222222222222222222222-gone2 "$WORK/control/nix/store/00000000000000000000000000000000-here/l"
  printf '/nix/store/00000000000000000000000000000000-here\n' >>"$WORK/control/nix/store/00000000000000000000000000000000-here/f"
  capture got dangling "$WORK/control"
  check "dangling() control: finds what does not resolve" \
    "/nix/store/11111111111111111111111111111111-gone /nix/store/22222222222222222222222222222222-gone2" "$got"
  for img in closure:"$CLOSURE" layered:"$LAYERED" greet:"$GREET" rootenv:"$ROOTENV" shared1:"$SHARED1"; do
    n=${img%%:*}
    umoci unpack --rootless --image "${img#*:}:1" "$WORK/$n" >/dev/null # tag NAME:1
  done
  check "umoci: closure store paths" "app lib1 lib2 link tool" "$(names "$WORK/closure/rootfs")"
  capture got dangling "$WORK/closure/rootfs"
  check "umoci: closure: no dangling store reference" "" "$got" "dangling() exited 0 and finds planted ones"
  check "umoci: link is a symlink to lib2" "lib2" "$(readlink "$WORK"/closure/rootfs/nix/store/*-link | sed 's/^[^-]*-//')"
  check "umoci: app" "755" "$(stat -c %a "$WORK"/closure/rootfs/nix/store/*-app/bin/app)"
  check "umoci: layered store paths" "app lib1 lib2 link" "$(names "$WORK/layered/rootfs")"
  capture got dangling "$WORK/layered/rootfs"
  check "umoci: layered: no dangling store reference" "" "$got" "dangling() exited 0 and finds planted ones"
  check "umoci: layered /tmp and the base's files" "1777 yes" \
    "$(stat -c %a "$WORK/layered/rootfs/tmp") $(test -f "$WORK/layered/rootfs/www/index.html" && echo yes)"
  check "umoci: greet store paths" "greet words" "$(names "$WORK/greet/rootfs")"
  capture got dangling "$WORK/greet/rootfs"
  check "umoci: greet: no dangling store reference" "" "$got" "dangling() exited 0 and finds planted ones"
  check "umoci: shared1 (linked blobs) store paths" "noise user1" "$(names "$WORK/shared1/rootfs")"
  check "umoci: shared1: the noise" "$(head -c 64 "$(nix path-info --offline "$LIB#noise")")" "$(head -c 64 "$WORK"/shared1/rootfs/nix/store/*-noise)"
  check "umoci: rootenv /bin/app" "/nix/store/$(basename "$WORK"/rootenv/rootfs/nix/store/*-app)/bin/app" \
    "$(readlink "$WORK/rootenv/rootfs/bin/app")"
  capture got dangling "$WORK/rootenv/rootfs"
  check "umoci: rootenv: no dangling store reference" "" "$got" "dangling() exited 0 and finds planted ones"
fi
lap

echo "--- 5. registry: pullImage (shallow), buildImage on it, pushImage"
# Debian's docker-registry on a free loopback port (as tests/registry.rs):
# filesystem storage under $WORK, the access log on stdout. Sets PORT, REG_PID.
start_registry() {
  local d=$WORK/registry p
  mkdir -p "$d/storage"
  for _ in 1 2 3 4 5; do
    p=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
      "$d/storage" "$p" >"$d/config.yml"
    docker-registry serve "$d/config.yml" </dev/null >"$d/access.log" 2>"$d/registry.log" &
    REG_PID=$!
    for _ in $(seq 200); do
      kill -0 "$REG_PID" 2>/dev/null || break # died (port taken?): another port
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; return 0; fi
      sleep 0.1
    done
    stop_registry
  done
  echo "FAIL: docker-registry did not start; see $d/registry.log" >&2
  cat "$d/registry.log" >&2
  exit 1
}
stop_registry() { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; REG_PID=; }
# The blobs mounted into repository $1 (201 from the registry), sorted; the
# access log has the query as sent (sha256%3A...).
mounts() {
  sed -n "s|.*\"POST /v2/$1/blobs/uploads/?[^\"]*mount=sha256%3A\([0-9a-f]*\)[^\"]*\" 201 .*|sha256:\1|p" \
    "$WORK/registry/access.log" | sort | paste -sd' '
}
raw_digest() { echo "sha256:$(skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | cut -d' ' -f1)"; }
if require docker-registry && require skopeo; then
  start_registry
  R=http://127.0.0.1:$PORT
  # A base of two layers (3 MiB of noise, and a small file), pushed by the CLI.
  mkdir -p "$WORK/base-src/one/opt" "$WORK/base-src/two/etc"
  head -c 3145728 /dev/urandom >"$WORK/base-src/one/opt/noise.bin"
  echo base >"$WORK/base-src/two/etc/base"
  "$STRATA" layer --out "$WORK/b1.tgz" "$WORK/base-src/one" >/dev/null
  "$STRATA" layer --out "$WORK/b2.tgz" "$WORK/base-src/two" >/dev/null
  "$STRATA" image --out "$WORK/base" --layer "$WORK/b1.tgz" --layer "$WORK/b2.tgz" --env PATH=/bin >/dev/null
  BASE_LAYERS=$(layers "$WORK/base")
  BASE_BYTES=$(($(stat -c %s "$WORK/b1.tgz") + $(stat -c %s "$WORK/b2.tgz")))
  "$STRATA" push -q --digest-file "$WORK/base.digest" "$WORK/base" "$R/base:1" >/dev/null
  BASE_DIGEST=$(cat "$WORK/base.digest")
  # Two releases, the second built with the first's lock (part 2): pushed
  # one after the other to one repository, the second uploads only its new
  # layers (app's, extra's) and its config (the registry's access log).
  "$STRATA" push -q "$R1" "$R/release:1" >/dev/null
  SEEN=$(wc -l <"$WORK/registry/access.log")
  "$STRATA" push -q "$R2" "$R/release:2" >/dev/null
  R2_CONFIG=$("$STRATA" digest --json "$R2" | grep -o '"config": *"sha256:[0-9a-f]*"' | grep -o 'sha256:[0-9a-f]*')
  check "release2 push: uploads only the new layers and the config" \
    "$({ comm -13 <(layers "$R1" | sort) <(layers "$R2" | sort); echo "$R2_CONFIG"; } | sort | paste -sd' ')" \
    "$(tail -n +$((SEEN + 1)) "$WORK/registry/access.log" |
      sed -n 's|.*"PUT /v2/release/blobs/uploads/[^"]*digest=sha256%3A\([0-9a-f]*\)[^"]*" 201 .*|sha256:\1|p' | sort | paste -sd' ')"
  # Images whose blobs are symlinks into layer store paths: strata push and
  # skopeo copy read them; the registry serves strata's digest.
  for img in leaf:"$LEAF2" shared:"$SHARED1"; do
    "$STRATA" push -q "${img#*:}" "$R/${img%%:*}:strata" >/dev/null
    check "strata push of ${img%%:*} (linked blobs): registry digest" "$("$STRATA" digest "${img#*:}")" "$(raw_digest "127.0.0.1:$PORT/${img%%:*}:strata")"
    skopeo copy -q --dest-tls-verify=false "oci:${img#*:}" "docker://127.0.0.1:$PORT/${img%%:*}:skopeo"
    check "skopeo copy oci: of ${img%%:*} (linked blobs): the same layers" "$(layers "${img#*:}" | paste -sd' ')" \
      "$(skopeo inspect --tls-verify=false --format '{{range .Layers}}{{println .}}{{end}}' "docker://127.0.0.1:$PORT/${img%%:*}:skopeo" | grep . | paste -sd' ')"
  done
  # The hash pullImage pins: that of the CLI's shallow pull.
  "$STRATA" pull -q --shallow "$R/base@$BASE_DIGEST" --out "$WORK/pulled" >/dev/null
  mkdir -p "$WORK/reg/examples"
  cp "$HERE/registry/flake.nix" "$WORK/reg/flake.nix"
  cp -r "$ROOT/examples/hello" "$WORK/reg/examples/hello"
  PIN_HASH=$(nix hash path "$WORK/pulled")
  printf '{ registry = "%s"; digest = "%s"; sha256 = "%s"; }\n' "$R" "$BASE_DIGEST" "$PIN_HASH" >"$WORK/reg/pinned.nix"
  REG=path:$WORK/reg
  lock strata "$LIB" "$REG"
  t=$SECONDS
  build "$REG#base" "$REG#image" "$REG#push"
  echo "    nix build of base (pullImage), image, push: $((SECONDS - t)) s"
  PULLED=$(out "$REG#base")
  IMG=$(out "$REG#image")
  PULLED_BYTES=$(du -sb "$PULLED" | cut -f1)
  echo "    pulled base in the store: $PULLED_BYTES bytes; its layers: $BASE_BYTES bytes"
  check "pullImage: under 100 KB" yes "$([ "$PULLED_BYTES" -lt 100000 ] && echo yes || echo "no ($PULLED_BYTES bytes)")"
  check "base: 2 layers" 2 "$(echo "$BASE_LAYERS" | grep -c '^sha256:[0-9a-f]\{64\}$')"
  check "pullImage: no layer blob" "" "$(for d in $BASE_LAYERS; do [ ! -e "$PULLED/blobs/sha256/${d#sha256:}" ] || echo "$d"; done | paste -sd' ')" \
    "each of the 2 base layers' blob path tested absent"
  check "pullImage: the pinned digest" "$BASE_DIGEST" "$("$STRATA" digest "$PULLED")"
  check "image: the base's layers, then one" "$(echo "$BASE_LAYERS" | paste -sd' ') $(golden layer)" "$(layers "$IMG" | paste -sd' ')"
  check "image: shallow (no base layer blob)" "" "$(for d in $BASE_LAYERS; do [ ! -e "$IMG/blobs/sha256/${d#sha256:}" ] || echo "$d"; done | paste -sd' ')" \
    "each of the 2 base layers' blob path tested absent"
  "$STRATA" verify "$IMG" 2>/dev/null
  IMG_DIGEST=$("$STRATA" digest "$IMG")
  # nix run, the repository as an argument; the script, the repository from the environment.
  t=$SECONDS
  nix run --offline "$REG#push" -- "$R/app" >"$WORK/push.out" 2>"$WORK/push.err" || { cat "$WORK/push.err"; fail=1; }
  STRATA_PUSH_REPOSITORY=$R/app2 "$(out "$REG#push")/bin/push" -q >>"$WORK/push.out" || fail=1
  echo "    two pushes: $((SECONDS - t)) s; $(grep '^pushed' "$WORK/push.err" || true)"
  check "pushImage: printed" "127.0.0.1:$PORT/app@$IMG_DIGEST|127.0.0.1:$PORT/app2@$IMG_DIGEST" "$(paste -sd'|' "$WORK/push.out")"
  MOUNTED=$(echo "$BASE_LAYERS" | sort | paste -sd' ')
  check "pushImage (nix run): every base layer mounted" "$MOUNTED" "$(mounts app)"
  check "pushImage (\$STRATA_PUSH_REPOSITORY): every base layer mounted" "$MOUNTED" "$(mounts app2)"
  check "pushImage: no base layer downloaded" 0 "$(grep -cE "\"GET /v2/[^ ]*/blobs/sha256(:|%3A)($(echo $BASE_LAYERS | sed 's/sha256://g; s/ /|/g')) " "$WORK/registry/access.log" || true)"
  check "registry digest of app:1 = strata digest" "$IMG_DIGEST" "$(raw_digest "127.0.0.1:$PORT/app:1")"
  check "registry digest of app2:latest = strata digest" "$IMG_DIGEST" "$(raw_digest "127.0.0.1:$PORT/app2:latest")"
  # An archive on the shallow base: its layers fetched into the build's own cache.
  build "$REG#archive"
  "$STRATA" verify --require-complete "$(out "$REG#archive")" >/dev/null
  check "archive on pullImage: complete, same manifest" "$IMG_DIGEST" "$("$STRATA" digest "$(out "$REG#archive")")"
  check "archive on pullImage: no /homeless-shelter" no "$([ -e /homeless-shelter ] && echo yes || echo no)"
  # buildImage { sbom = true; } on the shallow base: the SBOM reads the base's
  # layers (fetched into the build's own cache); the CLI's attachments, byte for byte.
  build "$REG#attested"
  env -u SOURCE_DATE_EPOCH "$STRATA" attach -q "$IMG" --sbom spdx --out "$WORK/attested-cli" --cache-dir "$WORK/attested-cache"
  check "buildImage sbom on pullImage: the CLI's index.json" "$(sha256sum <"$WORK/attested-cli/index.json")" "$(sha256sum <"$(out "$REG#attested")/index.json")"
  check "buildImage sbom on pullImage: still shallow" yes "$([ -e "$(out "$REG#attested")/strata-remote.json" ] && echo yes || echo no)"
  check "buildImage sbom on pullImage: no /homeless-shelter" no "$([ -e /homeless-shelter ] && echo yes || echo no)"
  # The root flake's lib: pushImage with (fake) nixpkgs' coreutils.
  cat >"$WORK/root-push.nix" <<EOF2
(builtins.getFlake "$RT").lib.x86_64-linux.pushImage {
  image = (builtins.getFlake "$RT").packages.x86_64-linux.image;
  repository = "$R/hello";
}
EOF2
  build -f "$WORK/root-push.nix"
  "$(nix path-info --offline -f "$WORK/root-push.nix")/bin/push" -q >/dev/null || fail=1
  check "root flake pushImage: registry digest" "$(golden manifest)" "$(raw_digest "127.0.0.1:$PORT/hello@$(golden manifest)")"
  # How a user finds the hash to pin: sha256 = "" makes Nix report it.
  if build "$REG#unpinned" 2>"$WORK/unpinned.log"; then echo "FAIL pullImage with sha256 = \"\" built"; fail=1; fi
  check "pullImage, sha256 = \"\": Nix reports the hash nix hash path gives" "$PIN_HASH" "$(sed -n 's/^ *got: *//p' "$WORK/unpinned.log")"
  if build --rebuild "$REG#base" 2>"$WORK/rebuild.log"; then echo "ok   nix build --rebuild: pullImage bit-identical"; else
    cat "$WORK/rebuild.log"
    echo "FAIL nix build --rebuild of pullImage"
    fail=1
  fi
  # Composition needs no layer bytes: the image rebuilds with the registry stopped.
  stop_registry
  if build --rebuild "$REG#image" 2>"$WORK/rebuild.log"; then echo "ok   registry stopped: the image rebuilds bit-identical"; else
    cat "$WORK/rebuild.log"
    echo "FAIL nix build --rebuild of the image, registry stopped"
    fail=1
  fi
fi
lap

echo "--- 6. README"
# The README's "Nix" section shows tests/nix/example/flake.nix verbatim, in
# the ```nix block after the line <!-- tests/nix/example/flake.nix -->.
if grep -q '^<!-- tests/nix/example/flake.nix -->$' "$ROOT/README.md"; then
  awk '/^<!-- tests\/nix\/example\/flake.nix -->$/ { on = 1; next }
       on && /^```nix$/ { body = 1; next }
       body && /^```$/ { exit }
       body { print }' "$ROOT/README.md" >"$WORK/readme.nix"
  if cmp -s "$WORK/readme.nix" "$HERE/example/flake.nix"; then echo "ok   README flake = tests/nix/example/flake.nix"; else
    echo "FAIL README flake differs from tests/nix/example/flake.nix:"
    diff "$WORK/readme.nix" "$HERE/example/flake.nix" || true
    fail=1
  fi
else
  echo "FAIL README.md does not mark its Nix flake (<!-- tests/nix/example/flake.nix -->): nothing to compare"
  fail=1
fi


echo "--- 7. the strata package's source filter (nix/package.nix)"
pkg_drv() { nix eval --offline --raw "$RT#packages.x86_64-linux.strata.drvPath"; }
capture DRV0 pkg_drv
capture SRC nix eval --offline --raw "$RT#packages.x86_64-linux.strata.src"
check "package source: only what cargo builds from" "Cargo.lock Cargo.toml src" "$(ls "$SRC" | paste -sd' ')"
build "$RT#packages.x86_64-linux.strata"
echo "a README edit" >>"$WORK/root/README.md"
mkdir -p "$WORK/root/tests" && echo "a new test" >"$WORK/root/tests/new.rs"
capture DRV1 pkg_drv
check "README.md edited, tests/ added: same derivation" "$DRV0" "$DRV1"
echo "// an edit" >>"$WORK/root/src/main.rs"
capture DRV2 pkg_drv
check "src/main.rs edited: another derivation (the control)" yes "$([ "$DRV2" != "$DRV0" ] && echo yes || echo "no: $DRV2")"
cp "$ROOT/src/main.rs" "$WORK/root/src/main.rs"
capture DRV3 pkg_drv
check "src/main.rs restored: the first derivation again" "$DRV0" "$DRV3"

echo "--- 8. sbom: the pkg:nix packages of an image are its closure (nix path-info -r)"
# Self-contained (issue #24). `closure` holds app's closure (via config) and
# tool's; nix/sbom.nix makes its SBOM in a derivation; the CLI on the same
# image writes the same bytes; nix build --rebuild finds it bit-identical.
cat >"$WORK/sbom.nix" <<EOF
let
  f = builtins.getFlake "$LIB";
  s = f.lib.x86_64-linux;
  t = f.packages.x86_64-linux;
in
{
  cdx = s.sbom { image = t.closure; format = "cyclonedx"; };
  spdx = s.sbom { image = t.closure; };
}
EOF
build -f "$WORK/sbom.nix" cdx spdx
SBOM_IMG=$(out "$LIB#closure")
SBOM_CDX=$(nix path-info --offline -f "$WORK/sbom.nix" cdx)
SBOM_SPDX=$(nix path-info --offline -f "$WORK/sbom.nix" spdx)
# Every store path the SBOM lists after KEY (CycloneDX property, SPDX packageFileName), sorted.
sbom_paths() { grep -o "$2\"/nix/store/[^\"]*\"" "$1" | grep -o '/nix/store/[^"]*' | sort; }
capture SBOM_WANT nix path-info --offline -r "$LIB#app" "$LIB#tool"
SBOM_WANT=$(echo "$SBOM_WANT" | sort)
check "sbom (cyclonedx, nix/sbom.nix): store paths = nix path-info -r of the image's roots" \
  "$SBOM_WANT" "$(sbom_paths "$SBOM_CDX" '"strata:nix:store-path","value":')"
check "sbom (spdx, nix/sbom.nix): store paths = nix path-info -r of the image's roots" \
  "$SBOM_WANT" "$(sbom_paths "$SBOM_SPDX" '"packageFileName":')"
check "sbom: purls of the closure" "pkg:nix/app pkg:nix/lib1 pkg:nix/lib2 pkg:nix/link pkg:nix/tool" \
  "$(grep -o '"purl":"pkg:nix/[^"]*"' "$SBOM_CDX" | cut -d'"' -f4 | sort | paste -sd' ')"
"$STRATA" sbom "$SBOM_IMG" --format cyclonedx --out "$WORK/closure.cdx.json" || fail=1
check "sbom: nix/sbom.nix and the CLI write the same bytes" "$(sha256sum <"$WORK/closure.cdx.json")" "$(sha256sum <"$SBOM_CDX")"
if build --rebuild -f "$WORK/sbom.nix" cdx spdx 2>"$WORK/rebuild.log"; then echo "ok   nix build --rebuild: the SBOMs are bit-identical"; else
  cat "$WORK/rebuild.log"
  echo "FAIL nix build --rebuild of the SBOMs"
  fail=1
fi
lap

echo "--- 9. attest: the golden image with its SBOMs and provenance attached (nix/attest.nix)"
# Self-contained (issue #24). The README's image through attest gives
# tests/golden/hello-attest.json's digests (the CLI's and Bazel's), the same
# layout as strata attach, valid SBOMs; on the closure image the attached
# SBOM is nix/sbom.nix's; nix build --rebuild finds them bit-identical.
cat >"$WORK/attest.nix" <<EOF
let
  f = builtins.getFlake "$LIB";
  s = f.lib.x86_64-linux;
in
{
  hello = s.attest { image = (builtins.getFlake "$EX").packages.x86_64-linux.image; sbom = [ "spdx" "cyclonedx" ]; };
  closure = s.attest { image = f.packages.x86_64-linux.closure; sbom = "cyclonedx"; params.release = "1"; };
  # The same image by buildImage { sbom; provenance; }.
  inline = s.buildImage {
    name = "hello";
    layers = [ (s.buildLayer { name = "hello"; contents = [ $WORK/strata/examples/hello ]; }) ];
    config = { Env = [ "GREETING=hello" ]; WorkingDir = "/www"; Cmd = [ "cat" "/www/index.html" ]; };
    sbom = [ "spdx" "cyclonedx" ];
    provenance = true;
  };
}
EOF
build -f "$WORK/attest.nix" hello closure inline
bash "$ROOT/tests/golden/check-attest.sh" "$STRATA" "$(nix path-info --offline -f "$WORK/attest.nix" inline)" || fail=1
ATT_HELLO=$(nix path-info --offline -f "$WORK/attest.nix" hello)
ATT_CLOSURE=$(nix path-info --offline -f "$WORK/attest.nix" closure)
bash "$ROOT/tests/golden/check-attest.sh" "$STRATA" "$ATT_HELLO" || fail=1
check "attest: the image keeps its digest" "$(golden manifest)" "$("$STRATA" digest "$ATT_HELLO")"
ATT_LAYER=$(readlink "$ATT_HELLO/blobs/sha256/$(golden layer | cut -d: -f2)" || true)
check "attest: the image's layer blob is a symlink into the store (linkBlobs), not a copy" "yes" "$(case $ATT_LAYER in /nix/store/*) echo yes ;; *) echo "no: ${ATT_LAYER:-a file}" ;; esac)"
ATT_CDX=$(grep -o '"artifactType":"application/vnd.cyclonedx+json","digest":"sha256:[0-9a-f]*"' "$ATT_CLOSURE/index.json" | cut -d'"' -f8)
ATT_CDX=$(grep -o '"layers":\[{"digest":"sha256:[0-9a-f]*"' "$ATT_CLOSURE/blobs/sha256/${ATT_CDX#sha256:}" | cut -d'"' -f6)
check "attest (closure): the attached SBOM is nix/sbom.nix's" "$(sha256sum <"$SBOM_CDX")" "$(sha256sum <"$ATT_CLOSURE/blobs/sha256/${ATT_CDX#sha256:}")"
check "attest (closure): attachments" "application/vnd.cyclonedx+json application/vnd.in-toto+json" \
  "$(grep -o '"artifactType":"[^"]*"' "$ATT_CLOSURE/index.json" | cut -d'"' -f4 | sort | paste -sd' ')"
if build --rebuild -f "$WORK/attest.nix" hello closure inline 2>"$WORK/rebuild.log"; then echo "ok   nix build --rebuild: the attested layouts are bit-identical"; else
  cat "$WORK/rebuild.log"
  echo "FAIL nix build --rebuild of the attested layouts"
  fail=1
fi
lap

[ $fail = 0 ] || { echo "--- nix suite: FAILED"; exit 1; }
echo "--- nix suite: ok ($(($SECONDS - T0)) s)"
