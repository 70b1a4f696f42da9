"""Starlark test rules and fixtures of the e2e workspace.

No sh_test: it needs rules this offline Bazel lacks. Each test is a rule with
`test = True` whose executable is a /bin/sh script written by ctx.actions.write
(it runs as a test, outside the build).
"""

load("@strata//rules:defs.bzl", "OciImageInfo", "OciLayerInfo")

def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"

def _test(ctx, body, files):
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, "#!/bin/sh\nset -eu\n" + body, is_executable = True)
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = files))]

# --- golden_test -------------------------------------------------------------

def _golden_test_impl(ctx):
    layer = ctx.attr.layer[OciLayerInfo]
    image = ctx.attr.image[OciImageInfo]
    body = """\
golden={golden}
want() {{ sed -n 's/.*"'"$1"'": *"\\(sha256:[0-9a-f]*\\)".*/\\1/p' "$golden"; }}
desc() {{ sed -n 's/.*"'"$1"'": *"\\(sha256:[0-9a-f]*\\)".*/\\1/p' {desc}; }}
fail=0
check() {{
  if [ -n "$2" ] && [ "$2" = "$3" ]; then echo "ok   $1 $2"; else echo "FAIL $1: golden '$2', bazel built '$3'"; fail=1; fi
}}
check layer "$(want layer)" "$(desc digest)"
check diff_id "$(want diff_id)" "$(desc diffId)"
check manifest "$(want manifest)" "$(cat {digest})"
exit $fail
""".format(golden = ctx.file.golden.short_path, desc = layer.descriptor.short_path, digest = image.digest.short_path)
    return _test(ctx, body, [ctx.file.golden, layer.descriptor, image.digest])

golden_test = rule(
    implementation = _golden_test_impl,
    doc = "The layer's digest and diff_id and the image's manifest digest equal a golden JSON " +
          "(`{\"layer\": ..., \"diff_id\": ..., \"manifest\": ...}`, e.g. tests/golden/hello.json, the CLI's).",
    attrs = {
        "golden": attr.label(doc = "The golden JSON file.", allow_single_file = True, mandatory = True),
        "image": attr.label(doc = "An oci_image.", providers = [OciImageInfo], mandatory = True),
        "layer": attr.label(doc = "An oci_layer.", providers = [OciLayerInfo], mandatory = True),
    },
    test = True,
)

# --- layout_test -------------------------------------------------------------

def _layout_test_impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    checks = []
    for s in ctx.attr.contains:
        checks.append('grep -q -F -- %s "$top" || { echo "FAIL: %s not in the manifest/index"; exit 1; }' % (_sh_quote(s), s.replace('"', "")))
    for s in ctx.attr.lacks:
        checks.append('! grep -q -F -- %s "$top" || { echo "FAIL: %s in the manifest/index"; exit 1; }' % (_sh_quote(s), s.replace('"', "")))
    for s in ctx.attr.index_contains:
        checks.append('grep -q -F -- %s "$layout/index.json" || { echo "FAIL: %s not in index.json"; exit 1; }' % (_sh_quote(s), s.replace('"', "")))
    for s in ctx.attr.config_contains:
        checks.append('grep -q -F -- %s "$config" || { echo "FAIL: %s not in the config"; exit 1; }' % (_sh_quote(s), s.replace('"', "")))
    want = ["echo " + d for d in ctx.attr.base_layer_digests]
    descriptors = []
    for layer in ctx.attr.layers:
        d = layer[OciLayerInfo].descriptor
        descriptors.append(d)
        want.append("echo \"$(sed 's/.*\"digest\":\"\\(sha256:[0-9a-f]*\\)\".*/\\1/' " + d.short_path + ")\"")
    if want:
        checks.append("""\
{{ {want}; }} > "$t/want"
sed 's/.*"layers":\\[//' "$top" | grep -o 'sha256:[0-9a-f]*' > "$t/got"
diff -u "$t/want" "$t/got" || {{ echo "FAIL: the manifest's layers differ (-expected +actual)"; exit 1; }}""".format(want = "; ".join(want)))
    body = """\
t=${{TEST_TMPDIR:-$(mktemp -d)}}
layout={layout}
d=$(cat {digest})
test -f "$layout/oci-layout" || {{ echo "FAIL: no oci-layout"; exit 1; }}
grep -q "$d" "$layout/index.json" || {{ echo "FAIL: index.json does not name $d"; exit 1; }}
top="$layout/blobs/sha256/${{d#sha256:}}"
test -f "$top" || {{ echo "FAIL: blob $d missing"; exit 1; }}
c=$(sed -n 's/.*"config":{{"digest":"sha256:\\([0-9a-f]*\\)".*/\\1/p' "$top")
config="$layout/blobs/sha256/$c"
{checks}
echo "ok $d"
""".format(layout = image.layout.short_path, digest = image.digest.short_path, checks = "\n".join(checks))
    return _test(ctx, body, [image.layout, image.digest] + descriptors)

