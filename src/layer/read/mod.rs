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
//!
//! Files, one noun each: `mod.rs` (the reader: decompressing, hashing,
//! extension headers and limits), `entry.rs` (an entry as stated, and which
//! names are acceptable), `header.rs` (decoding one header block).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use crate::digest::{Digest, Hasher};
use crate::error::{describe_io, Error, Result};
use crate::layer::compress::{decompressor, detect, Compression};

mod entry;
mod header;

pub use entry::{check_path, EntryType, TarEntry};
pub use header::MAX_EXTENSION_BYTES;
use header::{check_checksum, decode, padding, parse_number, parse_pax, trim_nul, BLOCK};

/// Most entries strata reads from one layer (the archive limit, reused).
pub const MAX_ENTRIES: usize = crate::limits::MAX_ARCHIVE_ENTRIES;

/// Bytes copied at a time when streaming content.
const COPY_BUFFER: usize = 64 * 1024;

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
            let e = decode(
                &block,
                self.entries,
                &self.global_pax,
                local,
                long_name,
                long_link,
                ext,
            )
            .map_err(|m| self.err(&what, m))?;
            self.entries += 1;
            if e.kind.has_data() {
                self.pending = Some((e.size, padding(e.size), e.label()));
            }
            return Ok(Some(e));
        }
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
}
