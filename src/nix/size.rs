//! The size split: the largest store paths in layers of their own, every
//! other path grouped with the paths used by the same large ones, so that a
//! change re-uploads about what changed.
//!
//! Like nixpkgs' `auto-layer` (made `buildLayeredImage`'s default by PR 355189),
//! and unlike popularity, bytes decide. The algorithm:
//! - candidates: first the *tops* (paths no other layered path uses: the
//!   applications, which change most often), then the other paths; each
//!   group by size, largest first, ties by path bytes; each in turn becomes
//!   a *root*, while the layers stay within N;
//! - a root is a layer alone: a change to a large path (or anything below
//!   it, which changes its hash) re-uploads that path and not its neighbours
//!   (auto-layer puts a root's private dependencies in its layer; those are
//!   re-uploaded with every change of the root, and the root, at the top of
//!   its own closure, is what changes most);
//! - every other path p carries the *label* of the roots that reach p,
//!   reduced: a root that reaches another root of the label is dropped (p
//!   changes with that one anyway); tops label nothing; paths with one label
//!   share a layer (the label `{}`, paths no root reaches, is one layer too);
//! - a candidate that would make more than N layers is skipped; after 2N
//!   such misses the search stops.
//!
//! Layers come out largest first (ties by their first path's bytes), each
//! path list in path byte order. Sizes come from the graph (`narSize`) or
//! from [`measure`]; nothing depends on graph order, the clock or the host.

use std::collections::BTreeMap;
use std::fs;

use super::graph::Closure;
use crate::error::{Error, IoContext, Result};

/// Which layer a path goes to while the split is searched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// A root, alone (its index among the roots).
    Own(u32),
    /// The reduced set of roots that reach the path, ascending.
    Users(Vec<u32>),
}

/// The size split of `ids` (paths of `closure`, `size[id]` bytes each) into
/// at most `max_layers` layers, as lists of ids (see the module doc).
pub fn split_by_size(
    closure: &Closure,
    ids: &[usize],
    size: &[u64],
    max_layers: usize,
) -> Vec<Vec<usize>> {
    if ids.is_empty() {
        return Vec::new();
    }
    let n = closure.refs.len();
    let mut layered = vec![false; n];
    for &i in ids {
        layered[i] = true;
    }
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, rs) in closure.refs.iter().enumerate() {
        for &r in rs {
            users[r].push(p);
        }
    }
    let mut key: Vec<Key> = vec![Key::Users(Vec::new()); n];
    let mut count: BTreeMap<Key, usize> = BTreeMap::new();
    count.insert(Key::Users(Vec::new()), ids.len());
    // Tops (no layered path refers to them: the image's applications) first,
    // then by size, largest first; ties by path bytes (never by id, which is
    // graph order).
    let top = |p: usize| !users[p].iter().any(|&u| layered[u]);
    let mut candidates = ids.to_vec();
    candidates.sort_by(|&a, &b| {
        top(b)
            .cmp(&top(a))
            .then(size[b].cmp(&size[a]))
            .then_with(|| closure.name(a).cmp(closure.name(b)))
    });
    let mut root_of = vec![u32::MAX; n];
    let mut seen = vec![u32::MAX; n];
    let mut undo: Vec<(usize, Key)> = Vec::new();
    let mut misses = 0;
    for (k, &r) in candidates.iter().enumerate() {
        let k = k as u32;
        // The roots above r (they reach r): dropped from r's descendants' labels.
        let above: Vec<u32> = reach(&users, r, &mut seen, 2 * k)
            .into_iter()
            .filter_map(|p| (root_of[p] != u32::MAX).then_some(root_of[p]))
            .collect();
        undo.clear();
        let mut set = |p: usize, new: Key, key: &mut Vec<Key>| {
            let old = std::mem::replace(&mut key[p], new.clone());
            dec(&mut count, &old);
            *count.entry(new).or_insert(0) += 1;
            undo.push((p, old));
        };
        set(r, Key::Own(k), &mut key);
        // A top is alone but labels nothing: tops share most of what they
        // use, in every combination, and labelling by them would split the
        // closure into as many layers as there are combinations.
        let below = if top(r) {
            Vec::new()
        } else {
            reach(&closure.refs, r, &mut seen, 2 * k + 1)
        };
        for d in below {
            if !layered[d] || root_of[d] != u32::MAX {
                continue;
            }
            let Key::Users(mut label) = key[d].clone() else {
                unreachable!("only roots are Own")
            };
            label.retain(|x| !above.contains(x));
            // k is larger than every index so far: the label stays sorted.
            label.push(k);
            set(d, Key::Users(label), &mut key);
        }
        if count.len() > max_layers {
            for (p, old) in undo.drain(..).rev() {
                let new = std::mem::replace(&mut key[p], old.clone());
                dec(&mut count, &new);
                *count.entry(old).or_insert(0) += 1;
            }
            // A smaller candidate may still fit (one that empties the group
            // it leaves); a bounded number of misses keeps this O(N·graph).
            misses += 1;
            if misses > 2 * max_layers {
                break;
            }
            continue;
        }
        root_of[r] = k;
    }
    let mut groups: BTreeMap<&Key, Vec<usize>> = BTreeMap::new();
    for &i in ids {
        groups.entry(&key[i]).or_default().push(i);
    }
    let mut layers: Vec<Vec<usize>> = groups.into_values().collect();
    for l in &mut layers {
        l.sort_by(|&a, &b| closure.name(a).cmp(closure.name(b)));
    }
    let bytes = |l: &Vec<usize>| l.iter().map(|&i| size[i]).sum::<u64>();
    layers.sort_by(|a, b| {
        bytes(b)
            .cmp(&bytes(a))
            .then_with(|| closure.name(a[0]).cmp(closure.name(b[0])))
    });
    layers
}

