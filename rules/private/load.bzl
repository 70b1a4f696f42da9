"""oci_load: an oci_image as a docker-archive tarball, and a `bazel run` target loading it."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """Writes `<name>.tar`, a docker-archive of `image` tagged with every `repo_tags` entry, by
`strata image --format docker-archive` with the image as base and no further
layer (mnemonic `StrataLoadTarball`; the manifest digest stays the image's).
The tarball is also an OCI layout archive. `bazel run :<name>` feeds it to
`docker load` when a docker daemon answers, else to `podman load`
(`OCI_LOAD_ENGINE=podman` chooses).

    oci_load(
        name = "app_load",
        image = ":app",
        repo_tags = ["example/app:1"],
    )

Every tag lands in the archive's `manifest.json` (`RepoTags`, so `docker load`
tags the image with each); `index.json` names the first.
"""

_SCRIPT = """\
#!/bin/sh
# Written by oci_load; runs outside the build (bazel run).
set -eu
tar="{tar}"
if [ ! -f "$tar" ] && [ -n "${{RUNFILES_DIR:-}}" ]; then tar="$RUNFILES_DIR/{runfiles_path}"; fi
if [ ! -f "$tar" ]; then tar="$0.runfiles/{runfiles_path}"; fi
# $OCI_LOAD_ENGINE if set; else docker when its daemon answers, else podman, else docker.
engine=${{OCI_LOAD_ENGINE:-}}
if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
  elif command -v podman >/dev/null 2>&1; then engine=podman
  elif command -v docker >/dev/null 2>&1; then engine=docker
  else
    echo "oci_load: neither docker nor podman is on PATH; the tarball is $tar" >&2
    exit 1
  fi
fi
exec "$engine" load --input "$tar"
"""

def _impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    tar = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add("image")
    args.add("--quiet")  # the digest is in an output file; keep build logs clean
    args.add("--out", tar)
    args.add("--format", "docker-archive")
    args.add("--base", image.layout.path)
    for tag in ctx.attr.repo_tags:
        args.add("--tag", tag)
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = [image.layout],
        outputs = [tar],
        mnemonic = "StrataLoadTarball",
        progress_message = "Writing docker-archive %s" % ctx.label,
    )
    runfiles_path = tar.short_path[3:] if tar.short_path.startswith("../") else ctx.workspace_name + "/" + tar.short_path
    script = ctx.actions.declare_file(ctx.label.name + ".load.sh")
    ctx.actions.write(
        script,
        _SCRIPT.format(tar = tar.short_path, runfiles_path = runfiles_path),
        is_executable = True,
    )
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
        "repo_tags": attr.string_list(doc = "Tags `docker load` gives the image, e.g. `[\"example/app:1\", \"example/app:latest\"]`."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    executable = True,
)
