//! Layers: entries → normalized tar → compressed blob + diff_id, in one pass.
//!
//! [`write_layer`] streams the canonical tar of normalized entries through a
//! [`compress::BlobWriter`], which hashes the uncompressed stream (diff_id),
//! compresses, and hashes the compressed stream (digest) in the same pass.
//! Memory stays flat: file contents are copied through a fixed buffer, and
//! small files are read ahead by a few threads into a bounded window (many
//! small files cost syscalls, not bytes: open/read/close run in parallel
//! while the tar is written in order; the bytes do not depend on it).
//! Every entry gets the same mtime, the caller's (`SOURCE_DATE_EPOCH`, a flag,
//! or 0): *replace*, not clamp, so the host's timestamps never matter.

pub mod accounts;
pub mod builder;
pub mod check;
pub mod compress;
pub mod dedupe;
pub mod dir;
pub mod dir_options;
pub mod entry;
pub mod file;
pub mod inputs;
pub mod path;
pub mod policy;
pub mod read;
pub mod tar;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::output::AtomicFile;
use compress::{BlobWriter, Compression};
use entry::{Content, Entry, EntryKind};
use tar::{TarExtra, TarHeader, TarKind};

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

/// Write normalized `entries` as a layer blob to `out`.
pub fn write_layer<W: Write + Send + 'static>(
    entries: &[Entry],
    out: W,
    opts: &LayerOptions,
    out_name: &str,
) -> Result<(W, LayerDescriptor)> {
    let mut w = BlobWriter::new(out, opts.compression, opts.threads);
    let wctx = || format!("writing {out_name}");
    // Small files, in tar order: read ahead by helper threads.
    let small: Vec<(&Utf8Path, u64)> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File(Content::Path(p, n)) if *n <= PREFETCH_MAX => Some((p.as_path(), *n)),
            _ => None,
        })
        .collect();
    let readers = if small.len() < 64 {
        0
    } else {
        opts.threads.clamp(2, 8)
    };
    let ahead = ReadAhead::new(&small);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..readers {
            scope.spawn(|| ahead.work());
        }
        let res = (|| {
            let mut k = 0;
            for e in entries {
                let pre = match &e.kind {
                    EntryKind::File(Content::Path(_, n)) if *n <= PREFETCH_MAX => {
                        k += 1;
                        Some(if readers == 0 {
                            read_exact_file(small[k - 1].0, small[k - 1].1)
                        } else {
                            ahead.take(k - 1)
                        })
                    }
                    _ => None,
                };
                write_entry(&mut w, e, opts.mtime, out_name, pre)?;
            }
            Ok(())
        })();
        ahead.stop();
        res
    })?;
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

fn write_entry<W: Write + Send + 'static>(
    w: &mut BlobWriter<W>,
    e: &Entry,
    mtime: u64,
    out_name: &str,
    pre: Option<Result<Vec<u8>>>,
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
        EntryKind::Device { block, .. } => {
            let kind = if *block {
                TarKind::BlockDevice
            } else {
                TarKind::CharDevice
            };
            (kind, e.path.as_str(), 0, "")
        }
        EntryKind::Fifo => (TarKind::Fifo, e.path.as_str(), 0, ""),
    };
    let (devmajor, devminor) = match e.kind {
        EntryKind::Device { major, minor, .. } => (major, minor),
        _ => (0, 0),
    };
    let extra = TarExtra {
        devmajor,
        devminor,
        xattrs: e.xattrs.as_deref(),
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
    tar::write_header_with(w, &h, &extra).io_context(wctx)?;
    if let EntryKind::File(c) = &e.kind {
        match (c, pre) {
            (Content::Inline(b), _) => w.write_all(b).io_context(wctx)?,
            (Content::Path(..), Some(read)) => w.write_all(&read?).io_context(wctx)?,
            (Content::Path(p, n), None) => copy_exact(p, *n, w, out_name)?,
        }
        tar::write_padding(w, size).io_context(wctx)?;
    }
    Ok(())
}

