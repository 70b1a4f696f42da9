# `attest { image; sbom ? "spdx"; provenance ? true; }`: the image with its
# SBOM and SLSA provenance attached as OCI 1.1 referrers, made in a
# derivation by `strata attach IMAGE --sbom … --provenance --out $out`. The
# output is a new OCI layout: the image (same manifest digest) and one
# artifact manifest per document (artifactType application/spdx+json,
# application/vnd.cyclonedx+json, application/vnd.in-toto+json), listed
# after it in index.json; pushImage sends them after the image. The
# documents are strata's SBOM (the image's layers and the Nix store paths it
# holds: its closure, each `pkg:nix/NAME@VERSION` with store path and hash;
# Debian packages of a dpkg database) and provenance (the base image and
# every layer blob by digest, the config, `params`). Deterministic, no
# clock: the CLI on the same image writes the same bytes (the suite checks
# tests/golden/hello-attest.json), `nix build --rebuild` finds it
# bit-identical. The image's blobs are symlinks to the store paths holding
# them (linkBlobs; false: copies), so no layer byte is stored twice.
#
# Imported by nix/default.nix with the strata binary (`bin`) and `system`.
{ bin, system }:
{
  # An image: a buildImage result, or any OCI layout / oci-archive / docker-archive path.
  image,
  # The SBOM format(s): "spdx", "cyclonedx", a list of both, true ("spdx"), or false / null (none).
  sbom ? "spdx",
  # Attach the SLSA v1 provenance statement (unsigned in-toto JSON).
  provenance ? true,
  # Build parameters recorded in the provenance (externalParameters.parameters).
  params ? { },
  # Also list every regular file of every layer in the SBOM, with sha1 and sha256.
  files ? false,
  # Which image of a layout holding several, by tag.
  ref ? null,
  # Each of the image's blobs a symlink to the store path holding it (so the
  # output refers to it and holds no second copy); false: copies.
  linkBlobs ? true,
  name ? "${image.name or "image"}-attested",
}:
let
  formats =
    if sbom == true then [ "spdx" ]
    else if sbom == false || sbom == null then [ ]
    else if builtins.isList sbom then sbom
    else [ sbom ];
in
assert builtins.all (f: builtins.elem f [ "spdx" "cyclonedx" ]) formats
  || throw "attest ${name}: sbom must be \"spdx\", \"cyclonedx\", a list of them, true or false";
assert formats != [ ] || provenance || throw "attest ${name}: nothing to attach (sbom = false, provenance = false)";
derivation {
  inherit name system;
  # strata is the builder: no shell, nothing read from the environment.
  builder = bin;
  args = [ "attach" "${image}" "--out" (builtins.placeholder "out") ]
    ++ builtins.concatMap (f: [ "--sbom" f ]) formats
    ++ (if provenance then [ "--provenance" ] else [ ])
    ++ (if provenance then builtins.concatMap (k: [ "--param" "${k}=${toString params.${k}}" ]) (builtins.attrNames params) else [ ])
    ++ (if files && formats != [ ] then [ "--files" ] else [ ])
    ++ (if ref == null then [ ] else [ "--ref" ref ])
    ++ (if linkBlobs then [ "--link-under" builtins.storeDir ] else [ ])
    # The SBOM of an image on a shallow base (pullImage): as nix/sbom.nix.
    ++ (if formats != [ ] then [ "--cache-dir" "strata-cache" ] else [ ]);
}
