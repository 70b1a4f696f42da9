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

    /// A JSON graph node (`__structuredAttrs`): path, narSize, references.
    fn node(&self, p: &str, size: u64, refs: &[&str]) -> Value {
        let refs: Vec<String> = refs.iter().map(|r| self.p(r)).collect();
        json!({"path": self.p(p), "narSize": size, "references": refs})
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

#[test]
fn size_is_the_default_tops_and_large_paths_alone() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    // Sizes measured on disk: link (its target's length) > lib1 (15 bytes) >
    // app (10) > lib2 = tool (5). The tops (app, tool: nothing uses them)
    // come first, then the largest paths while the budget allows.
    ok_in(
        t.path(),
        &["nix-layers", "--max-layers", "3", "--out-dir", "o", &g],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["lib1", "lib2", "link"], &["app"], &["tool"]])
    );
    ok_in(
        t.path(),
        &["nix-layers", "--max-layers", "9", "--out-dir", "o", &g],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["link"], &["lib1"], &["app"], &["lib2"], &["tool"]])
    );
    ok_in(
        t.path(),
        &["nix-layers", "--max-layers", "1", "--out-dir", "o", &g],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["app", "lib1", "lib2", "link", "tool"]])
    );
}

/// A JSON graph (what `__structuredAttrs` gives): sizes from narSize.
#[test]
fn json_graphs_give_sizes() {
    let t = tempdir();
    let s = Store::new(t.path());
    let node = |p: &str, size: u64, refs: &[&str]| s.node(p, size, refs);
    // lib2 is now the largest, but alone it would make five layers (lib1,
    // which only it uses, and link, which no root reaches): lib1 alone fits.
    let graph = json!({"graph": [
        node("app", 1, &["lib2", "link"]),
        node("tool", 1, &["lib1"]),
        node("lib1", 10, &[]),
        node("link", 1, &["lib2"]),
        node("lib2", 1000, &["lib1"]),
    ], "other": ["attrs", "ignored"], "name": "x"});
    fs::write(t.path().join("g.json"), graph.to_string()).unwrap();
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "4",
            "--out-dir",
            "o",
            "g.json",
        ],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["lib2", "link"], &["lib1"], &["app"], &["tool"]])
    );
    fs::remove_dir_all(t.path().join("o")).unwrap();
    fs::write(
        t.path().join("bad.json"),
        json!([{"path": s.p("app"), "narSize": "big"}]).to_string(),
    )
    .unwrap();
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "4",
            "--out-dir",
            "o",
            "bad.json",
        ],
        1,
        "bad.json: graph[0]: narSize \"big\": not a byte count",
    );
}

