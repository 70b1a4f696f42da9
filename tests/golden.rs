//! Golden digests and reproducibility.
//!
//! The fixture tree (`util::fixture_tree`) is built into layers and an image;
//! the digests must equal `tests/golden/fixture.json`. (The Bazel and Nix
//! suites check `tests/golden/hello.json` instead, which
//! `hello_golden_is_shared_with_bazel_and_nix` below checks too.) Changing a
//! golden digest is a deliberate act: run with `UPDATE_GOLDEN=1`, and say why
//! in the commit message.
//!
//! The reproducibility test builds the same tree a second time after changing
//! everything a host can change: creation order, mtimes, permission bits other
//! than the executable bit (what a umask does), TZ, locale, umask of the
//! strata process, thread count; the digests must not move.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use filetime::{set_symlink_file_times, FileTime};

use crate::util::{fixture_tree, ok_in, strata, tempdir};

fn golden_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fixture.json")
}

/// Build everything the golden file records, from `tree`, in `work`.
fn build_all(
    work: &Path,
    tree: &Path,
    extra_env: &[(&str, &str)],
    threads: &str,
    umask: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let run = |args: Vec<String>| -> String {
        let line = format!(
            "umask {umask}; exec {} {}",
            env!("CARGO_BIN_EXE_strata"),
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(line)
            .current_dir(work)
            .env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let tree = tree.to_str().unwrap().to_string();
    for comp in ["gzip", "zstd", "none"] {
        let d = run(vec![
            "layer".into(),
            "--out".into(),
            format!("{comp}.layer"),
            "--descriptor".into(),
            format!("{comp}.json"),
            "--compression".into(),
            comp.into(),
            "--threads".into(),
            threads.into(),
            tree.clone(),
        ]);
        out.insert(format!("layer_{comp}"), d);
        let diff: serde_json::Value =
            serde_json::from_slice(&fs::read(work.join(format!("{comp}.json"))).unwrap()).unwrap();
        out.insert(
            format!("diff_id_{comp}"),
            diff["diffId"].as_str().unwrap().to_string(),
        );
    }
    let image = run([
        "image",
        "--out",
        "img",
        "--layer",
        "gzip.layer:gzip.json",
        "--entrypoint",
        "/bin/app",
        "--env",
        "A=1",
        "--workdir",
        "/",
        "--tag",
        "fixture:1",
    ]
    .map(String::from)
    .to_vec());
    out.insert("image_oci".into(), image);
    let archive = run([
        "image",
        "--out",
        "img.tar",
        "--format",
        "docker-archive",
        "--layer",
        "gzip.layer:gzip.json",
        "--entrypoint",
        "/bin/app",
        "--env",
        "A=1",
        "--workdir",
        "/",
        "--tag",
        "fixture:1",
    ]
    .map(String::from)
    .to_vec());
    out.insert("image_docker_archive".into(), archive);
    out.insert(
        "docker_archive_file".into(),
        sha256_file(&work.join("img.tar")),
    );
    out
}

fn sha256_file(p: &Path) -> String {
    strata::digest::Digest::of(&fs::read(p).unwrap()).to_string()
}

#[test]
fn golden_digests_hold() {
    let t = tempdir();
    let tree = t.path().join("tree");
    fixture_tree(&tree, false);
    let got = build_all(t.path(), &tree, &[], "2", "022");
    let path = golden_path();
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        let mut s = serde_json::to_string_pretty(&got).unwrap();
        s.push('\n');
        fs::write(&path, s).unwrap();
        return;
    }
    let want: BTreeMap<String, String> = serde_json::from_slice(
        &fs::read(&path).expect("tests/golden/fixture.json (run with UPDATE_GOLDEN=1)"),
    )
    .unwrap();
    if got != want {
        let mut msg = String::from(
            "golden digests changed (if deliberate: UPDATE_GOLDEN=1 and explain in the commit)\n",
        );
        for (k, w) in &want {
            let g = got.get(k).map(String::as_str).unwrap_or("<missing>");
            if g != w {
                msg.push_str(&format!("  {k}\n    expected {w}\n    got      {g}\n"));
            }
        }
        panic!("{msg}");
    }
}

/// Change everything about the tree a host could change, keeping content,
/// symlink targets and executable bits.
fn perturb(tree: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut n = 0i64;
    for e in walk(tree) {
        let m = fs::symlink_metadata(&e).unwrap();
        n += 7919;
        let t = FileTime::from_unix_time(1_600_000_000 + n, 123_456_789);
        set_symlink_file_times(&e, t, t).unwrap();
        if m.is_dir() {
            fs::set_permissions(&e, fs::Permissions::from_mode(0o700)).unwrap();
        } else if m.is_file() {
            let exec = m.permissions().mode() & 0o111 != 0;
            let mode = if exec { 0o750 } else { 0o640 };
            fs::set_permissions(&e, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn same_digests_whatever_the_host_did() {
    let a = tempdir();
    let b = tempdir();
    let tree_a = a.path().join("tree");
    let tree_b = b.path().join("other-name");
    fixture_tree(&tree_a, false);
    fixture_tree(&tree_b, true);
    perturb(&tree_b);
    let got_a = build_all(a.path(), &tree_a, &[("TZ", "UTC")], "1", "022");
    let got_b = build_all(
        b.path(),
        &tree_b,
        &[
            ("TZ", "Pacific/Chatham"),
            ("LC_ALL", "C.UTF-8"),
            ("LANG", "tr_TR.UTF-8"),
        ],
        "7",
        "077",
    );
    assert_eq!(got_a, got_b);
    // And the blobs themselves are byte-identical.
    for f in ["gzip.layer", "zstd.layer", "none.layer", "img.tar"] {
        assert_eq!(
            fs::read(a.path().join(f)).unwrap(),
            fs::read(b.path().join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn source_date_epoch_sets_mtimes_and_created() {
    let t = tempdir();
    let tree = t.path().join("tree");
    fixture_tree(&tree, false);
    let out = strata()
        .current_dir(t.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["layer", "--out", "l.tar", "--compression", "none", "tree"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut ar = tar::Archive::new(fs::File::open(t.path().join("l.tar")).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1_700_000_000);
        assert_eq!(e.header().uid().unwrap(), 0);
        assert_eq!(e.header().gid().unwrap(), 0);
    }
    let out = strata()
        .current_dir(t.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["image", "--out", "img", "--layer", "l.tar"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let j = ok_in(t.path(), &["inspect", "--json", "img"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["created"], "2023-11-14T22:13:20Z");
    // --mtime wins over SOURCE_DATE_EPOCH.
    let out = strata()
        .current_dir(t.path())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "layer",
            "--out",
            "m.tar",
            "--compression",
            "none",
            "--mtime",
            "5",
            "tree",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut ar = tar::Archive::new(fs::File::open(t.path().join("m.tar")).unwrap());
    assert_eq!(
        ar.entries()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .header()
            .mtime()
            .unwrap(),
        5
    );
}

/// The hello golden's config, as `strata image` flags (also tests/library.rs).
pub(crate) const HELLO_CONFIG: &[&str] = &[
    "--env",
    "GREETING=hello",
    "--workdir",
    "/www",
    "--cmd",
    r#"["cat","/www/index.html"]"#,
];

/// The cross-tool golden: `examples/hello` as one gzip layer at the root, in
/// an image with a fixed config. The Bazel and Nix suites build the same
/// layer and image with their own rules and must print these digests too.
/// Recipe (kept in sync with tests/golden/README.md):
///   strata layer --out L --descriptor D examples/hello
///   strata image --out I --layer L:D --env GREETING=hello --workdir /www
///                --cmd '["cat","/www/index.html"]'
#[test]
fn hello_golden_is_shared_with_bazel_and_nix() {
    let t = tempdir();
    let d = t.path();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let hello = hello.to_str().unwrap();
    let layer = ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", hello],
    );
    let desc: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("l.json")).unwrap()).unwrap();
    let mut image = vec!["image", "--out", "img", "--layer", "l.tgz:l.json"];
    image.extend_from_slice(HELLO_CONFIG);
    let manifest = ok_in(d, &image);
    let mut got = BTreeMap::new();
    got.insert("layer".to_string(), layer.trim().to_string());
    got.insert(
        "diff_id".to_string(),
        desc["diffId"].as_str().unwrap().to_string(),
    );
    got.insert("manifest".to_string(), manifest.trim().to_string());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hello.json");
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: BTreeMap<String, String> = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        got, want,
        "hello golden changed (UPDATE_GOLDEN=1 if deliberate)"
    );
}
