"""oci_image: layers (+ an optional base) → an OCI image layout, by `strata image`."""

load("//rules:providers.bzl", "OciImageInfo", "OciLayerInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")
load(":attest.bzl", "attest_action")
load(":stamp.bzl", "stamping")
load(":util.bzl", "layout_action", "layout_result")

_DOC = """Composes an OCI image from `oci_layer`s onto an optional base, by
`strata image --spec` (mnemonic `StrataImage`): the rule writes strata's image
spec (versioned JSON, `<name>.spec.json`, see the README's "The image spec")
with `json.encode`.

Outputs the OCI image layout directory `<name>` and `<name>.digest` (the
manifest digest, `sha256:...` without newline); provides `OciImageInfo`.
Layer blobs are referenced with their descriptors, so no layer is compressed or
hashed again. Nothing about Bazel (label, output paths, host, time) reaches the
image: `created` defaults to the epoch. An image on a base records the base's
digest (and name, when its layout gives one) as the manifest annotations
`org.opencontainers.image.base.digest` and `.base.name`.

`base` is another `oci_image`, an OCI layout archive file, or an OCI layout
directory checked into the workspace (a filegroup of all its files, e.g.
`glob(["base/**"])`: the directory holding `oci-layout` is the base).

    oci_image(
        name = "image",
        base = ":base",
        layers = [":app_layer"],
        entrypoint = ["/opt/app/app"],
        env = {"PATH": "/usr/bin:/bin"},
    )
"""

def _base(ctx):
    """(path of the base layout for --base, input files)"""
    base = ctx.attr.base
    if OciImageInfo in base:
        return base[OciImageInfo].layout.path, [base[OciImageInfo].layout]
    files = base[DefaultInfo].files.to_list()
    if len(files) == 1:
        return files[0].path, files
    roots = [f.dirname for f in files if f.basename == "oci-layout"]
    if len(roots) != 1:
        fail("oci_image %s: 'base' must be an oci_image, one OCI layout archive, or the files of " % ctx.label +
             "one OCI layout directory (found %d `oci-layout` files among %d)" % (len(roots), len(files)))
    return roots[0], files

def _names_key(value):
    """Whether `value` may name a status `{KEY}` (strata decides exactly)."""
    return "{" in value and "}" in value

def _impl(ctx):
    attest = ctx.attr.sbom or ctx.attr.provenance

    # With attachments, the image goes to <name>.unattested, the attested layout to <name>.
    layout, digest, args = layout_action(ctx, "image", ctx.label.name + ".unattested" if attest else None)

    # The image spec (strata's versioned JSON contract, README "The image
    # spec"): every path is relative to the execroot, the action's cwd.
    spec = {"version": 1}
    inputs = []
    if ctx.attr.base:
        base_path, base_inputs = _base(ctx)
        spec["base"] = {"path": base_path}
        inputs.extend(base_inputs)
    elif not ctx.attr.layers:
        fail("oci_image %s: needs 'base' or 'layers'" % ctx.label)
    spec["layers"] = []
    for layer in ctx.attr.layers:
        info = layer[OciLayerInfo]
        spec["layers"].append({"blob": info.blob.path, "descriptor": info.descriptor.path})
        inputs.extend([info.blob, info.descriptor])
    config = {}
    if ctx.attr.entrypoint:
        config["Entrypoint"] = ctx.attr.entrypoint
    if ctx.attr.cmd:
        config["Cmd"] = ctx.attr.cmd
    if ctx.attr.env:
        config["Env"] = ["%s=%s" % (k, v) for k, v in ctx.attr.env.items()]
    if ctx.attr.user:
        config["User"] = ctx.attr.user
    if ctx.attr.workdir:
        config["WorkingDir"] = ctx.attr.workdir
    if ctx.attr.exposed_ports:
        config["ExposedPorts"] = {p: {} for p in ctx.attr.exposed_ports}
    if ctx.attr.volumes:
        config["Volumes"] = {v: {} for v in ctx.attr.volumes}
    if ctx.attr.labels:
        config["Labels"] = ctx.attr.labels
    spec["config"] = config
    spec["annotations"] = ctx.attr.annotations
    if ctx.attr.os or ctx.attr.architecture or ctx.attr.variant:
        if not (ctx.attr.os and ctx.attr.architecture):
            fail("oci_image %s: 'os' and 'architecture' go together ('variant' needs both)" % ctx.label)
        platform = ctx.attr.os + "/" + ctx.attr.architecture
        if ctx.attr.variant:
            platform += "/" + ctx.attr.variant
        spec["platform"] = platform
    spec["created"] = ctx.attr.created

    # Stamping: strata replaces {KEY} from the stable status file; without it
    # a value naming a key is left out, so nothing of the status reaches it.
    stamp = stamping(ctx)
    if stamp:
        spec["stamp"] = [ctx.info_file.path]
        inputs.append(ctx.info_file)
    for field in ["source", "revision", "image_version"]:
        value = getattr(ctx.attr, field)
        if value and (stamp or not _names_key(value)):
            spec[field] = value
    if ctx.attr.tag and (stamp or not _names_key(ctx.attr.tag)):
        spec["tags"] = [ctx.attr.tag]
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec_file, json.encode(spec))
    args.add("--spec", spec_file)
    inputs.append(spec_file)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs,
        outputs = [layout, digest],
        mnemonic = "StrataImage",
        progress_message = "Composing OCI image %s" % ctx.label,
    )
    if attest:
        layers = [layer[OciLayerInfo] for layer in ctx.attr.layers]
        layout = attest_action(ctx, OciImageInfo(layout = layout, digest = digest), layers, ctx.attr.sbom, ctx.attr.provenance, {}, "")
    return layout_result(ctx, layout, digest)

