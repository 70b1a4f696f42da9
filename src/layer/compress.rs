//! Layer compression: the uncompressed tar stream goes in; the blob comes out
//! with both digests (diff_id of the tar, digest of the blob) computed in the
//! same single pass.
//!
//! Invariants: the output bytes depend only on the input bytes, the
//! compression and its level — never on the thread count, the run, or the
//! CPU. How each backend keeps that:
//!
//! - **gzip**: the stream is cut into fixed [`GZIP_BLOCK`]-byte blocks, each
//!   compressed on its own by libdeflate (pinned in `Cargo.lock`) into one
//!   gzip member; members are concatenated in order. Block boundaries are
//!   fixed, so 1 or 64 threads give the same bytes. The result is
//!   multi-member gzip (RFC 1952 §2.2): every reader tested (Go's
//!   `compress/gzip` in docker/containerd/skopeo/umoci, GNU gunzip, Python's
//!   `gzip`, flate2's `MultiGzDecoder`) reads all members; a single-member
//!   reader such as flate2's `GzDecoder` stops after the first 1 MiB.
//!   Each member header is the fixed 10 bytes `1f 8b 08 00 00000000 XFL ff`:
//!   no name, mtime 0, OS "unknown" (XFL is 04 below level 2, 02 from level
//!   8, else 00: a function of the level only).
//!   libdeflate's compressor has no runtime CPU dispatch: the x86 matchfinder
//!   SIMD (`x86/matchfinder_impl.h`) is chosen at compile time and only
//!   initializes/rebases tables to the same values; crc32 dispatches at run
//!   time but computes the same checksum.
//! - **zstd**: libzstd (bundled by `zstd-sys`, pinned) in multi-threaded mode
//!   with at least one worker even for `threads == 1` — single-thread mode
//!   (0 workers) writes different bytes — and a pinned job size, so the bytes
//!   are the same for any worker count. No checksum, no content size (the size
//!   is unknown while streaming). libzstd's match finders pick SIMD at compile
//!   time for the build target; `DYNAMIC_BMI2` only speeds up entropy coding
//!   and does not change the output.
//! - **none**: the tar itself; digest equals diff_id.
//!
//! Threads: the caller's thread builds the tar (reading files straight into
//! the current block); compression runs on workers (ours for gzip,
//! libzstd's for zstd); hashing the tar (diff_id) and hashing plus writing
//! the blob run on stages of their own, so on two cores neither hashing nor
//! I/O waits for compression (SHA-256 of both streams is ~20% of the CPU).
//!
//! Memory is bounded: at most a few blocks per thread are in flight, all of
//! one size, recycled through a pool.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libdeflater::{CompressionLvl, Compressor};
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};

/// Size of the independent gzip blocks.
///
/// Why 1 MiB: large enough that the per-member overhead (18 bytes) and the
/// lost cross-block matches cost < 0.1% in size, small enough that two
/// threads stay busy on small layers and memory stays low.
pub const GZIP_BLOCK: usize = 1 << 20;

/// zstd job size in multi-threaded mode (pinned so it depends on nothing else).
///
/// Why 3 MiB (was 4 MiB until 2026-12-01, which changed zstd layer digests
/// of more than 3 MiB of tar): libzstd holds about five jobs of input and
/// output, so on 2 cores peak RSS fell from 58–66 MiB to ~51 MiB on the 1 GiB
/// benchmark tree, at the same speed and even slightly smaller output
/// (763.57 vs 763.67 MB there, 222.25 vs 222.58 MB on /usr/lib).
pub const ZSTD_JOB_SIZE: u32 = 3 << 20;

const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// Block-parallel gzip (libdeflate), level 1–12.
    Gzip {
        /// libdeflate level.
        level: u32,
    },
    /// Multi-threaded zstd, level 1–19.
    Zstd {
        /// zstd level.
        level: i32,
    },
}

