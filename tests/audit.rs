//! Reproducibility audits: `strata diff` and `strata normalize` (issue #6).
//!
//! Each difference class has a hand-made pair and the exact finding line is
//! asserted; `--semantic` and `--json` are checked on the same pairs.
//! `normalize` is checked to be the identity on strata's own layers and
//! images, a fixed point on GNU tar and Python tarfile layers, and to give
//! `strata layer`'s digest when asked for strata's owner/mode policy. Hostile
//! tars give one line on stderr and leave no output behind.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::{fail_in, ok_in, python, run_in, sh, tempdir, write};

/// A small tree: a file, an executable, a symlink, a nested dir.
fn tree(root: &Path) {
    write(&root.join("etc/motd"), b"hello\n", 0o644);
    write(&root.join("bin/app"), b"#!/bin/sh\necho app\n", 0o755);
    write(&root.join("usr/share/doc/README"), b"docs\n", 0o644);
    std::os::unix::fs::symlink("app", root.join("bin/sh")).unwrap();
}

/// `strata layer` then `strata image`; extra image flags in `img`.
fn image(dir: &Path, name: &str, layer_args: &[&str], img: &[&str]) {
    let mut a = vec!["layer", "--out", "x.layer", "--descriptor", "x.json"];
    a.extend_from_slice(layer_args);
    let l = format!("{name}.layer");
    let d = format!("{name}.json");
    a[2] = &l;
    a[4] = &d;
    ok_in(dir, &a);
    let spec = format!("{l}:{d}");
    let mut b = vec!["image", "--out", name, "--layer", &spec];
    b.extend_from_slice(img);
    ok_in(dir, &b);
}

/// Run `strata diff` with `args`; returns (exit code, stdout).
fn diff(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut a = vec!["diff"];
    a.extend_from_slice(args);
    let o = run_in(dir, &a);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
    )
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn identical_images_in_every_container_format() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    image(d, "img", &["t"], &["--cmd", "/bin/sh", "--tag", "x:1"]);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img.tar",
            "--format",
            "docker-archive",
            "--layer",
            "img.layer:img.json",
            "--cmd",
            "/bin/sh",
            "--tag",
            "x:1",
        ],
    );
    assert_eq!(diff(d, &["img", "img"]), (0, "identical\n".into()));
    assert_eq!(diff(d, &["img", "img.tar"]), (0, "identical\n".into()));
    assert_eq!(
        diff(d, &["img.layer", "img.layer"]),
        (0, "identical\n".into())
    );
    let (code, out) = diff(d, &["--json", "img", "img.tar"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"findings\":[],\"identical\":true,\"ignored\":{},\"semantic\":false}\n"
    );
}

#[test]
fn config_field() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    image(d, "a", &["t"], &["--env", "A=1"]);
    image(d, "b", &["t"], &["--env", "A=2"]);
    let (code, out) = diff(d, &["a", "b"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        lines(&out).contains(&"config: config.Env: A [\"A=1\"], B [\"A=2\"]"),
        "{out}"
    );
    // The config digest follows from it; --semantic says it ignored that.
    let (code, out) = diff(d, &["--semantic", "a", "b"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&out),
        [
            "config: config.Env: A [\"A=1\"], B [\"A=2\"]",
            "1 difference; --semantic ignored: digests and sizes (2)"
        ]
    );
}

