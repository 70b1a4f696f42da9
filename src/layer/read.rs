//! Reading layer blobs written by anyone: the hostile-input tar reader behind
//! `strata diff` and `strata normalize`, and (with [`crate::layer::check`])
//! `strata verify` and `strata image --layer FILE` without a descriptor.
//!
//! A [`LayerReader`] takes a layer blob (gzip, including multi-member gzip;
//! zstd; or a plain tar, told apart by their magic bytes), decompresses it as
//! a stream and yields its entries in stream order, each with every header
//! field (ustar, GNU and PAX dialects), its PAX records and xattrs, and the
//! sha256 of its content. [`LayerReader::finish`] then gives the blob's
//! digest, the diff_id and how the archive ended.
//!
//! Invariants (the input is untrusted):
//! - never panics, never allocates more than a bounded amount per entry
//!   (PAX and GNU long-name headers are limited to [`MAX_EXTENSION_BYTES`];
//!   file contents are streamed, never held), never reads past a lie: a
//!   declared size the stream cannot satisfy is a "truncated" error;
//! - at most [`MAX_ENTRIES`] entries;
//! - every error is one line naming the blob, the entry (position and path)
//!   and the problem;
//! - entry paths and hard-link targets with `..` components, absolute paths
//!   or NUL are refused (extracting them would write outside the root);
//! - GNU sparse entries, multi-volume and other exotic types are refused as
//!   unsupported rather than misread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use crate::digest::{Digest, Hasher};
use crate::error::{describe_io, Error, Result};
use crate::layer::compress::{decompressor, detect, Compression};

/// Largest PAX extended header or GNU long name/link strata reads.
///
/// Why 1 MiB: a path is at most 4 KiB on Linux and an xattr value 64 KiB; a
/// bigger header is an attempt to exhaust memory.
pub const MAX_EXTENSION_BYTES: u64 = 1 << 20;

/// Most entries strata reads from one layer (the archive limit, reused).
pub const MAX_ENTRIES: usize = crate::layout::MAX_ARCHIVE_ENTRIES;

const BLOCK: usize = 512;

/// Bytes copied at a time when streaming content.
const COPY_BUFFER: usize = 64 * 1024;

/// The type of a tar entry, as its type flag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryType {
    /// Regular file (`0`, NUL or `7`).
    File,
    /// Hard link (`1`).
    Hardlink,
    /// Symbolic link (`2`).
    Symlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Directory (`5`, or a v7 file whose name ends in `/`).
    Dir,
    /// FIFO (`6`).
    Fifo,
}

impl EntryType {
    /// A short lowercase name (`file`, `dir`, …) for messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Hardlink => "hardlink",
            EntryType::Symlink => "symlink",
            EntryType::CharDevice => "char device",
            EntryType::BlockDevice => "block device",
            EntryType::Dir => "dir",
            EntryType::Fifo => "fifo",
        }
    }

    /// Whether entries of this type carry content bytes in the stream.
    fn has_data(self) -> bool {
        self == EntryType::File
    }
}

/// One entry as the archive states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Position in the stream, from 0 (extension headers not counted).
    pub index: usize,
    /// The name as stored, after PAX `path` / GNU long name (e.g. `./etc/`).
    pub name: String,
    /// The name normalized for comparison: no leading `./`, no trailing `/`;
    /// `.` for the root directory entry some tools write.
    pub path: String,
    /// Entry type.
    pub kind: EntryType,
    /// Mode as stored (permission bits and possibly file-type bits).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name.
    pub uname: String,
    /// Owner group name.
    pub gname: String,
    /// Modification time, whole seconds (PAX `mtime` when present).
    pub mtime: i64,
    /// Sub-second part of a PAX `mtime`, in nanoseconds.
    pub mtime_nanos: u32,
    /// Content size (0 for entry types that carry no data).
    pub size: u64,
    /// Link target (symlinks, hard links).
    pub linkname: String,
    /// Device major number.
    pub devmajor: u64,
    /// Device minor number.
    pub devminor: u64,
    /// PAX records in effect (global then local), except xattrs.
    pub pax: BTreeMap<String, String>,
    /// Extended attributes (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*` records).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// How the header was encoded: `ustar`, `gnu` or `v7`, plus `+pax`,
    /// `+gnu-longname`, `+gnu-longlink` for extension headers.
    pub format: String,
}

