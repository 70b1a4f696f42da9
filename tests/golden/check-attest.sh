#!/usr/bin/env bash
# check-attest.sh STRATA LAYOUT: LAYOUT (the golden hello image with its
# SBOMs and provenance attached, by a front end: Bazel's oci_attest, Nix's
# attest) holds the attachments tests/golden/hello-attest.json records, byte
# for byte: each document's digest, each attachment manifest's, index.json's;
# the CLI (`strata attach --out`, no SOURCE_DATE_EPOCH) on the image makes
# the same layout; the SBOMs pass pyspdxtools and CycloneDX's schema
# validation ($STRATA_SBOM_PYTHON, the venv .ci/run makes; python3 without
# it; a missing validator fails under STRATA_REQUIRE_TOOLS=1, else is
# skipped). Prints "ok …" lines; exits 1 on the first mismatch.
set -euo pipefail
STRATA=$1
LAYOUT=$2
GOLDEN=$(cd "$(dirname "$0")" && pwd)/hello-attest.json
fail() { echo "FAIL attest golden: $*" >&2; exit 1; }
want() { sed -n 's/.*"'"$1"'": "\([^"]*\)".*/\1/p' "$GOLDEN"; }
manifest() { grep -o "\"artifactType\":\"$1\",\"digest\":\"sha256:[0-9a-f]*\"" "$LAYOUT/index.json" | cut -d'"' -f8; }
document() { grep -o '"layers":\[{"digest":"sha256:[0-9a-f]*"' "$LAYOUT/blobs/sha256/${1#sha256:}" | cut -d'"' -f6; }
[ "$(want strata_version)" = "$("$STRATA" --version | awk '{print $2}')" ] ||
  fail "hello-attest.json is for strata $(want strata_version), this is $("$STRATA" --version) (UPDATE_GOLDEN=1 after a version bump)"
for kind in spdx:application/spdx+json cyclonedx:application/vnd.cyclonedx+json provenance:application/vnd.in-toto+json; do
  key=${kind%%:*}
  m=$(manifest "${kind#*:}")
  [ "$m" = "$(want "${key}_manifest")" ] || fail "$key manifest: want $(want "${key}_manifest"), got ${m:-none}"
  d=$(document "$m")
  [ "$d" = "$(want "${key}_document")" ] || fail "$key document: want $(want "${key}_document"), got ${d:-none}"
  [ "sha256:$(sha256sum <"$LAYOUT/blobs/sha256/${d#sha256:}" | cut -c1-64)" = "$d" ] || fail "$key document: blob bytes do not match $d"
done
i="sha256:$(sha256sum <"$LAYOUT/index.json" | cut -c1-64)"
[ "$i" = "$(want index_json)" ] || fail "index.json: want $(want index_json), got $i"
echo "ok   attest golden: SPDX, CycloneDX and provenance documents and manifests, index.json = tests/golden/hello-attest.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
env -u SOURCE_DATE_EPOCH "$STRATA" attach "$LAYOUT" --sbom spdx --sbom cyclonedx --provenance --out "$tmp/cli" >/dev/null
diff -r "$LAYOUT" "$tmp/cli" >/dev/null || fail "strata attach --out on $LAYOUT gives other bytes"
echo "ok   attest golden: strata attach on it writes the same layout"
"$STRATA" verify "$LAYOUT" >/dev/null || fail "strata verify $LAYOUT"
PY=${STRATA_SBOM_PYTHON:-python3}
if ! "$PY" -c 'import spdx_tools.spdx.clitools.pyspdxtools, cyclonedx.validation.json' 2>/dev/null; then
  [ "${STRATA_REQUIRE_TOOLS:-}" != 1 ] || fail "$PY: spdx-tools and cyclonedx-python-lib are required"
  echo "skipping the SBOM validators: not installed"
  exit 0
fi
blob() { echo "$LAYOUT/blobs/sha256/$(want "$1_document" | cut -d: -f2)"; }
cp "$(blob spdx)" "$tmp/sbom.spdx.json"
"$PY" -m spdx_tools.spdx.clitools.pyspdxtools -i "$tmp/sbom.spdx.json" >/dev/null || fail "pyspdxtools rejects the SPDX SBOM"
"$PY" -c 'import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
sys.exit(f"invalid: {e}" if e else 0)' "$(blob cyclonedx)" || fail "CycloneDX schema validation rejects the SBOM"
echo "ok   attest golden: the attached SBOMs pass pyspdxtools and CycloneDX 1.6 schema validation"
