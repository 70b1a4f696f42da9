"""oci_image_index: several single-platform oci_images → one multi-platform index."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

def _impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    args = ctx.actions.args()
    args.add("index")
    args.add("--out", layout.path)
    args.add("--digest-file", digest)
    if ctx.attr.tag:
        args.add("--tag", ctx.attr.tag)
    inputs = []
    for img in ctx.attr.images:
        args.add(img[OciImageInfo].layout.path)
        inputs.append(img[OciImageInfo].layout)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs,
        outputs = [layout, digest],
        mnemonic = "StrataIndex",
        progress_message = "Making OCI image index %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([layout, digest]), runfiles = ctx.runfiles(files = [layout, digest])),
        OciImageInfo(layout = layout, digest = digest),
    ]

oci_image_index = rule(
    implementation = _impl,
    doc = "A multi-platform OCI image index of single-platform `oci_image`s (platforms read from their configs).",
    attrs = {
        "images": attr.label_list(doc = "Single-platform `oci_image` targets, one per platform.", providers = [OciImageInfo], mandatory = True),
        "tag": attr.string(doc = "`name:tag` recorded in the layout's index.json."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciImageInfo],
)