impl TarEntry {
    /// The mtime as text: `1700000000` or `1700000000.5`.
    pub fn mtime_text(&self) -> String {
        if self.mtime_nanos == 0 {
            self.mtime.to_string()
        } else {
            let frac = format!("{:09}", self.mtime_nanos);
            format!("{}.{}", self.mtime, frac.trim_end_matches('0'))
        }
    }

    fn label(&self) -> String {
        format!("entry {} ({})", self.index, self.path)
    }
}

/// What the whole blob turned out to be, once read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// The compression found by magic bytes (default level: the level is not
    /// recorded in the stream).
    pub compression: Compression,
    /// Digest of the blob as read.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar (the diff_id).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// Number of entries.
    pub entries: usize,
    /// Whether the archive ended with the end-of-archive zero blocks (else
    /// the stream simply stopped after an entry).
    pub end_marker: bool,
    /// Bytes after the end-of-archive marker (GNU tar pads to 10240-byte
    /// records; strata and Go write none).
    pub trailing: u64,
}

/// A reader that hashes everything read from the raw blob; shared so the
/// rest of the blob can be drained after the decompressor stops.
struct Tap<R> {
    state: Rc<RefCell<(R, Hasher)>>,
}

impl<R> Clone for Tap<R> {
    fn clone(&self) -> Self {
        Tap {
            state: Rc::clone(&self.state),
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut st = self
            .state
            .try_borrow_mut()
            .map_err(|_| io::Error::other("blob reader busy"))?;
        let (r, h) = &mut *st;
        let n = r.read(buf)?;
        h.update(&buf[..n.min(buf.len())]);
        Ok(n)
    }
}

/// Streaming reader of one layer blob (see the module docs).
pub struct LayerReader<'a, R: Read + 'a> {
    name: String,
    raw: Tap<R>,
    tar: Box<dyn Read + 'a>,
    compression: Compression,
    diff: Hasher,
    entries: usize,
    /// [`MAX_ENTRIES`]; lowered only by unit tests (a million headers is 512 MB).
    max_entries: usize,
    /// Content bytes of the current entry not yet read, and its padding.
    pending: Option<(u64, u64, String)>,
    global_pax: BTreeMap<String, Vec<u8>>,
    done: Option<(bool, u64)>,
    /// The copy buffer, kept between entries.
    scratch: Vec<u8>,
}

impl<'a, R: Read + 'a> LayerReader<'a, R> {
    /// Open a blob; `name` (a file or `blob sha256:…`) prefixes every error.
    pub fn new(raw: R, name: &str) -> Result<LayerReader<'a, R>> {
        let tap = Tap {
            state: Rc::new(RefCell::new((raw, Hasher::new()))),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, tap.clone());
        let magic = buffered
            .fill_buf()
            .map_err(|e| Error::io(format!("reading {name}"), &e))?;
        let compression = detect(magic);
        Ok(LayerReader {
            name: name.to_string(),
            raw: tap,
            tar: decompressor(buffered, compression),
            compression,
            diff: Hasher::new(),
            entries: 0,
            max_entries: MAX_ENTRIES,
            pending: None,
            global_pax: BTreeMap::new(),
            done: None,
            scratch: Vec::new(),
        })
    }

    /// The compression detected from the magic bytes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Bytes of the (uncompressed) tar stream read so far: right after
    /// [`next_entry`](Self::next_entry) returned a file, where its content starts.
    pub fn tar_offset(&self) -> u64 {
        self.diff.len()
    }

    fn stream_name(&self) -> &'static str {
        match self.compression {
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
            Compression::None => "tar",
        }
    }

    fn err(&self, what: &str, msg: impl std::fmt::Display) -> Error {
        Error::corrupt(format!("{}: {what}: {msg}", self.name))
    }

    /// Read exactly `buf.len()` bytes; `Ok(n)` with `n < len` only at EOF.
    fn read_full(&mut self, buf: &mut [u8], what: &str) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.tar.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    let k = k.min(buf.len() - n);
                    self.diff.update(&buf[n..n + k]);
                    n += k;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.stream_error(what, &e)),
            }
        }
        Ok(n)
    }

    fn stream_error(&self, what: &str, e: &io::Error) -> Error {
        let s = self.stream_name();
        let problem = if s == "tar" {
            format!("reading failed: {}", describe_io(e))
        } else {
            format!("corrupt or truncated {s} stream: {}", describe_io(e))
        };
        match e.kind() {
            io::ErrorKind::InvalidData
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::Other => self.err(what, problem),
            _ => Error::io(format!("{}: {what}", self.name), e),
        }
    }

    /// Copy `n` bytes of the stream into `sink` (or discard them).
    fn copy(&mut self, n: u64, sink: Option<&mut dyn Write>, what: &str) -> Result<u64> {
        // Why a kept buffer: a fresh 64 KiB one per call (twice per entry)
        // costs a 64 KiB memset per entry on layers of many small files.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(COPY_BUFFER, 0);
        let r = self.copy_with(&mut buf, n, sink, what);
        self.scratch = buf;
        r
    }

    fn copy_with(
        &mut self,
        buf: &mut [u8],
        mut n: u64,
        mut sink: Option<&mut dyn Write>,
        what: &str,
    ) -> Result<u64> {
        let mut copied = 0;
        while n > 0 {
            let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.read_full(&mut buf[..want], what)?;
            if let Some(s) = sink.as_mut() {
                s.write_all(&buf[..got])
                    .map_err(|e| Error::io(format!("{}: {what}: writing", self.name), &e))?;
            }
            copied += got as u64;
            n -= got as u64;
            if got < want {
                break;
            }
        }
        Ok(copied)
    }

    /// Stream the current entry's remaining content into `sink`, returning
    /// its sha256.
    pub fn content(&mut self, sink: &mut dyn Write) -> Result<Digest> {
        let mut hw = crate::digest::HashingWriter::new(sink);
        self.pass_content(Some(&mut hw))?;
        let (_, d, _) = hw.finish();
        Ok(d)
    }

    /// Read the current entry's remaining content (and padding) into `sink`,
    /// or past it; a stream shorter than the header declares is an error.
    /// Called by [`next_entry`](Self::next_entry) (into nothing, unhashed:
    /// no digest is wanted) when the caller did not read the content.
    fn pass_content(&mut self, sink: Option<&mut dyn Write>) -> Result<()> {
        let Some((size, pad, label)) = self.pending.take() else {
            return Ok(());
        };
        let got = self.copy(size, sink, &label)?;
        if got < size {
            return Err(self.err(
                &label,
                format!("truncated: the header declares {size} bytes, the stream ends after {got}"),
            ));
        }
        let p = self.copy(pad, None, &label)?;
        if p < pad {
            return Err(self.err(&label, "truncated: the stream ends inside the padding"));
        }
        Ok(())
    }

    /// The next entry, or `None` after the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<TarEntry>> {
        if self.pending.is_some() {
            self.pass_content(None)?;
        }
        if self.done.is_some() {
            return Ok(None);
        }
        let mut local: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut ext: Vec<&'static str> = Vec::new();
        loop {
            let what = format!("entry {}", self.entries);
            let mut block = [0u8; BLOCK];
            let n = self.read_full(&mut block, &what)?;
            if n == 0 {
                if !local.is_empty() || long_name.is_some() || long_link.is_some() {
                    return Err(self.err(&what, "truncated: extension header without an entry"));
                }
                // Why accepted: Go's and tar-rs's readers accept an archive
                // that stops after an entry; diff reports it as a finding.
                self.done = Some((false, 0));
                return Ok(None);
            }
            if n < BLOCK {
                return Err(self.err(&what, "truncated: the stream ends inside a header"));
            }
            if block.iter().all(|&b| b == 0) {
                let mut second = [0u8; BLOCK];
                let m = self.read_full(&mut second, &what)?;
                if m == BLOCK && second.iter().any(|&b| b != 0) {
                    return Err(self.err(&what, "a lone zero block inside the archive"));
                }
                let trailing = self.drain()?;
                self.done = Some((m == BLOCK, trailing));
                return Ok(None);
            }
            check_checksum(&block).map_err(|m| self.err(&what, m))?;
            let flag = block[156];
            let size = parse_number(&block[124..136]).map_err(|m| self.err(&what, m))?;
            match flag {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENSION_BYTES {
                        let kind = if matches!(flag, b'x' | b'g') {
                            "PAX header"
                        } else {
                            "GNU long name"
                        };
                        return Err(self.err(
                            &what,
                            format!(
                                "{kind} of {size} bytes exceeds the {MAX_EXTENSION_BYTES} byte limit"
                            ),
                        ));
                    }
                    let mut data = vec![0u8; size as usize];
                    let got = self.read_full(&mut data, &what)?;
                    if (got as u64) < size {
                        return Err(self.err(
                            &what,
                            format!("truncated: extension header declares {size} bytes, the stream ends after {got}"),
                        ));
                    }
                    let pad = padding(size);
                    if self.copy(pad, None, &what)? < pad {
                        return Err(
                            self.err(&what, "truncated: the stream ends inside the padding")
                        );
                    }
                    match flag {
                        b'x' => {
                            parse_pax(&data, &mut local).map_err(|m| self.err(&what, m))?;
                            ext.push("pax");
                        }
                        b'g' => {
                            parse_pax(&data, &mut self.global_pax)
                                .map_err(|m| self.err(&what, m))?;
                        }
                        b'L' => {
                            long_name = Some(trim_nul(&data).to_vec());
                            ext.push("gnu-longname");
                        }
                        _ => {
                            long_link = Some(trim_nul(&data).to_vec());
                            ext.push("gnu-longlink");
                        }
                    }
                    continue;
                }
                _ => {}
            }
            if self.entries >= self.max_entries {
                return Err(self.err(
                    &what,
                    format!("more than {} entries (the limit)", self.max_entries),
                ));
            }
            let e = self
                .entry(&block, local, long_name, long_link, ext)
                .map_err(|m| self.err(&what, m))?;
            self.entries += 1;
            if e.kind.has_data() {
                self.pending = Some((e.size, padding(e.size), e.label()));
            }
            return Ok(Some(e));
        }
    }

    /// Decode one header block plus its extension records.
    fn entry(
        &self,
        b: &[u8; BLOCK],
        local: BTreeMap<String, Vec<u8>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        ext: Vec<&'static str>,
    ) -> std::result::Result<TarEntry, String> {
        let mut pax = self.global_pax.clone();
        pax.extend(local);
        let magic = &b[257..265];
        let base = if magic == b"ustar\x0000" {
            "ustar"
        } else if magic == b"ustar  \0" {
            "gnu"
        } else if magic.starts_with(b"ustar") {
            return Err(format!(
                "unknown tar header magic {:?}",
                String::from_utf8_lossy(magic)
            ));
        } else {
            "v7"
        };
        let mut format = base.to_string();
        for x in &ext {
            format.push('+');
            format.push_str(x);
        }
        let field_str = |bytes: &[u8], what: &str| -> std::result::Result<String, String> {
            String::from_utf8(trim_nul(bytes).to_vec()).map_err(|_| format!("{what} is not UTF-8"))
        };
        let name_bytes = if let Some(p) = pax.get("path") {
            p.clone()
        } else if let Some(l) = long_name {
            l
        } else if base == "ustar" && b[345] != 0 {
            let mut v = trim_nul(&b[345..500]).to_vec();
            v.push(b'/');
            v.extend_from_slice(trim_nul(&b[0..100]));
            v
        } else {
            trim_nul(&b[0..100]).to_vec()
        };
        let name = String::from_utf8(name_bytes).map_err(|_| "entry name is not UTF-8")?;
        let path = check_path(&name)?;
        let link_bytes = if let Some(p) = pax.get("linkpath") {
            p.clone()
        } else if let Some(l) = long_link {
            l
        } else {
            trim_nul(&b[157..257]).to_vec()
        };
        let linkname = String::from_utf8(link_bytes)
            .map_err(|_| format!("{path}: link target is not UTF-8"))?;
        if linkname.contains('\0') {
            return Err(format!("{path}: link target contains NUL"));
        }
        let kind = match b[156] {
            b'0' | 0 | b'7' if name.ends_with('/') => EntryType::Dir,
            b'0' | 0 | b'7' => EntryType::File,
            b'1' => EntryType::Hardlink,
            b'2' => EntryType::Symlink,
            b'3' => EntryType::CharDevice,
            b'4' => EntryType::BlockDevice,
            b'5' => EntryType::Dir,
            b'6' => EntryType::Fifo,
            b'S' => return Err(format!("{path}: GNU sparse entries are not supported")),
            f => {
                return Err(format!(
                    "{path}: unsupported entry type {:?}",
                    char::from(f).escape_default().to_string()
                ))
            }
        };
        if pax.keys().any(|k| k.starts_with("GNU.sparse.")) {
            return Err(format!("{path}: PAX sparse entries are not supported"));
        }
        if kind == EntryType::Hardlink {
            check_path(&linkname).map_err(|m| format!("{path}: hard link target: {m}"))?;
        }
        let num = |key: &str, field: &[u8]| -> std::result::Result<u64, String> {
            match pax.get(key) {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| format!("{path}: PAX {key} is not a number")),
                None => parse_number(field).map_err(|m| format!("{path}: {m}")),
            }
        };
        let pax_size = num("size", &b[124..136])?;
        let (mtime, mtime_nanos) = match pax.get("mtime") {
            Some(v) => parse_pax_time(v).ok_or_else(|| format!("{path}: PAX mtime is invalid"))?,
            None => (
                parse_signed(&b[136..148]).map_err(|m| format!("{path}: {m}"))?,
                0,
            ),
        };
        let text = |key: &str, field: &[u8]| -> std::result::Result<String, String> {
            match pax.get(key) {
                Some(v) => String::from_utf8(v.clone())
                    .map_err(|_| format!("{path}: PAX {key} is not UTF-8")),
                None => field_str(field, key).map_err(|m| format!("{path}: {m}")),
            }
        };
        let (uname, gname) = if base == "v7" {
            (String::new(), String::new())
        } else {
            (text("uname", &b[265..297])?, text("gname", &b[297..329])?)
        };
        let (devmajor, devminor) = if base == "v7" {
            (0, 0)
        } else {
            (
                parse_number(&b[329..337]).map_err(|m| format!("{path}: devmajor: {m}"))?,
                parse_number(&b[337..345]).map_err(|m| format!("{path}: devminor: {m}"))?,
            )
        };
        let mut records = BTreeMap::new();
        let mut xattrs = BTreeMap::new();
        for (k, v) in &pax {
            if let Some(x) = k
                .strip_prefix("SCHILY.xattr.")
                .or_else(|| k.strip_prefix("LIBARCHIVE.xattr."))
            {
                xattrs.insert(x.to_string(), v.clone());
            } else {
                records.insert(k.clone(), String::from_utf8_lossy(v).into_owned());
            }
        }
        let uid = num("uid", &b[108..116])?;
        let gid = num("gid", &b[116..124])?;
        let mode =
            u32::try_from(parse_number(&b[100..108]).map_err(|m| format!("{path}: mode: {m}"))?)
                .map_err(|_| format!("{path}: mode out of range"))?;
        Ok(TarEntry {
            index: self.entries,
            name,
            path,
            kind,
            mode,
            uid,
            gid,
            uname,
            gname,
            mtime,
            mtime_nanos,
            size: if kind.has_data() { pax_size } else { 0 },
            linkname,
            devmajor,
            devminor,
            pax: records,
            xattrs,
            format,
        })
    }

    /// Read the rest of the tar stream (after the end marker) and the rest of
    /// the blob (after the compressed stream); returns the tar bytes read.
    fn drain(&mut self) -> Result<u64> {
        let mut n = 0u64;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let got = self.read_full(&mut buf, "after the end of the archive")?;
            n += got as u64;
            if got < buf.len() {
                break;
            }
        }
        Ok(n)
    }

    /// After an error: read the rest of the raw blob without parsing it and
    /// give its digest and size, so a caller can still say whether the blob
    /// is the one its descriptor names.
    pub fn drain_blob(self) -> Result<(Digest, u64)> {
        let mut raw = self.raw.clone();
        io::copy(&mut raw, &mut io::sink())
            .map_err(|e| Error::io(format!("reading {}", self.name), &e))?;
        drop(self.tar);
        let st = self.raw.state.borrow();
        Ok(st.1.clone().finish())
    }

    /// Read to the end (any entries left are skipped) and summarize the blob.
    pub fn finish(mut self) -> Result<LayerSummary> {
        while self.next_entry()?.is_some() {}
        let (end_marker, trailing) = self.done.unwrap_or((false, 0));
        // The decompressor may stop before the blob's end (it has read what
        // it needs); hash the rest so the digest covers the whole blob.
        let mut raw = self.raw.clone();
        io::copy(&mut raw, &mut io::sink())
            .map_err(|e| Error::io(format!("reading {}", self.name), &e))?;
        drop(self.tar);
        let (digest, size) = {
            let st = self.raw.state.borrow();
            st.1.clone().finish()
        };
        let (diff_id, tar_size) = self.diff.finish();
        Ok(LayerSummary {
            compression: self.compression,
            digest,
            size,
            diff_id,
            tar_size,
            entries: self.entries,
            end_marker,
            trailing,
        })
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Validate an entry name and return its comparison form (see [`TarEntry::path`]).
pub fn check_path(name: &str) -> std::result::Result<String, String> {
    let shown = || format!("{name:?}");
    if name.contains('\0') {
        return Err(format!("path {}: contains NUL", shown()));
    }
    if name.is_empty() {
        return Err("empty entry name".to_string());
    }
    if name.starts_with('/') {
        return Err(format!(
            "path {}: absolute paths are refused (extracting it could write outside the root)",
            shown()
        ));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(format!(
            "path {}: '..' components are refused (extracting it could write outside the root)",
            shown()
        ));
    }
    let mut p = name;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() || p == "." {
        return Ok(".".to_string());
    }
    Ok(p.to_string())
}

fn check_checksum(b: &[u8; BLOCK]) -> std::result::Result<(), String> {
    let stored = parse_number(&b[148..156]).map_err(|m| format!("header checksum: {m}"))?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += u64::from(x);
        signed += i64::from(x as i8);
    }
    // Why signed too: some historic tars summed signed chars (POSIX allows reading both).
    if stored == unsigned || i64::try_from(stored).ok() == Some(signed) {
        Ok(())
    } else {
        Err(format!(
            "header checksum mismatch (not a tar header, or corrupt): stored {stored}, computed {unsigned}"
        ))
    }
}

