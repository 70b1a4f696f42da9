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
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

use crate::blob_source::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::read::{EntryType, LayerReader};
use crate::limits::MAX_ARCHIVE_ENTRIES;

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

/// A plain tar's regular files: entry name → (content offset, size).
pub(crate) type PlainEntries = BTreeMap<String, (u64, u64)>;

/// Scan a tar once: regular-file entry name → (content offset, size), and
/// its links (legacy docker-archives link layers to each other).
pub(crate) fn scan_tar(path: &Utf8Path) -> Result<(PlainEntries, BTreeMap<String, Link>)> {
    scan_tar_limited(path, MAX_ARCHIVE_ENTRIES)
}

/// [`scan_tar`] with at most `max_entries` entries (unit tests lower it).
fn scan_tar_limited(
    path: &Utf8Path,
    max_entries: usize,
) -> Result<(PlainEntries, BTreeMap<String, Link>)> {
    let mut f = File::open(path).io_context(|| format!("opening {path}"))?;
    // Why: for a file that is no tar at all, the tar reader's error quotes its
    // first bytes (binary noise); say plainly what it is not instead.
    if !starts_like_tar(&mut f).io_context(|| format!("reading {path}"))? {
        return Err(Error::corrupt(format!(
            "{path}: not an OCI layout (neither a directory nor a tar archive)"
        )));
    }
    f.seek(SeekFrom::Start(0))
        .io_context(|| format!("reading {path}"))?;
    let mut ar = ::tar::Archive::new(io::BufReader::new(f));
    let mut out = BTreeMap::new();
    let mut links = BTreeMap::new();
    let bad = |e: io::Error| {
        Error::corrupt(format!(
            "{path}: not a readable tar archive: {}",
            crate::error::describe_io(&e)
        ))
    };
    for (n, ent) in ar.entries().map_err(bad)?.enumerate() {
        let ent = ent.map_err(bad)?;
        if n >= max_entries {
            return Err(Error::corrupt(format!(
                "{path}: more than {max_entries} entries"
            )));
        }
        let et = ent.header().entry_type();
        let name_bytes = ent.path_bytes().into_owned();
        let name = String::from_utf8(name_bytes)
            .map_err(|_| Error::corrupt(format!("{path}: entry name is not UTF-8")))?;
        let name = name.strip_prefix("./").unwrap_or(&name).to_string();
        if et.is_dir() || et.is_pax_global_extensions() {
            continue;
        }
        if et.is_symlink() || et.is_hard_link() {
            let target = ent.link_name_bytes().unwrap_or_default();
            let target = String::from_utf8_lossy(&target).into_owned();
            let l = if et.is_symlink() {
                Link::Symlink(target)
            } else {
                Link::Hard(target)
            };
            if out.contains_key(&name) || links.insert(name.clone(), l).is_some() {
                return Err(Error::corrupt(format!(
                    "{path}: entry {name} appears twice"
                )));
            }
            continue;
        }
        if !et.is_file() {
            continue;
        }
        if links.contains_key(&name)
            || out
                .insert(name.clone(), (ent.raw_file_position(), ent.size()))
                .is_some()
        {
            return Err(Error::corrupt(format!(
                "{path}: entry {name} appears twice"
            )));
        }
    }
    if out.is_empty() {
        return Err(Error::corrupt(format!(
            "{path}: not an OCI layout archive (no files)"
        )));
    }
    Ok((out, links))
}

/// Whether the first 512 bytes are a tar header with a valid checksum.
fn starts_like_tar(f: &mut File) -> io::Result<bool> {
    let mut block = [0u8; 512];
    let mut n = 0;
    while n < block.len() {
        match f.read(&mut block[n..])? {
            0 => return Ok(false),
            got => n += got,
        }
    }
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c| c == ' ' || c == '\0'), 8) else {
        return Ok(false);
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    Ok(stored == sum)
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

    /// The documented limit (README, SECURITY.md) and its check, with the
    /// limit lowered: a million and one entries would be 512 MB of headers.
    #[test]
    fn archives_past_the_entry_limit_are_an_error() {
        assert_eq!(MAX_ARCHIVE_ENTRIES, 1_000_000);
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("a.tar")).unwrap();
        let mut b = ::tar::Builder::new(Vec::new());
        for name in ["oci-layout", "index.json", "x"] {
            let mut h = ::tar::Header::new_ustar();
            h.set_size(2);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &b"{}"[..]).unwrap();
        }
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        assert_eq!(scan_tar_limited(&path, 3).unwrap().0.len(), 3);
        let e = scan_tar_limited(&path, 2).unwrap_err().to_string();
        assert_eq!(e, format!("{path}: more than 2 entries"));
    }
}
