"""oci_layer: files → one deterministic layer blob + descriptor, by `strata layer --spec`."""

load("//rules:providers.bzl", "OciLayerInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")
load(":util.bzl", "runfiles_path")

_DOC = """Builds one OCI layer from files with strata.

The rule writes a strata layer spec (JSON, version 1) naming every file by its
path inside the layer and runs `strata layer --spec` on it (mnemonic
`StrataLayer`). Order, mtimes, owners and modes are normalized by strata, so
the digest depends only on the files' bytes, their paths inside the layer and
the attributes below: never on the Bazel label, the output base or the host.

Path of a file inside the layer: `package_dir` joined with the file's path
after `strip_prefix`:

- `strip_prefix = "."` (default): the path relative to the file's own package
  (`//app:config/a.conf` → `config/a.conf`);
- `strip_prefix = "/"`: the path from the root of the file's repository
  (`app/config/a.conf`);
- any other value, e.g. `"app/config"` (a leading `/` is optional): a prefix
  of the path from the repository root, removed (`a.conf`); a file outside it
  is an error.

A directory (tree artifact) goes under its path the same way; its files keep
their paths below it (read through symlinks, as Bazel's sandbox presents them;
empty subdirectories of a tree artifact are not kept, and `modes`/`owners`
cannot name files inside it: strata takes 0755/0644 from the executable bit).
For a directory of the workspace, list its files (`glob(["dir/**"])`): Bazel
does not track the contents of a source directory label.

Modes: `modes` if it names the path; else 0644 for a source file, whatever
its executable bit in the checkout (that bit is no part of Bazel's action key,
and remote execution presents every input as executable: it must not decide a
digest), and 0755 for a generated file (Bazel makes every file an action writes
executable, locally and remotely).

Paths inside the layer are written without a leading `/`; the keys of
`modes`, `owners`, `symlinks` and the entries of `empty_dirs` and `whiteouts`
may have one. A key of `modes` or `owners` that names nothing in the layer is
an error (a typo never silently changes an image).

With `include_runfiles`, an executable in `srcs` gets its runfiles tree next
to it, as `bazel run` lays it out (`<path>.runfiles/<workspace>/...`); the
runfiles of a non-executable target go to their own paths.

Example:

    oci_layer(
        name = "app_layer",
        srcs = [":app", "//config:files"],
        package_dir = "/opt/app",
        modes = {"/opt/app/app": "0755"},
        symlinks = {"/usr/bin/app": "/opt/app/app"},
    )

Outputs `<name>.tar.gz` (`.tar.zst`, `.tar`), `<name>.descriptor.json` and the
spec `<name>.spec.json`; provides `OciLayerInfo`.
"""

def _norm(p):
    return p.strip("/")

def _join(a, b):
    a = _norm(a)
    b = _norm(b)
    if not a:
        return b
    if not b:
        return a
    return a + "/" + b

def _repo_path(f):
    # short_path of a file of another repository is "../<repo>/<path>".
    p = f.short_path
    if p.startswith("../"):
        p = p.split("/", 2)[2]
    return p

def _layer_path(ctx, f):
    path = _repo_path(f)
    sp = ctx.attr.strip_prefix
    if sp == ".":
        pkg = f.owner.package if f.owner else ""
        if pkg and path.startswith(pkg + "/"):
            path = path[len(pkg) + 1:]
    elif _norm(sp):
        prefix = _norm(sp) + "/"
        if not path.startswith(prefix):
            fail("oci_layer %s: %s is not under strip_prefix %r" % (ctx.label, path, sp))
        path = path[len(prefix):]
    return _join(ctx.attr.package_dir, path)

def _append(st, entry, modable = True):
    """Appends a spec entry, with the mode and owner `modes` and `owners` give its path."""
    path = entry.get("path", "")
    if modable and path in st.modes:
        entry["mode"] = st.modes[path]
        st.used["modes:" + path] = True
    if path in st.owners:
        entry.update(st.owners[path])
        st.used["owners:" + path] = True
    st.entries.append(entry)

