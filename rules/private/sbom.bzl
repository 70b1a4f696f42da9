"""oci_sbom: an SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) of an image, by `strata sbom`."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """The software bill of materials of an `oci_image` (or `oci_image_index`
with `platform`), by `strata sbom` (mnemonic `StrataSbom`): the image, its
layers, the Debian packages of its dpkg database and the Nix store paths it
holds, each with a purl, as SPDX 2.3 JSON (`<name>.spdx.json`) or CycloneDX
1.6 JSON (`<name>.cdx.json`).

Deterministic: its time is the image's `created`, its identity derived from
the manifest digest, so the CLI on the same image writes the same bytes and a
rebuild the same file.

On an image built on an `oci_pull` (shallow) base, the SBOM reads the base's
layers: the action fetches them (digests verified) into a temporary
directory beside its output, removed afterwards, so it needs the network to
the registry, as `oci_load` of such an image does (provenance alone does not).

    oci_sbom(
        name = "app_sbom",
        image = ":app",
        format = "cyclonedx",
    )
"""

def _impl(ctx):
    ext = ".spdx.json" if ctx.attr.format == "spdx" else ".cdx.json"
    out = ctx.actions.declare_file(ctx.label.name + ext)
    image = ctx.attr.image[OciImageInfo]
    args = ctx.actions.args()
    args.add("sbom")
    args.add(image.layout.path)
    args.add("--format", ctx.attr.format)
    args.add("--out", out)
    if ctx.attr.files:
        args.add("--files")
    if ctx.attr.platform:
        args.add("--platform", ctx.attr.platform)
    if ctx.attr.base:
        args.add("--base", ctx.attr.base)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = [image.layout],
        outputs = [out],
        mnemonic = "StrataSbom",
        progress_message = "Writing the SBOM of %s" % ctx.label,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

oci_sbom = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "base": attr.string(doc = "The base image, `[NAME@]sha256:HEX`, when the image's " +
                                  "`org.opencontainers.image.base.digest` annotation does not record it."),
        "files": attr.bool(doc = "Also list every regular file of every layer with sha1 and sha256 " +
                                 "(off by default: a root filesystem has tens of thousands)."),
        "format": attr.string(
            doc = "`spdx` (SPDX 2.3 JSON) or `cyclonedx` (CycloneDX 1.6 JSON).",
            default = "spdx",
            values = ["spdx", "cyclonedx"],
        ),
        "image": attr.label(
            doc = "An `oci_image` (or an `oci_image_index`, with `platform`).",
            providers = [OciImageInfo],
            mandatory = True,
        ),
        "platform": attr.string(doc = "From an index: the platform's image, `os/arch[/variant]`."),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
