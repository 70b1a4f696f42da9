//! Layer locks: the assignment of store paths to layers that a build writes
//! (`--lock-out`) and the next build keeps (`--previous`), so a release
//! re-uploads only the layers holding changed and new paths.
//!
//! The lock is canonical JSON (src/json.rs: sorted keys, compact):
//!
//! ```json
//! {"layers":[{"paths":[{"path":"/nix/store/…-openssl-3.0.13","size":6051000}]}],
//!  "maxLayers":100,"strategy":"size","version":1}
//! ```
//!
//! Keeping a popularity lock, a path of the new closure is matched to a
//! lock entry by name, never by hash (the hash changes whenever anything
//! below a path changes): first by its *name* (what follows the hash), if the lock has that name in one
//! layer; else by its *key*, the name with every `-`-separated part that
//! starts with a digit dropped (`openssl-3.0.13-dev` → `openssl-dev`,
//! `python3-3.11.9` → `python3`; a name that is all version is its own key),
//! so a new version keeps its layer. When several lock layers hold that name
//! or key (`golang-1.19-src` and `golang-src` share the key `golang-src`),
//! the entry whose name shares the longest prefix with the path's name wins,
//! then the lowest layer. `size` is for people reading a diff.
//!
//! A lock of the size strategy is kept by [`super::churn::keep`]: layers a
//! release leaves untouched stay byte for byte, the paths of the layers it
//! re-uploads anyway are re-split by what changes together.
//!
//! A popularity lock is kept by [`apply`]: every path whose key the lock holds goes
//! to that key's layer; lock layers left with no path vanish; the new paths
//! are split as the fresh split would split them and, while the budget
//! allows, their groups become new layers on top. When it does not, the
//! groups that do not fit share the last new layer; when no layer is free
//! at all, the two smallest kept layers are merged to make one, layers
//! without a top (a path no other uses) first (the only
//! re-balancing: a lock never grows the layer count beyond its budget, and
//! never moves an unchanged path otherwise).
//!
//! Invariants: same closure + same lock → same layers; a lock is refused
//! (one error naming the file) when malformed, of another version, written
//! for another layer budget or strategy, or naming a store path twice;
//! entries no longer in the closure are ignored.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::graph::Closure;
use crate::error::{Error, Result};

/// The lock format version this strata reads and writes.
pub const LOCK_VERSION: u64 = 1;

/// A layer lock: which key went to which layer, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The layer budget it was written for.
    pub max_layers: usize,
    /// The strategy that wrote it (`size` or `popularity`).
    pub strategy: String,
    /// Per layer, its paths' keys, store paths and sizes.
    pub layers: Vec<Vec<Locked>>,
}

/// One store path in a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The store path this build had.
    pub path: String,
    /// Its size in bytes (narSize, or as measured).
    pub size: u64,
}

/// The name of a store path: what follows its hash.
pub fn path_name(store_path: &str) -> &str {
    let base = store_path.rsplit('/').next().unwrap_or(store_path);
    base.split_once('-').map_or(base, |(_, n)| n)
}

