#!/usr/bin/env bash
# Fuzz strata's readers for a bounded time (default 60 s per target):
#   fuzz/run.sh [SECONDS]
# Replays every reproducer under fuzz/regressions/<target>/ first, then fuzzes
# each target from the committed seeds (fuzz/seeds/<target>/) in a scratch
# corpus, prints the execution counts, and fails if any target crashes.
# Needs only the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass -Z flags.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-60}
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
TARGETS=(spec oci_json layout_tar layer_path layer_tar docker_archive dpkg_status)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
for t in "${TARGETS[@]}"; do
  cargo fuzz build "$t" >"$SCRATCH/$t.build.log" 2>&1 \
    || { grep -v '^ *[0-9]*: \|^ *at ' "$SCRATCH/$t.build.log" | tail -40; echo "fuzz: building $t fails" >&2; exit 1; }
  tail -1 "$SCRATCH/$t.build.log"
done
for t in "${TARGETS[@]}"; do
  shopt -s nullglob
  repro=(regressions/"$t"/*)
  shopt -u nullglob
  if [ ${#repro[@]} -gt 0 ]; then
    echo "replaying ${#repro[@]} regression input(s) for $t"
    cargo fuzz run "$t" "${repro[@]}" -- -runs=0 >"$SCRATCH/$t.replay.log" 2>&1 \
      || { cat "$SCRATCH/$t.replay.log"; echo "fuzz: regression of $t fails" >&2; exit 1; }
  fi
done
for t in "${TARGETS[@]}"; do
  mkdir -p "$SCRATCH/corpus-$t"
  if ! cargo fuzz run "$t" "$SCRATCH/corpus-$t" "seeds/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$SCRATCH/$t.log" 2>&1; then
    tail -60 "$SCRATCH/$t.log"
    echo "fuzz: $t crashed; the reproducer is under fuzz/artifacts/$t/ (copy it to fuzz/regressions/$t/)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$SCRATCH/$t.log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz $t: $runs executions in ${SECS} s, no crash"
done
