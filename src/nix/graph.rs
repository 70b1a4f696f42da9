//! The closure to layer: the union of references graphs, as Nix writes them.
//!
//! Two forms are read. The text of `exportReferencesGraph`, blocks of
//!
//! ```text
//! /nix/store/…-app        a store path
//! /nix/store/…-app.drv    its deriver (any text, often empty)
//! 2                       how many references follow
//! /nix/store/…-lib        the references, one per line
//! /nix/store/…-app        (a path may refer to itself)
//! ```
//!
//! and the JSON of `exportReferencesGraph` under `__structuredAttrs`
//! (`.attrs.json`, or `nix path-info --json`-like arrays): an array of
//! `{"path", "narSize", "references"}` objects, or an object whose array
//! values are such arrays (every other key is ignored). A file is JSON when
//! its first non-blank byte is `[` or `{` (a store path starts with `/`).
//! JSON graphs carry sizes (`narSize`); text graphs do not, and the size
//! strategy measures those paths on disk (see `size::measure`).
//!
//! Invariants: a path's references are a set (duplicates and the path itself
//! dropped); the union does not depend on the order of files or blocks; a
//! malformed graph is an error naming `file:line` (text) or `file: graph[i]…`
//! (JSON), and nothing is half-read into the closure that a caller could use.

use std::collections::BTreeMap;

use camino::Utf8Path;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::layer::path::LayerPath;

/// Largest references graph strata reads.
pub const MAX_GRAPH_BYTES: usize = 256 << 20;

/// The union of references graphs: every path seen, its references, its size
/// when a graph gave one, and whether it is listed in a layered or an
/// excluded graph.
#[derive(Debug, Default)]
pub struct Closure {
    pub(super) names: Vec<String>,
    ids: BTreeMap<String, usize>,
    pub(super) refs: Vec<Vec<usize>>,
    pub(super) listed: Vec<bool>,
    pub(super) excluded: Vec<bool>,
    pub(super) sizes: Vec<Option<u64>>,
}

/// Where the text parser is inside a block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Path,
    Deriver,
    Count,
    Refs(usize),
}

impl Closure {
    /// An empty closure.
    pub fn new() -> Closure {
        Closure::default()
    }

    fn id(&mut self, path: &str) -> usize {
        if let Some(&i) = self.ids.get(path) {
            return i;
        }
        let i = self.names.len();
        self.names.push(path.to_string());
        self.ids.insert(path.to_string(), i);
        self.refs.push(Vec::new());
        self.listed.push(false);
        self.excluded.push(false);
        self.sizes.push(None);
        i
    }

    fn list(&mut self, i: usize, exclude: bool) {
        if exclude {
            self.excluded[i] = true;
        } else {
            self.listed[i] = true;
        }
    }

    /// Read a graph file (text or JSON); `exclude` leaves its paths out of
    /// the layers. `FILE#KEY` (when no file is named so) reads only the
    /// array under KEY of the JSON object in FILE: one graph of a
    /// `__structuredAttrs` derivation's `.attrs.json`, which holds them all.
    pub fn read_graph(&mut self, path: &Utf8Path, exclude: bool) -> Result<()> {
        let (file, key) = match path.as_str().rsplit_once('#') {
            Some((f, k)) if !f.is_empty() && !k.is_empty() && !path.exists() => {
                (Utf8Path::new(f), Some(k))
            }
            _ => (path, None),
        };
        let bytes = crate::layer::read_small_file(file, MAX_GRAPH_BYTES)?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let json = first.is_some_and(|&b| b == b'[' || b == b'{');
        match key {
            Some(k) if first != Some(&b'{') => Err(Error::invalid(format!(
                "{file}: not a JSON object, so it has no key {k:?} (graph {path})"
            ))),
            Some(k) => self.add_json_graph_under(&bytes, file.as_str(), exclude, Some(k)),
            None if json => self.add_json_graph(&bytes, path.as_str(), exclude),
            None => self.add_graph(&bytes, path.as_str(), exclude),
        }
    }