def _add(st, path, f):
    """Puts File `f` (a file or a tree artifact) at `path` inside the layer."""
    key = "tree:%s:%s" % (path, f.path) if f.is_directory else path
    prev = st.files_at.get(key)
    if prev:
        if prev != f:
            fail("oci_layer %s: two files for /%s: %s and %s" % (st.ctx.label, path, prev.short_path, f.short_path))
        return
    st.files_at[key] = f
    st.inputs.append(f)
    if f.is_directory:
        st.trees.append((path, f))
    else:
        if not path:
            fail("oci_layer %s: %s would be the layer root" % (st.ctx.label, f.short_path))
        entry = {"path": path, "src": f.path, "type": "file"}
        if f.is_source:
            # Not the file's executable bit: it is no part of Bazel's action key,
            # and remote execution sends every input file as executable.
            entry["mode"] = "0644"
        _append(st, entry)

def _tree_file(f):
    # One file of a tree artifact; its tree_relative_path is known only at execution.
    return json.encode(f.tree_relative_path)[1:-1] + "\",\"src\":" + json.encode(f.path)

def _tree_spec(ctx, i, path, tree):
    """A spec naming each file of a tree artifact, written when the tree exists.

    Not a strata "tree" entry: Bazel's sandbox presents a tree artifact's files
    as symlinks to the execroot, and strata would store those symlinks (host
    paths) as they are. A "file" entry reads through them.
    """
    prefix = json.encode(path + "/" if path else "")[1:-1].replace("%", "%%")
    args = ctx.actions.args()
    args.set_param_file_format("multiline")
    args.add("{\"version\":1,\"entries\":[")
    args.add_joined(
        [tree],
        join_with = ",",
        map_each = _tree_file,
        format_each = "{\"type\":\"file\",\"path\":\"" + prefix + "%s}",
        expand_directories = True,
        omit_if_empty = False,
    )
    args.add("]}")
    spec = ctx.actions.declare_file("%s.tree%d.spec.json" % (ctx.label.name, i))
    ctx.actions.write(spec, args)
    return spec

def _impl(ctx):
    modes = {_norm(k): v for k, v in ctx.attr.modes.items()}
    owners = {}
    for k, v in ctx.attr.owners.items():
        parts = v.split(":")
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            fail("oci_layer %s: owners[%r] = %r, expected \"uid:gid\" (numbers)" % (ctx.label, k, v))
        owners[_norm(k)] = {"gid": int(parts[1]), "uid": int(parts[0])}
    st = struct(
        ctx = ctx,
        entries = [],
        files_at = {},  # path inside the layer -> the File put there
        inputs = [],
        modes = modes,
        owners = owners,
        trees = [],  # (path inside the layer, tree artifact)
        used = {},
    )
    for src in ctx.attr.srcs:
        info = src[DefaultInfo]
        for f in info.files.to_list():
            _add(st, _layer_path(ctx, f), f)
        if not ctx.attr.include_runfiles:
            continue
        exe = info.files_to_run.executable if info.files_to_run else None
        runfiles = info.default_runfiles
        if exe:
            root = _layer_path(ctx, exe) + ".runfiles/"
            for f in runfiles.files.to_list():
                _add(st, root + runfiles_path(ctx, f), f)
            for s in runfiles.symlinks.to_list():
                _add(st, root + ctx.workspace_name + "/" + s.path, s.target_file)
            for s in runfiles.root_symlinks.to_list():
                _add(st, root + s.path, s.target_file)
        else:
            for f in runfiles.files.to_list():
                _add(st, _layer_path(ctx, f), f)

    for d in ctx.attr.empty_dirs:
        _append(st, {"path": _norm(d), "type": "dir"})
    for link, target in ctx.attr.symlinks.items():
        _append(st, {"path": _norm(link), "target": target, "type": "symlink"}, modable = False)
    for w in ctx.attr.whiteouts:
        st.entries.append({"path": _norm(w), "type": "whiteout"})

    for what, d in [("modes", modes), ("owners", owners)]:
        for path in d:
            if not st.used.get(what + ":" + path):
                fail("oci_layer %s: %s[%r] names no file, empty dir or symlink of this layer" % (ctx.label, what, "/" + path))

    spec = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec, json.encode({"entries": st.entries, "version": 1}))
    specs = [spec] + [_tree_spec(ctx, i, path, tree) for i, (path, tree) in enumerate(st.trees)]
    ext = {"gzip": ".tar.gz", "none": ".tar", "zstd": ".tar.zst"}[ctx.attr.compression]
    blob = ctx.actions.declare_file(ctx.label.name + ext)
    descriptor = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")
    args = ctx.actions.args()
    args.add("layer")
    args.add("--quiet")  # the digest is in an output file; keep build logs clean
    args.add_all(specs, before_each = "--spec")
    args.add("--out", blob)
    args.add("--descriptor", descriptor)
    args.add("--compression", ctx.attr.compression)
    args.add("--mtime", str(ctx.attr.mtime))
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = st.inputs + specs,
        outputs = [blob, descriptor],
        mnemonic = "StrataLayer",
        progress_message = "Building OCI layer %s" % ctx.label,
    )
    packages = None
    if ctx.attr.packages:
        for purl in ctx.attr.packages:
            if not purl.startswith("pkg:") or "/" not in purl or " " in purl:
                fail("oci_layer %s: packages: %r is not a purl (pkg:TYPE/NAME@VERSION)" % (ctx.label, purl))

        # One purl a line, for `strata sbom --packages DESCRIPTOR=FILE` (oci_attest).
        packages = ctx.actions.declare_file(ctx.label.name + ".purls")
        ctx.actions.write(packages, "".join([p + "\n" for p in sorted(ctx.attr.packages)]))
    return [
        DefaultInfo(
            files = depset([blob, descriptor]),
            runfiles = ctx.runfiles(files = [blob, descriptor]),
        ),
        OciLayerInfo(blob = blob, descriptor = descriptor, packages = packages),
        OutputGroupInfo(spec = depset(specs)),
    ]

