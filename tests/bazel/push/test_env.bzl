"""`@test_env//:env.bzl`: the registries, digests and binaries of the client's environment (--repo_env).

REGISTRY and BASE_DIGEST are required; the others (for the targets tagged
"manual" that tests/bazel/run.sh builds last) default to "".
"""

_VARS = ["REGISTRY", "BASE_DIGEST"]
_OPTIONAL = ["AUTH_REGISTRY", "INDEX_DIGEST", "SMALL_DIGEST", "TOOLCHAIN_PATH", "TOOLCHAIN_SHA256", "TOOLCHAIN_URL"]

def _impl(rctx):
    lines = []
    for v in _VARS:
        value = rctx.os.environ.get(v, "")
        if not value:
            fail("test_env: run with --repo_env=%s=... (tests/bazel/run.sh does)" % v)
        lines.append("%s = %r" % (v, value))
    for v in _OPTIONAL:
        lines.append("%s = %r" % (v, rctx.os.environ.get(v, "")))
    rctx.file("env.bzl", "\n".join(lines) + "\n")
    rctx.file("BUILD.bazel", "exports_files([\"env.bzl\"])\n")

test_env = repository_rule(
    implementation = _impl,
    doc = "Writes env.bzl with REGISTRY, BASE_DIGEST and the optional values from the environment.",
    environ = _VARS + _OPTIONAL,
)
