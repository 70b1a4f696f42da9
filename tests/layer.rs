//! `strata layer`: what goes into the tar, entry by entry.

use std::fs;
use std::path::Path;

use crate::util::{fixture_tree, ok_in, tempdir, write};

/// (name, type, mode, uid, gid, size, linkname) of every entry, in order.
fn entries(p: &Path) -> Vec<(String, char, u32, u64, u64, u64, String)> {
    let f = fs::File::open(p).unwrap();
    let mut ar = tar::Archive::new(f);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut s).unwrap();
            (
                name,
                h.entry_type().as_byte() as char,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                s.len() as u64,
                link,
            )
        })
        .collect()
}

#[test]
fn fixture_tree_entries_are_normalized_and_sorted() {
    let t = tempdir();
    fixture_tree(&t.path().join("tree"), false);
    ok_in(
        t.path(),
        &["layer", "--out", "l.tar", "--compression", "none", "tree"],
    );
    let got = entries(&t.path().join("l.tar"));
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    let long = format!("deep/{0}/{1}.txt", "d".repeat(60), "f".repeat(60));
    let want = vec![
        "bin/",
        "bin/app",
        "bin/sh",
        "data/",
        "data/caf\u{e9}/",
        "data/caf\u{e9}/\u{65e5}\u{672c}.txt",
        "deep/",
        &*Box::leak(format!("deep/{}/", "d".repeat(60)).into_boxed_str()),
        &*Box::leak(long.clone().into_boxed_str()),
        "etc/",
        "etc/localtime",
        "etc/motd",
        "usr/",
        "usr/share/",
        "usr/share/doc/",
        "usr/share/doc/README",
        "var/",
        "var/empty/",
    ];
    assert_eq!(names, want);
    let by = |n: &str| got.iter().find(|e| e.0 == n).unwrap().clone();
    assert_eq!(by("bin/app").2, 0o755, "exec bit keeps 0755");
    assert_eq!(by("etc/motd").2, 0o644, "0600 on the host becomes 0644");
    assert_eq!(by("usr/share/doc/README").2, 0o644);
    assert_eq!(by("var/empty/").2, 0o755);
    assert_eq!(by("bin/sh").1, '2');
    assert_eq!(by("bin/sh").6, "app");
    assert_eq!(by("etc/localtime").6, "/usr/share/zoneinfo/UTC");
    assert_eq!(by(&long).5, 10);
    assert!(got.iter().all(|e| e.3 == 0 && e.4 == 0));
}

#[test]
fn spec_entries_cover_every_type() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("src/busybox"), b"BUSYBOX", 0o755);
    write(&d.join("src/tree/x/y.txt"), b"y", 0o644);
    std::os::unix::fs::symlink("busybox", d.join("src/bb-link")).unwrap();
    let spec = r#"{"version":1,"entries":[
      {"type":"hardlink","path":"bin/ls","target":"bin/busybox"},
      {"type":"file","path":"bin/busybox","src":"src/bb-link"},
      {"type":"file","path":"usr/bin/su","content":"su","mode":"4755","uid":0,"gid":0},
      {"type":"dir","path":"tmp","mode":"1777"},
      {"type":"dir","path":"home/user","mode":"0700","uid":1000,"gid":1000,"uname":"user","gname":"user"},
      {"type":"symlink","path":"bin/sh","target":"busybox"},
      {"type":"whiteout","path":"etc/old.conf"},
      {"type":"opaque","path":"var/cache"},
      {"type":"tree","path":"opt/app","src":"src/tree"}
    ]}"#;
    fs::write(d.join("spec.json"), spec).unwrap();
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "--spec",
            "spec.json",
        ],
    );
    let got = entries(&d.join("l.tar"));
    let by = |n: &str| {
        got.iter()
            .find(|e| e.0 == n)
            .unwrap_or_else(|| panic!("{n} missing: {got:?}"))
            .clone()
    };
    // The file read through the symlink `src/bb-link`, content on the first path in order.
    assert_eq!(by("bin/busybox").1, '0');
    assert_eq!(by("bin/busybox").5, 7);
    assert_eq!(by("bin/busybox").2, 0o755);
    assert_eq!(by("bin/ls").1, '1');
    assert_eq!(by("bin/ls").6, "bin/busybox");
    assert_eq!(by("usr/bin/su").2, 0o4755);
    assert_eq!(by("tmp/").2, 0o1777);
    assert_eq!(
        (by("home/user/").3, by("home/user/").4, by("home/user/").2),
        (1000, 1000, 0o700)
    );
    assert_eq!(by("etc/.wh.old.conf").5, 0);
    assert_eq!(by("var/cache/.wh..wh..opq").5, 0);
    assert_eq!(by("opt/app/x/y.txt").5, 1);
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| {
        let k = |s: &str| {
            s.trim_end_matches('/')
                .bytes()
                .map(|c| if c == b'/' { 0 } else { c })
                .collect::<Vec<u8>>()
        };
        k(a).cmp(&k(b))
    });
    assert_eq!(names, sorted, "canonical order");
}