impl Compression {
    /// Default gzip level. Why 5: on /usr/lib/x86_64-linux-gnu (690 MB) with
    /// 2 cores it writes 0.993x the bytes of `gzip -6` at 7.1x the speed of
    /// `tar | gzip -n` and 3.1x `tar | pigz -n`; level 6 is 1.3% smaller but
    /// 16% slower (BENCHMARKS.md).
    pub const DEFAULT_GZIP_LEVEL: u32 = 5;
    /// Default zstd level. Why 3: zstd's own default; smaller than `gzip -6`
    /// and an order of magnitude faster.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

    /// gzip at the default level.
    pub fn gzip() -> Self {
        Compression::Gzip {
            level: Self::DEFAULT_GZIP_LEVEL,
        }
    }

    /// zstd at the default level.
    pub fn zstd() -> Self {
        Compression::Zstd {
            level: Self::DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The OCI layer media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::None => OCI_TAR,
            Compression::Gzip { .. } => OCI_GZIP,
            Compression::Zstd { .. } => OCI_ZSTD,
        }
    }

    /// The compression a layer media type names (OCI or Docker), default level.
    pub fn from_media_type(mt: &str) -> Option<Self> {
        match mt {
            OCI_TAR | DOCKER_TAR => Some(Compression::None),
            OCI_GZIP | DOCKER_GZIP => Some(Self::gzip()),
            OCI_ZSTD => Some(Self::zstd()),
            _ => None,
        }
    }

    /// Parse `--compression` and `--level`.
    pub fn parse(name: &str, level: Option<i32>) -> Result<Self> {
        match (name, level) {
            ("none", None) => Ok(Compression::None),
            ("none", Some(l)) => Err(Error::invalid(format!(
                "--level {l}: compression none has no level"
            ))),
            ("gzip", None) => Ok(Self::gzip()),
            ("gzip", Some(l)) if (1..=12).contains(&l) => Ok(Compression::Gzip { level: l as u32 }),
            ("gzip", Some(l)) => Err(Error::invalid(format!(
                "--level {l}: gzip levels are 1 to 12"
            ))),
            ("zstd", None) => Ok(Self::zstd()),
            ("zstd", Some(l)) if (1..=19).contains(&l) => Ok(Compression::Zstd { level: l }),
            ("zstd", Some(l)) => Err(Error::invalid(format!(
                "--level {l}: zstd levels are 1 to 19"
            ))),
            (other, _) => Err(Error::invalid(format!(
                "--compression {other:?}: expected gzip, zstd or none"
            ))),
        }
    }
}

/// What [`BlobWriter::finish`] returns.
#[derive(Debug)]
pub struct BlobSummary<W> {
    /// The output writer, everything written and flushed.
    pub out: W,
    /// Digest of the blob (compressed bytes).
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed stream.
    pub diff_id: Digest,
    /// Size of the uncompressed stream.
    pub uncompressed_size: u64,
}

/// A pooled buffer and how many of its bytes are in use. The vector keeps its
/// full length, so reusing it never zeroes it again.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    const fn empty() -> Chunk {
        Chunk {
            buf: Vec::new(),
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Recycled buffers: 1 MiB allocations are fresh mmaps, and touching
/// them page by page cost more system time than compressing (3.5 s per GiB).
#[derive(Clone, Default)]
struct BufPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufPool {
    /// Most buffers kept (memory stays bounded whatever the thread count).
    const KEEP: usize = 32;
    /// Every buffer's size: a block, or a block's gzip member however badly
    /// it compresses (libdeflate's bound is a few hundred bytes more). Why
    /// one size: buffers then never grow, and growing them in turn on
    /// several threads left holes in malloc's per-thread arenas (peak RSS
    /// 62–72 MiB instead of ~45 MiB for gzip on 1 GiB).
    const SIZE: usize = GZIP_BLOCK + (GZIP_BLOCK >> 6);

    /// An empty chunk with room for at least `size` bytes.
    fn get(&self, size: usize) -> Chunk {
        let mut buf = self
            .0
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default();
        if buf.len() < size {
            buf = vec![0; size.max(Self::SIZE)];
        }
        Chunk { buf, len: 0 }
    }

    fn put(&self, c: Chunk) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() < Self::KEEP {
                v.push(c.buf);
            }
        }
    }
}

