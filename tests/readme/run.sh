#!/usr/bin/env bash
# The README's runnable blocks, run as written (`.ci/run` runs this).
#
# Marker convention (documented in full at the top of tests/readme/blocks.py):
# an HTML comment right before a fence, e.g.
#   <!-- ci: run as=root,nobody -->
#   ```sh
#   $ strata diff a.oci b.oci    # exit 1
#   …
#   18 differences
#   ```
# `$ ` lines are commands, the lines after one are its expected stdout (`…`
# matches any characters; a line of only `…` any number of lines); a block
# without `$ ` lines is a script that must exit 0. Options: run, as=root,nobody,
# dir=repo, session=NAME, file=NAME.
#
# It builds the release binary (`cargo build --release --locked`, as the
# quick start's `cargo run --release` does; tests/bazel/run.sh builds the same
# one) and puts a copy first on PATH, so `strata ...` in the README means that
# binary, for root and for nobody alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
T0=$SECONDS

command -v python3 >/dev/null || { echo "FAIL: python3 is required" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || { echo "FAIL: setpriv (util-linux) is required" >&2; exit 1; }
  id nobody >/dev/null && getent group nogroup >/dev/null || { echo "FAIL: no user nobody / group nogroup" >&2; exit 1; }
fi

cargo build --release --locked -q
BIN_DIR=$(mktemp -d /tmp/strata-readme-bin.XXXXXX)
trap 'rm -rf "$BIN_DIR"' EXIT
chmod 755 "$BIN_DIR"
install -m 755 "${CARGO_TARGET_DIR:-target}/release/strata" "$BIN_DIR/strata"
export PATH=$BIN_DIR:$PATH
echo "strata: $(command -v strata) (release build, $(($(stat -c %s "$BIN_DIR/strata") / 1024)) KiB)"

python3 tests/readme/blocks.py --self-test
python3 tests/readme/blocks.py README.md \
  --require "Quick start" \
  --require "The layer spec (\`--spec FILE\`)" \
  --require "The image spec (\`strata image --spec FILE\`)" \
  --require "Auditing an image" \
  --require "Library"
echo "README blocks: ok ($((SECONDS - T0)) s)"