#[test]
fn a_lock_keeps_the_split() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    let run = |args: &[&str]| {
        let mut a = vec!["nix-layers", "--max-layers", "4", "--out-dir", "o"];
        a.extend_from_slice(args);
        ok_in(t.path(), &a);
        s.layers("o")
    };
    let first = run(&["--lock-out", "one.lock", &g]);
    let lock = fs::read_to_string(t.path().join("one.lock")).unwrap();
    assert!(
        lock.starts_with(r#"{"layers":[{"paths":[{"path":""#)
            && lock.ends_with(r#"],"maxLayers":4,"strategy":"size","version":1}"#),
        "{lock}"
    );
    // Same graph, same lock: same layers and the same lock, byte for byte.
    let again = run(&["--previous", "one.lock", "--lock-out", "two.lock", &g]);
    assert_eq!(again, first);
    assert_eq!(fs::read_to_string(t.path().join("two.lock")).unwrap(), lock);
    // A new path (extra -> lib2) goes on top; every old assignment stays,
    // even where a fresh split would now differ.
    write(&s.path("extra"), &[b'x'; 4096], 0o444);
    let g2 = s.graph(
        "graph2",
        &[
            ("tool", &["lib1"]),
            ("app", &["lib2", "link"]),
            ("lib1", &[]),
            ("link", &["lib2"]),
            ("lib2", &["lib1"]),
            ("extra", &["lib2"]),
        ],
    );
    let fresh = run(&[&g2]);
    let kept = run(&["--previous", "one.lock", &g2]);
    assert_ne!(fresh[..first.len()], first[..]);
    assert!(kept.len() <= 4);
    assert!(kept.iter().any(|l| l == &["extra".to_string()]), "{kept:?}");
    // Budget 4 was full: the cheapest merge was made (churn::keep); no
    // other layer changed.
    for f in &first {
        assert!(
            kept.iter().any(|k| f.iter().all(|p| k.contains(p))),
            "{first:?} -> {kept:?}"
        );
    }
    let changed = kept.iter().filter(|k| !first.contains(k)).count();
    assert_eq!(
        changed, 2,
        "the merged layer and extra's: {first:?} -> {kept:?}"
    );
    // A lock naming paths no longer in the closure: they are ignored.
    let tool_only = s.graph("tool-only", &[("tool", &["lib1"]), ("lib1", &[])]);
    let l = run(&["--previous", "one.lock", &tool_only]);
    assert_eq!(l.iter().flatten().count(), 2);
}

#[test]
fn a_size_lock_re_splits_only_the_layers_a_release_touches() {
    let t = tempdir();
    let s = Store::new(t.path());
    for n in [
        "base-1", "x-1", "x-2", "y-1", "y-2", "z-1", "app-1", "app-2",
    ] {
        write(&s.path(n), n.as_bytes(), 0o444);
    }
    let node = |p: &str, size: u64, refs: &[&str]| s.node(p, size, refs);
    // The lock of a release where x and z shared a layer.
    let entry = |p: &str, size: u64| json!({"path": s.p(p), "size": size});
    let lock = json!({"version": 1, "maxLayers": 4, "strategy": "size", "layers": [
        {"paths": [entry("base-1", 100)]},
        {"paths": [entry("x-1", 10), entry("z-1", 10)]},
        {"paths": [entry("y-1", 10)]},
        {"paths": [entry("app-1", 5)]},
    ]});
    fs::write(t.path().join("old.lock"), lock.to_string()).unwrap();
    // x bumped: y (above it) and app are rebuilt; base and z are not.
    let graph = json!([
        node("base-1", 100, &[]),
        node("x-2", 10, &[]),
        node("y-2", 10, &["x-2"]),
        node("z-1", 10, &[]),
        node("app-2", 5, &["y-2", "z-1", "base-1"]),
    ]);
    fs::write(t.path().join("bumped.json"), graph.to_string()).unwrap();
    let run = |out: &str, lock_out: &str| {
        let kept = ["--previous", "old.lock", "--lock-out", lock_out];
        let mut args = vec!["nix-layers", "--max-layers", "4", "--out-dir", out];
        args.extend(kept);
        args.push("bumped.json");
        ok_in(t.path(), &args);
        s.layers(out)
    };
    // base's layer is untouched: kept. x and z's is re-uploaded anyway: x
    // goes with y (which changes whenever x does), z alone; app stays alone.
    let got = run("o1", "one.lock");
    assert_eq!(
        got,
        layers(&[&["base-1"], &["app-2"], &["x-2", "y-2"], &["z-1"]])
    );
    // Same graph, same lock: same specs and lock, byte for byte.
    assert_eq!(run("o2", "two.lock"), got);
    for n in ["0001.json", "0002.json", "0003.json", "0004.json"] {
        assert_eq!(
            fs::read(t.path().join("o1").join(n)).unwrap(),
            fs::read(t.path().join("o2").join(n)).unwrap()
        );
    }
    assert_eq!(
        fs::read(t.path().join("one.lock")).unwrap(),
        fs::read(t.path().join("two.lock")).unwrap()
    );
}

#[test]
fn bad_locks_are_refused() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "4",
            "--out-dir",
            "first",
            "--lock-out",
            "four.lock",
            &g,
        ],
    );
    let cases: &[(&str, &str, &str)] = &[
        (
            "trunc.lock",
            "{\"version\":1,",
            "trunc.lock: malformed JSON",
        ),
        ("v2.lock", r#"{"version":2}"#, "v2.lock: lock version 2"),
        (
            "dup.lock",
            r#"{"version":1,"maxLayers":4,"strategy":"size","layers":[{"paths":[{"path":"/s/a","size":1}]},{"paths":[{"path":"/s/a","size":1}]}]}"#,
            "dup.lock: not a strata layer lock: layers[1].paths[0]: /s/a is in layer 0 already",
        ),
    ];
    for (name, text, want) in cases {
        fs::write(t.path().join(name), text).unwrap();
        rejected(
            t.path(),
            &[
                "nix-layers",
                "--max-layers",
                "4",
                "--out-dir",
                "o",
                "--previous",
                name,
                &g,
            ],
            1,
            want,
        );
    }
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "5",
            "--out-dir",
            "o",
            "--previous",
            "four.lock",
            &g,
        ],
        1,
        "four.lock: a lock for at most 4 layers, not 5 (re-split without it)",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "popularity",
            "--max-layers",
            "4",
            "--out-dir",
            "o",
            "--previous",
            "four.lock",
            &g,
        ],
        1,
        "four.lock: a lock of the size strategy, not popularity",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "4",
            "--out-dir",
            "o",
            "--previous",
            "missing.lock",
            &g,
        ],
        1,
        "reading missing.lock: no such file or directory",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--strategy",
            "fast",
            "--max-layers",
            "4",
            "--out-dir",
            "o",
            &g,
        ],
        2,
        "--strategy fast: must be size or popularity",
    );
}