/// A thread that hashes chunks in order and writes them on, handing the
/// buffers back to the pool. Stages keep hashing and writing off the threads
/// that read and compress, so on few cores every core stays busy.
struct Stage<W> {
    tx: Option<SyncSender<Chunk>>,
    handle: Option<JoinHandle<io::Result<HashingWriter<W>>>>,
}

/// A stage that only hashes (the diff_id of a compressed layer).
type HashStage = Stage<io::Sink>;

impl<W: Write + Send + 'static> Stage<W> {
    /// Why 4 chunks deep: enough to ride out a slow write or a long
    /// compression job; memory stays at a few MiB.
    const DEPTH: usize = 4;

    fn new(out: W, pool: BufPool) -> Self {
        let (tx, rx) = sync_channel::<Chunk>(Self::DEPTH);
        let handle = std::thread::spawn(move || {
            let mut out = HashingWriter::new(out);
            for c in rx {
                out.write_all(c.bytes())?;
                pool.put(c);
            }
            out.flush()?;
            Ok(out)
        });
        Stage {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queue a chunk; if the stage has stopped, its own error.
    fn send(&mut self, c: Chunk) -> io::Result<()> {
        if let Some(tx) = &self.tx {
            if tx.send(c).is_ok() {
                return Ok(());
            }
        }
        Err(self
            .stop()
            .err()
            .unwrap_or_else(|| io::Error::other("output stage stopped unexpectedly")))
    }

    /// Wait for everything queued to be hashed and written.
    fn finish(mut self) -> io::Result<HashingWriter<W>> {
        self.stop()
    }
}

impl<W> Stage<W> {
    fn stop(&mut self) -> io::Result<HashingWriter<W>> {
        self.tx = None;
        join(self.handle.take(), "output stage")
    }
}

/// The result of a pipeline thread, once it has ended.
fn join<T>(h: Option<JoinHandle<io::Result<T>>>, what: &str) -> io::Result<T> {
    match h {
        Some(h) => h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other(format!("{what} panicked")))),
        None => Err(io::Error::other(format!("{what} already stopped"))),
    }
}

impl<W> Drop for Stage<W> {
    fn drop(&mut self) {
        // Joining keeps no thread behind (after `finish`, nothing is left).
        let _ = self.stop();
    }
}

type Job = (u64, Chunk);
/// A compressed block: sequence number, the input block, the gzip member.
type Done = (u64, Chunk, Chunk);
/// The collector's result: the hashed output and the diff_id with its size.
type Collected<W> = io::Result<(HashingWriter<W>, Digest, u64)>;

/// The block-parallel gzip pipeline: workers compress, a collector reorders,
/// hashes and writes the members, a hash stage hashes the input (diff_id).
struct GzipPool<W> {
    jobs: Option<SyncSender<Job>>,
    /// One token per block that may be submitted; the collector returns a
    /// token for every block it has written.
    credits: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<Collected<W>>>,
    next_seq: u64,
}

impl<W: Write + Send + 'static> GzipPool<W> {
    fn new(out: W, level: u32, threads: usize, pool: BufPool) -> Self {
        let threads = threads.max(1);
        // Why these bounds: a few blocks per thread in flight keeps every
        // worker busy and memory flat whatever the layer size.
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let (done_tx, done_rx) = sync_channel::<io::Result<Done>>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&job_rx);
                let tx = done_tx.clone();
                let pool = pool.clone();
                std::thread::spawn(move || gzip_worker(level, &rx, &tx, &pool))
            })
            .collect();
        drop(done_tx);
        // Why a bound on blocks in flight: without one, a worker stuck on a
        // text block while another stores random blocks in a fraction of the
        // time let the reorder buffer grow (peak RSS 52–67 MiB on the 1 GiB
        // tree, varying run to run; with this bound ~35 MiB at the same speed,
        // while 2 per thread + 4 was 20% slower).
        let in_flight = 4 * threads + 4;
        let (credit_tx, credits) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            credit_tx.send(()).expect("credits fit their channel");
        }
        let diff = Stage::new(io::sink(), pool.clone());
        let collector = std::thread::spawn(move || {
            collect(HashingWriter::new(out), diff, done_rx, credit_tx, pool)
        });
        GzipPool {
            jobs: Some(job_tx),
            credits,
            workers,
            collector: Some(collector),
            next_seq: 0,
        }
    }

    /// Queue one block; on failure, the pipeline's own error.
    fn submit(&mut self, block: Chunk) -> io::Result<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let sent = match self.credits.recv() {
            Ok(()) => self.jobs.as_ref().map(|tx| tx.send((seq, block)).is_ok()),
            Err(_) => None,
        };
        if sent == Some(true) {
            return Ok(());
        }
        Err(self
            .shutdown()
            .err()
            .unwrap_or_else(|| io::Error::other("compression pipeline stopped unexpectedly")))
    }
}

