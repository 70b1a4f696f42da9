"""oci_push: a `bazel run` target pushing an oci_image (or index) with `strata push`."""

load("//rules:providers.bzl", "OciImageInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")
load(":util.bzl", "launcher", "runfiles_path", "sh_quote")

_DOC = """An executable target: `bazel run :<name>` pushes `image` (an `oci_image`
or `oci_image_index`) to `repository` with `strata push`, tagged with every
entry of `remote_tags`, and prints `REPOSITORY@sha256:...` (the digest equals
`<image>.digest`). Nothing runs at build time but the image's own actions.

The launcher is a POSIX sh script written by `ctx.actions.write`; it runs the
strata binary of the toolchain and the image layout from its runfiles (no host
path is baked in). At run time:

- `--repository R` (or `-r R`, or the environment variable
  `OCI_PUSH_REPOSITORY`) replaces `repository`, e.g. a test registry on a
  random port;
- every other argument goes to `strata push`: `--tag T` adds a tag,
  `--digest-file F`, `--insecure`, `-q`, `--username U --password-stdin`;
  relative paths are relative to the directory `bazel run` was started in.

Credentials come from `~/.docker/config.json` (or `--username` +
`--password-stdin`), as for `strata push`; none is part of the build.

An image on a shallow base (`oci_pull`, the default) is pushed lazily: base
layers the destination has are skipped, those of another repository of the
same registry are mounted, others are streamed registry to registry; no base
layer byte is downloaded to disk.

    oci_push(
        name = "push",
        image = ":app",
        repository = "registry.example/app",
        remote_tags = ["1", "latest"],
    )
"""

_SCRIPT = """\
strata=$(rf {strata})
layout=$(rf {layout})
repository={repository}
if [ -n "${{OCI_PUSH_REPOSITORY:-}}" ]; then repository=$OCI_PUSH_REPOSITORY; fi
n=$#
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  n=$((n - 1))
  case $a in
    -r | --repository)
      if [ "$n" -eq 0 ]; then echo "oci_push: $a needs a value" >&2; exit 2; fi
      repository=$1
      shift
      n=$((n - 1))
      ;;
    --repository=*) repository=${{a#--repository=}} ;;
    *) set -- "$@" "$a" ;;
  esac
done
if [ -z "$repository" ]; then
  echo "oci_push: no repository: set 'repository', or pass --repository R or OCI_PUSH_REPOSITORY=R" >&2
  exit 2
fi
{tags_file}if [ -n "${{BUILD_WORKING_DIRECTORY:-}}" ]; then cd "$BUILD_WORKING_DIRECTORY"; fi
exec "$strata" push "$layout" "$repository"{fixed} "$@"
"""

_TAGS_FILE = """\
tags=$(rf {path})
while IFS= read -r t || [ -n "$t" ]; do
  case $t in "" | "#"*) ;; *) set -- "$@" --tag "$t" ;; esac
done <"$tags"
"""

def _impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    strata = strata_binary(ctx)
    repo = ctx.attr.repository
    if "@" in repo or ":" in repo.rpartition("/")[2]:
        fail("oci_push %s: 'repository' takes no tag or digest (%r); tags go in 'remote_tags'" % (ctx.label, repo))
    fixed = ""
    for tag in ctx.attr.remote_tags:
        if not tag or "/" in tag or ":" in tag or "@" in tag:
            fail("oci_push %s: %r is not a tag" % (ctx.label, tag))
        fixed += " --tag " + sh_quote(tag)
    if ctx.attr.insecure:
        fixed += " --insecure"
    files = [strata, image.layout]
    tags_file = ""
    if ctx.file.remote_tags_file:
        files.append(ctx.file.remote_tags_file)
        tags_file = _TAGS_FILE.format(path = sh_quote(runfiles_path(ctx, ctx.file.remote_tags_file)))
    script = ctx.actions.declare_file(ctx.label.name + ".push.sh")
    ctx.actions.write(
        script,
        launcher("oci_push", _SCRIPT.format(
            strata = sh_quote(runfiles_path(ctx, strata)),
            layout = sh_quote(runfiles_path(ctx, image.layout)),
            repository = sh_quote(repo),
            tags_file = tags_file,
            fixed = fixed,
        )),
        is_executable = True,
    )
    return [DefaultInfo(
        files = depset([script]),
        executable = script,
        runfiles = ctx.runfiles(files = files),
    )]

oci_push = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "image": attr.label(
            doc = "The `oci_image` or `oci_image_index` to push.",
            providers = [OciImageInfo],
            mandatory = True,
        ),
        "insecure": attr.bool(
            doc = "Plain HTTP to the registry (`strata push --insecure`); a loopback registry " +
                  "also takes `repository = \"http://127.0.0.1:5000/app\"`.",
        ),
        "remote_tags": attr.string_list(doc = "Tags to push, e.g. `[\"1\", \"latest\"]`; none: pushed by digest only."),
        "remote_tags_file": attr.label(
            doc = "A file of tags, one per line (blank lines and `#` comments ignored), read at run " +
                  "time; added to `remote_tags`. The `oci_push` macro of defs.bzl sets it when " +
                  "`remote_tags` is a label.",
            allow_single_file = True,
        ),
        "repository": attr.string(
            doc = "Where to push, without tag: `HOST[:PORT]/REPO`, e.g. `registry.example/app`. " +
                  "Overridden at run time by `--repository` or `OCI_PUSH_REPOSITORY`.",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
    executable = True,
)