/// A numeric header field: octal text (NUL/space padded) or GNU base-256.
fn parse_number(field: &[u8]) -> std::result::Result<u64, String> {
    let v = parse_signed(field)?;
    u64::try_from(v).map_err(|_| "negative number in a header field".to_string())
}

fn parse_signed(field: &[u8]) -> std::result::Result<i64, String> {
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            // Base-256, two's complement (0xff leading = negative).
            let neg = first == 0xff;
            let mut v: i128 = if neg { -1 } else { i128::from(first & 0x7f) };
            for &b in &field[1..] {
                v = v
                    .checked_mul(256)
                    .and_then(|x| x.checked_add(i128::from(b)))
                    .ok_or("base-256 number out of range")?;
                if v.abs() > i128::from(i64::MAX) {
                    return Err("base-256 number out of range".to_string());
                }
            }
            return i64::try_from(v).map_err(|_| "base-256 number out of range".to_string());
        }
    }
    let s = trim_nul(field);
    let s: Vec<u8> = s
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != b' ')
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let mut v: i64 = 0;
    for c in s {
        if !(b'0'..=b'7').contains(&c) {
            return Err(format!(
                "invalid octal number {:?}",
                String::from_utf8_lossy(field)
            ));
        }
        v = v
            .checked_mul(8)
            .and_then(|x| x.checked_add(i64::from(c - b'0')))
            .ok_or("octal number out of range")?;
    }
    Ok(v)
}

