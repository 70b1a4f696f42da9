//! Foreign layers are checked wherever strata reads their bytes (issue #19),
//! and `strata diff --ignore`.
//!
//! Every hostile class of SECURITY.md's layer reader, as a layer of an image:
//! `strata image --layer FILE` (no descriptor: strata reads the layer) refuses
//! it with one line naming the file and entry and writes nothing; composed
//! with a matching descriptor (trusted: strata reads no layer byte), the
//! image is composed, and `strata verify` then refuses it naming the image,
//! layer and entry. A distro-like layer (devices, FIFO, setuid, xattr,
//! absolute and climbing symlink targets, whiteouts, hard links) passes both:
//! only what is unsafe to extract or malformed is refused.

use std::fs;
use std::path::Path;

use crate::audit::spec_layer;
use crate::errors::rejects;
use crate::util::{ok_in, python, run_in, tempdir, write};

/// Crafts the hostile layers, and for each `X.tar`/`X.tgz` a descriptor
/// `X.json` whose digest, size and diff_id match the blob (diff_id of
/// the empty string when the blob does not decompress).
const CRAFT: &str = r#"
import tarfile, io, gzip, hashlib, json, os, random
def tar(name, members, fmt=tarfile.GNU_FORMAT):
    t = tarfile.open(name, "w", format=fmt)
    for info, data in members:
        t.addfile(info, io.BytesIO(data) if data is not None else None)
    t.close()
def f(name, data=b"x"):
    i = tarfile.TarInfo(name); i.size = len(data)
    return (i, data)
def link(name, target, kind=tarfile.SYMTYPE):
    i = tarfile.TarInfo(name); i.type = kind; i.linkname = target
    return (i, None)
tar("dotdot.tar", [f("a/../../victim/pwned")])
tar("abs.tar", [f("/etc/passwd")])
i = tarfile.TarInfo("nul"); i.pax_headers = {"path": "a\x00b"}
tar("nul.tar", [(i, None)], tarfile.PAX_FORMAT)
tar("through.tar", [link("etc", "/etc"), f("etc/passwd")])
tar("climb.tar", [link("up", "../../../../tmp"), f("up/pwned")])
tar("hl-escape.tar", [link("h", "../outside", tarfile.LNKTYPE)])
tar("hl-absent.tar", [link("h", "etc/shadow", tarfile.LNKTYPE)])
i = tarfile.TarInfo("big"); i.pax_headers = {"comment": "x" * (2 << 20)}
tar("pax.tar", [(i, None)], tarfile.PAX_FORMAT)
tar("longname.tar", [f("n" * (2 << 20))])
# Lying size: a header claiming 1 GiB followed by 512 bytes.
h = tarfile.TarInfo("liar"); h.size = 1 << 30
open("liar.tar", "wb").write(h.tobuf(tarfile.GNU_FORMAT) + b"y" * 512)
# GNU sparse: a regular header retyped 'S'.
b = bytearray(tarfile.TarInfo("sparse").tobuf(tarfile.GNU_FORMAT))
b[156:157] = b"S"
b[148:156] = b" " * 8
b[148:156] = ("%06o\0 " % sum(b[:512])).encode()
open("sparse.tar", "wb").write(bytes(b) + b"\0" * 1024)
for n in ["dotdot", "through", "hl-absent"]:
    open(n + ".tgz", "wb").write(gzip.compress(open(n + ".tar", "rb").read(), mtime=0))
