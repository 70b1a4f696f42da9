"""oci_image: pre-built layers (+ an optional base) → an OCI image layout, by `strata image`."""

load("//rules:providers.bzl", "OciImageInfo", "OciLayerInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """Composes an OCI image from `oci_layer`s onto an optional base.

Outputs an OCI image layout directory named after the target and
`<name>.digest` (the manifest digest). Layer blobs are referenced by their
descriptors, so no layer byte is read again; nothing about Bazel (label,
output paths, host) reaches the image. Example:

    oci_image(
        name = "image",
        base = ":base",
        layers = [":app_layer"],
        entrypoint = ["/opt/app/app"],
        env = {"PATH": "/usr/bin:/bin"},
    )
"""

def _base_path(ctx):
    base = ctx.attr.base
    if not base:
        return None, []
    if OciImageInfo in base:
        return base[OciImageInfo].layout, [base[OciImageInfo].layout]
    files = base[DefaultInfo].files.to_list()
    if len(files) != 1:
        fail("oci_image %s: base must be an oci_image or one OCI layout directory/archive" % ctx.label)
    return files[0], files

def _impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    args = ctx.actions.args()
    args.add("image")
    args.add("--out", layout.path)
    args.add("--digest-file", digest)
    inputs = []
    base, base_inputs = _base_path(ctx)
    if base:
        args.add("--base", base.path)
        inputs.extend(base_inputs)
    for l in ctx.attr.layers:
        info = l[OciLayerInfo]
        args.add("--layer", "%s:%s" % (info.blob.path, info.descriptor.path))
        inputs.extend([info.blob, info.descriptor])
    if ctx.attr.entrypoint:
        args.add("--entrypoint", json.encode(ctx.attr.entrypoint))
    if ctx.attr.cmd:
        args.add("--cmd", json.encode(ctx.attr.cmd))
    for k, v in ctx.attr.env.items():
        args.add("--env", "%s=%s" % (k, v))
    if ctx.attr.user:
        args.add("--user", ctx.attr.user)
    if ctx.attr.workdir:
        args.add("--workdir", ctx.attr.workdir)
    for p in ctx.attr.exposed_ports:
        args.add("--exposed-port", p)
    for v in ctx.attr.volumes:
        args.add("--volume", v)
    for k, v in ctx.attr.labels.items():
        args.add("--label", "%s=%s" % (k, v))
    for k, v in ctx.attr.annotations.items():
        args.add("--annotation", "%s=%s" % (k, v))
    if ctx.attr.os or ctx.attr.architecture:
        if not (ctx.attr.os and ctx.attr.architecture):
            fail("oci_image %s: 'os' and 'architecture' go together" % ctx.label)
        platform = ctx.attr.os + "/" + ctx.attr.architecture
        if ctx.attr.variant:
            platform += "/" + ctx.attr.variant
        args.add("--platform", platform)
    if ctx.attr.created:
        args.add("--created", ctx.attr.created)
    if ctx.attr.tag:
        args.add("--tag", ctx.attr.tag)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs,
        outputs = [layout, digest],
        mnemonic = "StrataImage",
        progress_message = "Composing OCI image %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([layout, digest]), runfiles = ctx.runfiles(files = [layout, digest])),
        OciImageInfo(layout = layout, digest = digest),
    ]

oci_image = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "base": attr.label(doc = "Base image: an `oci_image`, or a single OCI layout directory or archive.", allow_files = True),
        "layers": attr.label_list(doc = "`oci_layer` targets, bottom first.", providers = [OciLayerInfo]),
        "entrypoint": attr.string_list(doc = "Entrypoint argv. Setting it without `cmd` clears the base's Cmd (as Docker does)."),
        "cmd": attr.string_list(doc = "Cmd argv."),
        "env": attr.string_dict(doc = "Environment variables; an inherited variable of the same name is replaced in place."),
        "user": attr.string(doc = "User: name, uid, or uid:gid."),
        "workdir": attr.string(doc = "Working directory."),
        "exposed_ports": attr.string_list(doc = "Ports, e.g. `8080/tcp`."),
        "volumes": attr.string_list(doc = "Volumes, e.g. `/data`."),
        "labels": attr.string_dict(doc = "Config labels."),
        "annotations": attr.string_dict(doc = "Manifest annotations."),
        "os": attr.string(doc = "Operating system (with `architecture`); default: the base's, else linux."),
        "architecture": attr.string(doc = "CPU architecture (with `os`); default: the base's, else amd64."),
        "variant": attr.string(doc = "CPU variant, e.g. `v8`."),
        "created": attr.string(doc = "RFC 3339 creation time; default 1970-01-01T00:00:00Z."),
        "tag": attr.string(doc = "`name:tag` recorded in the layout's index.json (ref name annotations)."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciImageInfo],
)