#[test]
fn compression_only() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    image(d, "a", &["t"], &[]);
    image(d, "b", &["--compression", "zstd", "t"], &[]);
    let (code, out) = diff(d, &["a", "b"]);
    assert_eq!(code, 1);
    let l = lines(&out);
    let f = l
        .iter()
        .find(|x| x.starts_with("layer 0: same diff_id, different compression: A sha256:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(f.contains("(gzip, ") && f.contains("(zstd, "), "{f}");
    // Only compression and the digests that follow from it differ.
    let (code, out) = diff(d, &["--semantic", "a", "b"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "identical (semantically); --semantic ignored: compression (2), digests and sizes ("
        ),
        "{out}"
    );
    // Single layers too.
    let (code, out) = diff(d, &["a.layer", "b.layer"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("layer: same diff_id, different compression: "),
        "{out}"
    );
}

/// A layer from a spec; `entries` is the JSON array's inside.
pub(crate) fn spec_layer(dir: &Path, name: &str, entries: &str) {
    let spec = format!("{name}.spec.json");
    fs::write(
        dir.join(&spec),
        format!("{{\"version\":1,\"entries\":[{entries}]}}"),
    )
    .unwrap();
    ok_in(
        dir,
        &[
            "layer",
            "--out",
            &format!("{name}.tar"),
            "--compression",
            "none",
            "--spec",
            &spec,
        ],
    );
}

#[test]
fn one_files_mode_content_extra_file_and_symlink_target() {
    let t = tempdir();
    let d = t.path();
    let base = r#"{"type":"file","path":"etc/motd","content":"hi\n","mode":"0644"},
                  {"type":"symlink","path":"bin/sh","target":"busybox"}"#;
    spec_layer(d, "a", base);
    spec_layer(d, "mode", &base.replace("0644", "0600"));
    spec_layer(d, "content", &base.replace("hi\\n", "ho\\n"));
    spec_layer(
        d,
        "extra",
        &format!(r#"{base},{{"type":"file","path":"etc/extra","content":"x"}}"#),
    );
    spec_layer(d, "link", &base.replace("busybox", "bash"));
    let finding = |b: &str| {
        let (code, out) = diff(d, &["a.tar", &format!("{b}.tar")]);
        assert_eq!(code, 1, "{out}");
        let l: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(l[0].split(':').nth(1), Some(" diff_id"), "{out}");
        l[1..].to_vec()
    };
    assert_eq!(
        finding("mode"),
        ["layer: etc/motd: mode: A 0644, B 0600", "2 differences"]
    );
    let content = finding("content");
    assert!(
        content[0].starts_with("layer: etc/motd: content: A sha256:"),
        "{content:?}"
    );
    assert_eq!(content[1], "2 differences");
    assert_eq!(
        finding("extra"),
        [
            "layer: etc/extra: only in B (file, 1 bytes)",
            "2 differences"
        ]
    );
    assert_eq!(
        finding("link"),
        [
            "layer: bin/sh: linkname: A busybox, B bash",
            "2 differences"
        ]
    );
    // None of these is ignorable.
    let (code, out) = diff(d, &["--semantic", "a.tar", "mode.tar"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&out),
        [
            "layer: etc/motd: mode: A 0644, B 0600",
            "1 difference; --semantic ignored: digests and sizes (1)"
        ]
    );
}

#[test]
fn layer_order() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("one/a"), b"a", 0o644);
    write(&d.join("two/b"), b"b", 0o644);
    ok_in(d, &["layer", "--out", "1.tgz", "one"]);
    ok_in(d, &["layer", "--out", "2.tgz", "two"]);
    ok_in(
        d,
        &[
            "image", "--out", "a", "--layer", "1.tgz", "--layer", "2.tgz",
        ],
    );
    ok_in(
        d,
        &[
            "image", "--out", "b", "--layer", "2.tgz", "--layer", "1.tgz",
        ],
    );
    let (code, out) = diff(d, &["a", "b"]);
    assert_eq!(code, 1);
    assert!(
        out.lines()
            .any(|l| l.starts_with("layers: layer order (the same layers in another order): A [")),
        "{out}"
    );
    // Layer order changes what a container sees: --semantic keeps it.
    assert_eq!(diff(d, &["--semantic", "a", "b"]).0, 1);
}

/// GNU tar layers of `t` in a given order, with fixed mtimes.
fn gnu_tar(dir: &Path, out: &str, names: &str) {
    sh(
        dir,
        &format!("tar --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner -cf {out} -C t {names}"),
    );
}

#[test]
fn entry_order_only_and_one_mtime() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("t/a"), b"a\n", 0o644);
    write(&d.join("t/b"), b"b\n", 0o644);
    gnu_tar(d, "ab.tar", "a b");
    gnu_tar(d, "ba.tar", "b a");
    let (code, out) = diff(d, &["ab.tar", "ba.tar"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&out)[1..],
        [
            "layer: entry order (first difference at common entry 0): A a, B b",
            "2 differences"
        ]
    );
    let (code, out) = diff(d, &["--semantic", "ab.tar", "ba.tar"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "identical (semantically); --semantic ignored: digests and sizes (1), entry order (1)\n"
    );
    // One file's mtime: named with the field.
    sh(
        d,
        "tar --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -cf m0.tar -C t a b && \
         tar --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -cf m1.tar -C t a \
         && touch -d @1700000000 t/b && tar --format=gnu --owner=0 --group=0 --numeric-owner -rf m1.tar -C t b",
    );
    let (code, out) = diff(d, &["m0.tar", "m1.tar"]);
    assert_eq!(code, 1);
    assert_eq!(
        lines(&out)[1..],
        ["layer: b: mtime: A 0, B 1700000000", "2 differences"]
    );
    let (_, json) = diff(d, &["--json", "m0.tar", "m1.tar"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["identical"], false);
    assert_eq!(
        v["findings"][1],
        serde_json::json!({"place":"layer","path":"b","field":"mtime","a":"0","b":"1700000000","class":"timestamp"})
    );
    // Cross-check with diffoscope that the difference is real and only that.
    if crate::util::have_tool("diffoscope") {
        let o = Command::new("diffoscope")
            .args(["--text", "-", "m0.tar", "m1.tar"])
            .current_dir(d)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{text}");
        assert!(text.contains("2023-11-14"), "diffoscope: {text}");
    }
}

#[test]
fn normalize_is_identity_on_strata_layers_and_images() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    for c in ["gzip", "zstd", "none"] {
        let out = format!("{c}.layer");
        let want = ok_in(d, &["layer", "--out", &out, "--compression", c, "t"]);
        let got = ok_in(d, &["normalize", &out, &format!("{c}.norm")]);
        assert_eq!(got, want, "{c}");
        assert_eq!(
            fs::read(d.join(&out)).unwrap(),
            fs::read(d.join(format!("{c}.norm"))).unwrap()
        );
    }
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "gzip.layer",
            "--layer",
            "zstd.layer",
            "--env",
            "A=1",
            "--tag",
            "x:1",
        ],
    );
    let want = ok_in(d, &["digest", "img"]);
    let got = ok_in(d, &["normalize", "img", "norm"]);
    assert_eq!(got, want);
    assert_eq!(diff(d, &["img", "norm"]).0, 0);
    ok_in(d, &["verify", "norm"]);
}