oci_image = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "annotations": attr.string_dict(doc = "Manifest annotations."),
        "architecture": attr.string(doc = "CPU architecture, e.g. `arm64` (with `os`). Default: the base's, else `amd64`."),
        "base": attr.label(
            doc = "Base image: an `oci_image`, an OCI layout archive, or the files of an OCI layout directory.",
            allow_files = True,
        ),
        "cmd": attr.string_list(doc = "Cmd argv."),
        "created": attr.string(doc = "Creation time, RFC 3339.", default = "1970-01-01T00:00:00Z"),
        "entrypoint": attr.string_list(doc = "Entrypoint argv. Setting it without `cmd` clears the base's Cmd (as Docker does)."),
        "env": attr.string_dict(doc = "Environment variables; one inherited from the base with the same name is replaced in place."),
        "exposed_ports": attr.string_list(doc = "Ports to expose, e.g. `8080/tcp`."),
        "image_version": attr.string(doc = "The packaged software's version: the manifest annotation `org.opencontainers.image.version`."),
        "labels": attr.string_dict(doc = "Config labels."),
        "layers": attr.label_list(doc = "`oci_layer` targets, bottom first.", providers = [OciLayerInfo]),
        "os": attr.string(doc = "Operating system, e.g. `linux` (with `architecture`). Default: the base's, else `linux`."),
        "provenance": attr.bool(doc = "Attach the image's SLSA v1 provenance (unsigned in-toto JSON) as an OCI 1.1 referrer, as `oci_attest` does."),
        "revision": attr.string(doc = "The sources' revision (e.g. a commit): the manifest annotation `org.opencontainers.image.revision`. May name status keys, e.g. `{STABLE_GIT_COMMIT}` (see `stamp`)."),
        "sbom": attr.string_list(doc = "Attach the image's SBOM in these formats (`spdx`, `cyclonedx`) as OCI 1.1 referrers, as " +
                                       "`oci_attest` does; the `packages` of `layers` are listed. The layout `<name>` then holds " +
                                       "the image and its attachments; `oci_push` sends them after the image."),
        "source": attr.string(doc = "Where the sources are (a URL): the manifest annotation `org.opencontainers.image.source`."),
        "stamp": attr.int(
            doc = "Stamping: 1 always, 0 never, -1 (default) under `--stamp`. When stamping, `{KEY}` in `source`, `revision`, `image_version`, `tag`, `annotations` and `labels` is replaced by KEY's value in `bazel-out/stable-status.txt` (`--workspace_status_command`'s `STABLE_` keys; a missing key fails the build). When not, `source`, `revision`, `image_version` and `tag` values holding `{` and `}` are left out (`annotations` and `labels` stay as written): nothing of the status file reaches the image.",
            default = -1,
            values = [-1, 0, 1],
        ),
        "tag": attr.string(doc = "`name:tag` recorded in the layout's index.json (`org.opencontainers.image.ref.name`)."),
        "user": attr.string(doc = "User: name, uid or uid:gid."),
        "variant": attr.string(doc = "CPU variant, e.g. `v8` (with `os` and `architecture`)."),
        "volumes": attr.string_list(doc = "Volumes, e.g. `/data`."),
        "workdir": attr.string(doc = "Working directory."),
        "_stamp_setting": attr.label(default = Label("//rules/private:stamp")),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciImageInfo],
)
