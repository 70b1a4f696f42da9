//! Layer paths: relative, normalized, validated.
//!
//! A [`LayerPath`] is what a tar entry's name means inside the container root:
//! `usr/bin/app`, never `/usr/bin/app`, `./usr/bin/app`, `usr//bin`, `usr/bin/`
//! or anything with `..`, `.` or NUL. The root itself is never an entry (it
//! would overwrite `/`'s attributes in the running container).
//!
//! Order: entries are sorted component by component on raw bytes (the order
//! of GNU `tar --sort=name`), which puts every directory before its children.
//! Implemented as a byte comparison with `/` mapped to `\0`: NUL is forbidden
//! in paths, so it sorts below every other byte, exactly like "end of component".

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};

/// A validated path inside a layer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LayerPath(String);

impl LayerPath {
    /// Validate and normalize `raw` (a path from a spec, a directory walk or a tar).
    ///
    /// Accepts one leading `./` and one trailing `/`; rejects absolute paths,
    /// empty, `.` and `..` components, doubled slashes and NUL.
    pub fn parse(raw: &str) -> Result<LayerPath> {
        let shown = || format!("{raw:?}");
        if raw.contains('\0') {
            return Err(Error::invalid(format!("path {}: contains NUL", shown())));
        }
        if raw.starts_with('/') {
            return Err(Error::invalid(format!(
                "path {}: absolute paths are not allowed (write it relative to the layer root)",
                shown()
            )));
        }
        let mut p = raw.strip_prefix("./").unwrap_or(raw);
        p = p.strip_suffix('/').unwrap_or(p);
        if p.is_empty() || p == "." {
            return Err(Error::invalid(format!(
                "path {}: empty path (the layer root cannot be an entry)",
                shown()
            )));
        }
        for comp in p.split('/') {
            match comp {
                "" => return Err(Error::invalid(format!("path {}: empty component", shown()))),
                "." => return Err(Error::invalid(format!("path {}: '.' component", shown()))),
                ".." => {
                    return Err(Error::invalid(format!(
                        "path {}: '..' components are not allowed",
                        shown()
                    )))
                }
                _ => {}
            }
        }
        Ok(LayerPath(p.to_string()))
    }

    /// Join a validated prefix (possibly empty) and a relative validated path.
    pub fn join(prefix: Option<&LayerPath>, rest: &LayerPath) -> LayerPath {
        match prefix {
            Some(p) => {
                // Why not format!: this runs once per walked file.
                let mut s = String::with_capacity(p.0.len() + 1 + rest.0.len());
                s.push_str(&p.0);
                s.push('/');
                s.push_str(&rest.0);
                LayerPath(s)
            }
            None => rest.clone(),
        }
    }

    /// Append one file name (already validated as a single component).
    pub fn child(&self, name: &str) -> Result<LayerPath> {
        LayerPath::parse(&format!("{}/{name}", self.0))
    }

    /// The path as a string, without leading or trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent directory, or `None` at the top level.
    pub fn parent(&self) -> Option<LayerPath> {
        self.0
            .rfind('/')
            .map(|i| LayerPath(self.0[..i].to_string()))
    }

    /// All proper ancestors, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<LayerPath> {
        let mut out = Vec::new();
        for (i, c) in self.0.char_indices() {
            if c == '/' {
                out.push(LayerPath(self.0[..i].to_string()));
            }
        }
        out
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The canonical entry order (see the module docs).
    pub fn cmp_entry_order(&self, other: &LayerPath) -> Ordering {
        let a = self.0.bytes().map(|b| if b == b'/' { 0 } else { b });
        let b = other.0.bytes().map(|b| if b == b'/' { 0 } else { b });
        a.cmp(b)
    }

    /// Resolve a symlink `target` stored at this path, lexically, against the
    /// layer root. Absolute targets are container-absolute and always stay in
    /// the root. Returns `None` when a relative target climbs above the root.
    pub fn resolve_link(&self, target: &str) -> Option<String> {
        let mut parts: Vec<&str> = if target.starts_with('/') {
            Vec::new()
        } else {
            self.0.split('/').collect()
        };
        if !target.starts_with('/') {
            parts.pop(); // the link's own name
        }
        for comp in target.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    if target.starts_with('/') {
                        // `/..` is `/` inside a container root.
                        parts.pop();
                    } else {
                        parts.pop()?;
                    }
                }
                c => parts.push(c),
            }
        }
        Some(parts.join("/"))
    }
}

impl Ord for LayerPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_entry_order(other)
    }
}

impl PartialOrd for LayerPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Refuse relative symlink targets that climb above the layer root.
pub fn check_link_target(path: &LayerPath, target: &str) -> Result<()> {
    if target.is_empty() || target.contains('\0') {
        return Err(Error::invalid(format!(
            "symlink {path}: empty target or NUL in target"
        )));
    }
    if path.resolve_link(target).is_none() {
        return Err(Error::invalid(format!(
            "symlink {path} -> {target}: escapes the layer root"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap()
    }

    #[test]
    fn normalizes() {
        assert_eq!(p("./a/b/").as_str(), "a/b");
        assert_eq!(p("a").as_str(), "a");
    }

    #[test]
    fn rejects() {
        for bad in [
            "", ".", "./", "/a", "a/../b", "..", "a//b", "a/./b", "a\0b", "//",
        ] {
            assert!(LayerPath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn order_is_per_component() {
        let mut v = [p("a-b"), p("a/z"), p("a"), p("a/b/c"), p("b"), p("a.txt")];
        v.sort();
        let s: Vec<_> = v.iter().map(|x| x.as_str()).collect();
        assert_eq!(s, ["a", "a/b/c", "a/z", "a-b", "a.txt", "b"]);
    }

    #[test]
    fn link_resolution() {
        assert_eq!(p("a/b").resolve_link("c").unwrap(), "a/c");
        assert_eq!(p("a/b").resolve_link("../c").unwrap(), "c");
        assert_eq!(p("a/b").resolve_link("../../c"), None);
        assert_eq!(p("a/b").resolve_link("/etc/x").unwrap(), "etc/x");
        assert_eq!(p("a/b").resolve_link("/../../etc").unwrap(), "etc");
    }

    #[test]
    fn ancestors() {
        let a: Vec<_> = p("a/b/c").ancestors().into_iter().map(|x| x.0).collect();
        assert_eq!(a, ["a", "a/b"]);
    }
}
