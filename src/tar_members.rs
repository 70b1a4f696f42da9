//! The members of a tar archive that holds an image, and where each one's
//! bytes are.
//!
//! A plain tar is scanned once by [`crate::layout`] (entry offsets; blobs are
//! read in place, seekable). A gzip- or zstd-compressed tar (`docker save |
//! gzip`) is not seekable: it is scanned once here with the hardened reader
//! ([`LayerReader`]: bounded headers, `..`/absolute names refused, at most
//! [`MAX_ENTRIES`] entries), which hashes every member on the way. Small
//! members (JSON, at most [`SMALL_MEMBER`] bytes each, [`CAPTURE_BUDGET`] in
//! all) are kept in memory; a larger one is read later by decompressing the
//! archive again from its start and skipping to the member
//! ([`BlobSource::Compressed`]). Why not a temporary file: the library
//! reads no environment (no `TMPDIR`), the archive's directory may be
//! read-only, and a killed process would leave an uncompressed copy of the
//! whole archive behind; decompressing again costs CPU per large member read
//! (`gunzip` an archive once if it is read often), never disk.
//!
//! Links between members (`podman save` writes `<id>/layer.tar` as a symlink
//! to `<diff_id>.tar`) are resolved inside the archive only: absolute targets
//! and targets climbing above its root are refused, chains are bounded.
//!
//! [`MAX_ENTRIES`]: crate::layer::read::MAX_ENTRIES

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

use crate::blob_source::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::read::{EntryType, LayerReader};
// Moved to `blob_source`; the old paths stay for callers.
pub use crate::blob_source::{compression_of, open_compressed};

/// Largest member of a compressed archive kept in memory while scanning.
pub const SMALL_MEMBER: u64 = 1 << 20;

/// Most bytes of a compressed archive's small members kept in memory.
///
/// Why bounded: an archive of many small members must not exhaust memory;
/// past the budget, members are read again from the archive instead.
pub const CAPTURE_BUDGET: u64 = 64 << 20;

/// Most links followed to resolve one member name.
pub const MAX_LINK_HOPS: usize = 8;

/// A link entry between members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A symlink: its target, relative to the link's directory.
    Symlink(String),
    /// A hard link: the archive path of its target.
    Hard(String),
}

/// A regular file of the archive.
#[derive(Debug, Clone)]
pub struct Member {
    /// Where its bytes are.
    pub source: BlobSource,
    /// Its size.
    pub size: u64,
    /// Its sha256, when the scan computed it (compressed archives).
    pub digest: Option<Digest>,
}

/// The files and links of an archive, by normalized name (no `./`).
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// The archive.
    pub archive: Utf8PathBuf,
    /// Regular files.
    pub files: BTreeMap<String, Member>,
    /// Symlinks and hard links.
    pub links: BTreeMap<String, Link>,
}