fn dec(count: &mut BTreeMap<Key, usize>, k: &Key) {
    let c = count.get_mut(k).expect("every key is counted");
    *c -= 1;
    if *c == 0 {
        count.remove(k);
    }
}

/// The nodes reachable from `start` over `edges`, `start` excluded; `seen`
/// marks with `mark` (a fresh value per call, so no clearing).
fn reach(edges: &[Vec<usize>], start: usize, seen: &mut [u32], mark: u32) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![start];
    seen[start] = mark;
    while let Some(x) = stack.pop() {
        for &y in &edges[x] {
            if seen[y] != mark {
                seen[y] = mark;
                out.push(y);
                stack.push(y);
            }
        }
    }
    out
}

/// The size of a store path as strata measures it when no graph gives one:
/// the apparent size of its regular files plus the length of its symlinks'
/// targets, walked with lstat (links are not followed). A sum, so readdir
/// order cannot change it.
pub fn measure(path: &str) -> Result<u64> {
    let meta = fs::symlink_metadata(path).io_context(|| format!("store path {path}"))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let t = fs::read_link(path).io_context(|| format!("store path {path}"))?;
        return Ok(t.as_os_str().len() as u64);
    }
    if ft.is_file() {
        return Ok(meta.len());
    }
    if !ft.is_dir() {
        return Ok(0);
    }
    let mut total = 0u64;
    let mut stack = vec![std::path::PathBuf::from(path)];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir)
            .io_context(|| format!("store path {path}: reading {}", dir.display()))?;
        for e in entries {
            let e = e.io_context(|| format!("store path {path}: reading {}", dir.display()))?;
            let p = e.path();
            let m = fs::symlink_metadata(&p)
                .io_context(|| format!("store path {path}: {}", p.display()))?;
            let ft = m.file_type();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_symlink() {
                let t = fs::read_link(&p)
                    .io_context(|| format!("store path {path}: {}", p.display()))?;
                total = total.saturating_add(t.as_os_str().len() as u64);
            } else if ft.is_file() {
                total = total.saturating_add(m.len());
            }
        }
    }
    Ok(total)
}

/// The size of every id in `ids`: the graph's, else measured on disk.
pub fn sizes(closure: &Closure, ids: &[usize]) -> Result<Vec<u64>> {
    let mut out = vec![0u64; closure.refs.len()];
    for &i in ids {
        out[i] = match closure.sizes[i] {
            Some(s) => s,
            None => measure(closure.name(i))?,
        };
    }
    Ok(out)
}

