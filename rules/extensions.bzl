"""bzlmod (Bazel 6+): the strata binary repository, as in repositories.bzl.

    bazel_dep(name = "strata", version = "0.1.0")

    strata = use_extension("@strata//rules:extensions.bzl", "strata")
    strata.toolchain(url = "https://.../strata", sha256 = "...")  # optional: default builds from source
    use_repo(strata, "strata_bin")

(strata's own MODULE.bazel registers `@strata_bin//:toolchain`.)
Untested here: Debian's Bazel 4.2.3 has no bzlmod.
"""

load(":repositories.bzl", "BINARY_ATTRS", "strata_binary_repository")

# Where the strata binary comes from (see repositories.bzl); only the root module's tag counts.
_toolchain = tag_class(
    attrs = BINARY_ATTRS,
)

def _strata_impl(module_ctx):
    conf = {}
    for mod in module_ctx.modules:
        if mod.is_root:
            for tag in mod.tags.toolchain:
                conf = {"binary_path": tag.binary_path, "sha256": tag.sha256, "url": tag.url}
    strata_binary_repository(name = "strata_bin", **conf)

strata = module_extension(
    implementation = _strata_impl,
    doc = "Creates `@strata_bin`, the strata binary and its toolchain.",
    tag_classes = {"toolchain": _toolchain},
)
