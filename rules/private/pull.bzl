"""oci_pull: a repository rule pulling a base image pinned by digest, shallow by default."""

_DOC = """Pulls `image@digest` with `strata pull` (the strata binary of the
toolchain repository) when Bazel fetches the repository, and checks that the
pulled digest is the pinned one. Use it in WORKSPACE:

    load("@strata//rules:repositories.bzl", "oci_pull")

    oci_pull(
        name = "base",
        image = "registry.example/library/debian",
        digest = "sha256:...",
        platform = "linux/amd64",  # when the digest is a multi-platform index
    )

and in BUILD `oci_image(base = "@base//:image", ...)` (or `"@base"`).

Shallow (the default): the repository holds the index, manifest and config
blobs only (a few KB) and `strata-remote.json`, which records the registry,
repository and size of each layer; no layer byte is downloaded, stored in the
output base or the disk cache, or declared as an action input. `oci_image`
composes on it; `oci_push` mounts or streams the base layers registry to
registry; outputs that need the bytes (`oci_load`) fetch them into strata's
blob cache (`$STRATA_CACHE_DIR`, else `$XDG_CACHE_HOME/strata`, else
`~/.cache/strata`; outside Bazel's caches). `shallow = False` downloads every
layer into the repository.

Targets: `:image` (alias `:<name>`), the files of the layout directory
`layout/`, for `oci_image`'s `base`; `:digest`, the manifest digest (that of
the platform's manifest when `platform` picks one from an index).

Credentials come from `~/.docker/config.json` as for `strata pull`. Bazel
fetches again when an attribute or the strata binary changes, or on
`bazel sync`; the pin makes every fetch give the same bytes.
"""

_BUILD = """\
# Written by oci_pull: {ref}
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "image",
    srcs = glob(["layout/**"]),
)

alias(
    name = "{name}",
    actual = ":image",
)

exports_files(["digest"])
"""

def _impl(rctx):
    image = rctx.attr.image
    digest = rctx.attr.digest
    if "@" in image:
        fail("oci_pull %s: 'image' takes no digest (%r); the pin goes in 'digest'" % (rctx.name, image))
    hexpart = digest[len("sha256:"):]
    if not digest.startswith("sha256:") or len(hexpart) != 64 or hexpart.lstrip("0123456789abcdef"):
        fail("oci_pull %s: 'digest' must be sha256: and 64 lowercase hex digits, not %r" % (rctx.name, digest))
    ref = image + "@" + digest
    strata = rctx.path(rctx.attr.strata)
    args = [strata, "pull", ref, "--out", "layout", "--digest-file", "digest", "--quiet"]
    if rctx.attr.shallow:
        args.append("--shallow")
    if rctx.attr.platform:
        args.extend(["--platform", rctx.attr.platform])
    if rctx.attr.insecure:
        args.append("--insecure")
    rctx.report_progress("strata pull %s%s" % ("--shallow " if rctx.attr.shallow else "", ref))
    res = rctx.execute(args, timeout = rctx.attr.timeout, quiet = True)
    if res.return_code != 0:
        fail("oci_pull %s: `strata pull %s` failed (exit %d):\n%s" % (rctx.name, ref, res.return_code, res.stderr))
    printed = res.stdout.strip().rpartition("@")[2]
    pulled = rctx.read("digest").strip()
    if printed != pulled:
        fail("oci_pull %s: strata printed %s but wrote %s" % (rctx.name, printed, pulled))
    if not rctx.attr.platform and pulled != digest:
        fail("oci_pull %s: pulled %s, but 'digest' pins %s" % (rctx.name, pulled, digest))
    rctx.file("BUILD.bazel", _BUILD.format(ref = ref, name = rctx.name))
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

oci_pull = repository_rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "digest": attr.string(
            doc = "The pin: `sha256:...` of the manifest, or of the index when `platform` picks " +
                  "from it. strata verifies the bytes it fetched against it.",
            mandatory = True,
        ),
        "image": attr.string(
            doc = "`HOST[:PORT]/REPO` without tag or digest, e.g. `registry.example/library/debian` " +
                  "(`http://127.0.0.1:5000/base`: plain HTTP, loopback only).",
            mandatory = True,
        ),
        "insecure": attr.bool(doc = "Plain HTTP to the registry (`strata pull --insecure`)."),
        "platform": attr.string(
            doc = "`os/arch[/variant]`: pick this platform's manifest from a multi-platform " +
                  "index. Empty: the digest's manifest (or the whole index).",
        ),
        "shallow": attr.bool(
            doc = "Leave the layers in the registry (`strata pull --shallow`): the repository " +
                  "holds no layer byte. False: download every layer.",
            default = True,
        ),
        "strata": attr.label(
            doc = "The strata binary: that of `strata_register_toolchains()` (repository " +
                  "`strata_bin`); change it if you named that repository otherwise.",
            default = Label("@strata_bin//:strata"),
            allow_single_file = True,
        ),
        "timeout": attr.int(doc = "Seconds `strata pull` may take.", default = 600),
    },
)