/// Refuse a layer budget below 1.
pub(super) fn check_budget(max_layers: usize) -> Result<()> {
    if max_layers < 1 {
        return Err(Error::invalid(format!(
            "max layers {max_layers}: must be at least 1"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::nix::graph::tests::json_closure as closure;

    fn run(c: &Closure, n: usize) -> Vec<Vec<String>> {
        let ids = c.layered(&[]);
        let size = sizes(c, &ids).unwrap();
        split_by_size(c, &ids, &size, n)
            .into_iter()
            .map(|l| l.into_iter().map(|i| c.name(i)[3..].to_string()).collect())
            .collect()
    }

    /// app -> {py, ssl}, py -> {libc, ffi}, ssl -> libc, tool -> libc.
    const NODES: &[(&str, u64, &[&str])] = &[
        ("app", 5, &["py", "ssl"]),
        ("py", 100, &["libc", "ffi"]),
        ("ffi", 1, &[]),
        ("ssl", 20, &["libc"]),
        ("libc", 50, &[]),
        ("tool", 2, &["libc"]),
    ];

    #[test]
    fn large_paths_alone_the_rest_by_users() {
        let c = closure(NODES);
        // One layer: everything.
        assert_eq!(
            run(&c, 1),
            [vec!["app", "ffi", "libc", "py", "ssl", "tool"]]
        );
        // The tops (app, tool) alone first; py would make a fourth layer.
        assert_eq!(
            run(&c, 3),
            [vec!["ffi", "libc", "py", "ssl"], vec!["app"], vec!["tool"]]
        );
        // py alone, with ffi and libc (only py uses them, among roots)
        // would make five; libc alone fits.
        assert_eq!(
            run(&c, 4),
            [
                vec!["ffi", "py", "ssl"],
                vec!["libc"],
                vec!["app"],
                vec!["tool"]
            ]
        );
        // py alone fits at five, its private dependencies grouped.
        assert_eq!(
            run(&c, 5),
            [
                vec!["py"],
                vec!["ffi", "libc"],
                vec!["ssl"],
                vec!["app"],
                vec!["tool"]
            ]
        );
        // Enough layers: every path alone.
        assert_eq!(run(&c, 6).len(), 6);
        assert_eq!(run(&c, 60).len(), 6);
    }

    #[test]
    fn graph_order_does_not_matter() {
        let mut rev = NODES.to_vec();
        rev.reverse();
        for n in 1..8 {
            assert_eq!(run(&closure(NODES), n), run(&closure(&rev), n));
        }
    }

    #[test]
    fn never_more_than_the_budget() {
        // A wide graph: many roots with private and shared dependencies.
        let names: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let nodes: Vec<(&str, u64, Vec<&str>)> = (0..40)
            .map(|i| {
                let refs: Vec<&str> = (0..40)
                    .filter(|j| *j > i && (j * 7 + i) % 5 == 0)
                    .map(|j| names[j].as_str())
                    .collect();
                (names[i].as_str(), (i as u64 * 37) % 23 + 1, refs)
            })
            .collect();
        let nodes: Vec<(&str, u64, &[&str])> = nodes
            .iter()
            .map(|(p, s, r)| (*p, *s, r.as_slice()))
            .collect();
        let c = closure(&nodes);
        for n in 1..45 {
            let l = run(&c, n);
            assert!(l.len() <= n, "{n}: {}", l.len());
            assert_eq!(l.iter().map(Vec::len).sum::<usize>(), 40);
        }
    }

    #[test]
    fn measure_is_apparent_size_and_link_targets() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        fs::create_dir_all(d.join("a/b")).unwrap();
        fs::write(d.join("a/b/f"), vec![0u8; 1000]).unwrap();
        fs::write(d.join("g"), "xyz").unwrap();
        std::os::unix::fs::symlink("a/b/f", d.join("l")).unwrap();
        assert_eq!(measure(d.to_str().unwrap()).unwrap(), 1000 + 3 + 5);
        assert_eq!(measure(d.join("g").to_str().unwrap()).unwrap(), 3);
        assert_eq!(measure(d.join("l").to_str().unwrap()).unwrap(), 5);
        let e = measure(d.join("none").to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
