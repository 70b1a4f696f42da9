"""oci_attest: an image with its SBOM and SLSA provenance attached as OCI 1.1 referrers, by `strata attach`."""

load("//rules:providers.bzl", "OciImageInfo", "OciLayerInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """An `oci_image` with its SBOM(s) and SLSA v1 provenance attached as OCI 1.1
referrers, by `strata attach --sbom ... --provenance --out` (mnemonic
`StrataAttest`): a new OCI layout directory `<name>` holding the image (the
same manifest digest) and one artifact manifest per document, whose
`subject` is the image manifest (artifactType `application/spdx+json`,
`application/vnd.cyclonedx+json`, `application/vnd.in-toto+json`). Provides
`OciImageInfo` (the digest file is the image's), so `oci_push` pushes the
image and then its attachments (through the registry's referrers API, else
the `sha256-<hex>` tag schema) and `oci_load` loads the image.

The documents are `strata sbom`'s and `strata provenance`'s bytes: the
image, its layers, the Debian packages and Nix store paths found in them,
and the purls declared by the `packages` of the `oci_layer`s listed in
`layers`, under their layer. Deterministic: no time from the build (the
image's `created`), so the CLI, this rule and Nix's `attest` give the same
bytes for the same image (tests/golden/hello-attest.json).

On an image built on an `oci_pull` (shallow) base, the SBOM reads the base's
layers: the action fetches them (digests verified) into a temporary
directory beside its output, removed afterwards, so it needs the network to
the registry, as `oci_load` of such an image does (provenance alone does not).

    oci_attest(
        name = "app_attested",
        image = ":app",
        layers = [":app_layer"],  # their declared packages join the SBOM
        sbom = ["spdx", "cyclonedx"],
    )
"""

def attest_action(ctx, image, layers, sbom, provenance, params, base):
    """Run `strata attach --out <name>` on one image (oci_attest, oci_image's `sbom`/`provenance`).

    Args:
      ctx: the rule context.
      image: the image's OciImageInfo.
      layers: OciLayerInfo of layers whose declared `packages` to list.
      sbom: list of SBOM formats (`spdx`, `cyclonedx`).
      provenance: whether to attach the provenance statement.
      params: dict of build parameters recorded in the provenance.
      base: `[NAME@]sha256:HEX` of the base image, or "".

    Returns:
      The layout directory `<name>` (a tree artifact).
    """
    for f in sbom:
        if f not in ["spdx", "cyclonedx"]:
            fail("%s: sbom: %r is not \"spdx\" or \"cyclonedx\"" % (ctx.label, f))
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("attach")
    args.add("--quiet")  # the digests are in the layout; keep build logs clean
    args.add(image.layout.path)
    args.add("--out", out.path)
    inputs = [image.layout]
    for f in sbom:
        args.add("--sbom", f)
    if provenance:
        args.add("--provenance")
        for k, v in sorted(params.items()):
            args.add("--param", "%s=%s" % (k, v))
    if base:
        args.add("--base", base)
    for layer in layers:
        purls = getattr(layer, "packages", None)
        if purls and sbom:
            args.add("--packages", "%s=%s" % (layer.descriptor.path, purls.path))
            inputs.extend([layer.descriptor, purls])
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "StrataAttest",
        progress_message = "Attaching the SBOM and provenance of %s" % ctx.label,
    )
    return out

def _impl(ctx):
    if not ctx.attr.sbom and not ctx.attr.provenance:
        fail("oci_attest %s: nothing to attach (sbom = [], provenance = False)" % ctx.label)
    if ctx.attr.params and not ctx.attr.provenance:
        fail("oci_attest %s: 'params' go into the provenance (provenance = False)" % ctx.label)
    image = ctx.attr.image[OciImageInfo]
    layers = [layer[OciLayerInfo] for layer in ctx.attr.layers]
    out = attest_action(
        ctx,
        image,
        layers,
        ctx.attr.sbom,
        ctx.attr.provenance,
        ctx.attr.params,
        ctx.attr.base,
    )
    return [
        DefaultInfo(files = depset([out, image.digest]), runfiles = ctx.runfiles(files = [out, image.digest])),
        OciImageInfo(layout = out, digest = image.digest),
    ]

oci_attest = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "base": attr.string(doc = "The base image, `[NAME@]sha256:HEX`, when the image's " +
                                  "`org.opencontainers.image.base.digest` annotation does not record it."),
        "image": attr.label(
            doc = "An `oci_image` (one image, not an index).",
            providers = [OciImageInfo],
            mandatory = True,
        ),
        "layers": attr.label_list(
            doc = "`oci_layer`s of the image whose `packages` (declared purls) the SBOM lists under them.",
            providers = [OciLayerInfo],
        ),
        "params": attr.string_dict(doc = "Build parameters recorded in the provenance (`externalParameters.parameters`)."),
        "provenance": attr.bool(doc = "Attach the SLSA v1 provenance statement (unsigned in-toto JSON).", default = True),
        "sbom": attr.string_list(
            doc = "SBOM formats to attach: `spdx` (SPDX 2.3 JSON), `cyclonedx` (CycloneDX 1.6 JSON); `[]` for none.",
            default = ["spdx"],
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciImageInfo],
)
