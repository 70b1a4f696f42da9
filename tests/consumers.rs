//! Real OCI consumers accept what strata writes: oci-image-tool, skopeo and
//! umoci (Debian's packages, installed by `.ci/run`). umoci and
//! oci-image-tool reject `tar+zstd` layers, so zstd images are checked with
//! skopeo only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{fixture_tree, have_tool, ok_in, tempdir, write};

/// Run an external tool in `dir`; on failure, panic with its whole stderr.
fn tool(dir: &Path, prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    tool(dir, "skopeo", &all)
}

fn skopeo_digest(dir: &Path, reference: &str) -> String {
    let v: Value = serde_json::from_str(&skopeo(dir, &["inspect", reference])).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

/// The fixture tree as one gzip layer (or `comp`) and an image tagged demo:1.
fn fixture_image(d: &Path, comp: &str, format: &str, out: &str) -> String {
    if !d.join("tree").exists() {
        fixture_tree(&d.join("tree"), false);
    }
    let layer = format!("{comp}.layer");
    let desc = format!("{comp}.json");
    ok_in(
        d,
        &[
            "layer",
            "--out",
            &layer,
            "--descriptor",
            &desc,
            "--compression",
            comp,
            "tree",
        ],
    );
    let spec = format!("{layer}:{desc}");
    let args = [
        "image", "--out", out, "--format", format, "--layer", &spec, "--tag", "demo:1", "--cmd",
        "/bin/app",
    ];
    ok_in(d, &args).trim().to_string()
}

#[test]
fn oci_image_tool_validates_layouts() {
    if !have_tool("oci-image-tool") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    fixture_image(d, "gzip", "oci", "img");
    let out = tool(d, "oci-image-tool", &["validate", "--type", "image", "img"]);
    assert!(out.contains("Validation succeeded"), "{out}");
    // A multi-layer image on a base.
    write(&d.join("top/extra.txt"), b"extra\n", 0o644);
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "top.tgz",
            "--descriptor",
            "top.json",
            "top",
        ],
    );
    ok_in(
        d,
        &[
            "image",
            "--out",
            "two",
            "--base",
            "img",
            "--layer",
            "top.tgz:top.json",
            "--tag",
            "demo:2",
        ],
    );
    tool(d, "oci-image-tool", &["validate", "--type", "image", "two"]);
}

#[test]
fn skopeo_reads_every_format_with_strata_s_digest() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "gzip", "oci", "img");
    assert_eq!(ok_in(d, &["digest", "img"]).trim(), digest);
    assert_eq!(skopeo_digest(d, "oci:img"), digest);
    assert_eq!(skopeo_digest(d, "oci:img:1"), digest);
    // --raw gives the manifest blob byte for byte.
    let raw = skopeo(d, &["inspect", "--raw", "oci:img"]);
    let blob = fs::read_to_string(
        d.join("img/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(raw.trim_end(), blob);
    // oci-archive and docker-archive outputs.
    assert_eq!(
        fixture_image(d, "gzip", "oci-archive", "img.oci.tar"),
        digest
    );
    assert_eq!(skopeo_digest(d, "oci-archive:img.oci.tar"), digest);
    assert_eq!(
        fixture_image(d, "gzip", "docker-archive", "img.docker.tar"),
        digest
    );
    // skopeo converts docker-archive manifests to Docker schema 2; it still reads the layers.
    skopeo(d, &["inspect", "docker-archive:img.docker.tar"]);
    assert_eq!(skopeo_digest(d, "oci-archive:img.docker.tar"), digest);
    // Copies both ways.
    skopeo(d, &["copy", "oci:img", "docker-archive:copy.tar:demo:1"]);
    skopeo(
        d,
        &["copy", "docker-archive:img.docker.tar", "oci:fromdocker:1"],
    );
    ok_in(d, &["verify", "fromdocker"]);
    skopeo(
        d,
        &["copy", "--preserve-digests", "oci:img:1", "oci:same:1"],
    );
    assert_eq!(ok_in(d, &["digest", "same"]).trim(), digest);
}

#[test]
fn skopeo_reads_zstd_images() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "zstd", "oci", "img");
    assert_eq!(skopeo_digest(d, "oci:img"), digest);
    skopeo(d, &["copy", "oci:img", "oci:copy:1"]);
    ok_in(d, &["verify", "copy"]);
}

