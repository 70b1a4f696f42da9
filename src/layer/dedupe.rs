//! Content-based hard links: identical files are stored once.
//!
//! Hosts make hard links with inode numbers, which differ between machines
//! and filesystems, so they never decide anything here (two names of one
//! inode are only read once, since their bytes are the same). Instead, regular files
//! with the same content and the same attributes (mode, owner,
//! xattrs) become hard
//! links to the first of them in canonical order. The result depends only on
//! the files' bytes: a host that has two copies and a host that has one inode
//! with two names produce the same layer. Only files whose size is shared by
//! another candidate, and whose first and last 64 KiB match another's, are
//! read whole and hashed, so the extra read is usually small.
//! Files smaller than [`DEDUPE_MIN_SIZE`] are never linked: they save little
//! and hashing many of them costs a second open and read each (100,000 small
//! files took 9 s instead of 1 s). Whiteouts, being empty, are never linked.
//!
//! Container semantics are unchanged: image layers are read-only lower
//! layers, and writing either path at run time copies it up alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::entry::{Content, Entry, EntryKind, Xattrs};
use super::path::LayerPath;
use crate::digest::{digest_reader, Digest};
use crate::error::{IoContext, Result};
use crate::parallel::parallel;

/// Smallest file considered for linking.
pub const DEDUPE_MIN_SIZE: u64 = 16 * 1024;

type Attrs = (u64, u32, u64, u64, String, String, Option<Box<Xattrs>>);

/// Why xattrs too: hard links share them (a file capability would spread).
fn attrs(e: &Entry, c: &Content) -> Attrs {
    (
        c.len(),
        e.mode,
        e.uid,
        e.gid,
        e.uname.clone(),
        e.gname.clone(),
        e.xattrs.clone(),
    )
}

/// Bytes read from each end of a file for the cheap first comparison.
const EDGE: u64 = 64 * 1024;

/// A digest of the first and last [`EDGE`] bytes: files that differ there
/// are never read whole (most same-size files differ in their first bytes).
fn edge_digest(c: &Content) -> Result<Digest> {
    match c {
        Content::Inline(b) => {
            let n = b.len();
            let e = EDGE as usize;
            let mut v = b[..n.min(e)].to_vec();
            v.extend_from_slice(&b[n.saturating_sub(e)..]);
            Ok(Digest::of(&v))
        }
        Content::Path(p, len) => {
            let mut f = File::open(p).io_context(|| format!("reading {p}"))?;
            let mut v = Vec::with_capacity(2 * EDGE as usize);
            (&mut f)
                .take(EDGE)
                .read_to_end(&mut v)
                .io_context(|| format!("reading {p}"))?;
            f.seek(SeekFrom::Start(len.saturating_sub(EDGE)))
                .io_context(|| format!("reading {p}"))?;
            f.take(EDGE)
                .read_to_end(&mut v)
                .io_context(|| format!("reading {p}"))?;
            Ok(Digest::of(&v))
        }
    }
}

fn content_digest(c: &Content) -> Result<Digest> {
    match c {
        Content::Inline(b) => Ok(Digest::of(b)),
        Content::Path(p, _) => {
            let f = File::open(p).io_context(|| format!("reading {p}"))?;
            let r = std::io::BufReader::with_capacity(1 << 20, f);
            Ok(digest_reader(r).io_context(|| format!("reading {p}"))?.0)
        }
    }
}

/// Which host file holds a file's bytes: (device, inode) of a host path.
///
/// Why look at inodes at all: only to read such a file once. Two names of one
/// inode certainly have the same bytes, so the result is exactly what hashing
/// every name would give (a host with two copies and a host with one inode
/// with two names still produce the same layer); the inode never reaches the
/// output. Inline content has none.
fn file_id(c: &Content) -> Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    match c {
        Content::Inline(_) => Ok(None),
        Content::Path(p, _) => {
            let m = std::fs::metadata(p).io_context(|| format!("reading {p}"))?;
            Ok(Some((m.dev(), m.ino())))
        }
    }
}

/// What two candidates are compared by.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// All names in an edge group are one host file: equal without reading.
    OneFile,
    /// The whole-content digest.
    Content(Digest),
}

