//! Layers: entries → normalized tar → compressed blob + diff_id, in one pass.
//!
//! [`write_layer`] streams the canonical tar of normalized entries through a
//! [`compress::BlobWriter`], which hashes the uncompressed stream (diff_id),
//! compresses, and hashes the compressed stream (digest) in the same pass.
//! Memory stays flat: file contents are copied through a fixed buffer.
//! Every entry gets the same mtime, the caller's (`SOURCE_DATE_EPOCH`, a flag,
//! or 0): *replace*, not clamp, so the host's timestamps never matter.

pub mod compress;
pub mod dedupe;
pub mod dir;
pub mod entry;
pub mod path;
pub mod read;
pub mod tar;

use std::fs::File;
use std::io::{Read, Write};

use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::output::AtomicFile;
use compress::{BlobWriter, Compression};
use entry::{Content, Entry, EntryKind};
use tar::{TarHeader, TarKind};

/// How to write a layer.
#[derive(Debug, Clone, Copy)]
pub struct LayerOptions {
    /// Compression of the blob.
    pub compression: Compression,
    /// The mtime of every entry, seconds since the epoch.
    pub mtime: u64,
    /// Compression threads (output bytes never depend on it).
    pub threads: usize,
}

/// What `strata layer --descriptor` writes: enough to compose an image
/// without reading the blob again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDescriptor {
    /// The OCI layer media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the blob as written.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar.
    #[serde(rename = "diffId")]
    pub diff_id: Digest,
}

const COPY_BUF: usize = 1 << 20;

/// Write normalized `entries` as a layer blob to `out`.
pub fn write_layer<W: Write + Send + 'static>(
    entries: &[Entry],
    out: W,
    opts: &LayerOptions,
    out_name: &str,
) -> Result<(W, LayerDescriptor)> {
    let mut w = BlobWriter::new(out, opts.compression, opts.threads);
    let mut buf = vec![0u8; COPY_BUF];
    let wctx = || format!("writing {out_name}");
    for e in entries {
        write_entry(&mut w, e, opts.mtime, &mut buf, out_name)?;
    }
    tar::write_end(&mut w).io_context(wctx)?;
    let s = w.finish().io_context(wctx)?;
    Ok((
        s.out,
        LayerDescriptor {
            media_type: opts.compression.media_type().to_string(),
            digest: s.digest,
            size: s.size,
            diff_id: s.diff_id,
        },
    ))
}

fn write_entry<W: Write>(
    w: &mut W,
    e: &Entry,
    mtime: u64,
    buf: &mut [u8],
    out_name: &str,
) -> Result<()> {
    let dir_name;
    let (kind, name, size, link): (TarKind, &str, u64, &str) = match &e.kind {
        EntryKind::File(c) => (TarKind::File, e.path.as_str(), c.len(), ""),
        EntryKind::Dir => {
            dir_name = format!("{}/", e.path);
            (TarKind::Dir, dir_name.as_str(), 0, "")
        }
        EntryKind::Symlink(t) => (TarKind::Symlink, e.path.as_str(), 0, t.as_str()),
        EntryKind::Hardlink(t) => (TarKind::Hardlink, e.path.as_str(), 0, t.as_str()),
    };
    let h = TarHeader {
        name,
        kind,
        mode: e.mode & 0o7777,
        uid: e.uid,
        gid: e.gid,
        uname: &e.uname,
        gname: &e.gname,
        size,
        mtime,
        linkname: link,
    };
    let wctx = || format!("writing {out_name}");
    tar::write_header(w, &h).io_context(wctx)?;
    if let EntryKind::File(c) = &e.kind {
        match c {
            Content::Inline(b) => w.write_all(b).io_context(wctx)?,
            Content::Path(p, n) => copy_exact(p, *n, w, buf, out_name)?,
        }
        tar::write_padding(w, size).io_context(wctx)?;
    }
    Ok(())
}

/// Copy exactly `n` bytes of `src` (listed with that size) into `w`.
///
/// Each read asks for one byte more than is left, so a file that grew since
/// it was listed is caught without an extra read at the end (one read per
/// small file, as GNU tar does).
fn copy_exact<W: Write>(
    src: &Utf8Path,
    n: u64,
    w: &mut W,
    buf: &mut [u8],
    out_name: &str,
) -> Result<()> {
    let mut f = File::open(src).io_context(|| format!("reading {src}"))?;
    let mut left = n;
    loop {
        let want = buf
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let got = f
            .read(&mut buf[..want])
            .io_context(|| format!("reading {src}"))?;
        if got as u64 > left {
            return Err(Error::invalid(format!(
                "{src}: changed while reading (grew beyond the {n} bytes listed)"
            )));
        }
        if got == 0 {
            if left > 0 {
                return Err(Error::invalid(format!(
                    "{src}: changed while reading (shrank below the {n} bytes listed)"
                )));
            }
            return Ok(());
        }
        w.write_all(&buf[..got])
            .io_context(|| format!("writing {out_name}"))?;
        left -= got as u64;
        if left == 0 && got < want {
            // A short read of a regular file is its end.
            return Ok(());
        }
    }
}

/// Write normalized `entries` as a layer blob at `dest`, atomically.
pub fn write_layer_file(
    entries: &[Entry],
    dest: &Utf8Path,
    opts: &LayerOptions,
) -> Result<LayerDescriptor> {
    let (file, atomic) = AtomicFile::create(dest)?;
    let (file, desc) = write_layer(entries, file, opts, dest.as_str())?;
    atomic.commit(file)?;
    Ok(desc)
}

/// Read a whole small file (JSON), refusing files larger than `limit`.
pub fn read_small_file(path: &Utf8Path, limit: usize) -> Result<Vec<u8>> {
    let f = File::open(path).io_context(|| format!("reading {path}"))?;
    let mut bytes = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .io_context(|| format!("reading {path}"))?;
    if bytes.len() > limit {
        return Err(Error::invalid(format!(
            "{path}: larger than the {limit} byte limit"
        )));
    }
    Ok(bytes)
}
