"""The strata toolchain: which strata binary the rules run.

The binary reaches every action as an input File (never a host path), so the
actions are hermetic and remotely executable.
"""

StrataInfo = provider(
    doc = "The strata binary.",
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
    doc = "Declares a strata binary as the toolchain of `@strata//rules:toolchain_type`.",
    attrs = {
        "binary": attr.label(
            doc = "The strata executable.",
            mandatory = True,
            executable = True,
            allow_single_file = True,
            cfg = "exec",
        ),
    },
)

TOOLCHAIN_TYPE = "@strata//rules:toolchain_type"

def strata_binary(ctx):
    """The strata File of the resolved toolchain."""
    return ctx.toolchains[TOOLCHAIN_TYPE].strata.binary