    /// Add a text graph; `what` names it in errors (`what:line: …`).
    /// `exclude`: its paths are left out of the layers and its references
    /// are not recorded.
    pub fn add_graph(&mut self, bytes: &[u8], what: &str, exclude: bool) -> Result<()> {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut want = Want::Path;
        let mut current = 0;
        let mut lines = 0;
        if !bytes.is_empty() {
            for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                lines = i + 1;
                let at = || format!("{what}:{}", i + 1);
                let line = std::str::from_utf8(raw)
                    .map_err(|_| Error::invalid(format!("{}: not UTF-8", at())))?;
                want = match want {
                    Want::Path => {
                        check_store_path(line).map_err(|e| e.context(at()))?;
                        current = self.id(line);
                        self.list(current, exclude);
                        Want::Deriver
                    }
                    Want::Deriver => Want::Count,
                    Want::Count => {
                        let n = Some(line)
                            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|l| l.parse::<usize>().ok())
                            .ok_or_else(|| {
                                Error::invalid(format!("{}: not a reference count: {line:?}", at()))
                            })?;
                        if n == 0 {
                            Want::Path
                        } else {
                            Want::Refs(n)
                        }
                    }
                    Want::Refs(left) => {
                        check_store_path(line)
                            .map_err(|e| e.context(format!("{}: reference", at())))?;
                        let r = self.id(line);
                        if !exclude && r != current && !self.refs[current].contains(&r) {
                            self.refs[current].push(r);
                        }
                        if left == 1 {
                            Want::Path
                        } else {
                            Want::Refs(left - 1)
                        }
                    }
                };
            }
        }
        let missing = match want {
            Want::Path => return Ok(()),
            Want::Deriver => "a deriver line".to_string(),
            Want::Count => "a reference count".to_string(),
            Want::Refs(1) => "1 more reference".to_string(),
            Want::Refs(n) => format!("{n} more references"),
        };
        Err(Error::invalid(format!(
            "{what}:{}: truncated graph: expected {missing}",
            lines + 1
        )))
    }

    /// Add a JSON graph (see the module doc); `what` names it in errors.
    /// The whole document is checked before the closure changes.
    pub fn add_json_graph(&mut self, bytes: &[u8], what: &str, exclude: bool) -> Result<()> {
        self.add_json_graph_under(bytes, what, exclude, None)
    }

    /// [`Closure::add_json_graph`], reading only the array under `key` of
    /// the document (an object) when `key` is given.
    pub fn add_json_graph_under(
        &mut self,
        bytes: &[u8],
        what: &str,
        exclude: bool,
        key: Option<&str>,
    ) -> Result<()> {
        let doc: Value = crate::json::parse(bytes, what)?;
        let arrays: Vec<(String, &Vec<Value>)> = match (&doc, key) {
            (Value::Object(m), Some(k)) => match m.get(k) {
                Some(Value::Array(a)) => vec![(k.to_string(), a)],
                Some(_) => {
                    return Err(Error::invalid(format!("{what}: {k}: not an array")));
                }
                None => return Err(Error::invalid(format!("{what}: no key {k:?}"))),
            },
            (_, Some(k)) => {
                return Err(Error::invalid(format!(
                    "{what}: not a JSON object, so it has no key {k:?}"
                )))
            }
            (Value::Array(a), None) => vec![("graph".to_string(), a)],
            (Value::Object(m), None) => m
                .iter()
                .filter_map(|(k, v)| v.as_array().map(|a| (k.clone(), a)))
                .filter(|(_, a)| {
                    a.iter()
                        .all(|n| n.get("path").is_some_and(Value::is_string))
                })
                .filter(|(_, a)| !a.is_empty())
                .collect(),
            (_, None) => unreachable!("read_graph sends only [ or {{"),
        };
        let mut nodes: Vec<(&str, Option<u64>, Vec<&str>)> = Vec::new();
        for (key, array) in arrays {
            for (i, n) in array.iter().enumerate() {
                let at = format!("{what}: {key}[{i}]");
                let obj = n
                    .as_object()
                    .ok_or_else(|| Error::invalid(format!("{at}: not an object")))?;
                let path = obj
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::invalid(format!("{at}: no \"path\" string")))?;
                check_store_path(path).map_err(|e| e.context(&at))?;
                let size = match obj.get("narSize") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_u64().ok_or_else(|| {
                        Error::invalid(format!("{at}: narSize {v}: not a byte count"))
                    })?),
                };
                let refs = match obj.get("references") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(rs)) => rs
                        .iter()
                        .enumerate()
                        .map(|(j, r)| {
                            let r = r.as_str().ok_or_else(|| {
                                Error::invalid(format!("{at}: references[{j}]: not a string"))
                            })?;
                            check_store_path(r)
                                .map_err(|e| e.context(format!("{at}: references[{j}]")))?;
                            Ok(r)
                        })
                        .collect::<Result<Vec<_>>>()?,
                    Some(_) => {
                        return Err(Error::invalid(format!("{at}: references: not an array")))
                    }
                };
                nodes.push((path, size, refs));
            }
        }
        for (path, size, refs) in nodes {
            let p = self.id(path);
            self.list(p, exclude);
            if size.is_some() {
                self.sizes[p] = size;
            }
            for r in refs {
                let r = self.id(r);
                if !exclude && r != p && !self.refs[p].contains(&r) {
                    self.refs[p].push(r);
                }
            }
        }
        Ok(())
    }

    /// The ids of the paths to layer, in path byte order: every listed path
    /// not excluded and not in `drop`.
    pub(super) fn layered(&self, drop: &[String]) -> Vec<usize> {
        let drop: std::collections::BTreeSet<&str> = drop.iter().map(String::as_str).collect();
        let mut ids: Vec<usize> = (0..self.names.len())
            .filter(|&i| {
                self.listed[i] && !self.excluded[i] && !drop.contains(self.names[i].as_str())
            })
            .collect();
        // Byte order of the path, never id (graph order) order.
        ids.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        ids
    }

    /// The store path of an id.
    pub(super) fn name(&self, id: usize) -> &str {
        &self.names[id]
    }
}

/// A store path: absolute, and a valid layer path once the `/` is dropped.
pub(super) fn check_store_path(line: &str) -> Result<()> {
    let ok = line
        .strip_prefix('/')
        .is_some_and(|rel| !rel.ends_with('/') && LayerPath::parse(rel).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("not a store path: {line:?}")))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::Closure;

    /// A closure from one JSON graph of `/s/<name>` paths: (name, narSize,
    /// references by name).
    pub(in crate::nix) fn json_closure(nodes: &[(&str, u64, &[&str])]) -> Closure {
        let v: Vec<serde_json::Value> = nodes
            .iter()
            .map(|(p, s, r)| {
                let refs: Vec<String> = r.iter().map(|x| format!("/s/{x}")).collect();
                serde_json::json!({"path": format!("/s/{p}"), "narSize": s, "references": refs})
            })
            .collect();
        let mut c = Closure::new();
        c.add_json_graph(&serde_json::to_vec(&v).unwrap(), "g", false)
            .unwrap();
        c
    }
}
