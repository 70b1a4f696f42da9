//! Real OCI consumers accept what strata writes: oci-image-tool, skopeo and
//! umoci (Debian 12's packages, installed by `.ci/run`).
//!
//! - oci-image-tool 1.0.0-rc1: `validate --type image DIR` (`--type
//!   imageLayout` is "unimplemented"); `--ref name=TAG` selects by the
//!   `org.opencontainers.image.ref.name` annotation, which `--tag demo:1`
//!   records as `1`.
//! - skopeo 1.9.3: `oci:DIR[:TAG]`, `oci-archive:`, `docker-archive:`. No
//!   signature policy is read from /etc: every call passes `--insecure-policy`.
//!   `--override-arch` is a global flag (`skopeo --override-arch arm64 inspect`).
//! - umoci 0.4.7: `unpack --rootless --image DIR:TAG`.
//!
//! umoci 0.4.7 and oci-image-tool rc1 reject `tar+zstd` layers (umoci: "blob is
//! not correct mediatype", oci-image-tool: "invalid descriptor MediaType"), so
//! zstd images are checked with skopeo only.
//!
//! Every consumer failure panics with the consumer's whole stderr.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{fixture_tree, have_tool, ok_in, tempdir, write};

/// Run an external tool in `dir`; on failure, panic with its whole stderr.
fn tool_bytes(dir: &Path, prog: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tool(dir: &Path, prog: &str, args: &[&str]) -> String {
    String::from_utf8(tool_bytes(dir, prog, args)).unwrap()
}

/// skopeo with `--insecure-policy` (never /etc/containers/policy.json).
fn skopeo_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["--insecure-policy"];
    all.extend_from_slice(args);
    tool_bytes(dir, "skopeo", &all)
}

fn skopeo(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(skopeo_bytes(dir, args)).unwrap()
}

fn skopeo_json(dir: &Path, args: &[&str]) -> Value {
    let out = skopeo(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}:\n{out}"))
}