/// Turn identical files of sorted, normalized `entries` into hard links.
/// Returns the number of bytes no longer stored. Files are read on up to
/// `threads` threads, each host file (inode) once; the result (and any
/// error: the first in canonical order) depends on neither.
pub fn link_identical(entries: &mut [Entry], threads: usize) -> Result<u64> {
    let mut by_attrs: BTreeMap<Attrs, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let EntryKind::File(c) = &e.kind {
            if c.len() >= DEDUPE_MIN_SIZE {
                by_attrs.entry(attrs(e, c)).or_default().push(i);
            }
        }
    }
    let groups: Vec<Vec<usize>> = by_attrs.into_values().filter(|v| v.len() > 1).collect();
    let entries_ro: &[Entry] = entries;
    let content = |i: usize| -> &Content {
        match &entries_ro[i].kind {
            EntryKind::File(c) => c,
            _ => unreachable!("only files are candidates"),
        }
    };
    // One name per host file reads it for all (inline content stands for
    // itself): `rep_of[i]` is the first candidate naming i's host file.
    let mut first_name: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let mut rep_of: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in groups.iter().flatten() {
        let rep = match file_id(content(i))? {
            Some(id) => *first_name.entry(id).or_insert(i),
            None => i,
        };
        rep_of.insert(i, rep);
    }
    // Only files whose edges match another's are read whole.
    let mut edge_reps: Vec<usize> = rep_of.values().copied().collect();
    edge_reps.sort_unstable();
    edge_reps.dedup();
    let edges = parallel(&edge_reps, threads, |&i| edge_digest(content(i)))?;
    let edge_of_rep: BTreeMap<usize, Digest> = edge_reps.into_iter().zip(edges).collect();
    // Each attribute group's files with the same edges, in canonical order.
    let mut same_edges: Vec<Vec<usize>> = Vec::new();
    for idxs in &groups {
        let mut by_edge: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
        for &i in idxs {
            by_edge.entry(edge_of_rep[&rep_of[&i]]).or_default().push(i);
        }
        same_edges.extend(by_edge.into_values().filter(|v| v.len() > 1));
    }
    // Whole files to hash: one name per host file, only where an edge group
    // spans more than one host file.
    let mut whole: Vec<usize> = same_edges
        .iter()
        .filter(|v| v.iter().any(|i| rep_of[i] != rep_of[&v[0]]))
        .flat_map(|v| v.iter().map(|i| rep_of[i]))
        .collect();
    whole.sort_unstable();
    whole.dedup();
    let digests = parallel(&whole, threads, |&i| content_digest(content(i)))?;
    let digest_of_rep: BTreeMap<usize, Digest> = whole.into_iter().zip(digests).collect();
    // (entry, edge group, key); an edge group is one attribute group's files
    // with the same edges, so equal keys in different edge groups never meet.
    let mut keyed: Vec<(usize, usize, Key)> = Vec::new();
    for (eg, v) in same_edges.iter().enumerate() {
        let one_file = v.iter().all(|i| rep_of[i] == rep_of[&v[0]]);
        for &i in v {
            let key = if one_file {
                Key::OneFile
            } else {
                Key::Content(digest_of_rep[&rep_of[&i]])
            };
            keyed.push((i, eg, key));
        }
    }
    // In canonical order, so the first with a key is first in canonical order.
    keyed.sort_unstable_by_key(|(i, _, _)| *i);
    let mut first_of: BTreeMap<(usize, Key), usize> = BTreeMap::new();
    let mut relinked: BTreeMap<LayerPath, LayerPath> = BTreeMap::new();
    let mut saved = 0;
    for (i, eg, key) in keyed {
        match first_of.get(&(eg, key)) {
            Some(&first) => {
                if let EntryKind::File(c) = &entries[i].kind {
                    saved += c.len();
                }
                let target = entries[first].path.clone();
                relinked.insert(entries[i].path.clone(), target.clone());
                entries[i].kind = EntryKind::Hardlink(target);
            }
            None => {
                first_of.insert((eg, key), i);
            }
        }
    }
    // Declared links to a file that just became a link follow it to the content.
    for e in entries.iter_mut() {
        if let EntryKind::Hardlink(t) = &e.kind {
            if let Some(to) = relinked.get(t) {
                if *to != e.path {
                    e.kind = EntryKind::Hardlink(to.clone());
                }
            }
        }
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, mode: u32) -> Entry {
        Entry {
            kind: EntryKind::File(Content::Inline(content.as_bytes().to_vec())),
            mode,
            ..Entry::dir(LayerPath::parse(path).unwrap(), "test")
        }
    }

    #[test]
    fn identical_files_become_links_to_the_first() {
        let big = "x".repeat(DEDUPE_MIN_SIZE as usize);
        let other = "y".repeat(DEDUPE_MIN_SIZE as usize);
        let mut v = vec![
            file("a", &big, 0o644),
            file("b", &big, 0o755),
            file("c", &big, 0o644),
            file("d", "small", 0o644),
            file("e", "small", 0o644),
            file("f", &other, 0o644),
        ];
        let saved = link_identical(&mut v, 2).unwrap();
        assert_eq!(saved, DEDUPE_MIN_SIZE);
        assert!(
            matches!(v[1].kind, EntryKind::File(_)),
            "different mode stays a file"
        );
        assert_eq!(
            v[2].kind,
            EntryKind::Hardlink(LayerPath::parse("a").unwrap())
        );
        assert!(
            matches!(v[4].kind, EntryKind::File(_)),
            "empty files are never linked"
        );
    }

    #[test]
    fn owners_and_xattrs_keep_files_apart() {
        let big = "x".repeat(DEDUPE_MIN_SIZE as usize);
        let cap = Xattrs::from([("security.capability".to_string(), vec![1, 0, 0, 2])]);
        let mut v = vec![
            file("a", &big, 0o4755),
            Entry {
                gid: 42,
                ..file("b", &big, 0o4755)
            },
            Entry {
                xattrs: Some(Box::new(cap.clone())),
                ..file("c", &big, 0o4755)
            },
            Entry {
                xattrs: Some(Box::new(cap)),
                ..file("d", &big, 0o4755)
            },
            file("e", &big, 0o4755),
        ];
        link_identical(&mut v, 2).unwrap();
        let kinds: Vec<String> = v
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Hardlink(t) => format!("->{t}"),
                _ => "file".into(),
            })
            .collect();
        assert_eq!(kinds, ["file", "file", "file", "->c", "->a"]);
    }

    fn host_file(dir: &std::path::Path, name: &str) -> Entry {
        let p = camino::Utf8PathBuf::from_path_buf(dir.join(name)).unwrap();
        let n = std::fs::metadata(&p).unwrap().len();
        Entry {
            kind: EntryKind::File(Content::Path(p, n)),
            mode: 0o644,
            ..Entry::dir(LayerPath::parse(name).unwrap(), "test")
        }
    }

    /// Host hard links only save reads: copies and links give the same result.
    #[test]
    fn host_hard_links_give_the_same_links_as_copies() {
        let n = DEDUPE_MIN_SIZE as usize;
        let x: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 241) as u8).collect();
        let linked = tempfile::tempdir().unwrap();
        let copied = tempfile::tempdir().unwrap();
        for (dir, link) in [(linked.path(), true), (copied.path(), false)] {
            std::fs::write(dir.join("a"), &x).unwrap();
            std::fs::write(dir.join("c"), &y).unwrap();
            for (from, to) in [("a", "b"), ("c", "d"), ("a", "e")] {
                if link {
                    std::fs::hard_link(dir.join(from), dir.join(to)).unwrap();
                } else {
                    std::fs::copy(dir.join(from), dir.join(to)).unwrap();
                }
            }
        }
        // And a mix: a copy of a next to links of it.
        std::fs::copy(linked.path().join("a"), linked.path().join("f")).unwrap();
        std::fs::copy(copied.path().join("a"), copied.path().join("f")).unwrap();
        let kinds = |dir: &std::path::Path, threads| {
            let mut v: Vec<Entry> = ["a", "b", "c", "d", "e", "f"]
                .iter()
                .map(|n| host_file(dir, n))
                .collect();
            link_identical(&mut v, threads).unwrap();
            v.into_iter()
                .map(|e| match e.kind {
                    EntryKind::Hardlink(t) => format!("{}->{t}", e.path),
                    _ => e.path.to_string(),
                })
                .collect::<Vec<_>>()
        };
        let want = ["a", "b->a", "c", "d->c", "e->a", "f->a"];
        for threads in [1, 3] {
            assert_eq!(kinds(linked.path(), threads), want);
            assert_eq!(kinds(copied.path(), threads), want);
        }
    }
}