rng = random.Random(5)
tar("benign.tar", [f("f%d" % k, rng.randbytes(4000)) for k in range(40)])
z = gzip.compress(open("benign.tar", "rb").read(), mtime=0)
open("cut.tgz", "wb").write(z[: len(z) // 2])
# Corrupt: the gzip trailer's CRC-32 no longer matches the content.
bad = bytearray(z)
bad[-8] ^= 0xff
open("corrupt.tgz", "wb").write(bytes(bad))
for n in sorted(os.listdir(".")):
    if not (n.endswith(".tar") or n.endswith(".tgz") or n.endswith(".tzst")):
        continue
    raw = open(n, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        try: tar_bytes = gzip.decompress(raw)
        except Exception: tar_bytes = b""
    elif raw[:4] == b"\x28\xb5\x2f\xfd":
        mt, tar_bytes = "application/vnd.oci.image.layer.v1.tar+zstd", b""
    else:
        mt, tar_bytes = "application/vnd.oci.image.layer.v1.tar", raw
    json.dump({"mediaType": mt, "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
               "size": len(raw), "diffId": "sha256:" + hashlib.sha256(tar_bytes).hexdigest()},
              open(n + ".json", "w"))
"#;

/// (layer file, phrases its one-line refusal holds after `NAME: `).
const HOSTILE: &[(&str, &[&str])] = &[
    (
        "dotdot.tar",
        &["entry 0: path \"a/../../victim/pwned\": '..' components are refused"],
    ),
    (
        "dotdot.tgz",
        &["entry 0: path \"a/../../victim/pwned\": '..' components are refused"],
    ),
    (
        "abs.tar",
        &["entry 0: path \"/etc/passwd\": absolute paths are refused"],
    ),
    ("nul.tar", &["entry 0: path \"a\\0b\": contains NUL"]),
    (
        "through.tar",
        &["entry 1 (etc/passwd): path \"etc/passwd\" is below the symlink \"etc\" of the same layer"],
    ),
    (
        "through.tgz",
        &["entry 1 (etc/passwd): path \"etc/passwd\" is below the symlink \"etc\" of the same layer"],
    ),
    (
        "climb.tar",
        &["entry 1 (up/pwned): path \"up/pwned\" is below the symlink \"up\""],
    ),
    (
        "hl-escape.tar",
        &["entry 0: h: hard link target: path \"../outside\": '..' components are refused"],
    ),
    (
        "hl-absent.tar",
        &["entry 0 (h): hard link target \"etc/shadow\" is not an earlier entry of this layer"],
    ),
    (
        "hl-absent.tgz",
        &["entry 0 (h): hard link target \"etc/shadow\" is not an earlier entry of this layer"],
    ),
    (
        "pax.tar",
        &["entry 0: PAX header of 2097169 bytes exceeds the 1048576 byte limit"],
    ),
    (
        "longname.tar",
        &["entry 0: GNU long name of 2097153 bytes exceeds the 1048576 byte limit"],
    ),
    (
        "liar.tar",
        &["entry 0 (liar): truncated: the header declares 1073741824 bytes, the stream ends after 512"],
    ),
    (
        "sparse.tar",
        &["entry 0: sparse: GNU sparse entries are not supported"],
    ),
    ("cut.tgz", &["entry ", "corrupt or truncated gzip stream"]),
    (
        "corrupt.tgz",
        &["corrupt or truncated gzip stream", "checksum"],
    ),
    ("cut.tzst", &["entry 0 (f): corrupt or truncated zstd stream"]),
];

fn descriptor(d: &Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(d.join(format!("{file}.json"))).unwrap()).unwrap()
}

fn hex(desc: &serde_json::Value) -> String {
    desc["digest"].as_str().unwrap()["sha256:".len()..].to_string()
}

fn craft(d: &Path) {
    // A truncated zstd layer, from strata's own writer.
    write(&d.join("z/f"), &crate::util::noise(300_000, 3), 0o644);
    ok_in(
        d,
        &["layer", "--out", "full.tzst", "--compression", "zstd", "z"],
    );
    let full = fs::read(d.join("full.tzst")).unwrap();
    fs::write(d.join("cut.tzst"), &full[..full.len() / 2]).unwrap();
    fs::remove_file(d.join("full.tzst")).unwrap();
    python(d, CRAFT);
}

#[test]
fn hostile_layers_are_refused_by_image_and_verify() {
    let t = tempdir();
    let d = t.path();
    craft(d);
    for (file, phrases) in HOSTILE {
        // No descriptor: strata reads the layer, refuses it, writes nothing.
        let prefix = format!("strata: layer {file}: ");
        let mut needles: Vec<&str> = vec![&prefix];
        needles.extend_from_slice(phrases);
        rejects(d, &["image", "--out", "img", "--layer", file], 1, &needles);
        // A trusted descriptor: composed without reading a byte of the layer.
        let out = format!("v-{file}");
        ok_in(
            d,
            &[
                "image",
                "--out",
                &out,
                "--layer",
                &format!("{file}:{file}.json"),
            ],
        );
        // verify reads it and names the image, the layer (position, digest) and the entry.
        let blob = format!(
            "strata: {out}/blobs/sha256/{} (layer 0): ",
            hex(&descriptor(d, file))
        );
        let mut needles: Vec<&str> = vec![&blob];
        needles.extend_from_slice(phrases);
        let line = rejects(d, &["verify", &out], 1, &needles);
        assert!(!line.contains("problems"), "one problem only: {line}");
    }
    // The position of the layer is named.
    ok_in(d, &["layer", "--out", "good.tgz", "z"]);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "two",
            "--layer",
            "good.tgz",
            "--layer",
            "through.tar:through.tar.json",
        ],
    );
    rejects(
        d,
        &["verify", "two"],
        1,
        &[&format!(
            "strata: two/blobs/sha256/{} (layer 1): entry 1 (etc/passwd): ",
            hex(&descriptor(d, "through.tar"))
        )],
    );
    // An oci-archive holding it, too.
    ok_in(
        d,
        &[
            "image",
            "--out",
            "a.tar",
            "--format",
            "oci-archive",
            "--layer",
            "liar.tar:liar.tar.json",
        ],
    );
    rejects(
        d,
        &["verify", "a.tar"],
        1,
        &[
            "strata: a.tar:blobs/sha256/",
            "(layer 0): entry 0 (liar): truncated",
        ],
    );
}