#[test]
fn hardlink_before_its_target_in_order_swaps_roles() {
    let t = tempdir();
    let d = t.path();
    let spec = r#"{"version":1,"entries":[
      {"type":"file","path":"z/real","content":"data"},
      {"type":"hardlink","path":"a/link","target":"z/real"}]}"#;
    fs::write(d.join("spec.json"), spec).unwrap();
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "--spec",
            "spec.json",
        ],
    );
    let got = entries(&d.join("l.tar"));
    let a = got.iter().find(|e| e.0 == "a/link").unwrap();
    let z = got.iter().find(|e| e.0 == "z/real").unwrap();
    assert_eq!((a.1, a.5), ('0', 4));
    assert_eq!((z.1, z.6.as_str()), ('1', "a/link"));
}

#[test]
fn prefix_and_parents() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/f"), b"f", 0o644);
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "tree=/opt/app",
        ],
    );
    let names: Vec<String> = entries(&d.join("l.tar")).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["opt/", "opt/app/", "opt/app/f"]);
    fs::write(
        d.join("spec.json"),
        r#"{"version":1,"parents":false,"entries":[{"type":"file","path":"lib/x.so","content":"x"}]}"#,
    )
    .unwrap();
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "p.tar",
            "--compression",
            "none",
            "--spec",
            "spec.json",
        ],
    );
    let names: Vec<String> = entries(&d.join("p.tar")).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        ["lib/x.so"],
        "no parent dir shadows a base's lib -> usr/lib"
    );
}

#[test]
fn descriptor_matches_blob() {
    let t = tempdir();
    fixture_tree(&t.path().join("tree"), false);
    for comp in ["gzip", "zstd", "none"] {
        let out = ok_in(
            t.path(),
            &[
                "layer",
                "--out",
                "l",
                "--descriptor",
                "d.json",
                "--compression",
                comp,
                "tree",
            ],
        );
        let d: serde_json::Value =
            serde_json::from_slice(&fs::read(t.path().join("d.json")).unwrap()).unwrap();
        let blob = fs::read(t.path().join("l")).unwrap();
        assert_eq!(d["digest"], strata::digest::Digest::of(&blob).to_string());
        assert_eq!(d["size"], blob.len() as u64);
        assert_eq!(out.trim(), d["digest"]);
        let media = d["mediaType"].as_str().unwrap();
        match comp {
            "none" => {
                assert_eq!(media, "application/vnd.oci.image.layer.v1.tar");
                assert_eq!(d["diffId"], d["digest"]);
            }
            c => assert_eq!(media, format!("application/vnd.oci.image.layer.v1.tar+{c}")),
        }
    }
}

#[test]
fn identical_files_are_stored_once_whatever_the_inodes() {
    let t = tempdir();
    let d = t.path();
    // Host A: two copies. Host B: one inode, two names. Same layer.
    let same = vec![7u8; 20_000];
    write(&d.join("a/x/lib.so"), &same, 0o755);
    write(&d.join("a/y/lib.so"), &same, 0o755);
    write(&d.join("b/x/lib.so"), &same, 0o755);
    fs::create_dir_all(d.join("b/y")).unwrap();
    fs::hard_link(d.join("b/x/lib.so"), d.join("b/y/lib.so")).unwrap();
    let la = ok_in(
        d,
        &["layer", "--out", "a.tar", "--compression", "none", "a"],
    );
    let lb = ok_in(
        d,
        &["layer", "--out", "b.tar", "--compression", "none", "b"],
    );
    assert_eq!(la, lb);
    let got = entries(&d.join("a.tar"));
    let y = got.iter().find(|e| e.0 == "y/lib.so").unwrap();
    assert_eq!((y.1, y.6.as_str()), ('1', "x/lib.so"));
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "c.tar",
            "--compression",
            "none",
            "--no-dedupe",
            "b",
        ],
    );
    let got = entries(&d.join("c.tar"));
    assert!(got.iter().filter(|e| e.1 == '0').count() == 2, "{got:?}");
}

#[test]
fn tree_entries_take_single_files() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("store/abc-lib1"), b"shared library\n", 0o444);
    fs::write(
        d.join("spec.json"),
        r#"{"version":1,"entries":[{"type":"tree","path":"nix/store/abc-lib1","src":"store/abc-lib1"}]}"#,
    )
    .unwrap();
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "--spec",
            "spec.json",
        ],
    );
    let names: Vec<(String, u32)> = entries(&d.join("l.tar"))
        .into_iter()
        .map(|e| (e.0, e.2))
        .collect();
    assert_eq!(
        names,
        [
            ("nix/".to_string(), 0o755),
            ("nix/store/".to_string(), 0o755),
            ("nix/store/abc-lib1".to_string(), 0o644)
        ]
    );
}
