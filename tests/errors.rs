//! Bad input gets one clear line and loses nothing.
//!
//! Every case checks the exit code, that stderr is exactly one line
//! `strata: …` naming the file and the problem, that no output (and no
//! `.strata-tmp-*` temporary) exists afterwards, and, where an output existed
//! before, that it is untouched.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{fail_in, ok_in, strata, tempdir, write};

/// Names in `dir` that are outputs or strata temporaries.
fn leftovers(dir: &Path, outputs: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata-tmp-") || outputs.contains(&n.as_str()))
        .collect()
}

fn assert_no_output(dir: &Path, outputs: &[&str]) {
    let l = leftovers(dir, outputs);
    assert!(l.is_empty(), "left behind: {l:?}");
}

/// Run, expect `code`, one stderr line containing every `needle`, no output.
fn rejects(dir: &Path, args: &[&str], code: i32, needles: &[&str]) {
    let err = fail_in(dir, args, code);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("strata: "), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "{args:?}: {n:?} not in: {err}");
    }
    assert_no_output(dir, &["out", "out.tgz", "out.json", "img", "img.tar"]);
}

fn spec_rejects(entries: &str, needles: &[&str]) {
    let t = tempdir();
    let d = t.path();
    fs::write(
        d.join("spec.json"),
        format!(r#"{{"version":1,"entries":[{entries}]}}"#),
    )
    .unwrap();
    rejects(
        d,
        &[
            "layer",
            "--out",
            "out.tgz",
            "--descriptor",
            "out.json",
            "--spec",
            "spec.json",
        ],
        1,
        needles,
    );
}

#[test]
fn bad_paths_in_specs() {
    let f = |p: &str| format!(r#"{{"type":"file","path":{p},"content":"x"}}"#);
    spec_rejects(&f(r#""a/../b""#), &["spec.json", "entry 0", "'..'"]);
    spec_rejects(
        &f(r#""/etc/passwd""#),
        &["spec.json", "absolute paths are not allowed"],
    );
    spec_rejects(
        &f(r#""a//b""#),
        &["spec.json", "\"a//b\"", "empty component"],
    );
    spec_rejects(&f(r#""a\u0000b""#), &["spec.json", "NUL"]);
    spec_rejects(&f(r#""""#), &["spec.json", "empty path"]);
    spec_rejects(&f(r#""./""#), &["spec.json", "empty path"]);
}

#[test]
fn duplicate_paths() {
    let e = r#"{"type":"file","path":"a","content":"1"},{"type":"file","path":"a","content":"2"}"#;
    spec_rejects(
        e,
        &[
            "a: duplicate path",
            "spec.json entry 0",
            "spec.json entry 1",
        ],
    );
    let e = r#"{"type":"dir","path":"a"},{"type":"file","path":"a","content":"2"}"#;
    spec_rejects(e, &["a: duplicate path"]);
    let e = r#"{"type":"dir","path":"a","mode":"0700"},{"type":"dir","path":"a"}"#;
    spec_rejects(e, &["a: declared twice with different attributes"]);
    // A spec entry and a directory input giving the same file.
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/etc/motd"), b"x", 0o644);
    fs::write(
        d.join("spec.json"),
        r#"{"version":1,"entries":[{"type":"file","path":"etc/motd","content":"y"}]}"#,
    )
    .unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "spec.json", "tree"],
        1,
        &["etc/motd: duplicate path", "input directory tree"],
    );
}

#[test]
fn bad_sources() {
    let t = tempdir();
    let d = t.path();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    fs::create_dir(d.join("adir")).unwrap();
    for (src, needle) in [
        ("dangling", "dangling symlink"),
        ("missing", "no such file or directory"),
        ("adir", "not a regular file"),
    ] {
        fs::write(
            d.join("spec.json"),
            format!(r#"{{"version":1,"entries":[{{"type":"file","path":"x","src":"{src}"}}]}}"#),
        )
        .unwrap();
        rejects(
            d,
            &["layer", "--out", "out.tgz", "--spec", "spec.json"],
            1,
            &["spec.json", src, needle],
        );
    }
    rejects(
        d,
        &["layer", "--out", "out.tgz", "nonexistent-dir"],
        1,
        &["nonexistent-dir", "no such file or directory"],
    );
}

#[test]
fn escaping_symlinks() {
    spec_rejects(
        r#"{"type":"symlink","path":"a/b","target":"../../x"}"#,
        &["a/b -> ../../x", "escapes the layer root"],
    );
    let t = tempdir();
    let d = t.path();
    fs::create_dir_all(d.join("tree/sub")).unwrap();
    std::os::unix::fs::symlink("../../../etc/shadow", d.join("tree/sub/evil")).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree"],
        1,
        &["tree/sub/evil", "escapes the layer root"],
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    spec_rejects(
        r#"{"type":"symlink","path":"a","target":"/etc"},{"type":"file","path":"a/passwd","content":"root::0:0"}"#,
        &["a/passwd: parent a is a symlink"],
    );
}

#[test]
fn malformed_specs() {
    let t = tempdir();
    let d = t.path();
    let deep = "[".repeat(100) + &"]".repeat(100);
    let cases: Vec<(String, &str)> = vec![
        (r#"{"version":1,"entries":[}"#.into(), "malformed JSON"),
        (
            r#"{"version":2,"entries":[]}"#.into(),
            "unsupported spec version 2",
        ),
        (r#"{"entries":[]}"#.into(), "missing \"version\""),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","mdoe":"0755"}]}"#.into(),
            "mdoe",
        ),
        (
            format!(r#"{{"version":1,"entries":{deep}}}"#),
            "nested deeper",
        ),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":7}]}"#.into(),
            "malformed JSON",
        ),
        (
            r#"{"version":1,"entries":[{"type":"socket","path":"a"}]}"#.into(),
            "socket",
        ),
    ];
    for (text, needle) in cases {
        fs::write(d.join("spec.json"), text).unwrap();
        rejects(
            d,
            &["layer", "--out", "out.tgz", "--spec", "spec.json"],
            1,
            &["spec.json", needle],
        );
    }
}

fn one_layer(d: &Path) {
    write(&d.join("t/f"), b"content", 0o644);
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "t"],
    );
}

#[test]
fn bad_descriptors() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    let good: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("l.json")).unwrap()).unwrap();
    let mut wrong_size = good.clone();
    wrong_size["size"] = serde_json::json!(1);
    fs::write(d.join("size.json"), wrong_size.to_string()).unwrap();
    rejects(
        d,
        &["image", "--out", "img", "--layer", "l.tgz:size.json"],
        1,
        &["l.tgz", "size mismatch", "size.json"],
    );
    fs::write(d.join("bad.json"), "{not json").unwrap();
    rejects(
        d,
        &["image", "--out", "img", "--layer", "l.tgz:bad.json"],
        1,
        &["bad.json", "malformed JSON"],
    );
    let mut bad_digest = good.clone();
    bad_digest["digest"] = serde_json::json!("sha256:XYZ");
    fs::write(d.join("digest.json"), bad_digest.to_string()).unwrap();
    rejects(
        d,
        &["image", "--out", "img", "--layer", "l.tgz:digest.json"],
        1,
        &["digest.json", "invalid digest"],
    );
}

/// An image in `img`, returning the layout path and the layer blob path.
fn image(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    one_layer(d);
    ok_in(d, &["image", "--out", "good", "--layer", "l.tgz:l.json"]);
    let l: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("l.json")).unwrap()).unwrap();
    let hex = l["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    (d.join("good"), d.join("good/blobs/sha256").join(hex))
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn verify_finds_corruption() {
    let t = tempdir();
    let d = t.path();
    let (_, layer) = image(d);
    let hex = layer.file_name().unwrap().to_str().unwrap().to_string();
    // A modified layer blob (break the hard link first: it is shared with l.tgz).
    copy_dir(&d.join("good"), &d.join("modified"));
    let blob = d.join("modified/blobs/sha256").join(&hex);
    let mut bytes = fs::read(&blob).unwrap();
    fs::remove_file(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let err = fail_in(d, &["verify", "modified"], 1);
    assert!(
        err.contains(&hex) && err.contains("digest mismatch"),
        "{err}"
    );
    // A missing blob.
    copy_dir(&d.join("good"), &d.join("missing"));
    fs::remove_file(d.join("missing/blobs/sha256").join(&hex)).unwrap();
    let err = fail_in(d, &["verify", "missing"], 1);
    assert!(err.contains(&hex) && err.contains("missing"), "{err}");
    // Malformed index.json.
    copy_dir(&d.join("good"), &d.join("badindex"));
    fs::write(d.join("badindex/index.json"), "{").unwrap();
    rejects(
        d,
        &["verify", "badindex"],
        1,
        &["badindex/index.json", "malformed JSON"],
    );
    // A truncated config blob.
    copy_dir(&d.join("good"), &d.join("trunc"));
    let j: serde_json::Value =
        serde_json::from_str(&ok_in(d, &["digest", "--json", "good"])).unwrap();
    let cfg = d
        .join("trunc/blobs/sha256")
        .join(j["config"].as_str().unwrap().trim_start_matches("sha256:"));
    let bytes = fs::read(&cfg).unwrap();
    fs::write(&cfg, &bytes[..bytes.len() / 2]).unwrap();
    let err = fail_in(d, &["verify", "trunc"], 1);
    assert!(err.contains("size mismatch"), "{err}");
}

#[test]
fn not_layouts() {
    let t = tempdir();
    let d = t.path();
    fs::create_dir(d.join("empty")).unwrap();
    rejects(d, &["digest", "empty"], 1, &["empty/oci-layout", "missing"]);
    fs::write(d.join("random.bin"), vec![7u8; 3000]).unwrap();
    rejects(d, &["digest", "random.bin"], 1, &["random.bin"]);
    one_layer(d);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "a.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    let bytes = fs::read(d.join("a.tar")).unwrap();
    fs::write(d.join("cut.tar"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fail_in(d, &["digest", "cut.tar"], 1);
    assert!(err.starts_with("strata: cut.tar"), "{err}");
}

#[test]
fn bad_base_images() {
    let t = tempdir();
    let d = t.path();
    let (good, _) = image(d);
    copy_dir(&good, &d.join("base"));
    let idx: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("base/index.json")).unwrap()).unwrap();
    let m = idx["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    // Replace the manifest with malformed JSON of the same digest? Impossible:
    // the digest check catches it first, naming the blob.
    let mpath = d.join("base/blobs/sha256").join(&m);
    fs::remove_file(&mpath).unwrap();
    fs::write(&mpath, "{").unwrap();
    rejects(
        d,
        &[
            "image",
            "--out",
            "img",
            "--base",
            "base",
            "--layer",
            "l.tgz:l.json",
        ],
        1,
        &["base", &m, "mismatch"],
    );
    // A manifest that is valid for its digest but malformed as a manifest.
    let bad = br#"{"schemaVersion":2,"layers":"nope"}"#;
    let digest = strata::digest::Digest::of(bad);
    fs::write(d.join("base/blobs/sha256").join(digest.hex()), bad).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{}}}]}}"#,
        bad.len()
    );
    fs::write(d.join("base/index.json"), index).unwrap();
    rejects(
        d,
        &[
            "image",
            "--out",
            "img",
            "--base",
            "base",
            "--layer",
            "l.tgz:l.json",
        ],
        1,
        &[&digest.hex(), "malformed JSON"],
    );
}

#[test]
fn usage_errors_exit_2() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    let l = ["--layer", "l.tgz:l.json"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["layer", "--out", "out.tgz", "--compression", "lz4", "t"],
            "--compression \"lz4\"",
        ),
        (
            vec!["layer", "--out", "out.tgz", "--mtime", "yesterday", "t"],
            "--mtime \"yesterday\"",
        ),
        (
            vec!["layer", "--out", "out.tgz", "--level", "42", "t"],
            "--level 42",
        ),
        (
            [&["image", "--out", "img", "--platform", "linux"][..], &l].concat(),
            "platform \"linux\"",
        ),
        (
            [&["image", "--out", "img", "--created", "yesterday"][..], &l].concat(),
            "created \"yesterday\"",
        ),
        (
            [&["image", "--out", "img", "--env", "NOEQUALS"][..], &l].concat(),
            "--env \"NOEQUALS\"",
        ),
        (
            [&["image", "--out", "img", "--format", "zip"][..], &l].concat(),
            "--format \"zip\"",
        ),
        (
            [&["image", "--out", "img", "--entrypoint", "[1,2]"][..], &l].concat(),
            "--entrypoint",
        ),
    ];
    for (args, needle) in cases {
        rejects(d, &args, 2, &[needle]);
    }
    let out = strata()
        .current_dir(d)
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["layer", "--out", "out.tgz", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=\"yesterday\""));
    assert_no_output(d, &["out.tgz"]);
}

