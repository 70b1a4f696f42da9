"""WORKSPACE setup: a repository holding the strata binary, and its toolchain.

    load("@strata//rules:repositories.bzl", "strata_register_toolchains")

    strata_register_toolchains()

and `oci_pull` (rules/private/pull.bzl), base images pinned by digest:

    load("@strata//rules:repositories.bzl", "oci_pull")

    oci_pull(name = "base", image = "registry.example/base", digest = "sha256:...")

Where the binary comes from, first match wins:

1. `STRATA_BINARY=/abs/path/strata` in the environment of the bazel client
   (`--repo_env=STRATA_BINARY=...` works too): a prebuilt binary;
2. `strata_register_toolchains(url = "https://.../strata", sha256 = "...")`:
   a prebuilt binary downloaded once and checked against its sha256
   (`file:///...` URLs work, e.g. for a vendored binary);
3. `strata_register_toolchains(binary_path = "/opt/strata/bin/strata")`;
4. default: built from this repository's sources with
   `cargo build --release --locked` (needs cargo on PATH; the build goes to
   cargo's usual target directory: `$CARGO_TARGET_DIR`, else `target/` of the
   strata sources, so it is incremental). Bazel re-runs it when its server
   starts; after editing strata's sources, `bazel sync` picks them up.

Whatever the source, the binary reaches actions as an input File through the
toolchain, so its bytes are part of every action key.
"""

load("//rules/private:pull.bzl", _oci_pull = "oci_pull")

oci_pull = _oci_pull

_BUILD = """\
load("{toolchain_bzl}", "strata_toolchain")

exports_files(["strata"])

strata_toolchain(
    name = "strata_toolchain",
    binary = ":strata",
    visibility = ["//visibility:public"],
)

toolchain(
    name = "toolchain",
    toolchain = ":strata_toolchain",
    toolchain_type = "{toolchain_type}",
    visibility = ["//visibility:public"],
)
"""

def _cargo_build(rctx):
    src = rctx.path(Label("//:Cargo.toml")).dirname
    cargo = rctx.which("cargo")
    if not cargo:
        fail("strata: no `cargo` on PATH to build strata from source; set STRATA_BINARY, " +
             "or pass `url`+`sha256` or `binary_path` to strata_register_toolchains")
    rctx.report_progress("Building strata from source (cargo build --release --locked)")
    res = rctx.execute(
        [cargo, "build", "--release", "--locked", "--bin", "strata", "--message-format=json-render-diagnostics"],
        working_directory = str(src),
        timeout = 3600,
        quiet = True,
    )
    if res.return_code != 0:
        fail("strata: `cargo build --release --locked` in %s failed:\n%s" % (src, res.stderr))

    # cargo names the binary it built; this honors CARGO_TARGET_DIR and .cargo/config.
    exe = None
    for line in res.stdout.splitlines():
        if not line.startswith("{"):
            continue
        msg = json.decode(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "strata":
            exe = msg["executable"]
    if not exe:
        fail("strata: cargo built no `strata` executable:\n" + res.stdout)
    return exe

def _strata_binary_repository_impl(rctx):
    path = rctx.os.environ.get("STRATA_BINARY", "")
    if path:
        rctx.symlink(path, "strata")
    elif rctx.attr.url:
        if not rctx.attr.sha256:
            fail("strata_binary_repository: `url` needs `sha256`")
        rctx.download(url = rctx.attr.url, output = "strata", sha256 = rctx.attr.sha256, executable = True)
    elif rctx.attr.binary_path:
        rctx.symlink(rctx.attr.binary_path, "strata")
    else:
        rctx.symlink(_cargo_build(rctx), "strata")
    rctx.file("BUILD.bazel", _BUILD.format(
        toolchain_bzl = str(Label("//rules:toolchain.bzl")),
        toolchain_type = str(Label("//rules:toolchain_type")),
    ))

# Where the strata binary comes from: the attributes of strata_binary_repository
# and of the bzlmod extension's `toolchain` tag (extensions.bzl).
BINARY_ATTRS = {
    "binary_path": attr.string(doc = "Absolute path of a prebuilt strata binary."),
    "url": attr.string(doc = "URL of a prebuilt strata binary (with `sha256`)."),
    "sha256": attr.string(doc = "sha256 of the binary at `url`."),
}

strata_binary_repository = repository_rule(
    implementation = _strata_binary_repository_impl,
    doc = "A repository with the strata binary (`:strata`) and its toolchain (`:toolchain`). " +
          "See the module docstring for where the binary comes from.",
    attrs = BINARY_ATTRS,
    environ = ["STRATA_BINARY", "CARGO_TARGET_DIR"],
    local = True,
)

def strata_register_toolchains(name = "strata_bin", binary_path = "", url = "", sha256 = "", register = True):
    """Creates the repository `name` holding the strata binary, and registers its toolchain.

    Args:
      name: name of the repository.
      binary_path: absolute path of a prebuilt strata binary.
      url: URL of a prebuilt strata binary; needs `sha256`.
      sha256: sha256 of the binary at `url`.
      register: whether to call `register_toolchains` (False for bzlmod).
    """
    strata_binary_repository(name = name, binary_path = binary_path, url = url, sha256 = sha256)
    if register:
        native.register_toolchains("@%s//:toolchain" % name)