/// The lock key of a store path: its name without version parts.
pub fn path_key(store_path: &str) -> String {
    let name = path_name(store_path);
    let kept: Vec<&str> = name
        .split('-')
        .filter(|part| !part.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    if kept.is_empty() || kept.iter().all(|p| p.is_empty()) {
        name.to_string()
    } else {
        kept.join("-")
    }
}

impl Lock {
    /// The lock of `layers` (ids of `closure`, `size[id]` bytes).
    pub fn of(
        closure: &Closure,
        layers: &[Vec<usize>],
        size: &[u64],
        max_layers: usize,
        strategy: &str,
    ) -> Lock {
        Lock {
            max_layers,
            strategy: strategy.to_string(),
            layers: layers
                .iter()
                .map(|l| {
                    l.iter()
                        .map(|&i| Locked {
                            path: closure.name(i).to_string(),
                            size: size[i],
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// The lock as a JSON value (serialize with `json::to_canonical`).
    pub fn to_json(&self) -> Value {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                let paths: Vec<Value> = l
                    .iter()
                    .map(|p| json!({"path": p.path, "size": p.size}))
                    .collect();
                json!({ "paths": paths })
            })
            .collect();
        json!({
            "version": LOCK_VERSION,
            "maxLayers": self.max_layers,
            "strategy": self.strategy,
            "layers": layers,
        })
    }

    /// Parse a lock; `what` (its file) names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Lock> {
        let bad = |m: String| Error::invalid(format!("{what}: not a strata layer lock: {m}"));
        let v: Value = crate::json::parse(bytes, what)?;
        let o = v
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        match o.get("version").and_then(Value::as_u64) {
            Some(LOCK_VERSION) => {}
            Some(n) => {
                return Err(Error::invalid(format!(
                    "{what}: lock version {n}: this strata reads version {LOCK_VERSION}"
                )))
            }
            None => return Err(bad("no \"version\" number".into())),
        }
        let max_layers = o
            .get("maxLayers")
            .and_then(Value::as_u64)
            .filter(|&n| n >= 1)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad("\"maxLayers\" is not a number >= 1".into()))?;
        let strategy = o
            .get("strategy")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"strategy\" string".into()))?
            .to_string();
        let layers_v = o
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"layers\" array".into()))?;
        if layers_v.len() > max_layers {
            return Err(bad(format!(
                "{} layers, more than its maxLayers {max_layers}",
                layers_v.len()
            )));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let what_path = |at: &str| bad(format!("{at}: no \"path\" store path"));
        let mut layers = Vec::with_capacity(layers_v.len());
        for (i, l) in layers_v.iter().enumerate() {
            let paths = l
                .get("paths")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("layers[{i}]: no \"paths\" array")))?;
            let mut out = Vec::with_capacity(paths.len());
            for (j, p) in paths.iter().enumerate() {
                let at = format!("layers[{i}].paths[{j}]");
                let path = p
                    .get("path")
                    .and_then(Value::as_str)
                    .filter(|p| super::graph::check_store_path(p).is_ok())
                    .ok_or_else(|| what_path(&at))?;
                let size = p
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad(format!("{at}: no \"size\" number")))?;
                if let Some(&other) = seen.get(path) {
                    return Err(bad(format!("{at}: {path} is in layer {other} already")));
                }
                seen.insert(path, i);
                out.push(Locked {
                    path: path.to_string(),
                    size,
                });
            }
            layers.push(out);
        }
        Ok(Lock {
            max_layers,
            strategy,
            layers,
        })
    }

    /// Refuse a lock written for another budget or strategy.
    pub fn check(&self, what: &str, max_layers: usize, strategy: &str) -> Result<()> {
        if self.max_layers != max_layers {
            return Err(Error::invalid(format!(
                "{what}: a lock for at most {} layers, not {max_layers} (re-split without it)",
                self.max_layers
            )));
        }
        if self.strategy != strategy {
            return Err(Error::invalid(format!(
                "{what}: a lock of the {} strategy, not {strategy} (re-split without it)",
                self.strategy
            )));
        }
        Ok(())
    }
}