impl<W> GzipPool<W> {
    /// Stop the workers and collect the written output.
    fn shutdown(&mut self) -> Collected<W> {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        join(self.collector.take(), "compression collector")
    }
}

impl<W> Drop for GzipPool<W> {
    fn drop(&mut self) {
        // Dropping the job sender ends the workers; the collector ends when
        // the last worker's sender is gone. Joining keeps no thread behind.
        let _ = self.shutdown();
    }
}

/// Whether a block is incompressible: its byte histogram is flat, as for
/// random or already-compressed data. Integer arithmetic only (a float
/// threshold could flip between libm versions and change bytes); a pure
/// function of the block, so the output still does not depend on threads.
///
/// Why: libdeflate's lazy parser is ~3x slower on such data than on text and
/// gains nothing; storing it (deflate level 0) costs < 0.01% in size.
pub fn incompressible(block: &[u8]) -> bool {
    if block.len() < 64 * 1024 {
        return false;
    }
    // Every byte value within 1/8 of its expected count n/256 (about 8
    // standard deviations for random data in a 1 MiB block), i.e.
    // |256 c - n| * 8 <= n for every count c.
    let n = block.len() as u64;
    let Some(hist) = histogram_unless_over(block, |c| c * 2048 > 9 * n) else {
        return false;
    };
    hist.iter().all(|&c| (c * 256).abs_diff(n) * 8 <= n)
}

/// Byte counts of `block`, or None as soon as one count is `over` (counts
/// only grow, so a count over the bound early is over it at the end: text
/// has its spaces and `e`s over n/227 within a few KiB, and stops there).
///
/// Four interleaved tables, summed per step: with one table every repeated
/// byte waits for the previous increment's store. Counts are exact either
/// way, so the stored/compressed decision is the same as a naive count's.
fn histogram_unless_over(block: &[u8], over: impl Fn(u64) -> bool) -> Option<[u64; 256]> {
    const STEP: usize = 16 << 10;
    let mut hist = [0u64; 256];
    for part in block.chunks(STEP) {
        // u32 is enough within a step of 16 KiB.
        let mut t = [[0u32; 256]; 4];
        let mut quads = part.chunks_exact(4);
        for q in &mut quads {
            t[0][usize::from(q[0])] += 1;
            t[1][usize::from(q[1])] += 1;
            t[2][usize::from(q[2])] += 1;
            t[3][usize::from(q[3])] += 1;
        }
        for &b in quads.remainder() {
            t[0][usize::from(b)] += 1;
        }
        for (i, h) in hist.iter_mut().enumerate() {
            *h += t.iter().map(|t| u64::from(t[i])).sum::<u64>();
        }
        if hist.iter().any(|&c| over(c)) {
            return None;
        }
    }
    Some(hist)
}

fn gzip_worker(
    level: u32,
    rx: &Mutex<Receiver<Job>>,
    tx: &SyncSender<io::Result<Done>>,
    pool: &BufPool,
) {
    let lvl = CompressionLvl::new(level as i32).unwrap_or_default();
    // libdeflate keeps no state between calls (each compress call
    // re-initializes its tables), so reusing one compressor per thread gives
    // the same bytes as a fresh one per block; the thread-count tests check it.
    let mut c = Compressor::new(lvl);
    let mut store = Compressor::new(CompressionLvl::new(0).expect("level 0 exists"));
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((seq, block)) = job else { return };
        let comp = if incompressible(block.bytes()) {
            &mut store
        } else {
            &mut c
        };
        let bound = comp.gzip_compress_bound(block.len);
        let mut out = pool.get(bound);
        let res = comp
            .gzip_compress(block.bytes(), &mut out.buf)
            .map(|n| {
                out.len = n;
                (seq, block, out)
            })
            .map_err(|e| io::Error::other(format!("gzip compression failed: {e:?}")));
        if tx.send(res).is_err() {
            return;
        }
    }
}

