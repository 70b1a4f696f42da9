//! Layer entries and their normalization: the one place where order, parents,
//! duplicates, modes and hard links are decided.
//!
//! Invariants of [`normalize`]'s output:
//! - sorted in the canonical order of [`LayerPath`] (parents before children);
//! - every parent directory present (synthesized as 0755, 0:0 unless declared),
//!   unless the caller turns synthesis off;
//! - no path twice (identical directory declarations merge; anything else is
//!   an error naming both origins);
//! - no entry below a non-directory (a symlink `a -> /etc` then `a/passwd` is
//!   refused: extracting it would write through the link);
//! - each hard-link group has its content on the first path in canonical order
//!   and links from every other path to it, whatever order the spec gave,
//!   so the link target always precedes the link in the tar.

use std::collections::BTreeMap;
use std::sync::Arc;

use camino::Utf8PathBuf;

use super::path::LayerPath;
use crate::error::{Error, Result};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A host file (read through symlinks), with the size seen when listed.
    Path(Utf8PathBuf, u64),
    /// Bytes given inline (spec `content`, whiteouts).
    Inline(Vec<u8>),
}

impl Content {
    /// The content length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Path(_, n) => *n,
            Content::Inline(b) => b.len() as u64,
        }
    }

    /// True for empty content.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File(Content),
    /// A directory.
    Dir,
    /// A symbolic link with its target, byte for byte.
    Symlink(String),
    /// A hard link to another regular file of the same layer.
    Hardlink(LayerPath),
    /// A character (`block` false) or block device node, only when asked
    /// for (a root filesystem's `dev/`).
    Device {
        /// Block device rather than character device.
        block: bool,
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A named pipe, only when asked for.
    Fifo,
}

/// Extended attributes of an entry, by name (sorted: written in this order).
pub type Xattrs = BTreeMap<String, Vec<u8>>;

/// One entry of a layer, fully specified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the layer.
    pub path: LayerPath,
    /// Type and content.
    pub kind: EntryKind,
    /// Permission bits, `& 0o7777`.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner name (empty unless declared).
    pub uname: String,
    /// Group name (empty unless declared).
    pub gname: String,
    /// Extended attributes (`None` almost always: only an allow-list, and
    /// only when asked for). Boxed: one pointer per entry of a large tree.
    pub xattrs: Option<Box<Xattrs>>,
    /// Where the entry was declared, for error messages (shared: a walked
    /// tree of 100,000 files holds one copy).
    pub origin: Arc<str>,
}