/// Keep `lock`'s assignment for `ids` (see the module doc); `fresh` is the
/// split the strategy makes without a lock, which places the new paths.
pub fn apply(
    lock: &Lock,
    closure: &Closure,
    ids: &[usize],
    size: &[u64],
    max_layers: usize,
    fresh: &[Vec<usize>],
) -> Vec<Vec<usize>> {
    // name -> (slot, name) and key -> (slot, name), each list sorted.
    let mut by_name: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    let mut by_key: BTreeMap<String, Vec<(usize, &str)>> = BTreeMap::new();
    for (i, l) in lock.layers.iter().enumerate() {
        for p in l {
            let name = path_name(&p.path);
            by_name.entry(name).or_default().push((i, name));
            by_key.entry(path_key(&p.path)).or_default().push((i, name));
        }
    }
    let slot_of = |path: &str| -> Option<usize> {
        let name = path_name(path);
        let cands = match by_name.get(name) {
            Some(c) => c,
            None => by_key.get(&path_key(path))?,
        };
        // The longest common name prefix, then the lowest layer.
        let common = |other: &str| {
            name.bytes()
                .zip(other.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        cands
            .iter()
            .min_by_key(|(slot, other)| (std::cmp::Reverse(common(other)), *slot))
            .map(|(slot, _)| *slot)
    };
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); lock.layers.len()];
    let mut is_new = vec![false; closure.refs.len()];
    for &i in ids {
        match slot_of(closure.name(i)) {
            Some(s) => slots[s].push(i),
            None => is_new[i] = true,
        }
    }
    let mut kept: Vec<Vec<usize>> = slots.into_iter().filter(|l| !l.is_empty()).collect();
    let groups: Vec<Vec<usize>> = fresh
        .iter()
        .map(|l| l.iter().copied().filter(|&i| is_new[i]).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect();
    // More kept layers than the budget (user groups took some since the
    // lock was written): merge down to it.
    while kept.len() > max_layers.max(1) {
        merge_two_smallest(closure, ids, size, &mut kept);
    }
    if !groups.is_empty() && kept.len() >= max_layers && kept.len() >= 2 {
        // No room for the new paths: free one layer.
        merge_two_smallest(closure, ids, size, &mut kept);
    }
    let budget = max_layers.saturating_sub(kept.len());
    let mut layers = kept;
    if budget == 0 {
        // max_layers == 1: one layer holds everything.
        let last = layers
            .last_mut()
            .expect("kept is not empty when budget is 0");
        last.extend(groups.into_iter().flatten());
    } else if groups.len() <= budget {
        layers.extend(groups);
    } else {
        let mut groups = groups.into_iter();
        layers.extend(groups.by_ref().take(budget - 1));
        layers.push(groups.flatten().collect());
    }
    for l in &mut layers {
        l.sort_by(|&a, &b| closure.name(a).cmp(closure.name(b)));
    }
    layers
}

/// Merge the two smallest layers (ties: the later ones) into the lower,
/// layers holding no top first: a top (what no other layered path uses, the
/// applications) changes most often, and merged it would take its
/// neighbour along at every change.
fn merge_two_smallest(closure: &Closure, ids: &[usize], size: &[u64], kept: &mut Vec<Vec<usize>>) {
    let bytes = |l: &Vec<usize>| l.iter().map(|&i| size[i]).sum::<u64>();
    let mut used = vec![false; closure.refs.len()];
    for &i in ids {
        for &r in &closure.refs[i] {
            used[r] = true;
        }
    }
    let has_top = |l: &Vec<usize>| l.iter().any(|&i| !used[i]);
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|&a, &b| {
        (has_top(&kept[a]), bytes(&kept[a]))
            .cmp(&(has_top(&kept[b]), bytes(&kept[b])))
            .then(b.cmp(&a))
    });
    let (lo, hi) = (order[0].min(order[1]), order[0].max(order[1]));
    let moved = kept.remove(hi);
    kept[lo].extend(moved);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closure(paths: &[&str]) -> Closure {
        let text: String = paths.iter().map(|p| format!("/s/{p}\n\n0\n")).collect();
        let mut c = Closure::new();
        c.add_graph(text.as_bytes(), "g", false).unwrap();
        c
    }

    fn names(c: &Closure, layers: &[Vec<usize>]) -> Vec<Vec<String>> {
        layers
            .iter()
            .map(|l| l.iter().map(|&i| c.name(i)[3..].to_string()).collect())
            .collect()
    }

    fn ids(c: &Closure, layers: &[&[&str]]) -> Vec<Vec<usize>> {
        let all = c.layered(&[]);
        layers
            .iter()
            .map(|l| {
                l.iter()
                    .map(|n| {
                        *all.iter()
                            .find(|&&i| c.name(i) == format!("/s/{n}"))
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn keys_drop_hash_and_version_parts() {
        let k = |p: &str| path_key(p);
        assert_eq!(k("/nix/store/abc-openssl-3.0.13"), "openssl");
        assert_eq!(k("/nix/store/abc-openssl-3.0.13-dev"), "openssl-dev");
        assert_eq!(k("/nix/store/abc-python3-3.11.9"), "python3");
        assert_eq!(
            k("/nix/store/abc-python3.11-requests-2.31.0"),
            "python3.11-requests"
        );
        assert_eq!(k("/nix/store/abc-glibc-2.38-44"), "glibc");
        assert_eq!(k("/nix/store/abc-1.0"), "1.0");
        assert_eq!(k("/nix/store/abc-source"), "source");
        assert_eq!(k("/s/nohash"), "nohash");
    }

    #[test]
    fn round_trip_is_canonical() {
        let c = closure(&["h1-a-1.0", "h2-b"]);
        let l = ids(&c, &[&["h1-a-1.0"], &["h2-b"]]);
        let lock = Lock::of(&c, &l, &[7, 9], 3, "size");
        let bytes = crate::json::to_canonical(&lock.to_json());
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"layers":[{"paths":[{"path":"/s/h1-a-1.0","size":7}]},{"paths":[{"path":"/s/h2-b","size":9}]}],"maxLayers":3,"strategy":"size","version":1}"#
        );
        assert_eq!(Lock::parse(&bytes, "l").unwrap(), lock);
    }

    #[test]
    fn bad_locks_are_refused_naming_the_file() {
        let err = |s: &str| {
            Lock::parse(s.as_bytes(), "my.lock")
                .unwrap_err()
                .to_string()
        };
        let p = r#"{"path":"/s/a","size":1}"#;
        for (text, want) in [
            ("[", "my.lock: malformed JSON"),
            ("[]", "my.lock: not a strata layer lock: not a JSON object"),
            ("{}", "no \"version\" number"),
            (
                r#"{"version":2}"#,
                "my.lock: lock version 2: this strata reads version 1",
            ),
            (
                r#"{"version":1,"maxLayers":0}"#,
                "\"maxLayers\" is not a number >= 1",
            ),
            (r#"{"version":1,"maxLayers":2}"#, "no \"strategy\" string"),
            (
                r#"{"version":1,"maxLayers":2,"strategy":"size"}"#,
                "no \"layers\" array",
            ),
            (
                r#"{"version":1,"maxLayers":1,"strategy":"size","layers":[{"paths":[]},{"paths":[]}]}"#,
                "2 layers, more than its maxLayers 1",
            ),
            (
                r#"{"version":1,"maxLayers":2,"strategy":"size","layers":[{}]}"#,
                "layers[0]: no \"paths\" array",
            ),
            (
                r#"{"version":1,"maxLayers":2,"strategy":"size","layers":[{"paths":[{"path":"/s/a","size":-1}]}]}"#,
                "layers[0].paths[0]: no \"size\" number",
            ),
            (
                &format!(
                    r#"{{"version":1,"maxLayers":2,"strategy":"size","layers":[{{"paths":[{p}]}},{{"paths":[{p}]}}]}}"#
                ),
                "layers[1].paths[0]: /s/a is in layer 0 already",
            ),
            (
                r#"{"version":1,"maxLayers":2,"strategy":"size","layers":[{"paths":[{"path":"../a","size":1}]}]}"#,
                "layers[0].paths[0]: no \"path\" store path",
            ),
        ] {
            let e = err(text);
            assert!(
                e.starts_with("my.lock: ") && e.contains(want),
                "{text}: {e}"
            );
        }
        let ok = Lock::parse(
            br#"{"version":1,"maxLayers":2,"strategy":"size","layers":[]}"#,
            "l",
        )
        .unwrap();
        ok.check("l", 2, "size").unwrap();
        let e = ok.check("l", 3, "size").unwrap_err().to_string();
        assert_eq!(
            e,
            "l: a lock for at most 2 layers, not 3 (re-split without it)"
        );
        let e = ok.check("l", 2, "popularity").unwrap_err().to_string();
        assert!(
            e.contains("a lock of the size strategy, not popularity"),
            "{e}"
        );
    }

    #[test]
    fn unchanged_keys_stay_new_paths_go_on_top() {
        let old = closure(&["h1-libc-2.38", "h2-py-3.11", "h3-app-1", "h4-gone"]);
        let lock = Lock::of(
            &old,
            &ids(
                &old,
                &[&["h1-libc-2.38"], &["h2-py-3.11", "h4-gone"], &["h3-app-1"]],
            ),
            &[10, 20, 1, 1],
            5,
            "size",
        );
        // app rebuilt (new hash, new version), new1 and new2 new, gone gone.
        let c = closure(&[
            "h1-libc-2.38",
            "h2-py-3.11",
            "h9-app-2",
            "h5-new1",
            "h6-new2",
        ]);
        let all = c.layered(&[]);
        let size = vec![1; 5];
        let fresh = ids(
            &c,
            &[
                &["h5-new1"],
                &["h6-new2"],
                &["h1-libc-2.38", "h2-py-3.11", "h9-app-2"],
            ],
        );
        let got = apply(&lock, &c, &all, &size, 5, &fresh);
        assert_eq!(
            names(&c, &got),
            [
                vec!["h1-libc-2.38"],
                vec!["h2-py-3.11"],
                vec!["h9-app-2"],
                vec!["h5-new1"],
                vec!["h6-new2"]
            ]
        );
        // One layer left: the new groups share it.
        let got = apply(&lock, &c, &all, &size, 4, &fresh);
        assert_eq!(names(&c, &got)[3], ["h5-new1", "h6-new2"]);
        // None left: the two smallest kept layers merge (app, 1 byte, into
        // py's: libc is 10 bytes here).
        let size: Vec<u64> = all
            .iter()
            .map(|&i| if c.name(i).contains("libc") { 10 } else { 1 })
            .collect();
        let got = apply(&lock, &c, &all, &size, 3, &fresh);
        assert_eq!(
            names(&c, &got),
            [
                vec!["h1-libc-2.38"],
                vec!["h2-py-3.11", "h9-app-2"],
                vec!["h5-new1", "h6-new2"]
            ]
        );
        // Same closure, same lock: same layers.
        assert_eq!(apply(&lock, &c, &all, &size, 3, &fresh), got);
    }

    #[test]
    fn shared_keys_go_by_longest_name_prefix() {
        // golang-1.19-src and golang-src share the key golang-src.
        let old = closure(&["h1-golang-1.19-src-1.19.8", "h2-golang-src-1.19"]);
        let lock = Lock::of(
            &old,
            &ids(
                &old,
                &[&["h1-golang-1.19-src-1.19.8"], &["h2-golang-src-1.19"]],
            ),
            &[1, 1],
            4,
            "size",
        );
        let c = closure(&["h3-golang-1.19-src-1.19.9", "h4-golang-src-1.20"]);
        let all = c.layered(&[]);
        let got = apply(&lock, &c, &all, &[1, 1], 4, std::slice::from_ref(&all));
        assert_eq!(
            names(&c, &got),
            [
                vec!["h3-golang-1.19-src-1.19.9"],
                vec!["h4-golang-src-1.20"]
            ]
        );
    }

    #[test]
    fn a_smaller_budget_merges_down_to_it() {
        let c = closure(&["h1-a", "h2-b", "h3-c", "h4-d"]);
        let all = c.layered(&[]);
        let lock = Lock::of(
            &c,
            &ids(&c, &[&["h1-a"], &["h2-b"], &["h3-c"], &["h4-d"]]),
            &[1, 2, 3, 4],
            4,
            "size",
        );
        for n in 1..=4 {
            let got = apply(&lock, &c, &all, &[1, 2, 3, 4], n, &[]);
            assert_eq!(got.len(), n);
            assert_eq!(got.iter().flatten().count(), 4);
        }
    }
}