/// The `Digest` skopeo reports for `reference`.
fn skopeo_digest(dir: &Path, reference: &str) -> String {
    skopeo_json(dir, &["inspect", reference])["Digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `strata digest --json PATH`: manifest, config, layers, diffIds.
fn strata_digests(dir: &Path, path: &str) -> Value {
    serde_json::from_str(&ok_in(dir, &["digest", "--json", path])).unwrap()
}

/// The bytes of blob `digest` in the layout directory `layout`.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// `oci-image-tool validate --type image DIR [--ref name=REF]`.
fn validate(dir: &Path, layout: &str, ref_name: Option<&str>) {
    let sel;
    let mut args = vec!["validate", "--type", "image"];
    if let Some(r) = ref_name {
        sel = format!("name={r}");
        args.extend(["--ref", sel.as_str()]);
    }
    args.push(layout);
    let out = tool(dir, "oci-image-tool", &args);
    assert!(
        out.contains("Validation succeeded"),
        "oci-image-tool {args:?}:\n{out}"
    );
}

/// `umoci unpack --rootless --image IMAGE BUNDLE`; returns the rootfs.
fn umoci_unpack(dir: &Path, image: &str, bundle: &str) -> PathBuf {
    tool(
        dir,
        "umoci",
        &["unpack", "--rootless", "--image", image, bundle],
    );
    dir.join(bundle).join("rootfs")
}

/// A layer of `inputs` (gzip by default; `zstd`, `none`) with its descriptor
/// `NAME.json`; returns `NAME.blob:NAME.json` for `strata image --layer`.
fn layer(d: &Path, name: &str, comp: &str, inputs: &[&str]) -> String {
    let out = format!("{name}.blob");
    let desc = format!("{name}.json");
    let mut args = vec!["layer", "--out", &out, "--descriptor", &desc];
    if comp != "gzip" {
        // gzip is the default: leave the flag out so the default is what is tested.
        args.extend(["--compression", comp]);
    }
    args.extend_from_slice(inputs);
    ok_in(d, &args);
    format!("{out}:{desc}")
}

/// The fixture tree (in `d/tree`) as one layer compressed with `comp` and an
/// image tagged demo:1 written to `out` in `format`; returns its digest.
fn fixture_image(d: &Path, comp: &str, format: &str, out: &str) -> String {
    if !d.join("tree").exists() {
        fixture_tree(&d.join("tree"), false);
    }
    let spec = layer(d, comp, comp, &["tree"]);
    let args = [
        "image", "--out", out, "--format", format, "--layer", &spec, "--tag", "demo:1", "--cmd",
        "/bin/app",
    ];
    ok_in(d, &args).trim().to_string()
}

/// One entry of a file tree, as an unpacked image must show it.
#[derive(Debug, PartialEq)]
enum Node {
    Dir,
    /// Content and normalized mode.
    File(Vec<u8>, u32),
    Symlink(PathBuf),
}

/// Every entry under `root` (relative paths), files with the mode strata
/// gives them: 0755 when any exec bit is set, else 0644.
fn source_tree(root: &Path, into: &mut BTreeMap<PathBuf, Node>) {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Node>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = fs::symlink_metadata(&p).unwrap();
            let node = if m.file_type().is_symlink() {
                Node::Symlink(fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                walk(root, &p, into);
                Node::Dir
            } else {
                let mode = if m.mode() & 0o111 != 0 { 0o755 } else { 0o644 };
                Node::File(fs::read(&p).unwrap(), mode)
            };
            into.insert(rel, node);
        }
    }
    walk(root, root, into);
}

/// Check an unpacked rootfs entry by entry against the union of `sources`
/// (later ones win, as upper layers do): the same paths and nothing else,
/// the same types, contents and symlink targets, dirs 0755, files 0644/0755,
/// and every mtime 0.
fn assert_rootfs(rootfs: &Path, sources: &[&Path]) {
    let mut want = BTreeMap::new();
    for s in sources {
        source_tree(s, &mut want);
    }
    let mut got = BTreeMap::new();
    source_tree(rootfs, &mut got);
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "unpacked rootfs differs: missing {missing:?}, extra {extra:?}"
    );
    for (rel, node) in &want {
        let p = rootfs.join(rel);
        let m = fs::symlink_metadata(&p).unwrap();
        match node {
            Node::Dir => {
                assert!(m.is_dir(), "{rel:?}: not a directory");
                assert_eq!(
                    format!("{:o}", m.mode() & 0o7777),
                    "755",
                    "{rel:?}: dir mode"
                );
            }
            Node::File(content, mode) => {
                assert!(m.is_file(), "{rel:?}: not a regular file");
                assert_eq!(&fs::read(&p).unwrap(), content, "{rel:?}: content");
                assert_eq!(
                    format!("{:o}", m.mode() & 0o7777),
                    format!("{mode:o}"),
                    "{rel:?}: file mode"
                );
            }
            Node::Symlink(target) => {
                assert!(m.file_type().is_symlink(), "{rel:?}: not a symlink");
                assert_eq!(&fs::read_link(&p).unwrap(), target, "{rel:?}: target");
            }
        }
        assert_eq!(m.mtime(), 0, "{rel:?}: mtime");
    }
}

#[test]
fn oci_image_tool_validates_layouts() {
    if !have_tool("oci-image-tool") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    fixture_image(d, "gzip", "oci", "img");
    validate(d, "img", None);
    validate(d, "img", Some("1"));
    // The ref is really looked up: an unknown one fails.
    let out = Command::new("oci-image-tool")
        .current_dir(d)
        .args(["validate", "--type", "image", "--ref", "name=nope", "img"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "name=nope must not match");
    // Uncompressed layers too.
    fixture_image(d, "none", "oci", "plain");
    validate(d, "plain", Some("1"));
    // A two-layer image on a base.
    write(&d.join("top/extra.txt"), b"extra\n", 0o644);
    let top = layer(d, "top", "gzip", &["top"]);
    ok_in(
        d,
        &[
            "image", "--out", "two", "--base", "img", "--layer", &top, "--tag", "demo:2",
        ],
    );
    validate(d, "two", Some("2"));
}

#[test]
fn skopeo_reads_layouts_with_strata_s_digest() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "gzip", "oci", "img");
    let ours = strata_digests(d, "img");
    assert_eq!(ours["manifest"], digest.as_str());
    assert_eq!(skopeo_digest(d, "oci:img"), digest);
    assert_eq!(skopeo_digest(d, "oci:img:1"), digest);
    let seen = skopeo_json(d, &["inspect", "oci:img:1"]);
    assert_eq!(seen["Layers"], ours["layers"]);
    assert_eq!(seen["Architecture"], "amd64");
    assert_eq!(seen["Os"], "linux");
    // --raw gives the manifest blob byte for byte, --config --raw the config.
    let layout = d.join("img");
    assert_eq!(
        skopeo_bytes(d, &["inspect", "--raw", "oci:img"]),
        blob(&layout, &digest)
    );
    assert_eq!(
        skopeo_bytes(d, &["inspect", "--raw", "oci:img:1"]),
        blob(&layout, &digest)
    );
    let config = skopeo_bytes(d, &["inspect", "--config", "--raw", "oci:img:1"]);
    assert_eq!(config, blob(&layout, ours["config"].as_str().unwrap()));
    let manifest: Value = serde_json::from_slice(&blob(&layout, &digest)).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    // A copy between layouts keeps every digest.
    skopeo(
        d,
        &["copy", "--preserve-digests", "oci:img:1", "oci:same:1"],
    );
    assert_eq!(ok_in(d, &["digest", "same"]).trim(), digest);
    ok_in(d, &["verify", "same"]);
}