/// Files up to this size are read ahead whole (larger ones stream).
const PREFETCH_MAX: u64 = 64 << 10;
/// Small files read ahead of the tar writer, at most.
const PREFETCH_WINDOW: usize = 256;
/// Bytes read ahead, at most (one file always goes). Why 4 MiB: 256 files of
/// 64 KiB would hold 16 MiB, a quarter of the memory budget; the 100,000
/// small-file benchmark keeps its full window (its files average 2 KiB).
const PREFETCH_BYTES: u64 = 4 << 20;

/// Small files read by helper threads, handed to the tar writer in order.
/// Wake-ups are targeted (the writer only when the file it waits for
/// arrives; helpers only when the window moved and one is waiting), so the
/// synchronization costs far less than the reads it overlaps.
struct ReadAhead<'a> {
    files: &'a [(&'a Utf8Path, u64)],
    /// `starts[i]`: the bytes of all files before file `i`.
    starts: Vec<u64>,
    next: AtomicUsize,
    state: Mutex<ReadState>,
    /// The writer waits here for file `taken`.
    ready_cv: Condvar,
    /// Helpers wait here for room in the window.
    room_cv: Condvar,
}

struct ReadState {
    ready: BTreeMap<usize, Result<Vec<u8>>>,
    /// The writer's position: files before it were taken.
    taken: usize,
    /// Whether the writer is waiting for file `taken`.
    writer_waiting: bool,
    /// Helpers waiting for room.
    helpers_waiting: usize,
    stop: bool,
}

impl<'a> ReadAhead<'a> {
    fn new(files: &'a [(&'a Utf8Path, u64)]) -> Self {
        let starts = std::iter::once(0)
            .chain(files.iter().scan(0u64, |sum, (_, n)| {
                *sum += n;
                Some(*sum)
            }))
            .collect();
        ReadAhead {
            files,
            starts,
            next: AtomicUsize::new(0),
            state: Mutex::new(ReadState {
                ready: BTreeMap::new(),
                taken: 0,
                writer_waiting: false,
                helpers_waiting: 0,
                stop: false,
            }),
            ready_cv: Condvar::new(),
            room_cv: Condvar::new(),
        }
    }

    /// A helper thread: read files in order, staying within the window.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.files.len() {
                return;
            }
            {
                let mut st = self.state.lock().expect("read-ahead lock");
                while !st.stop && !self.in_window(i, st.taken) {
                    st.helpers_waiting += 1;
                    st = self.room_cv.wait(st).expect("read-ahead lock");
                    st.helpers_waiting -= 1;
                }
                if st.stop {
                    return;
                }
            }
            let (p, n) = self.files[i];
            let r = read_exact_file(p, n);
            let mut st = self.state.lock().expect("read-ahead lock");
            st.ready.insert(i, r);
            if st.writer_waiting && i == st.taken {
                self.ready_cv.notify_one();
            }
        }
    }

    /// Whether file `i` may be read while the writer waits for file `taken`.
    fn in_window(&self, i: usize, taken: usize) -> bool {
        i <= taken
            || (i < taken + PREFETCH_WINDOW
                && self.starts[i + 1] - self.starts[taken] <= PREFETCH_BYTES)
    }

    /// The writer: file `i`'s bytes (or its error), waiting for them.
    fn take(&self, i: usize) -> Result<Vec<u8>> {
        let mut st = self.state.lock().expect("read-ahead lock");
        st.taken = i;
        loop {
            if let Some(r) = st.ready.remove(&i) {
                st.taken = i + 1;
                if st.helpers_waiting > 0 {
                    self.room_cv.notify_all();
                }
                return r;
            }
            st.writer_waiting = true;
            st = self.ready_cv.wait(st).expect("read-ahead lock");
            st.writer_waiting = false;
        }
    }

    /// Release the helpers (the writer is done, or failed).
    fn stop(&self) {
        self.state.lock().expect("read-ahead lock").stop = true;
        self.room_cv.notify_all();
    }
}

