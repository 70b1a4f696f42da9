//! gzip: the stream cut into fixed blocks, each compressed on its own by
//! libdeflate into one gzip member; workers compress, a collector puts the
//! members back in order, hashes and writes them.
//!
//! Invariants: a member depends only on its block and the level (libdeflate
//! keeps no state between calls, and the stored/compressed decision is a
//! pure integer function of the block), and members are written in block
//! order, so the bytes never depend on the thread count; blocks in flight
//! are bounded, so memory stays flat.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libdeflater::{CompressionLvl, Compressor};

use super::pipeline::{join, BufPool, Chunk, Collected, HashStage, Stage};
use crate::digest::HashingWriter;

type Job = (u64, Chunk);
/// A compressed block: sequence number, the input block, the gzip member.
type Done = (u64, Chunk, Chunk);

/// The block-parallel gzip pipeline: workers compress, a collector reorders,
/// hashes and writes the members, a hash stage hashes the input (diff_id).
pub(super) struct GzipPool<W> {
    jobs: Option<SyncSender<Job>>,
    /// One token per block that may be submitted; the collector returns a
    /// token for every block it has written.
    credits: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<Collected<W>>>,
    pub(super) next_seq: u64,
}

impl<W: Write + Send + 'static> GzipPool<W> {
    pub(super) fn new(out: W, level: u32, threads: usize, pool: BufPool) -> Self {
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
    pub(super) fn submit(&mut self, block: Chunk) -> io::Result<()> {
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
    pub(super) fn shutdown(&mut self) -> Collected<W> {
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::layer::compress::testdata::{compress, data, decompress};
    use crate::layer::compress::{Compression, GZIP_BLOCK};

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
}