#[test]
fn normalize_gnu_tar_and_python_tarfile_layers() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    let canonical = ok_in(d, &["layer", "--out", "canonical.tgz", "t"]);
    // Host mtimes, uid 1234, names, GNU dialect, ./ prefixes, a root entry.
    sh(
        d,
        "touch -d @1600000000 t/etc/motd && \
         tar --format=gnu --owner=user:1234 --group=grp:99 -czf gnu.tgz -C t .",
    );
    let once = ok_in(d, &["normalize", "gnu.tgz", "n1.tgz"]);
    let twice = ok_in(d, &["normalize", "n1.tgz", "n2.tgz"]);
    assert_eq!(once, twice, "normalize is idempotent");
    assert_ne!(once, canonical, "owners were kept");
    let (code, out) = diff(d, &["canonical.tgz", "n1.tgz"]);
    assert_eq!(code, 1);
    assert!(out.contains("etc/motd: uid: A 0, B 1234"), "{out}");
    assert!(!out.contains("mtime"), "{out}");
    let root = ok_in(
        d,
        &[
            "normalize",
            "--owners",
            "root",
            "--modes",
            "default",
            "gnu.tgz",
            "root.tgz",
        ],
    );
    assert_eq!(root, canonical);
    // Python's tarfile: PAX dialect, host mtimes, unsorted.
    python(
        d,
        r#"
import tarfile
t = tarfile.open("py.tar", "w", format=tarfile.PAX_FORMAT)
for n in ["usr", "bin/sh", "etc", "bin", "usr/share/doc/README", "etc/motd",
          "usr/share", "usr/share/doc", "bin/app"]:
    t.add("t/" + n, arcname=n, recursive=False)
t.close()
"#,
    );
    let py = ok_in(
        d,
        &[
            "normalize",
            "--owners",
            "root",
            "--modes",
            "default",
            "--compression",
            "gzip",
            "py.tar",
            "py.tgz",
        ],
    );
    assert_eq!(py, canonical);
}

#[test]
fn normalize_image_from_foreign_layers_verifies() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    sh(d, "tar --format=gnu -czf gnu.tgz -C t .");
    ok_in(
        d,
        &[
            "image",
            "--out",
            "foreign.tar",
            "--format",
            "oci-archive",
            "--layer",
            "gnu.tgz",
            "--created",
            "2024-05-05T10:00:00Z",
        ],
    );
    let digest = ok_in(d, &["normalize", "--owners", "root", "foreign.tar", "norm"]);
    ok_in(d, &["verify", "norm"]);
    assert_eq!(ok_in(d, &["digest", "norm"]), digest);
    let again = ok_in(d, &["normalize", "norm", "norm2"]);
    assert_eq!(again, digest);
    let (code, out) = diff(d, &["--semantic", "foreign.tar", "norm"]);
    assert_eq!(code, 1, "owners differ: {out}");
    assert!(!out.contains("created"), "{out}");
}

