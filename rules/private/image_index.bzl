"""oci_image_index: single-platform oci_images → one multi-platform index, by `strata index`."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")
load(":util.bzl", "layout_action", "layout_result")

_DOC = """A multi-platform OCI image index of single-platform `oci_image`s, by
`strata index` (mnemonic `StrataIndex`); the platforms are read from the images'
configs. Outputs the layout directory `<name>` and `<name>.digest` (the index
digest); provides `OciImageInfo`.

    oci_image_index(
        name = "multi",
        images = [":app_amd64", ":app_arm64"],
    )
"""

def _impl(ctx):
    layout, digest, args = layout_action(ctx, "index")
    if ctx.attr.tag:
        args.add("--tag", ctx.attr.tag)
    inputs = []
    for image in ctx.attr.images:
        args.add(image[OciImageInfo].layout.path)
        inputs.append(image[OciImageInfo].layout)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs,
        outputs = [layout, digest],
        mnemonic = "StrataIndex",
        progress_message = "Making OCI image index %s" % ctx.label,
    )
    return layout_result(ctx, layout, digest)

oci_image_index = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "images": attr.label_list(
            doc = "Single-platform `oci_image` targets, one per platform.",
            providers = [OciImageInfo],
            mandatory = True,
        ),
        "tag": attr.string(doc = "`name:tag` recorded in the layout's index.json."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciImageInfo],
)