/// Put blocks back in order; hash and write the members here and hand the
/// input to the diff_id stage, off the thread that builds the tar.
fn collect<W: Write>(
    mut out: HashingWriter<W>,
    mut diff: HashStage,
    rx: Receiver<io::Result<Done>>,
    credits: SyncSender<()>,
    pool: BufPool,
) -> Collected<W> {
    let mut pending: BTreeMap<u64, (Chunk, Chunk)> = BTreeMap::new();
    let mut next = 0u64;
    for msg in rx {
        let (seq, input, output) = msg?;
        pending.insert(seq, (input, output));
        while let Some((input, output)) = pending.remove(&next) {
            diff.send(input)?;
            out.write_all(output.bytes())?;
            pool.put(output);
            // Never blocks: there are never more tokens than the channel holds.
            let _ = credits.try_send(());
            next += 1;
        }
    }
    if !pending.is_empty() {
        return Err(io::Error::other("compression pipeline lost a block"));
    }
    out.flush()?;
    let (_, diff_id, n) = diff.finish()?.finish();
    Ok((out, diff_id, n))
}

/// Multi-threaded zstd through libzstd's streaming API: input blocks go in
/// on the tar thread (libzstd copies them into its jobs), finished output is
/// handed to a stage that hashes and writes it, input to a hash stage.
struct ZstdStream<W: Write + Send + 'static> {
    cctx: CCtx<'static>,
    /// The output chunk being filled.
    chunk: Chunk,
    out: Stage<W>,
    diff: HashStage,
    pool: BufPool,
}

impl<W: Write + Send + 'static> ZstdStream<W> {
    /// Output chunks are handed on once they hold this much (or at the end).
    const HAND_ON: usize = 256 << 10;

    fn new(out: W, level: i32, threads: usize, pool: BufPool) -> Self {
        let mut cctx = CCtx::create();
        for p in [
            CParameter::CompressionLevel(level),
            // Why >= 1 worker always: 0 workers (single-thread mode) writes
            // other bytes. Why `threads` workers, not one more: measured on 2
            // cores, a third worker bought no speed and cost ~5 MiB.
            CParameter::NbWorkers(threads.max(1) as u32),
            CParameter::JobSize(ZSTD_JOB_SIZE),
            // Why no checksum: the digest covers every byte already. Why no
            // content size: it is unknown while streaming.
            CParameter::ChecksumFlag(false),
            CParameter::ContentSizeFlag(false),
        ] {
            cctx.set_parameter(p)
                .expect("zstd parameters: level validated by Compression::parse, zstdmt built in");
        }
        ZstdStream {
            cctx,
            chunk: Chunk::empty(),
            out: Stage::new(out, pool.clone()),
            diff: Stage::new(io::sink(), pool.clone()),
            pool,
        }
    }

    /// Compress `block`, then hand it to the diff_id stage.
    fn block(&mut self, block: Chunk) -> io::Result<()> {
        self.compress(block.bytes(), false)?;
        self.diff.send(block)
    }

    /// Feed `input` (all of it); with `end`, also close the frame.
    fn compress(&mut self, input: &[u8], end: bool) -> io::Result<()> {
        let directive = if end {
            ZSTD_EndDirective::ZSTD_e_end
        } else {
            ZSTD_EndDirective::ZSTD_e_continue
        };
        let mut inb = InBuffer::around(input);
        loop {
            if self.chunk.buf.is_empty() {
                self.chunk = self.pool.get(GZIP_BLOCK);
            }
            let mut outb = OutBuffer::around_pos(&mut self.chunk.buf[..], self.chunk.len);
            let left = self
                .cctx
                .compress_stream2(&mut outb, &mut inb, directive)
                .map_err(zstd_error)?;
            self.chunk.len = outb.pos();
            if self.chunk.len == self.chunk.buf.len() || (end && left == 0) {
                self.hand_on()?;
            }
            let done = if end {
                left == 0
            } else {
                inb.pos() == input.len()
            };
            if done {
                break;
            }
        }
        if self.chunk.len >= Self::HAND_ON {
            self.hand_on()?;
        }
        Ok(())
    }

    fn hand_on(&mut self) -> io::Result<()> {
        if self.chunk.len == 0 {
            return Ok(());
        }
        let c = std::mem::replace(&mut self.chunk, Chunk::empty());
        self.out.send(c)
    }

    /// Close the frame; the hashed output and the diff_id with its size.
    fn finish(mut self) -> Collected<W> {
        self.compress(&[], true)?;
        let (_, diff_id, n) = self.diff.finish()?.finish();
        Ok((self.out.finish()?, diff_id, n))
    }
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!(
        "zstd compression failed: {}",
        zstd::zstd_safe::get_error_name(code)
    ))
}

