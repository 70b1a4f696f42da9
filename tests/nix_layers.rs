//! `strata nix-layers`: references graphs in, layer specs out, through the
//! real binary. A fake store under a temporary directory stands in for
//! /nix/store (the specs name the paths as they are); `tests/nix/run.sh`
//! runs it inside real Nix builds.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{fail_in, ok_in, tempdir, write};

/// A fake store in `root/store`: app -> lib2 -> lib1, app -> link -> lib2
/// (link is a symlink to lib2), tool -> lib1; lib1 is a single file.
struct Store {
    root: PathBuf,
}

impl Store {
    fn new(root: &Path) -> Store {
        let s = Store {
            root: root.to_path_buf(),
        };
        write(&s.path("lib1"), b"shared library\n", 0o444);
        write(&s.path("lib2").join("lib/lib2"), b"lib2\n", 0o444);
        write(&s.path("app").join("bin/app"), b"#!/bin/sh\n", 0o555);
        write(&s.path("tool"), b"tool\n", 0o444);
        symlink(s.path("lib2"), s.path("link")).unwrap();
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join("store").join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// An exportReferencesGraph file: (path, references) blocks, each path
    /// also referring to itself, as Nix writes them.
    fn graph(&self, file: &str, blocks: &[(&str, &[&str])]) -> String {
        let mut text = String::new();
        for (p, refs) in blocks {
            text += &format!("{}\n\n{}\n{}\n", self.p(p), refs.len() + 1, self.p(p));
            for r in *refs {
                text += &format!("{}\n", self.p(r));
            }
        }
        fs::write(self.root.join(file), text).unwrap();
        file.to_string()
    }

    /// The whole closure of app and tool.
    fn full(&self) -> String {
        self.graph(
            "graph",
            &[
                ("tool", &["lib1"]),
                ("app", &["lib2", "link"]),
                ("lib1", &[]),
                ("link", &["lib2"]),
                ("lib2", &["lib1"]),
            ],
        )
    }

    /// The store paths (names) of each spec in `dir`, bottom first.
    fn layers(&self, dir: &str) -> Vec<Vec<String>> {
        self.specs(dir)
            .iter()
            .map(|s| {
                s["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        let p = e["path"].as_str().unwrap();
                        p.rsplit('/').next().unwrap().to_string()
                    })
                    .collect()
            })
            .collect()
    }

    /// The specs in `dir`, checking they are named 0001.json, 0002.json, ...
    fn specs(&self, dir: &str) -> Vec<Value> {
        let mut names: Vec<String> = fs::read_dir(self.root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let want: Vec<String> = (1..=names.len()).map(|i| format!("{i:04}.json")).collect();
        assert_eq!(names, want);
        names
            .iter()
            .map(|n| {
                serde_json::from_slice(&fs::read(self.root.join(dir).join(n)).unwrap()).unwrap()
            })
            .collect()
    }
}

fn layers(names: &[&[&str]]) -> Vec<Vec<String>> {
    names
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn popularity_order_and_split_at_max_layers() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    // lib1 (reached by 5), lib2 (3), link (2), then app and tool (1 each).
    let out = ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "3",
            "--out-dir",
            "specs",
            &g,
        ],
    );
    assert_eq!(out, "specs/0001.json\nspecs/0002.json\nspecs/0003.json\n");
    assert_eq!(
        s.layers("specs"),
        layers(&[&["lib1"], &["lib2"], &["link", "app", "tool"]])
    );
    // k = N: one each; k < N: one each, no empty layers.
    for n in ["5", "9"] {
        ok_in(
            t.path(),
            &[
                "nix-layers",
                "--strategy",
                "popularity",
                "--max-layers",
                n,
                "--out-dir",
                "specs",
                &g,
            ],
        );
        assert_eq!(
            s.layers("specs"),
            layers(&[&["lib1"], &["lib2"], &["link"], &["app"], &["tool"]])
        );
    }
    // N = 1: everything in one layer (what buildLayer asks for).
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "1",
            "--out-dir",
            "specs",
            &g,
        ],
    );
    assert_eq!(
        s.layers("specs"),
        layers(&[&["lib1", "lib2", "link", "app", "tool"]])
    );
}

#[test]
fn ties_go_by_path_bytes() {
    let t = tempdir();
    let s = Store::new(t.path());
    for n in ["b", "B", "a", "_", "a-2"] {
        write(&s.path(n), n.as_bytes(), 0o444);
    }
    let g = s.graph(
        "graph",
        &[("b", &[]), ("B", &[]), ("a", &[]), ("_", &[]), ("a-2", &[])],
    );
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "9",
            "--out-dir",
            "o",
            &g,
        ],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["B"], &["_"], &["a"], &["a-2"], &["b"]])
    );
}

#[test]
fn excluded_graphs_and_dropped_paths_are_left_out() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    // Another layer holds lib2's closure; tool is dropped (lib1 stays, and
    // tool still counts towards lib1's popularity).
    let held = s.graph("held", &[("lib2", &["lib1"]), ("lib1", &[])]);
    let tool = s.p("tool");
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "9",
            "--out-dir",
            "o",
            "--exclude-graph",
            &held,
            "--drop",
            &tool,
            &g,
        ],
    );
    assert_eq!(s.layers("o"), layers(&[&["link"], &["app"]]));
    // Two layered graphs are one closure (their union).
    let app = s.graph(
        "app",
        &[
            ("app", &["lib2", "link"]),
            ("link", &["lib2"]),
            ("lib2", &["lib1"]),
            ("lib1", &[]),
        ],
    );
    let tool = s.graph("tool", &[("tool", &["lib1"]), ("lib1", &[])]);
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "3",
            "--out-dir",
            "u",
            &app,
            &tool,
        ],
    );
    assert_eq!(
        s.layers("u"),
        layers(&[&["lib1"], &["lib2"], &["link", "app", "tool"]])
    );
}

