//! The blob writer: the uncompressed layer stream goes in, the blob comes
//! out, with the diff_id and the digest computed in the same pass.
//!
//! Invariants: the stream is cut into [`GZIP_BLOCK`]-byte blocks at fixed
//! offsets for every compression (flushing never moves a boundary), so the
//! output depends only on the bytes, the compression and its level; the
//! thread building the tar only fills blocks: compressing, hashing and
//! writing run on the backends' threads and stages.

use std::io::{self, Write};

use super::choice::Compression;
use super::gzip::GzipPool;
use super::pipeline::{BufPool, Chunk, Stage, GZIP_BLOCK};
use super::zstd::ZstdStream;
use crate::digest::Digest;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::testdata::{compress, data, decompress};

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
}
