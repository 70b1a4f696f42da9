//! zstd: libzstd (bundled by `zstd-sys`, pinned) in multi-threaded mode,
//! fed the pipeline's blocks; its output goes to a stage that hashes and
//! writes it, its input to a stage that hashes it (diff_id).
//!
//! Invariants: at least one worker even for one thread (single-thread mode
//! writes other bytes) and a pinned job size, so the bytes are the same for
//! any worker count; no checksum and no content size in the frame.

use std::io;
use std::io::Write;

use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

use super::pipeline::{BufPool, Chunk, Collected, HashStage, Stage, GZIP_BLOCK};

/// zstd job size in multi-threaded mode (pinned so it depends on nothing else).
///
/// Why 3 MiB (was 4 MiB until 2026-12-01, which changed zstd layer digests
/// of more than 3 MiB of tar): libzstd holds about five jobs of input and
/// output, so on 2 cores peak RSS fell from 58–66 MiB to ~51 MiB on the 1 GiB
/// benchmark tree, at the same speed and even slightly smaller output
/// (763.57 vs 763.67 MB there, 222.25 vs 222.58 MB on /usr/lib).
pub const ZSTD_JOB_SIZE: u32 = 3 << 20;

/// Multi-threaded zstd through libzstd's streaming API: input blocks go in
/// on the tar thread (libzstd copies them into its jobs), finished output is
/// handed to a stage that hashes and writes it, input to a hash stage.
pub(super) struct ZstdStream<W: Write + Send + 'static> {
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

    pub(super) fn new(out: W, level: i32, threads: usize, pool: BufPool) -> Self {
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
    pub(super) fn block(&mut self, block: Chunk) -> io::Result<()> {
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
    pub(super) fn finish(mut self) -> Collected<W> {
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
