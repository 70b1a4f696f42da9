"""`@test_env//:env.bzl`: REGISTRY and BASE_DIGEST of the client's environment (--repo_env)."""

_VARS = ["REGISTRY", "BASE_DIGEST"]

def _impl(rctx):
    lines = []
    for v in _VARS:
        value = rctx.os.environ.get(v, "")
        if not value:
            fail("test_env: run with --repo_env=%s=... (tests/bazel/run.sh does)" % v)
        lines.append("%s = %r" % (v, value))
    rctx.file("env.bzl", "\n".join(lines) + "\n")
    rctx.file("BUILD.bazel", "exports_files([\"env.bzl\"])\n")

test_env = repository_rule(
    implementation = _impl,
    doc = "Writes env.bzl with REGISTRY and BASE_DIGEST from the environment.",
    environ = _VARS,
)
