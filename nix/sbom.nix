# `sbom { image; format ? "spdx"; }`: the SBOM of an image, made in a
# derivation by `strata sbom` (SPDX 2.3 or CycloneDX 1.6 JSON): the image's
# layers, the Nix store paths it holds (its closure: `pkg:nix/NAME@VERSION`,
# with the store path and hash) and any Debian packages of a dpkg database.
# The output is the document itself. It is deterministic (its time is the
# image's `created`, its identity the manifest digest), so `nix build
# --rebuild` finds it bit-identical, and the CLI on the same image writes the
# same bytes. Needs nothing but the image: no network, no sandbox escape.
#
# Imported by nix/default.nix with the strata binary (`bin`) and `system`.
{ bin, system }:
{
  # An image: a buildImage result, or any OCI layout / oci-archive / docker-archive path.
  image,
  # "spdx" or "cyclonedx".
  format ? "spdx",
  # Also list every regular file of every layer, with sha1 and sha256.
  files ? false,
  # Which image of a layout holding several, by tag.
  ref ? null,
  name ? "${image.name or "image"}-sbom-${format}.json",
}:
assert builtins.elem format [ "spdx" "cyclonedx" ] || throw "sbom ${name}: format must be \"spdx\" or \"cyclonedx\"";
derivation {
  inherit name system;
  # strata is the builder: no shell, nothing read from the environment.
  builder = bin;
  args = [ "sbom" "${image}" "--format" format "--out" (builtins.placeholder "out") ]
    ++ (if files then [ "--files" ] else [ ])
    ++ (if ref == null then [ ] else [ "--ref" ref ])
    # An image on a shallow base (pullImage): strata fetches the base's layers
    # (digests verified) into a cache in the build directory, not under $HOME
    # (/homeless-shelter must not be created). Needs the network: no sandbox.
    ++ [ "--cache-dir" "strata-cache" ];
}