#[test]
fn groups_share_a_layer_the_split_completes() {
    let t = tempdir();
    let s = Store::new(t.path());
    let g = s.full();
    // lib1 and lib2 (a name glob and a store path) share the bottom layer;
    // the size split places the rest within the 2 layers left.
    let lib2 = s.p("lib2");
    let group = format!("lib1*,{lib2}");
    for strategy in ["size", "popularity"] {
        ok_in(
            t.path(),
            &[
                "nix-layers",
                "--strategy",
                strategy,
                "--max-layers",
                "3",
                "--out-dir",
                "o",
                "--group",
                &group,
                "--group",
                "nothing-matches",
                &g,
            ],
        );
        let l = s.layers("o");
        assert_eq!(l.len(), 3, "{strategy}: {l:?}");
        assert_eq!(l[0], ["lib1", "lib2"], "{strategy}");
        assert_eq!(l.iter().flatten().count(), 5, "{strategy}");
    }
    // A group standing alone: one path.
    ok_in(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--group",
            "tool",
            &g,
        ],
    );
    assert_eq!(
        s.layers("o"),
        layers(&[&["tool"], &["app", "lib1", "lib2", "link"]])
    );
    fs::remove_dir_all(t.path().join("o")).unwrap();
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--group",
            "tool",
            "--group",
            "app",
            &g,
        ],
        1,
        "2 groups hold store paths: they leave no layer of the 2 for the other 3 paths",
    );
    rejected(
        t.path(),
        &[
            "nix-layers",
            "--max-layers",
            "2",
            "--out-dir",
            "o",
            "--group",
            "a,,b",
            &g,
        ],
        2,
        "--group \"a,,b\": an empty pattern",
    );
}

/// `.attrs.json#KEY` reads one graph of a `__structuredAttrs` derivation's
/// `.attrs.json` (which holds every graph): one to layer, one to exclude.
#[test]
fn a_key_selects_one_graph_of_attrs_json() {
    let t = tempdir();
    let s = Store::new(t.path());
    let node = |p: &str, size: u64, refs: &[&str]| s.node(p, size, refs);
    let attrs = json!({
        "graph": [
            node("app", 1, &["lib2", "link"]),
            node("lib1", 10, &[]),
            node("link", 1, &["lib2"]),
            node("lib2", 1000, &["lib1"]),
        ],
        "exclude0": [node("lib2", 1000, &["lib1"]), node("lib1", 10, &[])],
        "outputs": {"out": "/nix/store/x"},
    });
    fs::write(t.path().join(".attrs.json"), attrs.to_string()).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["nix-layers", "--max-layers", "4", "--out-dir", "o"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        ok_in(t.path(), &a.iter().map(String::as_str).collect::<Vec<_>>());
        s.layers("o")
    };
    assert_eq!(
        run(&[
            "--exclude-graph",
            ".attrs.json#exclude0",
            ".attrs.json#graph"
        ]),
        layers(&[&["app"], &["link"]])
    );
    // Without the key, every graph of the file is layered.
    assert_eq!(run(&[".attrs.json"]).concat().len(), 4);
    fs::remove_dir_all(t.path().join("o")).unwrap();
    for (arg, want) in [
        (".attrs.json#nope", ".attrs.json: no key \"nope\""),
        (".attrs.json#outputs", ".attrs.json: outputs: not an array"),
    ] {
        let a = args(&[arg]);
        rejected(
            t.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            1,
            want,
        );
    }
    fs::write(t.path().join("text"), "/nix/store/x\n\n0\n").unwrap();
    let a = args(&["text#graph"]);
    rejected(
        t.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        1,
        "text: not a JSON object, so it has no key \"graph\" (graph text#graph)",
    );
}