#[test]
fn skopeo_resolves_index_platforms() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    write(&d.join("t/f"), b"f", 0o644);
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "t"],
    );
    let amd = ok_in(
        d,
        &[
            "image",
            "--out",
            "amd",
            "--layer",
            "l.tgz:l.json",
            "--platform",
            "linux/amd64",
        ],
    );
    let arm = ok_in(
        d,
        &[
            "image",
            "--out",
            "arm",
            "--layer",
            "l.tgz:l.json",
            "--platform",
            "linux/arm64",
        ],
    );
    let idx = ok_in(d, &["index", "--out", "idx", "amd", "arm"]);
    let raw: Value = serde_json::from_str(&skopeo(d, &["inspect", "--raw", "oci:idx"])).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let arm_seen = skopeo(d, &["--override-arch", "arm64", "inspect", "oci:idx"]);
    let v: Value = serde_json::from_str(&arm_seen).unwrap();
    assert_eq!(v["Architecture"], "arm64");
    let amd_seen: Value = serde_json::from_str(&skopeo(
        d,
        &["--override-arch", "amd64", "inspect", "oci:idx"],
    ))
    .unwrap();
    assert_eq!(amd_seen["Architecture"], "amd64");
    // skopeo's Digest for an index reference is the index's own digest.
    assert_eq!(v["Digest"], idx.trim());
    // The platform entries point at the two images strata built.
    let ds: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(ds, [amd.trim(), arm.trim()]);
    assert_eq!(ok_in(d, &["digest", "idx"]), idx);
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn umoci_unpacks_the_fixture_file_by_file() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    fixture_image(d, "gzip", "oci", "img");
    tool(
        d,
        "umoci",
        &["unpack", "--rootless", "--image", "img:1", "bundle"],
    );
    let root = d.join("bundle/rootfs");
    let tree = d.join("tree");
    let long = format!("deep/{}/{}.txt", "d".repeat(60), "f".repeat(60));
    for (rel, want_mode) in [
        ("etc/motd", 0o644),
        ("bin/app", 0o755),
        ("usr/share/doc/README", 0o644),
        (long.as_str(), 0o644),
        ("data/caf\u{e9}/\u{65e5}\u{672c}.txt", 0o644),
    ] {
        assert_eq!(
            fs::read(root.join(rel)).unwrap(),
            fs::read(tree.join(rel)).unwrap(),
            "{rel}"
        );
        assert_eq!(mode(&root.join(rel)), want_mode, "{rel}");
    }
    for dir in ["bin", "etc", "var/empty", "data/caf\u{e9}", "deep"] {
        assert!(root.join(dir).is_dir(), "{dir}");
        assert_eq!(mode(&root.join(dir)), 0o755, "{dir}");
    }
    assert_eq!(fs::read_dir(root.join("var/empty")).unwrap().count(), 0);
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("app")
    );
    assert_eq!(
        fs::read_link(root.join("etc/localtime")).unwrap().to_str(),
        Some("/usr/share/zoneinfo/UTC")
    );
}

#[test]
fn strata_composes_on_a_layout_skopeo_wrote() {
    if !have_tool("skopeo") || !have_tool("umoci") || !have_tool("oci-image-tool") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    fixture_image(d, "gzip", "oci", "img");
    // skopeo re-serializes nothing with --preserve-digests, but writes its own index.json.
    skopeo(d, &["copy", "oci:img:1", "oci:base:b"]);
    write(&d.join("new/some-file"), b"added\n", 0o644);
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "new.tgz",
            "--descriptor",
            "new.json",
            "new",
        ],
    );
    ok_in(
        d,
        &[
            "image",
            "--out",
            "top",
            "--base",
            "base",
            "--layer",
            "new.tgz:new.json",
            "--tag",
            "top:1",
        ],
    );
    ok_in(d, &["verify", "top"]);
    tool(d, "oci-image-tool", &["validate", "--type", "image", "top"]);
    tool(
        d,
        "umoci",
        &["unpack", "--rootless", "--image", "top:1", "bundle"],
    );
    let root = d.join("bundle/rootfs");
    assert_eq!(fs::read(root.join("some-file")).unwrap(), b"added\n");
    assert_eq!(
        fs::read(root.join("etc/motd")).unwrap(),
        b"hello from strata\n"
    );
}

/// strata's gzip layers are several gzip members (fixed 1 MiB blocks). Every
/// reader a layer meets reads them all: GNU gunzip, Python's gzip, flate2's
/// MultiGzDecoder (strata verify), Go's compress/gzip (skopeo, umoci; and
/// docker/podman in tests/engines.rs). A single-member reader would stop after
/// the first MiB — the test shows flate2's GzDecoder does.
#[test]
fn multi_member_gzip_is_read_whole_by_every_reader() {
    if !have_tool("skopeo") || !have_tool("umoci") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let mut x: u64 = 3;
    let data: Vec<u8> = (0..3_500_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                b'a'
            } else {
                x as u8
            }
        })
        .collect();
    write(&d.join("t/big.bin"), &data, 0o644);
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "t"],
    );
    let desc: Value = serde_json::from_slice(&fs::read(d.join("l.json")).unwrap()).unwrap();
    let diff_id = desc["diffId"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let members = fs::read(d.join("l.tgz"))
        .unwrap()
        .windows(10)
        .filter(|w| w == &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
        .count();
    assert!(
        members >= 3,
        "expected several gzip members, found {members}"
    );
    let gunzip = tool(d, "sh", &["-c", "gunzip -c l.tgz | sha256sum"]);
    assert!(gunzip.starts_with(&diff_id), "gunzip: {gunzip}");
    let py = tool(d, "python3", &["-c", "import gzip,hashlib;print(hashlib.sha256(gzip.decompress(open('l.tgz','rb').read())).hexdigest())"]);
    assert_eq!(py.trim(), diff_id, "python gzip");
    let mut all = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(fs::File::open(d.join("l.tgz")).unwrap()),
        &mut all,
    )
    .unwrap();
    assert_eq!(
        strata::digest::Digest::of(&all).hex(),
        diff_id,
        "flate2 MultiGzDecoder"
    );
    let mut first = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(fs::File::open(d.join("l.tgz")).unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        first.len() < all.len(),
        "GzDecoder stops after the first member"
    );
    // Go's gzip: skopeo copy recomputes nothing with --preserve-digests but umoci
    // unpack decompresses the whole layer and checks the diff_id.
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "l.tgz:l.json",
            "--tag",
            "x:1",
        ],
    );
    tool(
        d,
        "umoci",
        &["unpack", "--rootless", "--image", "img:1", "bundle"],
    );
    assert_eq!(fs::read(d.join("bundle/rootfs/big.bin")).unwrap(), data);
    skopeo(d, &["copy", "oci:img:1", "docker-archive:d.tar:x:1"]);
}