/// Read all of `src`, which was listed with `n` bytes: one read for a small
/// file, as [`copy_exact`]; growing or shrinking since it was listed is an error.
fn read_exact_file(src: &Utf8Path, n: u64) -> Result<Vec<u8>> {
    let mut f = File::open(src).io_context(|| format!("reading {src}"))?;
    let n = usize::try_from(n).expect("small file");
    // One byte more than listed, so growth shows without another read.
    let mut out = vec![0u8; n + 1];
    let mut have = 0;
    loop {
        let want = out.len() - have;
        let got = f
            .read(&mut out[have..])
            .io_context(|| format!("reading {src}"))?;
        have += got;
        if have > n {
            return Err(Error::invalid(format!(
                "{src}: changed while reading (grew beyond the {n} bytes listed)"
            )));
        }
        if got == 0 {
            if have < n {
                return Err(Error::invalid(format!(
                    "{src}: changed while reading (shrank below the {n} bytes listed)"
                )));
            }
            break;
        }
        if have == n && got < want {
            break; // a short read of a regular file is its end
        }
    }
    out.truncate(n);
    Ok(out)
}

/// Copy exactly `n` bytes of `src` (listed with that size) into `w`, read
/// straight into its current block.
///
/// Each read asks for one byte more than is left, so a file that grew since
/// it was listed is caught without an extra read at the end (one read per
/// small file, as GNU tar does). A byte read beyond the listed size lands in
/// the block's free space uncounted, and the layer fails.
fn copy_exact<W: Write + Send + 'static>(
    src: &Utf8Path,
    n: u64,
    w: &mut BlobWriter<W>,
    out_name: &str,
) -> Result<()> {
    let mut f = File::open(src).io_context(|| format!("reading {src}"))?;
    let mut left = n;
    loop {
        let spare = w.spare();
        let want = spare
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let got = f
            .read(&mut spare[..want])
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
        w.commit(got).io_context(|| format!("writing {out_name}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::path::LayerPath;
    use camino::Utf8PathBuf;
    use std::sync::Arc;

    fn file_entry(i: usize, content: Content) -> Entry {
        Entry {
            path: LayerPath::parse(&format!("d/f{i:04}")).unwrap(),
            kind: EntryKind::File(content),
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            xattrs: None,
            origin: Arc::from("test"),
        }
    }

    fn tar_of(entries: &[Entry], threads: usize) -> Result<Vec<u8>> {
        let opts = LayerOptions {
            compression: Compression::None,
            mtime: 0,
            threads,
        };
        write_layer(entries, Vec::new(), &opts, "test").map(|(out, _)| out)
    }

    #[test]
    fn read_ahead_keeps_order_and_bytes_and_reports_the_first_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
        let mut from_files = Vec::new();
        let mut inline = Vec::new();
        for i in 0..700 {
            let bytes: Vec<u8> = (0..(i * 37 % 5000)).map(|b| (b * 7 + i) as u8).collect();
            let p = root.join(format!("f{i}"));
            std::fs::write(&p, &bytes).unwrap();
            from_files.push(file_entry(i, Content::Path(p, bytes.len() as u64)));
            inline.push(file_entry(i, Content::Inline(bytes)));
        }
        let want = tar_of(&inline, 1).unwrap();
        for threads in [1, 2, 8] {
            assert!(
                tar_of(&from_files, threads).unwrap() == want,
                "threads {threads}"
            );
        }
        // Two files changed since they were listed: the first in tar order is named.
        std::fs::write(root.join("f600"), b"x").unwrap();
        std::fs::write(root.join("f650"), b"").unwrap();
        let e = tar_of(&from_files, 4).unwrap_err().to_string();
        assert!(e.contains("/f600: changed while reading (shrank"), "{e}");
    }
}