impl Members {
    /// Scan a gzip- or zstd-compressed tar once (see the module docs).
    pub fn scan_compressed(archive: &Utf8Path) -> Result<Members> {
        let f = File::open(archive).io_context(|| format!("opening {archive}"))?;
        let mut r = LayerReader::new(BufReader::new(f), archive.as_str())?;
        let mut out = Members {
            archive: archive.to_path_buf(),
            ..Members::default()
        };
        let mut budget = CAPTURE_BUDGET;
        while let Some(e) = r.next_entry()? {
            match e.kind {
                EntryType::File => {
                    let offset = r.tar_offset();
                    let (source, digest) = if e.size <= SMALL_MEMBER && e.size <= budget {
                        budget -= e.size;
                        let mut bytes = Vec::with_capacity(e.size as usize);
                        let d = r.content(&mut bytes)?;
                        (BlobSource::Bytes(Arc::new(bytes)), d)
                    } else {
                        let d = r.content(&mut io::sink())?;
                        let source = BlobSource::Compressed {
                            archive: archive.to_path_buf(),
                            offset,
                            size: e.size,
                        };
                        (source, d)
                    };
                    out.add_file(
                        &e.path,
                        Member {
                            source,
                            size: e.size,
                            digest: Some(digest),
                        },
                    )?;
                }
                EntryType::Symlink => out.add_link(&e.path, Link::Symlink(e.linkname))?,
                EntryType::Hardlink => out.add_link(&e.path, Link::Hard(e.linkname))?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// The members of a plain tar scanned by the layout reader: files by
    /// (content offset, size), and links.
    pub fn plain(
        archive: &Utf8Path,
        files: &BTreeMap<String, (u64, u64)>,
        links: BTreeMap<String, Link>,
    ) -> Members {
        let files = files
            .iter()
            .map(|(name, &(offset, size))| {
                let source = BlobSource::Slice {
                    archive: archive.to_path_buf(),
                    offset,
                    size,
                };
                let m = Member {
                    source,
                    size,
                    digest: None,
                };
                (name.clone(), m)
            })
            .collect();
        Members {
            archive: archive.to_path_buf(),
            files,
            links,
        }
    }

    fn add_file(&mut self, name: &str, m: Member) -> Result<()> {
        if self.files.contains_key(name) || self.links.contains_key(name) {
            return Err(self.twice(name));
        }
        self.files.insert(name.to_string(), m);
        Ok(())
    }

    fn add_link(&mut self, name: &str, l: Link) -> Result<()> {
        if self.files.contains_key(name) || self.links.insert(name.to_string(), l).is_some() {
            return Err(self.twice(name));
        }
        Ok(())
    }

    fn twice(&self, name: &str) -> Error {
        Error::corrupt(format!("{}: entry {name} appears twice", self.archive))
    }

    /// The regular file `name` names, following links inside the archive;
    /// returns its resolved name too. `what` says who names it (for errors).
    pub fn resolve(&self, name: &str, what: &str) -> Result<(String, &Member)> {
        let archive = &self.archive;
        let mut cur = name.to_string();
        for _ in 0..=MAX_LINK_HOPS {
            if let Some(m) = self.files.get(&cur) {
                return Ok((cur, m));
            }
            cur = match self.links.get(&cur) {
                Some(Link::Symlink(t)) => {
                    let dir = cur.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    inside(dir, t).ok_or_else(|| {
                        Error::corrupt(format!(
                            "{archive}: {what} {name:?}: symlink {cur} -> {t:?} points outside the archive"
                        ))
                    })?
                }
                Some(Link::Hard(t)) => inside("", t).ok_or_else(|| {
                    Error::corrupt(format!(
                        "{archive}: {what} {name:?}: hard link {cur} -> {t:?} points outside the archive"
                    ))
                })?,
                None => {
                    return Err(Error::corrupt(format!(
                        "{archive}: {what} {name:?} is not in the archive"
                    )))
                }
            };
        }
        Err(Error::corrupt(format!(
            "{archive}: {what} {name:?}: more than {MAX_LINK_HOPS} links to follow"
        )))
    }
}

/// `target` resolved against directory `dir` (both archive paths), or `None`
/// when it is absolute or climbs above the archive's root.
fn inside(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_only() {
        assert_eq!(inside("abc", "../x.tar").as_deref(), Some("x.tar"));
        assert_eq!(inside("", "./a//b").as_deref(), Some("a/b"));
        assert_eq!(inside("abc", "../../x.tar"), None);
        assert_eq!(inside("abc", "/etc/passwd"), None);
        assert_eq!(inside("abc", ".."), None);
    }

    #[test]
    fn link_chains_are_bounded_and_missing_names_named() {
        let mut m = Members {
            archive: "x.tar".into(),
            ..Members::default()
        };
        m.links.insert("a".into(), Link::Symlink("b".into()));
        m.links.insert("b".into(), Link::Symlink("a".into()));
        let e = m.resolve("a", "layer").unwrap_err().to_string();
        assert!(e.contains("more than 8 links"), "{e}");
        let e = m
            .resolve("nope/layer.tar", "layer")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.tar: layer \"nope/layer.tar\" is not in the archive");
    }
}