#[test]
fn tampered_hostile_blob_reports_digest_and_entry() {
    let t = tempdir();
    let d = t.path();
    python(d, CRAFT);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "benign.tar:benign.tar.json",
        ],
    );
    // Replace the blob by a hostile tar of the same size: both problems named.
    let blob = d
        .join("img/blobs/sha256")
        .join(hex(&descriptor(d, "benign.tar")));
    let mut hostile = fs::read(d.join("through.tar")).unwrap();
    hostile.resize(fs::metadata(&blob).unwrap().len() as usize, 0);
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, hostile).unwrap();
    let line = rejects(
        d,
        &["verify", "img"],
        1,
        &[
            "img: 2 problems: ",
            "(layer 0): entry 1 (etc/passwd): path \"etc/passwd\" is below the symlink",
            ": digest mismatch: content is sha256:",
        ],
    );
    assert!(!line.contains("diff_id"), "{line}");
    // A media type that names another compression than the blob's.
    let mut desc = descriptor(d, "benign.tar");
    desc["mediaType"] = serde_json::json!("application/vnd.oci.image.layer.v1.tar+gzip");
    fs::write(d.join("gz.json"), desc.to_string()).unwrap();
    ok_in(
        d,
        &["image", "--out", "mt", "--layer", "benign.tar:gz.json"],
    );
    rejects(
        d,
        &["verify", "mt"],
        1,
        &[&format!(
            "strata: mt/blobs/sha256/{} (layer 0): media type \"application/vnd.oci.image.layer.v1.tar+gzip\" says gzip, the blob is a plain tar",
            hex(&desc)
        )],
    );
}

/// A distro-like base layer: what real images hold though strata writes none of it.
const DISTRO: &str = r#"
import tarfile, io, gzip
t = tarfile.open("distro.tar", "w", format=tarfile.PAX_FORMAT)
def add(name, kind=tarfile.REGTYPE, data=None, **kw):
    i = tarfile.TarInfo(name); i.type = kind
    for k, v in kw.items(): setattr(i, k, v)
    if data is not None: i.size = len(data)
    t.addfile(i, io.BytesIO(data) if data is not None else None)
add("./", tarfile.DIRTYPE, mode=0o755)
add("bin", tarfile.DIRTYPE, mode=0o755)
add("bin/busybox", data=b"\x7fELF...", mode=0o755)
add("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox")
add("bin/ash", tarfile.LNKTYPE, linkname="bin/busybox")
add("bin/ash2", tarfile.LNKTYPE, linkname="./bin/ash")
add("dev", tarfile.DIRTYPE, mode=0o755)
add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
add("dev/loop0", tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660, gid=6)
add("dev/initctl", tarfile.FIFOTYPE, mode=0o600)
add("tmp", tarfile.DIRTYPE, mode=0o1777)
add("usr/bin/su", data=b"su", mode=0o4755)
add("usr/bin/wall", data=b"wall", mode=0o2755, gid=5, gname="tty")
i = tarfile.TarInfo("usr/bin/ping"); i.size = 4; i.mode = 0o755
i.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20"}
t.addfile(i, io.BytesIO(b"ping"))
add("etc/alternatives/x", tarfile.SYMTYPE, linkname="../../../../../usr/bin/x")
add("etc/localtime", tarfile.SYMTYPE, linkname="/usr/share/zoneinfo/UTC")
add("lib", tarfile.SYMTYPE, linkname="usr/lib")
add("usr/lib/libc.so.6", data=b"libc", uname="a-very-long-user-name-for-a-ustar-field")
add("var/lib/.wh.old", data=b"")
add("opt/.wh..wh..opq", data=b"")
add("bin/busybox", data=b"\x7fELF, again", mode=0o755)
t.close()
open("distro.tgz", "wb").write(gzip.compress(open("distro.tar", "rb").read(), mtime=0))
"#;

