"""Starlark test rules for the e2e workspace (no sh_test: it needs rules this offline Bazel lacks)."""

load("@strata//rules:defs.bzl", "OciImageInfo", "OciLayerInfo")

def _golden_test_impl(ctx):
    layer = ctx.attr.layer[OciLayerInfo]
    image = ctx.attr.image[OciImageInfo]
    golden = ctx.file.golden
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, """#!/bin/sh
set -eu
want() {{ sed -n 's/.*"'"$1"'": "\\(sha256:[0-9a-f]*\\)".*/\\1/p' {golden}; }}
desc() {{ sed -n 's/.*"'"$1"'":"\\(sha256:[0-9a-f]*\\)".*/\\1/p' {desc}; }}
fail=0
check() {{
  if [ "$2" = "$3" ]; then echo "ok   $1 $2"; else echo "FAIL $1: golden $2, bazel built $3"; fail=1; fi
}}
check layer "$(want layer)" "$(desc digest)"
check diff_id "$(want diff_id)" "$(desc diffId)"
check manifest "$(want manifest)" "$(cat {digest})"
exit $fail
""".format(golden = golden.short_path, desc = layer.descriptor.short_path, digest = image.digest.short_path), is_executable = True)
    return [DefaultInfo(
        executable = script,
        runfiles = ctx.runfiles(files = [golden, layer.descriptor, image.digest]),
    )]

golden_test = rule(
    implementation = _golden_test_impl,
    doc = "The layer's and image's digests equal tests/golden/hello.json (the CLI's and Nix's golden).",
    attrs = {
        "layer": attr.label(doc = "An oci_layer.", providers = [OciLayerInfo], mandatory = True),
        "image": attr.label(doc = "An oci_image.", providers = [OciImageInfo], mandatory = True),
        "golden": attr.label(doc = "The golden JSON file.", allow_single_file = True, mandatory = True),
    },
    test = True,
)

def _layout_test_impl(ctx):
    img = ctx.attr.image[OciImageInfo]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    checks = "\n".join(['grep -q -- %s "$m" || { echo "FAIL: %s not in the image"; exit 1; }' % (repr(s), s) for s in ctx.attr.contains])
    ctx.actions.write(script, """#!/bin/sh
set -eu
layout={layout}
d=$(cat {digest})
test -f "$layout/oci-layout" || {{ echo "FAIL: no oci-layout"; exit 1; }}
grep -q "$d" "$layout/index.json" || {{ echo "FAIL: index.json does not name $d"; exit 1; }}
m="$layout/blobs/sha256/${{d#sha256:}}"
test -f "$m" || {{ echo "FAIL: manifest blob missing"; exit 1; }}
{checks}
echo "ok $d"
""".format(layout = img.layout.short_path, digest = img.digest.short_path, checks = checks), is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [img.layout, img.digest]))]

layout_test = rule(
    implementation = _layout_test_impl,
    doc = "The image's layout is complete and its top blob (manifest or index) contains the given strings.",
    attrs = {
        "image": attr.label(doc = "An oci_image or oci_image_index.", providers = [OciImageInfo], mandatory = True),
        "contains": attr.string_list(doc = "Strings the top blob must contain."),
    },
    test = True,
)
