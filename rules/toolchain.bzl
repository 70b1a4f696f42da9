"""The strata toolchain: which strata binary the rules run.

The binary reaches every action as an input File (never a host path), so the
actions are hermetic and can run remotely. `repositories.bzl` (WORKSPACE) and
`extensions.bzl` (bzlmod) declare and register one; to use another binary,
declare your own:

    load("@strata//rules:toolchain.bzl", "strata_toolchain")

    strata_toolchain(name = "my_strata", binary = "//tools:strata")

    toolchain(
        name = "my_strata_toolchain",
        toolchain = ":my_strata",
        toolchain_type = "@strata//rules:toolchain_type",
    )

and `register_toolchains("//:my_strata_toolchain")` before the default.
"""

# "@<this repository>//rules:toolchain_type", whatever the user named the repository.
TOOLCHAIN_TYPE = str(Label("//rules:toolchain_type"))

StrataInfo = provider(
    doc = "The strata binary of a `strata_toolchain`.",
    fields = {"binary": "File: the strata executable"},
)

def _strata_toolchain_impl(ctx):
    binary = ctx.executable.binary
    return [
        platform_common.ToolchainInfo(strata = StrataInfo(binary = binary)),
        DefaultInfo(files = depset([binary])),
    ]

strata_toolchain = rule(
    implementation = _strata_toolchain_impl,
    doc = "Declares a strata binary for the toolchain type `@strata//rules:toolchain_type`.",
    attrs = {
        "binary": attr.label(
            doc = "The strata executable (a file, or a target building it).",
            mandatory = True,
            executable = True,
            allow_single_file = True,
            cfg = "exec",
        ),
    },
)

def strata_binary(ctx):
    """The strata executable of the resolved toolchain.

    Args:
      ctx: the context of a rule that declares `toolchains = [TOOLCHAIN_TYPE]`.

    Returns:
      The File to pass as `executable` to `ctx.actions.run`.
    """
    return ctx.toolchains[TOOLCHAIN_TYPE].strata.binary