#[test]
fn fifo_in_an_input_directory() {
    let t = tempdir();
    let d = t.path();
    fs::create_dir(d.join("tree")).unwrap();
    let st = Command::new("mkfifo")
        .arg(d.join("tree/pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree"],
        1,
        &["tree/pipe", "a FIFO cannot go into a layer"],
    );
}

#[test]
fn failed_runs_leave_existing_outputs_untouched() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(d, &["image", "--out", "img", "--layer", "l.tgz:l.json"]);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    let before_tar = fs::read(d.join("img.tar")).unwrap();
    let before_index = fs::read(d.join("img/index.json")).unwrap();
    for out in ["img", "img.tar"] {
        let err = fail_in(
            d,
            &[
                "image",
                "--out",
                out,
                "--format",
                "oci-archive",
                "--layer",
                "nope.tgz",
            ],
            1,
        );
        assert!(err.contains("nope.tgz"), "{err}");
    }
    assert_eq!(fs::read(d.join("img.tar")).unwrap(), before_tar);
    assert_eq!(fs::read(d.join("img/index.json")).unwrap(), before_index);
    assert!(leftovers(d, &[]).is_empty());
    // An output whose directory does not exist names the path.
    let err = fail_in(d, &["layer", "--out", "no/such/dir/out.tgz", "t"], 1);
    assert!(
        err.contains("no/such/dir/out.tgz") && err.contains("no such file or directory"),
        "{err}"
    );
}

