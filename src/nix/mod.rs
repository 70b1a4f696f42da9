//! Closure layering for Nix (`strata nix-layers`): Nix references graphs in,
//! layer specs (and a layer lock) out. No layer byte passes through here;
//! `strata layer --spec` turns each spec into a layer.
//!
//! `nix/default.nix` asks Nix for the runtime closure of an image's store
//! paths with `exportReferencesGraph` ([`graph`]) and splits that closure
//! into at most N layers, by one of two strategies: [`size`] (the default
//! for new callers: large paths alone, the rest grouped by which large paths
//! use them) or [`popularity`] (the most depended-on paths alone; its output
//! is kept byte for byte so images built with it keep their digests). A
//! previous build's [`lock`] keeps every layer a release leaves unchanged
//! ([`churn`] re-splits the rest, for the size strategy).
//!
//! Invariants:
//! - the paths layered are every path listed (as a block's path) in a layered
//!   graph, minus the dropped paths (their references stay) and minus every
//!   path listed in an excluded graph (another layer holds it);
//! - each spec has one entry per store path, at its own place (the path minus
//!   its leading `/`): a `symlink` (target read with readlink) when the store
//!   path is a symlink (lstat), else a `tree` (a directory or a single file);
//! - the result depends only on the graphs' contents, the drop list, N, the
//!   strategy, the previous lock and the store paths' types, link targets
//!   (and sizes, when measured): not on the order of graph files or blocks,
//!   hash-map order or the locale.
//!
//! A malformed graph is an error naming `file:line`.

pub mod churn;
pub mod graph;
pub mod group;
pub mod layering;
pub mod lock;
pub mod popularity;
pub mod size;

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};

pub use graph::{Closure, MAX_GRAPH_BYTES};
pub use group::Group;
pub use lock::{Lock, Locked};
pub use popularity::split;

use crate::error::{Error, IoContext, Result};
use crate::json::to_canonical;
use crate::output::AtomicDir;
use crate::spec::SPEC_VERSION;

/// How a closure is split into layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The most depended-on paths alone, the rest in the last layer.
    Popularity,
    /// The largest paths alone, the rest grouped by the large paths using them.
    Size,
}

impl Strategy {
    /// The strategy's name (`popularity`, `size`), as locks record it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Popularity => "popularity",
            Strategy::Size => "size",
        }
    }
}

/// A closure split: the store paths of each layer, bottom first, and the
/// lock recording it.
#[derive(Debug)]
pub struct Split {
    /// Store paths per layer.
    pub layers: Vec<Vec<String>>,
    /// The lock of this split (sizes measured when the graphs give none);
    /// `None` unless asked for.
    pub lock: Option<Lock>,
}

/// Split the closure's paths (minus `drop`) into at most `max_layers`
/// layers: the `groups`' layers first (bottom), then the rest by `strategy`,
/// keeping `previous`'s assignment when given (check it first with
/// [`Lock::check`]). `want_lock`: also return the lock of the result.
pub fn split_closure(
    closure: &Closure,
    drop: &[String],
    max_layers: usize,
    strategy: Strategy,
    previous: Option<&Lock>,
    want_lock: bool,
    groups: &[Group],
) -> Result<Split> {
    size::check_budget(max_layers)?;
    let all = closure.layered(drop);
    let (grouped, ids) = group::take(closure, &all, groups);
    if !ids.is_empty() && grouped.len() >= max_layers || grouped.len() > max_layers {
        return Err(Error::invalid(format!(
            "{} groups hold store paths: they leave no layer of the {max_layers} for the other {} paths",
            grouped.len(),
            ids.len()
        )));
    }
    let budget = max_layers - grouped.len();
    // Popularity alone never looks at sizes (nor measures the store).
    let needs_size = strategy == Strategy::Size || previous.is_some() || want_lock;
    let sizes = if needs_size {
        size::sizes(closure, &all)?
    } else {
        Vec::new()
    };
    let fresh = match strategy {
        Strategy::Popularity if grouped.is_empty() => {
            closure.split_by_popularity(drop, max_layers)?
        }
        Strategy::Popularity => {
            // The popularity order of the paths left, split in what is left.
            let mut dropped: Vec<String> = drop.to_vec();
            dropped.extend(
                grouped
                    .iter()
                    .flatten()
                    .map(|&i| closure.name(i).to_string()),
            );
            closure.split_by_popularity(&dropped, budget.max(1))?
        }
        Strategy::Size => size::split_by_size(closure, &ids, &sizes, budget.max(1)),
    };
    let rest = match previous {
        // A size lock re-splits only what a release re-uploads anyway.
        Some(l) if strategy == Strategy::Size => {
            let n = budget.max(1);
            churn::keep(l, closure, &ids, &sizes, n, &fresh, churn::MAX_ALONE)
        }
        Some(l) => lock::apply(l, closure, &ids, &sizes, budget.max(1), &fresh),
        None => fresh,
    };
    let mut layers = grouped;
    layers.extend(rest);
    let lock = want_lock.then(|| Lock::of(closure, &layers, &sizes, max_layers, strategy.name()));
    Ok(Split {
        layers: layers
            .iter()
            .map(|l| l.iter().map(|&i| closure.name(i).to_string()).collect())
            .collect(),
        lock,
    })
}