// ---------------------------------------------------------------------------
// Hostile input

/// Normalize must fail with exit 1, one line naming `want`, and leave
/// nothing; diff must fail with exit 2 and the same line.
fn hostile(dir: &Path, input: &str, want: &str) {
    let err = fail_in(dir, &["normalize", input, "out.tgz"], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("strata: {input}")), "{err}");
    assert!(err.contains(want), "{err}");
    let left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("out") || n.starts_with(".strata-tmp-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let derr = fail_in(dir, &["diff", input, input], 2);
    assert_eq!(derr, err);
}

#[test]
fn hostile_tars() {
    let t = tempdir();
    let d = t.path();
    python(
        d,
        r#"
import tarfile, io, gzip
def tar(name, members, fmt=tarfile.GNU_FORMAT):
    t = tarfile.open(name, "w", format=fmt)
    for info, data in members:
        t.addfile(info, io.BytesIO(data) if data is not None else None)
    t.close()
i = tarfile.TarInfo("../etc/passwd"); i.size = 1
tar("dotdot.tar", [(i, b"x")])
i = tarfile.TarInfo("big"); i.pax_headers = {"comment": "x" * (2 << 20)}
tar("pax.tar", [(i, None)], tarfile.PAX_FORMAT)
i = tarfile.TarInfo("etc/motd"); i.size = 5
tar("ok.tar", [(i, b"hello")])
raw = open("ok.tar", "rb").read()
# Lying size: declare 5 bytes of content, cut the stream after 3.
open("liar.tar", "wb").write(raw[:512 + 3])
data = gzip.compress(raw * 50)
open("cut.tgz", "wb").write(data[: len(data) // 2])
"#,
    );
    hostile(
        d,
        "dotdot.tar",
        "entry 0: path \"../etc/passwd\": '..' components are refused",
    );
    hostile(d, "pax.tar", "entry 0: PAX header of 2097");
    hostile(
        d,
        "liar.tar",
        "entry 0 (etc/motd): truncated: the header declares 5 bytes, the stream ends after 3",
    );
    hostile(d, "cut.tgz", "corrupt or truncated gzip stream");
    // A failed normalize leaves a previous output untouched.
    fs::write(d.join("prev.tgz"), b"previous").unwrap();
    fail_in(d, &["normalize", "liar.tar", "prev.tgz"], 1);
    assert_eq!(fs::read(d.join("prev.tgz")).unwrap(), b"previous");
}

#[test]
fn usage_errors() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    ok_in(d, &["layer", "--out", "l.tgz", "t"]);
    ok_in(d, &["image", "--out", "img", "--layer", "l.tgz"]);
    let e = fail_in(d, &["diff", "img", "l.tgz"], 2);
    assert!(e.contains("is an image and l.tgz a single layer"), "{e}");
    let e = fail_in(d, &["diff", "img", "missing"], 2);
    assert_eq!(e, "strata: opening missing: no such file or directory\n");
    let e = fail_in(d, &["normalize", "--owners", "me", "l.tgz", "o.tgz"], 2);
    assert_eq!(e, "strata: --owners \"me\": expected keep or root\n");
}

/// The members of a tar (`strata normalize … --compression none` output):
/// one `TYPE NAME [-> LINK] [xattrs]` line each, in order.
fn members(dir: &Path, tar: &str) -> Vec<String> {
    let o = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sys, tarfile
for m in tarfile.open(sys.argv[1]):
    x = sorted(k for k in m.pax_headers if "xattr" in k)
    print(m.type.decode(), m.name, ("-> " + m.linkname) if m.islnk() else "", *x)
"#,
        )
        .arg(tar)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// README: `normalize --parents` synthesizes missing parents (kept missing
/// without it), `--dedupe` links identical files, xattrs are refused by name
/// unless `--drop-xattrs`, and user/group names over 32 bytes are refused
/// for kept owners (`--owners root` drops them).
#[test]
fn normalize_parents_dedupe_xattrs_and_long_names() {
    let t = tempdir();
    let d = t.path();
    python(
        d,
        r#"
import tarfile, io
def tar(name, members):
    t = tarfile.open(name, "w", format=tarfile.PAX_FORMAT)
    for info, data in members:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    t.close()
tar("orphan.tar", [(tarfile.TarInfo("a/b/c.txt"), b"c")])
# Over 16 KiB: smaller files are never linked (src/layer/dedupe.rs).
same = b"same" * 5000
tar("twins.tar", [(tarfile.TarInfo("one"), same), (tarfile.TarInfo("two"), same)])
i = tarfile.TarInfo("etc/motd"); i.pax_headers = {"SCHILY.xattr.user.note": "v"}
tar("xattr.tar", [(i, b"hi")])
i = tarfile.TarInfo("f"); i.uname = "u" * 33
tar("longname.tar", [(i, b"x")])
"#,
    );
    let norm = |args: &[&str]| {
        let mut a = vec!["normalize", "--compression", "none"];
        a.extend_from_slice(args);
        ok_in(d, &a);
    };
    norm(&["orphan.tar", "o1.tar"]);
    assert_eq!(members(d, "o1.tar"), ["0 a/b/c.txt"]);
    norm(&["--parents", "orphan.tar", "o2.tar"]);
    assert_eq!(members(d, "o2.tar"), ["5 a", "5 a/b", "0 a/b/c.txt"]);

    norm(&["twins.tar", "t1.tar"]);
    assert_eq!(members(d, "t1.tar"), ["0 one", "0 two"]);
    norm(&["--dedupe", "twins.tar", "t2.tar"]);
    assert_eq!(members(d, "t2.tar"), ["0 one", "1 two -> one"]);

    let err = fail_in(d, &["normalize", "xattr.tar", "x.tar"], 1);
    assert!(
        err.contains("xattr.tar: entry 0 (etc/motd): carries xattrs (user.note)"),
        "{err}"
    );
    assert!(!d.join("x.tar").exists());
    norm(&["--drop-xattrs", "xattr.tar", "x.tar"]);
    assert_eq!(members(d, "x.tar"), ["0 etc/motd"]);

    let err = fail_in(d, &["normalize", "longname.tar", "l.tar"], 1);
    assert!(err.contains("longer than 32 bytes"), "{err}");
    assert!(err.contains("longname.tar: entry 0 (f): uname"), "{err}");
    norm(&["--owners", "root", "longname.tar", "l.tar"]);
    assert_eq!(members(d, "l.tar"), ["0 f"]);
}

/// README: `diff` of two indexes pairs their images by platform, not by
/// position: the same images in another order differ only in the index;
/// a changed image is reported under its platform; a platform only one side
/// has is named.
#[test]
fn diff_pairs_index_images_by_platform() {
    let t = tempdir();
    let d = t.path();
    tree(&d.join("t"));
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "t"],
    );
    let img = |name: &str, platform: &str, cmd: &str| {
        ok_in(
            d,
            &[
                "image",
                "--out",
                name,
                "--layer",
                "l.tgz:l.json",
                "--platform",
                platform,
                "--cmd",
                cmd,
            ],
        );
    };
    img("amd", "linux/amd64", "/bin/sh");
    img("arm", "linux/arm64", "/bin/sh");
    img("arm2", "linux/arm64", "/bin/app");
    img("ppc", "linux/ppc64le", "/bin/sh");
    ok_in(d, &["index", "--out", "ab", "amd", "arm"]);
    ok_in(d, &["index", "--out", "ba", "arm", "amd"]);
    ok_in(d, &["index", "--out", "ba2", "arm2", "amd"]);
    ok_in(d, &["index", "--out", "ap", "amd", "ppc"]);

    // Same images, other order: only the index lists differ, no image does
    // (paired by position, amd64 and arm64 configs would differ).
    let (code, out) = diff(d, &["ab", "ba"]);
    assert_eq!(code, 1, "{out}");
    let findings: Vec<&str> = out.lines().filter(|l| l.contains(": ")).collect();
    assert!(!findings.is_empty(), "{out}");
    assert!(
        findings
            .iter()
            .all(|l| l.starts_with("index.json: ") || l.starts_with("index: ")),
        "{out}"
    );
    // One image changed: reported under its platform, the other untouched.
    let (code, out) = diff(d, &["ab", "ba2"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("linux/arm64 config") && l.contains("Cmd")),
        "{out}"
    );
    assert!(!out.contains("linux/amd64"), "{out}");
    // A platform on one side only.
    let (_, out) = diff(d, &["ab", "ap"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("linux/arm64") && l.contains("only in A")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("linux/ppc64le") && l.contains("only in B")),
        "{out}"
    );
}
