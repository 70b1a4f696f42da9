"""oci_load: an oci_image as a docker-archive tarball, and a `bazel run` target loading it incrementally."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")
load(":util.bzl", "launcher", "runfiles_path", "sh_quote")

_DOC = """Writes `<name>.tar`, a docker-archive of `image` tagged with every `repo_tags` entry, by
`strata image --format docker-archive` with the image as base and no further
layer (mnemonic `StrataLoadTarball`; the manifest digest stays the image's).
The tarball is also an OCI layout archive; `bazel build :<name>` makes it.

`bazel run :<name>` loads the image with `strata load`, which sends the engine
only the layers it lacks (a reload after a one-file change costs that layer,
not the whole image): into docker when its socket answers (`$DOCKER_HOST`,
`unix://` only, else `/var/run/docker.sock`), else into podman
(`OCI_LOAD_ENGINE=docker|podman` chooses). It prints the image ID (the config
digest) and, on stderr, the bytes sent and skipped. Further arguments go to
`strata load` (`--tag T` adds a tag, `-q`). The launcher runs the strata
binary of the toolchain and the image layout from its runfiles.

    oci_load(
        name = "app_load",
        image = ":app",
        repo_tags = ["example/app:1"],
    )

Every tag lands in the archive's `manifest.json` (`RepoTags`, so `docker load`
tags the image with each) and is given by `bazel run`; `index.json` names the first.
"""

_SCRIPT = """\
strata=$(rf {strata})
layout=$(rf {layout})
# $OCI_LOAD_ENGINE if set; else docker when its socket is there, else podman, else docker.
engine=${{OCI_LOAD_ENGINE:-}}
if [ -z "$engine" ]; then
  sock=/var/run/docker.sock
  case "${{DOCKER_HOST:-}}" in unix://*) sock=${{DOCKER_HOST#unix://}} ;; esac
  if [ -S "$sock" ]; then engine=docker
  elif command -v podman >/dev/null 2>&1; then engine=podman
  else engine=docker
  fi
fi
if [ -n "${{BUILD_WORKING_DIRECTORY:-}}" ]; then cd "$BUILD_WORKING_DIRECTORY"; fi
exec "$strata" load "$layout" --engine "$engine"{tags} "$@"
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
    strata = strata_binary(ctx)
    script = ctx.actions.declare_file(ctx.label.name + ".load.sh")
    ctx.actions.write(
        script,
        launcher("oci_load", _SCRIPT.format(
            strata = sh_quote(runfiles_path(ctx, strata)),
            layout = sh_quote(runfiles_path(ctx, image.layout)),
            tags = "".join([" --tag " + sh_quote(t) for t in ctx.attr.repo_tags]),
        )),
        is_executable = True,
    )
    return [DefaultInfo(
        files = depset([tar]),
        executable = script,
        runfiles = ctx.runfiles(files = [strata, image.layout]),
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
