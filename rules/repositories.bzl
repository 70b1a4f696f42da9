"""WORKSPACE setup: a repository holding the strata binary, and its toolchain.

    load("@strata//rules:repositories.bzl", "strata_register_toolchains")
    strata_register_toolchains()

By default the binary is built from this repository's sources with
`cargo build --release --locked` (needs a Rust toolchain on the host; run once
per output base). To pin a prebuilt binary instead, give its absolute path
(`strata_register_toolchains(binary_path = "/opt/strata/bin/strata")`) or set
`STRATA_BINARY=/path/to/strata` in the environment of the bazel client.
"""

def _strata_binary_repo_impl(rctx):
    path = rctx.attr.binary_path or rctx.os.environ.get("STRATA_BINARY", "")
    if path:
        rctx.symlink(path, "strata")
    else:
        src = rctx.path(Label("@strata//:Cargo.toml")).dirname
        cargo = rctx.which("cargo")
        if not cargo:
            fail("strata_register_toolchains: no `cargo` on PATH to build strata from source; " +
                 "pass binary_path or set STRATA_BINARY")
        target = rctx.path("cargo-target")
        res = rctx.execute(
            [cargo, "build", "--release", "--locked", "--manifest-path", str(src) + "/Cargo.toml"],
            environment = {"CARGO_TARGET_DIR": str(target)},
            quiet = True,
            timeout = 1800,
        )
        if res.return_code != 0:
            fail("building strata with cargo failed:\n" + res.stderr)
        rctx.symlink(str(target) + "/release/strata", "strata")
    rctx.file("BUILD.bazel", """
load("@strata//rules:toolchain.bzl", "strata_toolchain")

exports_files(["strata"])

strata_toolchain(
    name = "toolchain_impl",
    binary = ":strata",
)

toolchain(
    name = "toolchain",
    toolchain = ":toolchain_impl",
    toolchain_type = "@strata//rules:toolchain_type",
)
""")

strata_binary_repository = repository_rule(
    implementation = _strata_binary_repo_impl,
    doc = "A repository with the strata binary (prebuilt, or built from source with cargo) and its toolchain.",
    attrs = {
        "binary_path": attr.string(doc = "Absolute path of a prebuilt strata binary; empty: build from source."),
    },
    environ = ["STRATA_BINARY"],
    local = True,
)

def strata_register_toolchains(name = "strata_bin", binary_path = ""):
    """Creates the binary repository `name` and registers its toolchain.

    Args:
      name: name of the repository holding the binary.
      binary_path: absolute path of a prebuilt strata; empty builds from source.
    """
    strata_binary_repository(name = name, binary_path = binary_path)
    native.register_toolchains("@%s//:toolchain" % name)