#[test]
fn skopeo_reads_and_writes_archives() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "gzip", "oci", "img");
    let ours = strata_digests(d, "img");
    // strata's oci-archive: the same image, the same digest.
    assert_eq!(
        fixture_image(d, "gzip", "oci-archive", "img.oci.tar"),
        digest
    );
    assert_eq!(skopeo_digest(d, "oci-archive:img.oci.tar"), digest);
    assert_eq!(
        skopeo_bytes(d, &["inspect", "--raw", "oci-archive:img.oci.tar"]),
        blob(&d.join("img"), &digest)
    );
    // strata's docker-archive (also an OCI layout). skopeo reads it as Docker
    // would: a Docker schema 2 manifest it makes up itself (so its Digest is
    // not strata's), with strata's config and the layers' diff_ids.
    assert_eq!(
        fixture_image(d, "gzip", "docker-archive", "img.docker.tar"),
        digest
    );
    let docker = skopeo_json(d, &["inspect", "docker-archive:img.docker.tar"]);
    assert_eq!(docker["Layers"], ours["diffIds"]);
    assert_eq!(docker["Architecture"], "amd64");
    let raw: Value = serde_json::from_slice(&skopeo_bytes(
        d,
        &["inspect", "--raw", "docker-archive:img.docker.tar"],
    ))
    .unwrap();
    assert_eq!(raw["config"]["digest"], ours["config"]);
    assert_eq!(skopeo_digest(d, "oci-archive:img.docker.tar"), digest);
    // docker-archive -> OCI layout: skopeo recompresses the layers, so the
    // digests change, but the uncompressed content (diff_ids) does not.
    skopeo(
        d,
        &["copy", "docker-archive:img.docker.tar", "oci:fromdocker:1"],
    );
    ok_in(d, &["verify", "fromdocker"]);
    assert_eq!(strata_digests(d, "fromdocker")["diffIds"], ours["diffIds"]);
    // OCI layout -> docker-archive.
    skopeo(d, &["copy", "oci:img", "docker-archive:copy.tar:demo:1"]);
    let config: Value = serde_json::from_slice(&skopeo_bytes(
        d,
        &["inspect", "--config", "--raw", "docker-archive:copy.tar"],
    ))
    .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"], ours["diffIds"]);
    assert_eq!(config["config"]["Cmd"][0], "/bin/app");
}

#[test]
fn skopeo_reads_zstd_images() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "zstd", "oci", "img");
    let manifest: Value = serde_json::from_slice(&blob(&d.join("img"), &digest)).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(skopeo_digest(d, "oci:img"), digest);
    assert_eq!(skopeo_digest(d, "oci:img:1"), digest);
    assert_eq!(
        skopeo_bytes(d, &["inspect", "--raw", "oci:img"]),
        blob(&d.join("img"), &digest)
    );
    skopeo(d, &["copy", "oci:img", "oci:copy:1"]);
    ok_in(d, &["verify", "copy"]);
    skopeo(d, &["copy", "--preserve-digests", "oci:img", "oci:same:1"]);
    assert_eq!(ok_in(d, &["digest", "same"]).trim(), digest);
    // The same tree with gzip has the same diff_id.
    fixture_image(d, "gzip", "oci", "gz");
    assert_eq!(
        strata_digests(d, "img")["diffIds"],
        strata_digests(d, "gz")["diffIds"]
    );
}

