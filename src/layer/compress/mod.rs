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
//!
//! Files, one noun each: `choice.rs` (what compression, its media types and
//! levels), `blob_writer.rs` (the writer callers use: blocks in, blob and
//! digests out), `pipeline.rs` (pooled chunks and the hash-and-write stages
//! every mode shares), `gzip.rs` (block-parallel members), `zstd.rs`
//! (libzstd's workers) and `decompress.rs` (reading a blob back).

mod blob_writer;
mod choice;
mod decompress;
mod gzip;
mod pipeline;
mod zstd;

pub use blob_writer::{BlobSummary, BlobWriter};
pub use choice::Compression;
pub use decompress::{decompressor, detect};
pub use gzip::incompressible;
pub use pipeline::GZIP_BLOCK;
pub use zstd::ZSTD_JOB_SIZE;

/// Inputs and round trips shared by the tests of every backend.
#[cfg(test)]
mod testdata {
    use std::io::{Read, Write};

    use super::{decompressor, BlobSummary, BlobWriter, Compression};

    /// Deterministic mixed data: compressible text and incompressible noise.
    pub fn data(n: usize) -> Vec<u8> {
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

    pub fn compress(input: &[u8], c: Compression, threads: usize) -> BlobSummary<Vec<u8>> {
        let mut w = BlobWriter::new(Vec::new(), c, threads);
        // Odd write sizes, so block cutting is exercised.
        for chunk in input.chunks(77_777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    pub fn decompress(blob: &[u8], c: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor(blob, c).read_to_end(&mut out).unwrap();
        out
    }
}