enum Mode<W: Write + Send + 'static> {
    /// Why one stage: for a plain tar the digest is the diff_id; hash once.
    Plain(Stage<W>),
    Gzip(GzipPool<W>),
    Zstd(Box<ZstdStream<W>>),
    Done,
}

/// A writer that takes the uncompressed layer stream and writes the blob.
///
/// The stream is cut into [`GZIP_BLOCK`]-byte blocks for every compression:
/// gzip compresses them independently; zstd feeds them to libzstd's workers;
/// hashing and writing run on stages of their own, so the thread building
/// the tar only reads files (straight into the block, see
/// [`BlobWriter::spare`]).
pub struct BlobWriter<W: Write + Send + 'static> {
    mode: Mode<W>,
    block: Chunk,
    pool: BufPool,
}

impl<W: Write + Send + 'static> BlobWriter<W> {
    /// Compress into `out` with `threads` compression threads (0 means 1).
    pub fn new(out: W, compression: Compression, threads: usize) -> Self {
        let threads = threads.max(1);
        let pool = BufPool::default();
        let mode = match compression {
            Compression::None => Mode::Plain(Stage::new(out, pool.clone())),
            Compression::Gzip { level } => {
                Mode::Gzip(GzipPool::new(out, level, threads, pool.clone()))
            }
            Compression::Zstd { level } => {
                Mode::Zstd(Box::new(ZstdStream::new(out, level, threads, pool.clone())))
            }
        };
        BlobWriter {
            mode,
            block: Chunk::empty(),
            pool,
        }
    }

    /// The free part of the current block, to read into directly (it saves
    /// copying every byte once more); count what was put there with
    /// [`BlobWriter::commit`]. Never empty.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.block.buf.is_empty() {
            self.block = self.pool.get(GZIP_BLOCK);
        }
        let used = self.block.len;
        &mut self.block.buf[used..GZIP_BLOCK]
    }

    /// Take the first `n` bytes of [`BlobWriter::spare`] as written.
    pub fn commit(&mut self, n: usize) -> io::Result<()> {
        if matches!(self.mode, Mode::Done) {
            return Err(io::Error::other("blob writer already finished"));
        }
        assert!(
            n <= GZIP_BLOCK - self.block.len,
            "commit beyond the spare space"
        );
        self.block.len += n;
        if self.block.len == GZIP_BLOCK {
            self.push_block()?;
        }
        Ok(())
    }

    /// Hand one full (or the last) block on.
    fn push_block(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.block, Chunk::empty());
        match &mut self.mode {
            Mode::Plain(out) => out.send(block),
            Mode::Zstd(z) => z.block(block),
            Mode::Gzip(pool) => pool.submit(block),
            Mode::Done => Err(io::Error::other("blob writer already finished")),
        }
    }

    /// Flush everything, stop the threads, and return the output and digests.
    pub fn finish(mut self) -> io::Result<BlobSummary<W>> {
        // An empty gzip stream still becomes one (empty) gzip member.
        let empty_gzip = matches!(&self.mode, Mode::Gzip(p) if p.next_seq == 0);
        if self.block.len > 0 || empty_gzip {
            self.push_block()?;
        }
        let mode = std::mem::replace(&mut self.mode, Mode::Done);
        let (hashed, diff_id, uncompressed_size) = match mode {
            Mode::Plain(out) => {
                let (out, digest, size) = out.finish()?.finish();
                return Ok(BlobSummary {
                    out,
                    digest,
                    size,
                    diff_id: digest,
                    uncompressed_size: size,
                });
            }
            Mode::Gzip(mut pool) => pool.shutdown()?,
            Mode::Zstd(z) => z.finish()?,
            Mode::Done => return Err(io::Error::other("blob writer already finished")),
        };
        let (out, digest, size) = hashed.finish();
        Ok(BlobSummary {
            out,
            digest,
            size,
            diff_id,
            uncompressed_size,
        })
    }
}