/// A big input so that a write is still under way when the signal comes.
fn big_tree(d: &Path) {
    let mut x: u64 = 1;
    let mut buf = Vec::with_capacity(256 << 20);
    while buf.len() < 256 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    write(&d.join("big/blob"), &buf, 0o644);
}

#[test]
fn signals_leave_nothing_behind() {
    let t = tempdir();
    let d = t.path();
    big_tree(d);
    for sig in ["TERM", "INT"] {
        let mut child = strata()
            .current_dir(d)
            .args([
                "layer",
                "--out",
                "out.tgz",
                "--compression",
                "gzip",
                "--level",
                "12",
                "--threads",
                "1",
                "big",
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while leftovers(d, &[]).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no temporary appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.wait().unwrap();
        assert!(!status.success(), "SIG{sig}: exited successfully");
        assert_no_output(d, &["out.tgz"]);
    }
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_fails_cleanly() {
    let t = tempdir();
    let d = t.path();
    let small = d.join("small");
    fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount a tmpfs here (not root?)");
        return;
    }
    let _guard = Unmount(small.clone());
    let mut x: u64 = 7;
    let noise: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    write(&d.join("t/noise"), &noise, 0o644);
    let err = fail_in(d, &["layer", "--out", "small/out.tgz", "t"], 1);
    assert!(
        err.contains("small/out.tgz") && err.contains("no space left on device"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(leftovers(&small, &["out.tgz"]).is_empty());
}

#[test]
fn truncated_compressed_layers() {
    let t = tempdir();
    let d = t.path();
    let mut x: u64 = 9;
    let noise: Vec<u8> = (0..300_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                b'z'
            } else {
                x as u8
            }
        })
        .collect();
    write(&d.join("t/f"), &noise, 0o644);
    for comp in ["gzip", "zstd"] {
        ok_in(d, &["layer", "--out", "full", "--compression", comp, "t"]);
        let bytes = fs::read(d.join("full")).unwrap();
        fs::write(d.join("cut.layer"), &bytes[..bytes.len() / 2]).unwrap();
        // Without a descriptor strata reads the layer and must notice the cut.
        rejects(
            d,
            &["image", "--out", "img", "--layer", "cut.layer"],
            1,
            &["cut.layer"],
        );
    }
}

#[test]
fn archives_whose_tar_sizes_lie() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "a.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    let mut bytes = fs::read(d.join("a.tar")).unwrap();
    // The first file entry (a blob): claim a size far past the end of the archive.
    let hdr = (0..bytes.len())
        .step_by(512)
        .find(|&o| bytes[o + 156] == b'0')
        .unwrap();
    bytes[hdr + 124..hdr + 136].copy_from_slice(b"77777777777\0");
    let sum: u32 = bytes[hdr..hdr + 512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    bytes[hdr + 148..hdr + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    fs::write(d.join("lies.tar"), bytes).unwrap();
    let err = fail_in(d, &["verify", "lies.tar"], 1);
    assert!(err.starts_with("strata: lies.tar"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