#[test]
fn specs_are_symlinks_and_trees_that_strata_layer_reads() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "3",
            "--out-dir",
            "o",
            &g,
        ],
    );
    let rel = |n: &str| s.p(n)[1..].to_string();
    let specs = s.specs("o");
    assert_eq!(
        specs[0],
        json!({"version": 1, "entries": [{"type": "tree", "path": rel("lib1"), "src": s.p("lib1")}]})
    );
    assert_eq!(
        specs[2]["entries"][0],
        json!({"type": "symlink", "path": rel("link"), "target": s.p("lib2")})
    );
    assert_eq!(
        specs[2]["entries"][1],
        json!({"type": "tree", "path": rel("app"), "src": s.p("app")})
    );
    // Canonical JSON: sorted keys, compact, no newline.
    let raw = fs::read_to_string(t.path().join("o/0001.json")).unwrap();
    assert_eq!(
        raw,
        format!(
            r#"{{"entries":[{{"path":"{}","src":"{}","type":"tree"}}],"version":1}}"#,
            rel("lib1"),
            s.p("lib1")
        )
    );
    // The layer: store paths at their place, the symlink kept as a symlink.
    ok_in(
        t.path(),
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "--spec",
            "o/0003.json",
        ],
    );
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(fs::File::open(t.path().join("l.tar")).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().to_str().unwrap().to_string();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_str().unwrap().to_string());
        names.push((p, link));
    }
    assert!(
        names.contains(&(rel("link"), Some(s.p("lib2")))),
        "{names:?}"
    );
    assert!(
        names.contains(&(format!("{}/bin/app", rel("app")), None)),
        "{names:?}"
    );
    assert!(!names.iter().any(|(p, _)| p.contains("lib1")), "{names:?}");
}

#[test]
fn nothing_to_layer_writes_no_spec() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.graph("g", &[("app", &[])]);
    fs::write(t.path().join("empty"), "").unwrap();
    let app = s.p("app");
    // Everything dropped, or an empty graph: an empty directory.
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--drop",
            &app,
            &g,
        ],
    );
    assert!(s.specs("o").is_empty());
    let out = ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "e",
            "empty",
        ],
    );
    assert_eq!(out, "");
    assert!(s.specs("e").is_empty());
    // A previous run's specs do not survive.
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            &g,
        ],
    );
    assert_eq!(s.specs("o").len(), 1);
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--exclude-graph",
            &g,
            &g,
        ],
    );
    assert!(s.specs("o").is_empty());
}

/// One line on stderr holding `want`, and nothing written.
fn rejected(dir: &Path, args: &[&str], code: i32, want: &str) {
    let err = fail_in(dir, args, code);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("strata: ") && err.contains(want),
        "want {want:?} in {err}"
    );
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n == "o" || n.starts_with(".strata-tmp-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn malformed_graphs_name_file_and_line() {
    let t = tempdir();
    let s = Store::new(t.path());
    let app = s.p("app");
    let cases: &[(&str, String, &str)] = &[
        (
            "count",
            format!("{app}\n\nthree\n"),
            "count:3: not a reference count: \"three\"",
        ),
        (
            "path",
            format!("{app}\n\n0\nlib1\n\n0\n"),
            "path:4: not a store path: \"lib1\"",
        ),
        (
            "truncated",
            format!("{app}\n\n2\n{app}\n"),
            "truncated:5: truncated graph: expected 1 more reference",
        ),
        (
            "reference",
            format!("{app}\n\n1\n../lib\n"),
            "reference:4: reference: not a store path: \"../lib\"",
        ),
    ];
    for (name, text, want) in cases {
        fs::write(t.path().join(name), text).unwrap();
        rejected(
            t.path(),
            &[
                "nix-layers",
                "--strategy",
                "popularity",
                "--max-layers",
                "2",
                "--out-dir",
                "o",
                name,
            ],
            1,
            want,
        );
    }
    // In an excluded graph too.
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--exclude-graph",
            "count",
            &s.full(),
        ],
        1,
        "count:3: not a reference count",
    );
    // A store path that does not exist.
    let g = s.graph("gone", &[("gone", &[])]);
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            &g,
        ],
        1,
        &format!("store path {}: no such file or directory", s.p("gone")),
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "missing",
        ],
        1,
        "reading missing: no such file or directory",
    );
}

#[test]
fn usage_errors() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "0",
            "--out-dir",
            "o",
            &g,
        ],
        2,
        "--max-layers 0: must be at least 1",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers=-1",
            "--out-dir",
            "o",
            &g,
        ],
        2,
        "--max-layers",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "x",
            "--out-dir",
            "o",
            &g,
        ],
        2,
        "--max-layers",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--out-dir",
            "o",
            &g,
        ],
        2,
        "--max-layers",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            &g,
        ],
        2,
        "--out-dir",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
        ],
        2,
        "GRAPHS",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "2",
            "--out-dir",
            ".",
            &g,
        ],
        2,
        "--out-dir .: needs a name",
    );
}
