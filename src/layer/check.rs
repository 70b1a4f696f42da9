//! The extraction-safety check of a layer someone else wrote, applied
//! wherever strata reads a foreign layer's bytes and then vouches for it:
//! `strata image --layer FILE` without a descriptor ([`describe_file`]) and
//! `strata verify` ([`check_entries`] while the diff_id is computed).
//!
//! Two tiers, kept apart on purpose:
//!
//! - **unsafe to extract, or malformed: refused.** Everything
//!   [`LayerReader`] refuses (entry paths and hard-link targets with `..`,
//!   absolute or with NUL; declared sizes the stream cannot satisfy; PAX or
//!   GNU long-name records over [`MAX_EXTENSION_BYTES`](super::read::MAX_EXTENSION_BYTES);
//!   corrupt or truncated gzip/zstd; GNU sparse and unknown entry types;
//!   more than [`MAX_ENTRIES`](super::read::MAX_ENTRIES) entries), plus what
//!   only the sequence of entries shows ([`EntryCheck`]): an entry below a
//!   symlink of the same layer (extracting it writes through the link, which
//!   may point anywhere, e.g. `/etc`), a hard link whose target is not an
//!   earlier non-directory entry of the same layer (an extractor would link
//!   to whatever the host has there, or fail), and a root entry (`./`) that is
//!   not a directory.
//! - **legitimate in real images, though strata does not write them:
//!   accepted.** Device nodes, FIFOs, xattrs, setuid/setgid/sticky bits,
//!   whiteouts (`.wh.*`), duplicate entries, symlink *targets* that are
//!   absolute or climb above the root (`bin/sh -> /bin/busybox`: a runtime
//!   resolves them inside the container), long user names. `strata
//!   normalize` refuses some of these because strata's layer model cannot
//!   hold them, not because they are unsafe; a distro base layer must pass
//!   here.
//!
//! Invariants: the check is a pure function of the entry sequence (the same
//! blob gives the same verdict everywhere); memory is one map of the layer's
//! paths (as `strata diff` holds), contents are streamed and never held.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;

use camino::Utf8Path;

use super::read::{check_path, EntryType, LayerReader, LayerSummary, TarEntry};
use super::LayerDescriptor;
use crate::error::{Error, IoContext, Result};

/// What an earlier entry of the layer left at a path when extracted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    /// A symlink, or a hard link to one (which is another symlink).
    Symlink,
    /// A file, device, FIFO, or a hard link to one.
    Other,
}

/// The per-layer state of the checks that need earlier entries (see the
/// module docs): feed it every entry in stream order.
#[derive(Debug, Default)]
pub struct EntryCheck {
    /// Every path so far → what its latest entry left there.
    seen: BTreeMap<String, Node>,
    /// Every path that held a symlink at some point. Why "ever", not
    /// "latest": extractors differ on whether a later directory entry
    /// replaces a symlink or keeps it, so a path once a link stays suspect.
    links: BTreeSet<String>,
}

impl EntryCheck {
    /// A check for a new layer.
    pub fn new() -> EntryCheck {
        EntryCheck::default()
    }

    /// The nearest proper ancestor of `path` that is a symlink of this layer.
    fn symlink_above<'p>(&self, path: &'p str) -> Option<&'p str> {
        path.match_indices('/')
            .map(|(i, _)| &path[..i])
            .find(|a| self.links.contains(*a))
    }

    /// Check the next entry; the problem (without the entry's name) if it
    /// is unsafe to extract after the entries before it.
    pub fn check(&mut self, e: &TarEntry) -> std::result::Result<(), String> {
        if e.path == "." && e.kind != EntryType::Dir {
            return Err(format!(
                "the root entry {:?} is a {}: only a directory can stand for the root",
                e.name,
                e.kind.name()
            ));
        }
        if let Some(link) = self.symlink_above(&e.path) {
            return Err(format!(
                "path {:?} is below the symlink {link:?} of the same layer (extracting it would write through the link)",
                e.path
            ));
        }
        let node = match e.kind {
            EntryType::Dir => Node::Dir,
            EntryType::Symlink => Node::Symlink,
            EntryType::Hardlink => self.hardlink_target(&e.linkname)?,
            _ => Node::Other,
        };
        if node == Node::Symlink {
            self.links.insert(e.path.clone());
        }
        self.seen.insert(e.path.clone(), node);
        Ok(())
    }

    /// What a hard link to `target` will be, if the target is acceptable.
    fn hardlink_target(&self, target: &str) -> std::result::Result<Node, String> {
        // The reader refused unsafe targets; this gives the comparison form.
        let t = check_path(target).map_err(|m| format!("hard link target: {m}"))?;
        if let Some(link) = self.symlink_above(&t) {
            return Err(format!(
                "hard link target {t:?} is below the symlink {link:?} of the same layer"
            ));
        }
        match self.seen.get(&t) {
            None => Err(format!(
                "hard link target {t:?} is not an earlier entry of this layer"
            )),
            Some(Node::Dir) => Err(format!("hard link target {t:?} is a directory")),
            Some(&n) => Ok(n),
        }
    }
}

