//! User groups: store paths that must share a layer (or, one path to a
//! group, stand alone), which the automatic split then completes.
//!
//! A group is a list of patterns; a pattern starting with `/` is a store
//! path, matched exactly; any other is matched against the store path's
//! *name* (what follows the hash), `*` standing for any run of bytes
//! (`python3*`, `*-man`, `openssl-3.0.13`). A path matched by several groups
//! goes to the first. Each non-empty group is one layer, bottom first in
//! the order given, and counts against the layer budget; the other paths
//! are split by the strategy (and the lock) within what is left.
//!
//! Invariants: matching depends only on the patterns and the path's bytes;
//! a group that matches nothing makes no layer; groups that leave no layer
//! for the remaining paths are refused.

use super::graph::Closure;
use super::lock::path_name;
use crate::error::{Error, Result};

/// A group of patterns (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    patterns: Vec<String>,
}

impl Group {
    /// Parse a comma-separated list of patterns; `what` names it in errors.
    pub fn parse(list: &str, what: &str) -> Result<Group> {
        let patterns: Vec<String> = list.split(',').map(str::to_string).collect();
        if patterns.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid(format!(
                "{what} {list:?}: an empty pattern (patterns are separated by commas)"
            )));
        }
        Ok(Group { patterns })
    }

    /// Whether the group holds `store_path`.
    pub fn matches(&self, store_path: &str) -> bool {
        self.patterns.iter().any(|p| {
            if p.starts_with('/') {
                p == store_path
            } else {
                glob(p.as_bytes(), path_name(store_path).as_bytes())
            }
        })
    }
}

/// `*`-only glob matching, iterative (no backtracking blow-up).
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if p < pat.len() && pat[p] == s[i] {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Take the grouped paths out of `ids`: the groups' layers (non-empty, in
/// order, paths in byte order) and the paths left.
pub(super) fn take(
    closure: &Closure,
    ids: &[usize],
    groups: &[Group],
) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    let mut rest = Vec::new();
    for &i in ids {
        match groups.iter().position(|g| g.matches(closure.name(i))) {
            Some(g) => layers[g].push(i),
            None => rest.push(i),
        }
    }
    layers.retain(|l| !l.is_empty());
    (layers, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_or_whole_paths() {
        let g = Group::parse("python3*,/nix/store/abc-exact,*-man", "--group").unwrap();
        assert!(g.matches("/nix/store/h1-python3-3.11.9"));
        assert!(g.matches("/nix/store/h2-python3.11-requests-2.31"));
        assert!(!g.matches("/nix/store/h3-mypython3"));
        assert!(g.matches("/nix/store/abc-exact"));
        assert!(!g.matches("/nix/store/abd-exact"));
        assert!(g.matches("/nix/store/h4-gcc-13-man"));
        assert!(!g.matches("/nix/store/h4-gcc-13-man-x"));
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b*c", b"aXXbYY"));
        assert!(glob(b"*", b""));
        let e = Group::parse("a,,b", "--group").unwrap_err().to_string();
        assert!(e.contains("an empty pattern"), "{e}");
    }
}
