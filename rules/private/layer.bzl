"""oci_layer: files → one deterministic layer blob + descriptor, by `strata layer --spec`."""

load("//rules:providers.bzl", "OciLayerInfo")
load("//rules:toolchain.bzl", "TOOLCHAIN_TYPE", "strata_binary")

_DOC = """Builds one OCI layer from files with strata.

The rule writes a strata layer spec (JSON, version 1) with the path of every
file inside the layer and runs `strata layer --spec` on it. Order, mtimes,
owners and modes are normalized by strata, so the layer's digest depends only
on the files' bytes, their in-layer paths and the attributes below — never on
the Bazel label, the output base or the host.

In-layer path of a file: `package_dir` + its path relative to `strip_prefix`
(a path from the workspace root of the file's repository); by default the
file's path relative to its own package. Directories (tree artifacts) are
walked by strata. Example:

    oci_layer(
        name = "app_layer",
        srcs = [":app", "//config:files"],
        package_dir = "/opt/app",
        modes = {"/opt/app/app": "0755"},
        symlinks = {"/usr/bin/app": "/opt/app/app"},
    )
"""

def _ws_path(f):
    # short_path of an external file is "../<repo>/<path>"; make it workspace-relative.
    p = f.short_path
    if p.startswith("../"):
        p = p.split("/", 2)[2]
    return p

def _norm(p):
    p = p.strip("/")
    return p

def _join(a, b):
    a = _norm(a)
    b = _norm(b)
    if not a:
        return b
    if not b:
        return a
    return a + "/" + b

def _layer_path(ctx, f):
    ws = _ws_path(f)
    sp = ctx.attr.strip_prefix
    if sp == ".":
        pkg = f.owner.package
        rel = ws[len(pkg) + 1:] if pkg and ws.startswith(pkg + "/") else ws
    elif sp == "/" or sp == "":
        rel = ws
    else:
        prefix = _norm(sp) + "/"
        if not ws.startswith(prefix):
            fail("oci_layer %s: file %s is not under strip_prefix %r" % (ctx.label, ws, sp))
        rel = ws[len(prefix):]
    return _join(ctx.attr.package_dir, rel)

def _owner_fields(ctx, path):
    owner = ctx.attr.owners.get("/" + path, ctx.attr.owners.get(path, ""))
    if not owner:
        return {}
    parts = owner.split(":")
    if len(parts) != 2:
        fail("oci_layer %s: owners[%r] = %r, expected \"uid:gid\"" % (ctx.label, path, owner))
    return {"uid": int(parts[0]), "gid": int(parts[1])}

def _impl(ctx):
    entries = []
    inputs = []
    files = []
    for src in ctx.attr.srcs:
        files.extend(src[DefaultInfo].files.to_list())
        if ctx.attr.include_runfiles:
            files.extend(src[DefaultInfo].default_runfiles.files.to_list())
    seen = {}
    for f in files:
        if f in seen:
            continue
        seen[f] = True
        inputs.append(f)
        path = _layer_path(ctx, f)
        if f.is_directory:
            entry = {"type": "tree", "src": f.path}
            if path:
                entry["path"] = path
        else:
            entry = {"type": "file", "path": path, "src": f.path}
            mode = ctx.attr.modes.get("/" + path, ctx.attr.modes.get(path, ""))
            if mode:
                entry["mode"] = mode
            entry.update(_owner_fields(ctx, path))
        entries.append(entry)
    for d in ctx.attr.empty_dirs:
        entry = {"type": "dir", "path": _norm(d)}
        mode = ctx.attr.modes.get(d, "")
        if mode:
            entry["mode"] = mode
        entry.update(_owner_fields(ctx, _norm(d)))
        entries.append(entry)
    for link, target in ctx.attr.symlinks.items():
        entries.append({"type": "symlink", "path": _norm(link), "target": target})
    for w in ctx.attr.whiteouts:
        entries.append({"type": "whiteout", "path": _norm(w)})
    spec = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec, json.encode({"version": 1, "entries": entries}))
    ext = {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}[ctx.attr.compression]
    blob = ctx.actions.declare_file(ctx.label.name + ext)
    desc = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")
    args = ctx.actions.args()
    args.add("layer")
    args.add("--spec", spec)
    args.add("--out", blob)
    args.add("--descriptor", desc)
    args.add("--compression", ctx.attr.compression)
    args.add("--mtime", str(ctx.attr.mtime))
    ctx.actions.run(
        executable = strata_binary(ctx),
        arguments = [args],
        inputs = inputs + [spec],
        outputs = [blob, desc],
        mnemonic = "StrataLayer",
        progress_message = "Building OCI layer %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([blob, desc]), runfiles = ctx.runfiles(files = [blob, desc])),
        OciLayerInfo(blob = blob, descriptor = desc),
    ]

oci_layer = rule(
    implementation = _impl,
    doc = _DOC,
    attrs = {
        "srcs": attr.label_list(doc = "Files and directories (tree artifacts) to put in the layer.", allow_files = True),
        "package_dir": attr.string(doc = "Directory inside the layer that receives the files (e.g. `/opt/app`).", default = ""),
        "strip_prefix": attr.string(
            doc = "`.` (default): paths relative to each file's package; `/`: paths from the workspace root; " +
                  "any other value: a workspace-relative prefix removed from every file's path.",
            default = ".",
        ),
        "modes": attr.string_dict(doc = "In-layer path → octal mode (`\"0755\"`, `\"4755\"`). Default: 0755 if the file is executable, else 0644."),
        "owners": attr.string_dict(doc = "In-layer path → `\"uid:gid\"`. Default `0:0`."),
        "symlinks": attr.string_dict(doc = "In-layer path → symlink target, stored byte for byte."),
        "empty_dirs": attr.string_list(doc = "Directories to create empty (0755 unless `modes` says otherwise)."),
        "whiteouts": attr.string_list(doc = "Paths of lower layers this layer deletes (`.wh.` entries)."),
        "compression": attr.string(doc = "`gzip`, `zstd` or `none`.", default = "gzip", values = ["gzip", "zstd", "none"]),
        "mtime": attr.int(doc = "mtime of every entry, seconds since the epoch.", default = 0),
        "include_runfiles": attr.bool(doc = "Also put the runfiles of `srcs` (e.g. a binary's data) in the layer.", default = False),
    },
    toolchains = [TOOLCHAIN_TYPE],
    provides = [OciLayerInfo],
)