/// Default mode of a regular file: 0755 if any executable bit is set, else 0644.
///
/// Why: host permissions carry the umask; only the executable bit is intent.
pub fn default_file_mode(host_mode: u32) -> u32 {
    if host_mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Default directory mode (never the host's, which carries the umask).
pub const DIR_MODE: u32 = 0o755;

/// Mode of symlinks (Linux ignores it; fixed so the bytes are).
pub const SYMLINK_MODE: u32 = 0o777;

impl Entry {
    /// A directory entry with default attributes.
    pub fn dir(path: LayerPath, origin: impl Into<Arc<str>>) -> Entry {
        Entry {
            path,
            kind: EntryKind::Dir,
            mode: DIR_MODE,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            xattrs: None,
            origin: origin.into(),
        }
    }

    fn same_dir_attrs(&self, other: &Entry) -> bool {
        self.kind == EntryKind::Dir
            && other.kind == EntryKind::Dir
            && (
                self.mode,
                self.uid,
                self.gid,
                &self.uname,
                &self.gname,
                &self.xattrs,
            ) == (
                other.mode,
                other.uid,
                other.gid,
                &other.uname,
                &other.gname,
                &other.xattrs,
            )
    }

    fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// Options for [`normalize`].
#[derive(Debug, Clone, Copy)]
pub struct NormalizeOptions {
    /// Synthesize missing parent directories (default true).
    pub parents: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions { parents: true }
    }
}

/// Check, complete and order `entries` (see the module docs).
///
/// Works on the sorted vector in place (binary search, no map of all
/// entries): a 100,000-file tree is held once.
pub fn normalize(mut entries: Vec<Entry>, opts: NormalizeOptions) -> Result<Vec<Entry>> {
    // Stable: duplicates stay in declaration order for the error message.
    // A walked tree comes sorted: skipping the sort saves its scratch buffer
    // (half the entries: ~8 MB for 100,000 files).
    if !entries.windows(2).all(|w| w[0].path <= w[1].path) {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
    }
    // Duplicates are dropped in place (no second vector: 100,000 entries
    // take ~15 MB). Each is checked against the one kept.
    let mut kept = 0;
    for i in 1..entries.len() {
        let (prev, e) = (&entries[kept], &entries[i]);
        if prev.path != e.path {
            kept = i;
        } else if !prev.same_dir_attrs(e) {
            let what = if prev.is_dir() && e.is_dir() {
                "declared twice with different attributes"
            } else {
                "duplicate path"
            };
            return Err(Error::invalid(format!(
                "{}: {what} (from {} and {})",
                e.path, prev.origin, e.origin
            )));
        }
    }
    entries.dedup_by(|e, kept| e.path == kept.path);
    let mut out = entries;
    let find = |v: &[Entry], p: &LayerPath| v.binary_search_by(|e| e.path.cmp(p)).ok();
    // Parents: refuse anything below a non-directory; collect missing ones.
    let mut missing: Vec<LayerPath> = Vec::new();
    for e in &out {
        for anc in e.path.ancestors() {
            match find(&out, &anc) {
                Some(i) if out[i].is_dir() => {}
                Some(i) => {
                    let a = &out[i];
                    let what = match a.kind {
                        EntryKind::Symlink(_) => "a symlink",
                        _ => "not a directory",
                    };
                    return Err(Error::invalid(format!(
                        "{}: parent {anc} is {what} in this layer (from {}); \
                         writing through it is refused",
                        e.path, a.origin
                    )));
                }
                None if opts.parents => missing.push(anc),
                None => {}
            }
        }
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        let synthesized: Arc<str> = Arc::from("a synthesized parent");
        let mut parents = missing
            .into_iter()
            .map(|p| Entry::dir(p, Arc::clone(&synthesized)));
        if parents.len() <= 16 {
            // A few (the parents of a prefix): inserted in place, no sort
            // scratch as large as half the entries.
            for p in parents {
                let at = out.partition_point(|e| e.path < p.path);
                out.insert(at, p);
            }
        } else {
            out.extend(&mut parents);
            out.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    resolve_hardlinks(&mut out)?;
    Ok(out)
}

/// Rewrite hard-link groups so content sits on the first path in canonical
/// order. `v` is sorted by path.
fn resolve_hardlinks(v: &mut [Entry]) -> Result<()> {
    let find = |v: &[Entry], p: &LayerPath| v.binary_search_by(|e| e.path.cmp(p)).ok();
    // Follow each link to the regular file it names (chains allowed, cycles not).
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, e) in v.iter().enumerate() {
        let EntryKind::Hardlink(first) = &e.kind else {
            continue;
        };
        let mut target = first.clone();
        let mut hops = 0;
        let file = loop {
            match find(v, &target).map(|t| (t, &v[t].kind)) {
                Some((t, EntryKind::File(_))) => break t,
                Some((_, EntryKind::Hardlink(next))) if hops < v.len() => {
                    target = next.clone();
                    hops += 1;
                }
                Some((_, EntryKind::Hardlink(_))) => {
                    return Err(Error::invalid(format!(
                        "{}: hard link cycle (from {})",
                        e.path, e.origin
                    )))
                }
                _ => {
                    return Err(Error::invalid(format!(
                    "{}: hard link target {first} is not a regular file in this layer (from {})",
                    e.path, e.origin
                )))
                }
            }
        };
        groups.entry(file).or_default().push(i);
    }
    for (file, links) in groups {
        // Sorted vector: the smallest index is the first path in canonical order.
        let first = links
            .iter()
            .copied()
            .chain([file])
            .min()
            .expect("non-empty");
        if first != file {
            // Move content and attributes to `first`; the old file becomes a link.
            let content = v[file].clone();
            let e = &mut v[first];
            e.kind = content.kind;
            e.mode = content.mode;
            e.uid = content.uid;
            e.gid = content.gid;
            e.uname = content.uname;
            e.gname = content.gname;
            e.xattrs = content.xattrs;
        }
        let target = v[first].path.clone();
        for i in links.into_iter().chain([file]) {
            if i != first {
                v[i].kind = EntryKind::Hardlink(target.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap()
    }

    fn file(path: &str) -> Entry {
        Entry {
            kind: EntryKind::File(Content::Inline(b"x".to_vec())),
            mode: 0o644,
            ..Entry::dir(p(path), format!("test {path}"))
        }
    }

    fn link(path: &str, kind: EntryKind) -> Entry {
        Entry {
            kind,
            ..Entry::dir(p(path), format!("test {path}"))
        }
    }

    #[test]
    fn synthesizes_parents_and_sorts() {
        let out = normalize(vec![file("b/c/d"), file("a")], Default::default()).unwrap();
        let names: Vec<_> = out.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/c/d"]);
        assert_eq!(out[1].mode, 0o755);
        let out = normalize(vec![file("b/c/d")], NormalizeOptions { parents: false }).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn few_and_many_missing_parents_give_the_same_order_as_a_sort() {
        for n in [1, 3, 16, 17, 40] {
            // Already sorted input (as a walk gives) and reversed input.
            let mut input: Vec<Entry> = (0..n).map(|i| file(&format!("p{i:02}/x/f"))).collect();
            input.push(file("p00-a"));
            let mut want: Vec<String> = (0..n)
                .flat_map(|i| {
                    [
                        format!("p{i:02}"),
                        format!("p{i:02}/x"),
                        format!("p{i:02}/x/f"),
                    ]
                })
                .chain(["p00-a".to_string()])
                .collect();
            want.sort_by_key(|a| p(a));
            for input in [input.clone(), input.into_iter().rev().collect()] {
                let out = normalize(input, Default::default()).unwrap();
                let names: Vec<_> = out.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(names, want, "{n} parents");
            }
        }
    }

    #[test]
    fn duplicates_are_errors_but_equal_dirs_merge() {
        let err = normalize(vec![file("a"), file("a")], Default::default()).unwrap_err();
        assert!(err.to_string().contains("a: duplicate path"), "{err}");
        let d = Entry::dir(p("d"), "x");
        assert_eq!(
            normalize(vec![d.clone(), d], Default::default())
                .unwrap()
                .len(),
            1
        );
        let err =
            normalize(vec![file("d"), Entry::dir(p("d"), "y")], Default::default()).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn refuses_writing_through_symlinks() {
        let err = normalize(
            vec![
                link("a", EntryKind::Symlink("/etc".into())),
                file("a/passwd"),
            ],
            Default::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("a/passwd: parent a is a symlink"),
            "{err}"
        );
    }

    #[test]
    fn hardlink_content_moves_to_first_path() {
        let out = normalize(
            vec![file("z"), link("a", EntryKind::Hardlink(p("z")))],
            Default::default(),
        )
        .unwrap();
        assert!(matches!(out[0].kind, EntryKind::File(_)));
        assert_eq!(out[1].kind, EntryKind::Hardlink(p("a")));
        let err = normalize(
            vec![link("a", EntryKind::Hardlink(p("nope")))],
            Default::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