oci_layer = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "compression": attr.string(
            doc = "`gzip`, `zstd` or `none`.",
            default = "gzip",
            values = ["gzip", "zstd", "none"],
        ),
        "empty_dirs": attr.string_list(doc = "Directories to create, empty unless files go in them (0755 unless `modes` says otherwise)."),
        "include_runfiles": attr.bool(
            doc = "Also put the runfiles of `srcs` in the layer (an executable's as `<path>.runfiles/`).",
            default = False,
        ),
        "modes": attr.string_dict(
            doc = "Path inside the layer → octal mode (`\"0755\"`, `\"4755\"`) of a file or empty dir. " +
                  "Default: 0644 for a source file, whatever its executable bit in the checkout; 0755 " +
                  "for a generated file (Bazel makes every output executable); from the executable " +
                  "bit (0755 or 0644) for a file inside a tree artifact; 0755 for an empty dir.",
        ),
        "mtime": attr.int(doc = "mtime of every entry, in seconds since the epoch.", default = 0),
        "owners": attr.string_dict(doc = "Path inside the layer → `\"uid:gid\"` of a file, empty dir or symlink. Default `0:0`."),
        "packages": attr.string_list(doc = "Package URLs (purls, e.g. `pkg:generic/zlib@1.3.1`) of software in this " +
                                           "layer that strata cannot find in its bytes (a vendored library, a static " +
                                           "binary); `oci_attest` lists them in the SBOM under this layer."),
        "package_dir": attr.string(doc = "Directory inside the layer that receives `srcs` (e.g. `/opt/app`); default: the layer root."),
        "srcs": attr.label_list(doc = "Files and directories (tree artifacts) to put in the layer.", allow_files = True),
        "strip_prefix": attr.string(
            doc = "`.` (default): paths relative to each file's package; `/`: paths from the repository root; " +
                  "anything else: a prefix of the paths from the repository root, removed.",
            default = ".",
        ),
        "symlinks": attr.string_dict(doc = "Path inside the layer → symlink target, stored byte for byte."),
        "whiteouts": attr.string_list(doc = "Paths of lower layers that this layer deletes (`.wh.` entries)."),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciLayerInfo],
)