/// PAX records: `"<len> <key>=<value>\n"`, len counting the whole record.
fn parse_pax(
    mut data: &[u8],
    out: &mut BTreeMap<String, Vec<u8>>,
) -> std::result::Result<(), String> {
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record (no length)")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed PAX record (length does not match)".to_string());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("malformed PAX record (no '=')")?;
        let key = std::str::from_utf8(&rec[..eq])
            .map_err(|_| "PAX record key is not UTF-8".to_string())?;
        if key.is_empty() {
            return Err("PAX record with an empty key".to_string());
        }
        let value = &rec[eq + 1..];
        if value.is_empty() {
            // POSIX: an empty value deletes the record (and the global one).
            out.remove(key);
        } else {
            out.insert(key.to_string(), value.to_vec());
        }
        data = &data[len..];
    }
    Ok(())
}

/// A PAX time `secs[.frac]` (possibly negative) → (seconds, nanoseconds).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::{write_end, write_header, write_padding, TarHeader, TarKind};

    fn hdr(name: &str, kind: TarKind, size: u64) -> TarHeader<'_> {
        TarHeader {
            name,
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: "",
            gname: "",
            size,
            mtime: 0,
            linkname: "",
        }
    }

    fn tar_of(items: &[(&str, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, body) in items {
            write_header(&mut v, &hdr(name, TarKind::File, body.len() as u64)).unwrap();
            v.extend_from_slice(body);
            write_padding(&mut v, body.len() as u64).unwrap();
        }
        write_end(&mut v).unwrap();
        v
    }

    /// The documented limit (README, SECURITY.md) and its check, with the
    /// limit lowered: a million and one entries would be 512 MB of headers.
    #[test]
    fn entries_past_the_limit_are_an_error() {
        assert_eq!(MAX_ENTRIES, 1_000_000);
        let blob = tar_of(&[("a", b"1"), ("b", b"2"), ("c", b"3"), ("d", b"4")]);
        let read = |limit: usize| -> Result<usize> {
            let mut r = LayerReader::new(&blob[..], "t.tar")?;
            r.max_entries = limit;
            let mut n = 0;
            while r.next_entry()?.is_some() {
                r.content(&mut io::sink())?;
                n += 1;
            }
            Ok(n)
        };
        assert_eq!(read(4).unwrap(), 4);
        let e = read(3).unwrap_err().to_string();
        assert!(
            e.starts_with("t.tar: ") && e.contains("more than 3 entries (the limit)"),
            "{e}"
        );
    }

    fn read_all(blob: &[u8]) -> Result<(Vec<(TarEntry, Digest)>, LayerSummary)> {
        let mut r = LayerReader::new(blob, "t.tar")?;
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let d = r.content(&mut io::sink())?;
            out.push((e, d));
        }
        Ok((out, r.finish()?))
    }

    #[test]
    fn reads_strata_tars_in_every_compression() {
        let long = format!("{}/f", "d".repeat(150));
        let tar = tar_of(&[("a.txt", b"abc"), (&long, b"")]);
        for c in [Compression::None, Compression::gzip(), Compression::zstd()] {
            let mut w = crate::layer::compress::BlobWriter::new(Vec::new(), c, 2);
            w.write_all(&tar).unwrap();
            let s = w.finish().unwrap();
            let (entries, sum) = read_all(&s.out).unwrap();
            assert_eq!(entries.len(), 2);
            assert_eq!(entries[0].0.path, "a.txt");
            assert_eq!(entries[0].1, Digest::of(b"abc"));
            assert_eq!(entries[1].0.path, long);
            assert_eq!(entries[1].0.format, "ustar+pax");
            assert_eq!(sum.diff_id, s.diff_id);
            assert_eq!(sum.digest, s.digest);
            assert_eq!(sum.size, s.size);
            assert!(sum.end_marker);
            assert_eq!(sum.trailing, 0);
            assert_eq!(sum.compression, c);
        }
    }

    #[test]
    fn reads_gnu_and_pax_from_tar_crate() {
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o755);
        h.set_uid(1000);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(::tar::EntryType::Regular);
        b.append_data(&mut h, format!("x/{}", "n".repeat(120)), &b"hi"[..])
            .unwrap();
        b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v\0w"[..]), ("mtime", b"5.25")])
            .unwrap();
        let mut h = ::tar::Header::new_ustar();
        h.set_size(0);
        h.set_entry_type(::tar::EntryType::Symlink);
        h.set_cksum();
        b.append_link(&mut h, "l", "/etc/target").unwrap();
        let data = b.into_inner().unwrap();
        let (e, sum) = read_all(&data).unwrap();
        assert_eq!(e[0].0.format, "gnu+gnu-longname");
        assert_eq!(e[0].0.uid, 1000);
        assert_eq!(e[0].0.mode, 0o755);
        assert_eq!(e[1].0.kind, EntryType::Symlink);
        assert_eq!(e[1].0.linkname, "/etc/target");
        assert_eq!(e[1].0.xattrs["user.k"], b"v\0w");
        assert_eq!(e[1].0.mtime_text(), "5.25");
        assert!(sum.end_marker);
    }

    fn err_of(blob: &[u8]) -> String {
        match read_all(blob) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lying_size_is_truncation() {
        let mut t = Vec::new();
        write_header(&mut t, &hdr("big", TarKind::File, 10_000)).unwrap();
        t.extend_from_slice(b"only a little");
        let e = err_of(&t);
        assert!(
            e.contains("t.tar: entry 0 (big): truncated: the header declares 10000 bytes"),
            "{e}"
        );
    }

    #[test]
    fn huge_pax_header_is_refused() {
        let mut t = Vec::new();
        let mut h = hdr("././@PaxHeader", TarKind::File, 2 << 20);
        h.mode = 0o644;
        let mut block = Vec::new();
        write_header(&mut block, &h).unwrap();
        block[156] = b'x';
        // Fix the checksum after changing the type flag.
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&x| u32::from(x)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        t.extend_from_slice(&block);
        let e = err_of(&t);
        assert!(
            e.contains("PAX header of 2097152 bytes exceeds the 1048576 byte limit"),
            "{e}"
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for (name, want) in [
            ("../etc/passwd", "'..' components"),
            ("a/../../b", "'..' components"),
        ] {
            let t = tar_of(&[(name, b"x")]);
            let e = err_of(&t);
            assert!(e.contains(want), "{name}: {e}");
        }
        assert!(check_path("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(check_path("a\0b").unwrap_err().contains("NUL"));
        assert_eq!(check_path("./").unwrap(), ".");
        assert_eq!(check_path("./etc/").unwrap(), "etc");
    }

    #[test]
    fn truncated_compressed_streams_are_errors() {
        let tar = tar_of(&[("a", &vec![7u8; 300_000][..])]);
        for c in [Compression::gzip(), Compression::zstd()] {
            let mut w = crate::layer::compress::BlobWriter::new(Vec::new(), c, 1);
            w.write_all(&tar).unwrap();
            let s = w.finish().unwrap();
            let cut = &s.out[..s.out.len() - 7];
            let e = err_of(cut);
            assert!(e.contains("corrupt or truncated"), "{c:?}: {e}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 1;
        for len in [0usize, 1, 100, 511, 512, 513, 1024, 4096] {
            let mut v = vec![0u8; len];
            for b in v.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let _ = read_all(&v);
        }
        // An empty blob is an archive that stops at once.
        let (e, s) = read_all(b"").unwrap();
        assert!(e.is_empty() && !s.end_marker);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(parse_number(b"  644 \0\0").unwrap(), 0o644);
        assert_eq!(parse_number(b"\0\0\0\0").unwrap(), 0);
        assert_eq!(parse_number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert_eq!(parse_signed(&[0xff, 0xff, 0xff, 0xff]).unwrap(), -1);
        assert!(parse_number(b"12x\0").is_err());
        assert!(
            parse_number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        assert_eq!(parse_pax_time(b"1.5").unwrap(), (1, 500_000_000));
        assert_eq!(parse_pax_time(b"-3").unwrap(), (-3, 0));
    }
}
