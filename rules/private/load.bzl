"""oci_load: an oci_image as one docker-archive tarball, and `bazel run` loading it."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """Writes `<name>.tar`, ONE tar that is both an OCI layout and a `docker load`
archive of `image` tagged with `repo_tags[0]`. `bazel run :<name>` loads it
into docker (`docker load`) or, when docker is absent, podman.
(strata records one tag per archive; further tags are not supported yet.)
"""

def _impl(ctx):
    img = ctx.attr.image[OciImageInfo]
    tar = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add("image")
    args.add("--out", tar)
    args.add("--format", "docker-archive")
    args.add("--base", img.layout.path)
    if ctx.attr.repo_tags:
        args.add("--tag", ctx.attr.repo_tags[0])
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = [img.layout],
        outputs = [tar],
        mnemonic = "StrataLoadTarball",
        progress_message = "Writing docker-archive %s" % ctx.label,
    )
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(script, """#!/bin/sh
set -eu
tar="$0.runfiles/{ws}/{tar}"
[ -f "$tar" ] || tar="{tar}"
if command -v docker >/dev/null 2>&1; then
  exec docker load -i "$tar"
elif command -v podman >/dev/null 2>&1; then
  exec podman load -i "$tar"
else
  echo "oci_load: neither docker nor podman is installed" >&2
  exit 1
fi
""".format(ws = ctx.workspace_name, tar = tar.short_path), is_executable = True)
    return [DefaultInfo(
        files = depset([tar]),
        executable = script,
        runfiles = ctx.runfiles(files = [tar]),
    )]

oci_load = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "image": attr.label(doc = "The `oci_image` to load.", providers = [OciImageInfo], mandatory = True),
        "repo_tags": attr.string_list(doc = "Tags, e.g. `[\"app:latest\"]`; the first is recorded."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    executable = True,
)