/// Read every entry of `r` (contents streamed and discarded) through
/// [`EntryCheck`]; the first problem is the error, as `NAME: entry N
/// (PATH): problem`, `name` being what `r` was opened with.
pub fn check_entries<R: Read>(r: &mut LayerReader<'_, R>, name: &str) -> Result<()> {
    let mut check = EntryCheck::new();
    while let Some(e) = r.next_entry()? {
        check
            .check(&e)
            .map_err(|m| Error::corrupt(format!("{name}: entry {} ({}): {m}", e.index, e.path)))?;
    }
    Ok(())
}

/// Read a whole layer blob through the checks; its summary, or the first
/// problem. `name` prefixes every error.
pub fn check_layer<R: Read>(raw: R, name: &str) -> Result<LayerSummary> {
    let mut r = LayerReader::new(raw, name)?;
    check_entries(&mut r, name)?;
    r.finish()
}

/// The descriptor of a layer file nobody described, computed by reading it
/// once through the checks (compression told by its magic bytes). `name`
/// (e.g. `layer FILE`) prefixes every error.
pub fn describe_file(path: &Utf8Path, name: &str) -> Result<LayerDescriptor> {
    let f = File::open(path).io_context(|| format!("reading {path}"))?;
    let s = check_layer(f, name)?;
    Ok(LayerDescriptor {
        media_type: s.compression.media_type().to_string(),
        digest: s.digest,
        size: s.size,
        diff_id: s.diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::{write_end, write_header, write_padding, TarHeader, TarKind};

    fn tar(items: &[(&str, TarKind, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, kind, link) in items {
            let size = if *kind == TarKind::File { 1 } else { 0 };
            let h = TarHeader {
                name,
                kind: *kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                uname: "",
                gname: "",
                size,
                mtime: 0,
                linkname: link,
            };
            write_header(&mut v, &h).unwrap();
            if size > 0 {
                v.push(b'x');
                write_padding(&mut v, size).unwrap();
            }
        }
        write_end(&mut v).unwrap();
        v
    }

    fn verdict(items: &[(&str, TarKind, &str)]) -> std::result::Result<usize, String> {
        check_layer(&tar(items)[..], "t.tar")
            .map(|s| s.entries)
            .map_err(|e| e.to_string())
    }

    use TarKind::{Dir, File, Hardlink, Symlink};

    #[test]
    fn entries_below_a_symlink_of_the_layer_are_refused() {
        let e = verdict(&[("etc", Symlink, "/etc"), ("etc/passwd", File, "")]).unwrap_err();
        assert_eq!(
            e,
            "t.tar: entry 1 (etc/passwd): path \"etc/passwd\" is below the symlink \"etc\" of the same layer (extracting it would write through the link)"
        );
        // Relative targets too, and deeper entries; a later dir entry does not clear it.
        let e = verdict(&[
            ("a", Symlink, "../../.."),
            ("a", Dir, ""),
            ("a/b/c", File, ""),
        ])
        .unwrap_err();
        assert!(
            e.contains("entry 2 (a/b/c)") && e.contains("symlink \"a\""),
            "{e}"
        );
        // A hard link to a symlink is a symlink.
        let e = verdict(&[
            ("s", Symlink, "/etc"),
            ("h", Hardlink, "s"),
            ("h/passwd", File, ""),
        ])
        .unwrap_err();
        assert!(e.contains("below the symlink \"h\""), "{e}");
    }

    #[test]
    fn hard_links_need_an_earlier_non_directory_target() {
        let e = verdict(&[("h", Hardlink, "etc/shadow")]).unwrap_err();
        assert!(
            e.ends_with("entry 0 (h): hard link target \"etc/shadow\" is not an earlier entry of this layer"),
            "{e}"
        );
        let e = verdict(&[("d", Dir, ""), ("h", Hardlink, "./d/")]).unwrap_err();
        assert!(e.ends_with("hard link target \"d\" is a directory"), "{e}");
        let e = verdict(&[("s", Symlink, "/"), ("h", Hardlink, "s/etc/passwd")]).unwrap_err();
        assert!(e.contains("below the symlink \"s\""), "{e}");
        let e = verdict(&[("h", Hardlink, "../x")]).unwrap_err();
        assert!(e.contains("'..' components"), "{e}");
        assert_eq!(verdict(&[("f", File, ""), ("./h", Hardlink, "./f")]), Ok(2));
    }

    #[test]
    fn legitimate_layers_pass() {
        // Absolute and climbing symlink targets, whiteouts, duplicates, a
        // root entry, links to links.
        let ok = verdict(&[
            ("./", Dir, ""),
            ("bin", Dir, ""),
            ("bin/busybox", File, ""),
            ("bin/sh", Symlink, "/bin/busybox"),
            ("bin/up", Symlink, "../../../x"),
            ("bin/ash", Hardlink, "bin/busybox"),
            ("bin/ash2", Hardlink, "bin/ash"),
            ("bin/.wh.old", File, ""),
            ("etc/.wh..wh..opq", File, ""),
            ("bin/busybox", File, ""),
            ("lib", Symlink, "usr/lib"),
            ("usr/lib/x", File, ""),
        ]);
        assert_eq!(ok, Ok(12));
        let e = verdict(&[("./", Symlink, "/etc")]).unwrap_err();
        assert!(e.contains("root entry \"./\" is a symlink"), "{e}");
    }
}