/// The layer spec (v1) of some store paths: a `symlink` entry for a store
/// path that is a symlink, a `tree` entry otherwise, each at its own place.
pub fn layer_spec(paths: &[String]) -> Result<Value> {
    let mut entries = Vec::with_capacity(paths.len());
    for p in paths {
        let rel = p
            .strip_prefix('/')
            .ok_or_else(|| Error::invalid(format!("not a store path: {p:?}")))?;
        let meta = fs::symlink_metadata(p).io_context(|| format!("store path {p}"))?;
        entries.push(if meta.file_type().is_symlink() {
            let target = fs::read_link(p)
                .io_context(|| format!("store path {p}"))?
                .into_os_string()
                .into_string()
                .map_err(|t| {
                    Error::invalid(format!("store path {p}: symlink target {t:?} is not UTF-8"))
                })?;
            json!({"type": "symlink", "path": rel, "target": target})
        } else {
            json!({"type": "tree", "path": rel, "src": p})
        });
    }
    Ok(json!({"version": SPEC_VERSION, "entries": entries}))
}

/// The file name of the `i`th spec (0-based): `0001.json`, `0002.json`, …
pub fn spec_name(i: usize) -> String {
    format!("{:04}.json", i + 1)
}

/// Replace `out_dir` with a directory holding one spec per layer (canonical
/// JSON, bottom layer first: `0001.json`, …); no layers leave it empty.
/// Every store path is examined before anything is created. Returns the
/// paths written.
pub fn write_specs(layers: &[Vec<String>], out_dir: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    if out_dir.file_name().is_none() {
        return Err(Error::invalid(format!(
            "{out_dir}: the output directory needs a name of its own (not ., .. or /)"
        )));
    }
    let specs = layers
        .iter()
        .map(|l| layer_spec(l).map(|v| to_canonical(&v)))
        .collect::<Result<Vec<_>>>()?;
    let dir = AtomicDir::create(out_dir)?;
    let mut written = Vec::with_capacity(specs.len());
    for (i, bytes) in specs.iter().enumerate() {
        let name = spec_name(i);
        fs::write(dir.path().join(&name), bytes)
            .io_context(|| format!("writing {out_dir}/{name}"))?;
        written.push(out_dir.join(name));
    }
    dir.commit()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closure(graphs: &[(&str, bool)]) -> Closure {
        let mut c = Closure::new();
        for (i, (g, exclude)) in graphs.iter().enumerate() {
            c.add_graph(g.as_bytes(), &format!("g{i}"), *exclude)
                .unwrap();
        }
        c
    }

    fn names(v: &[(String, usize)]) -> Vec<(&str, usize)> {
        v.iter().map(|(p, n)| (p.as_str(), *n)).collect()
    }

    /// app -> lib2 -> lib1, app -> link -> lib2, tool -> lib1 (self-references
    /// and an empty deriver line as Nix writes them).
    const GRAPH: &str = "/s/app\n\n3\n/s/app\n/s/lib2\n/s/link\n\
                         /s/lib1\n\n0\n\
                         /s/lib2\n/s/lib2.drv\n1\n/s/lib1\n\
                         /s/link\n\n1\n/s/lib2\n\
                         /s/tool\n\n2\n/s/lib1\n/s/tool\n";

    #[test]
    fn popularity_then_path_bytes() {
        let c = closure(&[(GRAPH, false)]);
        assert_eq!(
            names(&c.ordered(&[])),
            [
                ("/s/lib1", 5),
                ("/s/lib2", 3),
                ("/s/link", 2),
                ("/s/app", 1),
                ("/s/tool", 1)
            ]
        );
    }

    #[test]
    fn ties_are_byte_order_not_locale() {
        let g = "/s/b\n\n0\n/s/B\n\n0\n/s/a\n\n0\n/s/_\n\n0\n";
        let c = closure(&[(g, false)]);
        let got: Vec<String> = c.ordered(&[]).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, ["/s/B", "/s/_", "/s/a", "/s/b"]);
    }

    #[test]
    fn graph_order_does_not_matter() {
        let a = "/s/x\n\n1\n/s/y\n/s/y\n\n0\n";
        let b = "/s/z\n\n1\n/s/y\n/s/y\n\n0\n";
        let one = closure(&[(a, false), (b, false)]).ordered(&[]);
        let two = closure(&[(b, false), (a, false)]).ordered(&[]);
        assert_eq!(one, two);
        assert_eq!(names(&one), [("/s/y", 3), ("/s/x", 1), ("/s/z", 1)]);
    }

    #[test]
    fn drops_keep_their_references_and_popularity() {
        // roots -> app -> lib; roots dropped: app and lib stay, and roots
        // still counts towards their popularity.
        let g = "/s/roots\n\n1\n/s/app\n/s/app\n\n1\n/s/lib\n/s/lib\n\n0\n";
        let c = closure(&[(g, false)]);
        assert_eq!(
            names(&c.ordered(&["/s/roots".into(), "/s/elsewhere".into()])),
            [("/s/lib", 3), ("/s/app", 2)]
        );
    }

    #[test]
    fn excluded_graph_paths_are_left_out_but_counted() {
        // lib2 and lib1 are held by another layer (its graph is lib2's closure).
        let held = "/s/lib2\n\n1\n/s/lib1\n/s/lib1\n\n0\n";
        let c = closure(&[(GRAPH, false), (held, true)]);
        assert_eq!(
            names(&c.ordered(&[])),
            [("/s/link", 2), ("/s/app", 1), ("/s/tool", 1)]
        );
        // Listed only in an excluded graph: neither layered nor counted.
        let c = closure(&[("/s/a\n\n0\n", false), ("/s/b\n\n1\n/s/a\n", true)]);
        assert_eq!(names(&c.ordered(&[])), [("/s/a", 1)]);
    }

    #[test]
    fn split_at_max_layers() {
        let v = |n: usize| (1..=n).collect::<Vec<_>>();
        assert_eq!(split(v(3), 5).unwrap(), [vec![1], vec![2], vec![3]]);
        assert_eq!(split(v(3), 3).unwrap(), [vec![1], vec![2], vec![3]]);
        assert_eq!(split(v(5), 3).unwrap(), [vec![1], vec![2], vec![3, 4, 5]]);
        assert_eq!(split(v(4), 1).unwrap(), [vec![1, 2, 3, 4]]);
        assert!(split(v(0), 2).unwrap().is_empty());
        let e = split(v(2), 0).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }

    fn parse_err(g: &str) -> String {
        Closure::new()
            .add_graph(g.as_bytes(), "graph", false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn malformed_graphs_name_file_and_line() {
        assert_eq!(
            parse_err("/s/a\n\n0\nnot/a/path\n\n0\n"),
            "graph:4: not a store path: \"not/a/path\""
        );
        assert_eq!(
            parse_err("/s/a\n\nthree\n/s/b\n"),
            "graph:3: not a reference count: \"three\""
        );
        assert_eq!(
            parse_err("/s/a\n\n-1\n"),
            "graph:3: not a reference count: \"-1\""
        );
        assert_eq!(
            parse_err("/s/a\n\n1\nlib\n"),
            "graph:4: reference: not a store path: \"lib\""
        );
        assert_eq!(
            parse_err("/s/a\n\n3\n/s/b\n"),
            "graph:5: truncated graph: expected 2 more references"
        );
        assert_eq!(
            parse_err("/s/a\n\n"),
            "graph:3: truncated graph: expected a reference count"
        );
        assert_eq!(
            parse_err("/s/a"),
            "graph:2: truncated graph: expected a deriver line"
        );
        // A blank line where a path belongs.
        assert_eq!(
            parse_err("/s/a\n\n0\n\n"),
            "graph:4: not a store path: \"\""
        );
        assert_eq!(
            parse_err("/s/../a\n\n0\n"),
            "graph:1: not a store path: \"/s/../a\""
        );
        assert_eq!(parse_err("/\n\n0\n"), "graph:1: not a store path: \"/\"");
        let e = Closure::new()
            .add_graph(b"/s/\xff\n\n0\n", "graph", false)
            .unwrap_err();
        assert_eq!(e.to_string(), "graph:1: not UTF-8");
    }

    #[test]
    fn empty_graph_and_missing_final_newline() {
        let mut c = Closure::new();
        c.add_graph(b"", "empty", false).unwrap();
        assert!(c.ordered(&[]).is_empty());
        c.add_graph(b"/s/a\n\n1\n/s/b", "g", false).unwrap();
        c.add_graph(b"/s/b\n\n0", "h", false).unwrap();
        assert_eq!(names(&c.ordered(&[])), [("/s/b", 2), ("/s/a", 1)]);
    }

    #[test]
    fn specs_lstat_store_paths() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        let dir = root.join("aaa-dir");
        fs::create_dir(&dir).unwrap();
        let file = root.join("bbb-file");
        fs::write(&file, "x").unwrap();
        let link = root.join("ccc-link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let paths: Vec<String> = [&dir, &file, &link].iter().map(|p| p.to_string()).collect();
        let spec = layer_spec(&paths).unwrap();
        let rel = |p: &Utf8Path| p.as_str()[1..].to_string();
        assert_eq!(
            spec,
            json!({"version": 1, "entries": [
                {"type": "tree", "path": rel(&dir), "src": dir.as_str()},
                {"type": "tree", "path": rel(&file), "src": file.as_str()},
                {"type": "symlink", "path": rel(&link), "target": dir.as_str()},
            ]})
        );
        // What strata layer reads.
        crate::spec::LayerSpec::parse(&to_canonical(&spec), "spec").unwrap();
        let e = layer_spec(&[root.join("missing").to_string()]).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }

    #[test]
    fn write_specs_replaces_the_directory() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        let a = root.join("a");
        fs::write(&a, "x").unwrap();
        let out = root.join("specs");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("0009.json"), "stale").unwrap();
        let layers = vec![vec![a.to_string()], vec![a.to_string()]];
        let w = write_specs(&layers, &out).unwrap();
        assert_eq!(w, [out.join("0001.json"), out.join("0002.json")]);
        assert!(!out.join("0009.json").exists());
        let first = fs::read_to_string(out.join("0001.json")).unwrap();
        assert_eq!(
            first,
            format!(
                r#"{{"entries":[{{"path":"{}","src":"{a}","type":"tree"}}],"version":1}}"#,
                &a.as_str()[1..]
            )
        );
        assert!(write_specs(&[], &out).unwrap().is_empty());
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        let e = write_specs(&[], Utf8Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("needs a name"), "{e}");
        // A missing store path fails before the directory is touched.
        fs::write(out.join("keep"), "old").unwrap();
        write_specs(&[vec![root.join("gone").to_string()]], &out).unwrap_err();
        assert!(out.join("keep").exists());
    }
}