impl<W: Write + Send + 'static> Write for BlobWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if matches!(self.mode, Mode::Done) {
            return Err(io::Error::other("blob writer already finished"));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let spare = self.spare();
            let take = spare.len().min(rest.len());
            spare[..take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            self.commit(take)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are only cut at fixed boundaries; flushing early would move them.
        Ok(())
    }
}

/// Detect a blob's compression from its first bytes.
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::gzip()
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::zstd()
    } else {
        Compression::None
    }
}

struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("decompressor failed")))
    }
}

/// A reader of the uncompressed stream of a blob compressed with `c`.
/// gzip reads every member (multi-member streams are normal for strata).
pub fn decompressor<'a, R: Read + 'a>(r: R, c: Compression) -> Box<dyn Read + 'a> {
    match c {
        Compression::None => Box::new(r),
        Compression::Gzip { .. } => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 16, r),
        )),
        Compression::Zstd { .. } => match zstd::stream::read::Decoder::new(r) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(FailingReader(Some(e))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic mixed data: compressible text and incompressible noise.
    fn data(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (out.len() / 100_000) % 2 == 0 {
                out.extend_from_slice(format!("line {} of some text\n", x % 1000).as_bytes());
            } else {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out.truncate(n);
        out
    }

    fn compress(input: &[u8], c: Compression, threads: usize) -> BlobSummary<Vec<u8>> {
        let mut w = BlobWriter::new(Vec::new(), c, threads);
        // Odd write sizes, so block cutting is exercised.
        for chunk in input.chunks(77_777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn decompress(blob: &[u8], c: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor(blob, c).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn bytes_do_not_depend_on_thread_count() {
        let input = data(5 * GZIP_BLOCK + 12345);
        for c in [
            Compression::gzip(),
            Compression::zstd(),
            Compression::Gzip { level: 1 },
        ] {
            let one = compress(&input, c, 1);
            for t in [2, 3, 8] {
                let other = compress(&input, c, t);
                assert_eq!(one.out, other.out, "{c:?} with {t} threads");
            }
            assert_eq!(one.diff_id, Digest::of(&input));
            assert_eq!(one.digest, Digest::of(&one.out));
            assert_eq!(one.size, one.out.len() as u64);
            assert_eq!(one.uncompressed_size, input.len() as u64);
            assert_eq!(decompress(&one.out, c), input);
        }
    }

    #[test]
    fn gzip_members_have_fixed_headers_and_single_member_readers_stop_early() {
        let input = data(2 * GZIP_BLOCK + 5);
        let s = compress(&input, Compression::gzip(), 2);
        assert_eq!(&s.out[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&s.out[..])
            .read_to_end(&mut first)
            .unwrap();
        assert_eq!(
            first.len(),
            GZIP_BLOCK,
            "GzDecoder reads only the first member"
        );
        assert_eq!(decompress(&s.out, Compression::gzip()), input);
    }

    #[test]
    fn empty_and_plain() {
        let g = compress(b"", Compression::gzip(), 2);
        assert!(!g.out.is_empty());
        assert_eq!(decompress(&g.out, Compression::gzip()), b"");
        assert_eq!(g.diff_id, Digest::of(b""));
        let z = compress(b"", Compression::zstd(), 1);
        assert_eq!(decompress(&z.out, Compression::zstd()), b"");
        let n = compress(b"abc", Compression::None, 4);
        assert_eq!(n.out, b"abc");
        assert_eq!(n.digest, n.diff_id);
    }

    /// Golden bytes: a dependency bump that changes compressed output fails
    /// here. Changing these digests is deliberate (and changes image digests).
    #[test]
    fn golden_digests() {
        let input = data(3 * GZIP_BLOCK + 999);
        // zstd over several jobs, so a change of job size shows too.
        let long = data((9 << 20) + 12345);
        let got = [
            compress(&input, Compression::gzip(), 2).digest.to_string(),
            compress(&input, Compression::Gzip { level: 1 }, 2)
                .digest
                .to_string(),
            compress(&input, Compression::zstd(), 2).digest.to_string(),
            compress(&long, Compression::zstd(), 2).digest.to_string(),
        ];
        let want = [
            "sha256:fe9838259c4c6a5802442e0d3601ddba29285858f5d2efcdb1ed7f05e5334015",
            "sha256:7005227493fd01df1f14daf9af333e05731a7349d7ed1cb8917d3c6cbcd2c30d",
            "sha256:60e772a32cff206f935e91da99cd293ef45017584769c1b975c2f124f140a290",
            "sha256:0489a3dfcc00c4aedf4278246e9446f5b91614c97c02431d0b72f8f787b408bd",
        ];
        assert_eq!(got, want);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_errors_surface() {
        for c in [Compression::gzip(), Compression::zstd(), Compression::None] {
            let mut w = BlobWriter::new(Broken, c, 2);
            let input = data(4 * GZIP_BLOCK);
            let mut failed = false;
            for chunk in input.chunks(1 << 16) {
                if w.write_all(chunk).is_err() {
                    failed = true;
                    break;
                }
            }
            if !failed {
                let e = w.finish().err().expect("finish must fail");
                assert_eq!(e.raw_os_error(), Some(28), "{c:?}: {e}");
            }
        }
    }

    #[test]
    fn histogram_counts_every_byte_and_stops_only_when_over() {
        for len in [0, 1, 3, 4, 5, 255, 1 << 16, (1 << 16) + 7, 100_003] {
            let block: Vec<u8> = (0..len).map(|i| (i * 7 % 251 + i / 300) as u8).collect();
            let mut naive = [0u64; 256];
            for &b in &block {
                naive[usize::from(b)] += 1;
            }
            assert_eq!(
                histogram_unless_over(&block, |_| false),
                Some(naive),
                "len {len}"
            );
            let max = naive.iter().copied().max().unwrap_or(0);
            assert!(
                histogram_unless_over(&block, |c| c > max).is_some(),
                "len {len}"
            );
            if max > 0 {
                assert_eq!(histogram_unless_over(&block, |c| c >= max), None);
            }
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_and_still_deterministic() {
        let noise: Vec<u8> = {
            let mut x: u64 = 42;
            (0..GZIP_BLOCK)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        assert!(incompressible(&noise));
        assert!(!incompressible(&data(GZIP_BLOCK)));
        assert!(!incompressible(&vec![0u8; GZIP_BLOCK]));
        let mut input = noise.clone();
        input.extend_from_slice(&data(GZIP_BLOCK));
        let one = compress(&input, Compression::gzip(), 1);
        assert_eq!(one.out, compress(&input, Compression::gzip(), 5).out);
        assert_eq!(decompress(&one.out, Compression::gzip()), input);
        // Stored: the first member is about the size of its input.
        assert!(one.out.len() as f64 > GZIP_BLOCK as f64 * 1.0);
    }

    #[test]
    fn parse_levels() {
        assert_eq!(
            Compression::parse("gzip", Some(9)).unwrap(),
            Compression::Gzip { level: 9 }
        );
        assert!(Compression::parse("gzip", Some(13)).is_err());
        assert!(Compression::parse("zstd", Some(0)).is_err());
        assert!(Compression::parse("none", Some(1)).is_err());
        assert!(Compression::parse("lz4", None).is_err());
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::zstd());
    }
}