#[test]
fn distro_like_layers_pass_image_and_verify() {
    let t = tempdir();
    let d = t.path();
    python(d, DISTRO);
    for file in ["distro.tar", "distro.tgz"] {
        let out = format!("img-{file}");
        let digest = ok_in(d, &["image", "--out", &out, "--layer", file]);
        let ok = ok_in(d, &["verify", &out]);
        assert_eq!(
            ok,
            format!("ok: {} (3 blobs, 1 layers verified)\n", digest.trim())
        );
    }
    // normalize refuses the climbing symlink target: strata's layer model
    // cannot hold it (the rewritten layer would not be one strata writes),
    // yet extracting it is safe (a symlink target is never followed there).
    let o = run_in(d, &["normalize", "distro.tgz", "n.tgz"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("escapes the layer root"), "{err}");
}

#[test]
fn diff_ignore_leaves_out_matching_paths() {
    let t = tempdir();
    let d = t.path();
    let a = r#"{"type":"file","path":"etc/motd","content":"hi\n"},
               {"type":"file","path":"var/cache/apt/pkgcache.bin","content":"1"},
               {"type":"file","path":"usr/lib/python3/m.pyc","content":"1"}"#;
    let b = r#"{"type":"file","path":"etc/motd","content":"ho\n"},
               {"type":"file","path":"var/cache/apt/pkgcache.bin","content":"2"},
               {"type":"file","path":"var/cache/new","content":"x"},
               {"type":"file","path":"usr/lib/python3/m.pyc","content":"2"}"#;
    spec_layer(d, "a", a);
    spec_layer(d, "b", b);
    let diff = |args: &[&str]| {
        let mut v = vec!["diff"];
        v.extend_from_slice(args);
        v.extend(["a.tar", "b.tar"]);
        let o = run_in(d, &v);
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stdout).unwrap(),
        )
    };
    let (code, all) = diff(&[]);
    assert_eq!(code, 1);
    assert_eq!(all.lines().last(), Some("5 differences"), "{all}");
    let ig = [
        "--ignore",
        "var/cache/*",
        "--ignore",
        "**/*.pyc",
        "--semantic",
    ];
    let (code, out) = diff(&ig);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("layer: etc/motd: content: A sha256:"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "1 difference; --semantic ignored: digests and sizes (1); --ignore ignored: matching paths (3)"
    );
    // Without --semantic: the diff_id stays, the summary names only --ignore.
    let (_, out) = diff(&ig[..4]);
    assert_eq!(
        out.lines().last(),
        Some("2 differences; --ignore ignored: matching paths (3)"),
        "{out}"
    );
    // JSON: counted under "ignored", patterns listed.
    let (_, json) = diff(&[&ig[..], &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["ignored"],
        serde_json::json!({"digests and sizes": 1, "matching paths": 3})
    );
    assert_eq!(v["ignore"], serde_json::json!(["var/cache/*", "**/*.pyc"]));
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    assert_eq!(v["findings"][0]["path"], "etc/motd");
    // Everything that differs ignored: identical, exit 0.
    let (code, out) = diff(&[&ig[..], &["--ignore", "etc/motd"]].concat());
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "identical (semantically); --semantic ignored: digests and sizes (1); --ignore ignored: matching paths (4)\n"
    );
    // A pattern matching nothing says so.
    let (_, out) = diff(&["--ignore", "nothing/*"]);
    assert!(out.ends_with("; --ignore ignored nothing\n"), "{out}");
    // Images too: the layers' entries are compared below the manifests.
    for n in ["a", "b"] {
        ok_in(
            d,
            &[
                "image",
                "--out",
                &format!("{n}-img"),
                "--layer",
                &format!("{n}.tar"),
            ],
        );
    }
    let args = [&["diff"][..], &ig, &["--ignore", "etc/*", "a-img", "b-img"]].concat();
    let o = run_in(d, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A malformed pattern is an error (exit 2), named.
    let o = run_in(d, &["diff", "--ignore", "**.pyc", "a.tar", "b.tar"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "strata: --ignore: glob \"**.pyc\": '**' must be a whole path component (use '*' within one)\n"
    );
}