#[test]
fn skopeo_resolves_index_platforms() {
    if !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    write(&d.join("t/f"), b"f\n", 0o644);
    let l = layer(d, "l", "gzip", &["t"]);
    let mut built = Vec::new();
    for (out, platform) in [("amd", "linux/amd64"), ("arm", "linux/arm64")] {
        let args = ["image", "--out", out, "--layer", &l, "--platform", platform];
        built.push(ok_in(d, &args).trim().to_string());
    }
    let (amd, arm) = (&built[0], &built[1]);
    let idx = ok_in(
        d,
        &["index", "--out", "idx", "--tag", "multi:1", "amd", "arm"],
    );
    let idx = idx.trim();
    assert_eq!(ok_in(d, &["digest", "idx"]).trim(), idx);
    // --raw shows the index itself, byte for byte.
    let raw = skopeo_bytes(d, &["inspect", "--raw", "oci:idx"]);
    assert_eq!(raw, blob(&d.join("idx"), idx));
    assert_eq!(skopeo_bytes(d, &["inspect", "--raw", "oci:idx:1"]), raw);
    let raw: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let entries: Vec<(&str, &str)> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(entries, [(amd.as_str(), "amd64"), (arm.as_str(), "arm64")]);
    // skopeo picks the entry for the platform asked for. Its `Digest` for an
    // index reference is the index's own; the chosen manifest shows in its
    // config, and in what a copy of that platform writes.
    for (arch, dir, digest) in [("arm64", "arm", arm), ("amd64", "amd", amd)] {
        let seen = skopeo_json(d, &["--override-arch", arch, "inspect", "oci:idx"]);
        assert_eq!(seen["Architecture"], arch);
        assert_eq!(seen["Digest"], idx);
        let config = skopeo_bytes(
            d,
            &[
                "--override-arch",
                arch,
                "inspect",
                "--config",
                "--raw",
                "oci:idx:1",
            ],
        );
        let want = strata_digests(d, dir)["config"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(config, blob(&d.join(dir), &want), "{arch} config");
        let copy = format!("copy-{arch}");
        skopeo(
            d,
            &[
                "--override-arch",
                arch,
                "copy",
                "--preserve-digests",
                "oci:idx",
                &format!("oci:{copy}:1"),
            ],
        );
        assert_eq!(
            ok_in(d, &["digest", &copy]).trim(),
            digest.as_str(),
            "{arch}"
        );
    }
}

#[test]
fn umoci_unpacks_the_fixture_file_by_file() {
    if !have_tool("umoci") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    fixture_image(d, "gzip", "oci", "img");
    let rootfs = umoci_unpack(d, "img:1", "bundle");
    assert_rootfs(&rootfs, &[&d.join("tree")]);
    // The fixture's special cases are there (so the walk above saw them).
    let mode = |rel: &str| fs::symlink_metadata(rootfs.join(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("etc/motd"), 0o644, "0600 becomes 0644");
    assert_eq!(mode("bin/app"), 0o755, "0700 becomes 0755");
    assert_eq!(mode("usr/share/doc/README"), 0o644, "0664 becomes 0644");
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("app")
    );
    assert_eq!(
        fs::read_link(rootfs.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    let long = format!("deep/{}/{}.txt", "d".repeat(60), "f".repeat(60));
    assert!(long.len() > 100);
    assert_eq!(fs::read(rootfs.join(long)).unwrap(), b"long path\n");
    assert_eq!(
        fs::read(rootfs.join("data/caf\u{e9}/\u{65e5}\u{672c}.txt")).unwrap(),
        b"unicode\n"
    );
    assert_eq!(fs::read_dir(rootfs.join("var/empty")).unwrap().count(), 0);
    // The uncompressed layer unpacks the same.
    fixture_image(d, "none", "oci", "plain");
    let plain = umoci_unpack(d, "plain:1", "bundle-plain");
    assert_rootfs(&plain, &[&d.join("tree")]);
}

/// Hard links (identical files of 16 KiB and more), whiteouts, an opaque
/// directory and an overwritten file, across two layers.
#[test]
fn umoci_applies_links_whiteouts_and_overwrites() {
    if !have_tool("umoci") || !have_tool("oci-image-tool") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let big = vec![b'x'; 20 * 1024];
    write(&d.join("lower/big/a"), &big, 0o644);
    write(&d.join("lower/big/b"), &big, 0o644);
    write(&d.join("lower/keep.txt"), b"lower\n", 0o644);
    write(&d.join("lower/gone.txt"), b"gone\n", 0o644);
    write(&d.join("lower/cache/old"), b"old\n", 0o644);
    let lower = layer(d, "lower", "gzip", &["lower"]);
    let listing = tool(d, "tar", &["-tvzf", "lower.blob"]);
    assert!(listing.contains("big/b link to big/a"), "{listing}");
    fs::write(
        d.join("upper.spec.json"),
        br#"{"version":1,"entries":[
  {"type":"whiteout","path":"gone.txt"},
  {"type":"opaque","path":"cache"},
  {"type":"file","path":"cache/new","content":"new\n"},
  {"type":"file","path":"keep.txt","content":"upper\n","mode":"0600"}]}"#,
    )
    .unwrap();
    let upper = layer(d, "upper", "gzip", &["--spec", "upper.spec.json"]);
    ok_in(
        d,
        &[
            "image", "--out", "img", "--layer", &lower, "--layer", &upper, "--tag", "x:1",
        ],
    );
    validate(d, "img", Some("1"));
    let rootfs = umoci_unpack(d, "img:1", "bundle");
    let (a, b) = (
        fs::metadata(rootfs.join("big/a")).unwrap(),
        fs::metadata(rootfs.join("big/b")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "big/b is a hard link");
    assert_eq!(fs::read(rootfs.join("big/b")).unwrap(), big);
    assert_eq!(fs::read(rootfs.join("keep.txt")).unwrap(), b"upper\n");
    assert_eq!(
        fs::metadata(rootfs.join("keep.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert!(!rootfs.join("gone.txt").exists(), "whiteout applied");
    let cache: Vec<_> = fs::read_dir(rootfs.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cache, ["new"], "opaque dir hides the lower contents");
    let mut all = BTreeMap::new();
    source_tree(&rootfs, &mut all);
    let wh: Vec<_> = all
        .keys()
        .filter(|p| p.to_string_lossy().contains(".wh."))
        .collect();
    assert!(wh.is_empty(), "whiteout files left in the rootfs: {wh:?}");
}

#[test]
fn strata_composes_on_a_layout_skopeo_wrote() {
    if !have_tool("skopeo") || !have_tool("umoci") || !have_tool("oci-image-tool") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let digest = fixture_image(d, "gzip", "oci", "img");
    // skopeo writes its own index.json (ref.name "b") and copies the blobs.
    skopeo(d, &["copy", "oci:img:1", "oci:base:b"]);
    assert_eq!(ok_in(d, &["digest", "base"]).trim(), digest);
    write(&d.join("new/some-file"), b"added\n", 0o644);
    write(&d.join("new/bin/tool"), b"#!/bin/sh\n", 0o750);
    let new = layer(d, "new", "gzip", &["new"]);
    let top = ok_in(
        d,
        &[
            "image", "--out", "top", "--base", "base", "--layer", &new, "--tag", "top:1",
        ],
    );
    ok_in(d, &["verify", "top"]);
    let ours = strata_digests(d, "top");
    assert_eq!(ours["layers"].as_array().unwrap().len(), 2);
    assert_eq!(ours["layers"][0], strata_digests(d, "img")["layers"][0]);
    validate(d, "top", Some("1"));
    assert_eq!(skopeo_digest(d, "oci:top:1"), top.trim());
    let rootfs = umoci_unpack(d, "top:1", "bundle");
    assert_rootfs(&rootfs, &[&d.join("tree"), &d.join("new")]);
    assert_eq!(fs::read(rootfs.join("some-file")).unwrap(), b"added\n");
    assert_eq!(
        fs::read(rootfs.join("etc/motd")).unwrap(),
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