layout_test = rule(
    implementation = _layout_test_impl,
    doc = "The image's layout is complete, its manifest lists the given layers, and its manifest (or index) and config contain the given strings.",
    attrs = {
        "base_layer_digests": attr.string_list(doc = "Digests of the base's layers, expected before `layers`."),
        "config_contains": attr.string_list(doc = "Strings the image config must contain (an image, not an index)."),
        "contains": attr.string_list(doc = "Strings the manifest (or index) must contain."),
        "image": attr.label(doc = "An oci_image or oci_image_index.", providers = [OciImageInfo], mandatory = True),
        "index_contains": attr.string_list(doc = "Strings the layout's index.json must contain."),
        "lacks": attr.string_list(doc = "Strings the manifest (or index) must not contain."),
        "layers": attr.label_list(doc = "oci_layers the manifest must list, in order, after `base_layer_digests`.", providers = [OciLayerInfo]),
    },
    test = True,
)

# --- layer_contents_test -----------------------------------------------------

def _layer_contents_test_impl(ctx):
    layer = ctx.attr.layer[OciLayerInfo]
    body = """\
t=${{TEST_TMPDIR:-$(mktemp -d)}}
cat > "$t/expected" <<'EOF_EXPECTED'
{expected}
EOF_EXPECTED
# mode uid/gid path [-> target | link to target]; size and date left out,
# blob names (sha256/<hex>) shown as sha256/<digest>.
tar --numeric-owner -tvf {blob} |
  awk '{{ line = $1 " " $2; for (i = 6; i <= NF; i++) line = line " " $i; print line }}' |
  sed -E 's,sha256/[0-9a-f]{{64}},sha256/<digest>,g' > "$t/actual"
if diff -u "$t/expected" "$t/actual"; then echo "ok: $(wc -l < "$t/actual") entries"; else echo "FAIL: the layer's entries differ (-expected +actual)"; exit 1; fi
""".format(expected = "\n".join(ctx.attr.expected), blob = layer.blob.short_path)
    return _test(ctx, body, [layer.blob])

layer_contents_test = rule(
    implementation = _layer_contents_test_impl,
    doc = "The layer's tar entries, as `mode uid/gid path` lines (in archive order, blob names as `sha256/<digest>`), equal `expected`.",
    attrs = {
        "expected": attr.string_list(doc = "Lines `mode uid/gid path`, as `tar --numeric-owner -tv` shows them."),
        "layer": attr.label(doc = "An oci_layer.", providers = [OciLayerInfo], mandatory = True),
    },
    test = True,
)

# --- docker_archive_test -----------------------------------------------------

def _docker_archive_test_impl(ctx):
    tar = ctx.attr.archive[DefaultInfo].files.to_list()[0]
    image = ctx.attr.image[OciImageInfo]
    body = """\
t=${{TEST_TMPDIR:-$(mktemp -d)}}
tar -xf {tar} -C "$t" manifest.json index.json oci-layout
grep -q -F -- {tag} "$t/manifest.json" || {{ echo "FAIL: manifest.json has no RepoTags {tag}"; cat "$t/manifest.json"; exit 1; }}
grep -q "$(cat {digest})" "$t/index.json" || {{ echo "FAIL: the archive is not the image $(cat {digest})"; exit 1; }}
echo "ok: docker-archive of $(cat {digest}) tagged {tag}"
""".format(tar = tar.short_path, tag = _sh_quote(ctx.attr.tag), digest = image.digest.short_path)
    return _test(ctx, body, [tar, image.digest])

docker_archive_test = rule(
    implementation = _docker_archive_test_impl,
    doc = "An oci_load tarball is a docker-archive (manifest.json with the tag) and an OCI layout of the image.",
    attrs = {
        "archive": attr.label(doc = "An oci_load target.", mandatory = True),
        "image": attr.label(doc = "The oci_image it loads.", providers = [OciImageInfo], mandatory = True),
        "tag": attr.string(doc = "The tag expected in RepoTags.", mandatory = True),
    },
    test = True,
)

# --- script_binary: an executable with data runfiles -------------------------

def _script_binary_impl(ctx):
    exe = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(exe, ctx.attr.content, is_executable = True)
    return [DefaultInfo(executable = exe, runfiles = ctx.runfiles(files = ctx.files.data))]

script_binary = rule(
    implementation = _script_binary_impl,
    doc = "An executable whose text is `content`, with `data` as runfiles (a stand-in for a real binary).",
    attrs = {
        "content": attr.string(doc = "The script.", mandatory = True),
        "data": attr.label_list(doc = "Runfiles.", allow_files = True),
    },
    executable = True,
)
