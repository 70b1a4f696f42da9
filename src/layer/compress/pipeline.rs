//! The block pipeline's parts every compression shares: pooled chunks (one
//! size, recycled, so memory stays flat and buffers never grow) and stages
//! (threads that hash chunks in order and write them on).
//!
//! Invariants: a stage hashes and writes chunks in the order they were sent,
//! whatever thread sent them; every pipeline thread is joined when its owner
//! finishes or is dropped, so no thread outlives a blob; at most
//! [`BufPool::KEEP`] buffers are kept whatever the thread count.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::digest::{Digest, HashingWriter};

/// Size of the blocks the stream is cut into (gzip compresses each on its
/// own; zstd is fed them; every pooled buffer holds one).
///
/// Why 1 MiB: large enough that the per-member overhead (18 bytes) and the
/// lost cross-block matches cost < 0.1% in size, small enough that two
/// threads stay busy on small layers and memory stays low.
pub const GZIP_BLOCK: usize = 1 << 20;

/// A pooled buffer and how many of its bytes are in use. The vector keeps its
/// full length, so reusing it never zeroes it again.
pub(super) struct Chunk {
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
}

impl Chunk {
    pub(super) const fn empty() -> Chunk {
        Chunk {
            buf: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Recycled buffers: 1 MiB allocations are fresh mmaps, and touching
/// them page by page cost more system time than compressing (3.5 s per GiB).
#[derive(Clone, Default)]
pub(super) struct BufPool(Arc<Mutex<Vec<Vec<u8>>>>);

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
    pub(super) fn get(&self, size: usize) -> Chunk {
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

    pub(super) fn put(&self, c: Chunk) {
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
pub(super) struct Stage<W> {
    tx: Option<SyncSender<Chunk>>,
    handle: Option<JoinHandle<io::Result<HashingWriter<W>>>>,
}

/// A stage that only hashes (the diff_id of a compressed layer).
pub(super) type HashStage = Stage<io::Sink>;

impl<W: Write + Send + 'static> Stage<W> {
    /// Why 4 chunks deep: enough to ride out a slow write or a long
    /// compression job; memory stays at a few MiB.
    const DEPTH: usize = 4;

    pub(super) fn new(out: W, pool: BufPool) -> Self {
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
    pub(super) fn send(&mut self, c: Chunk) -> io::Result<()> {
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
    pub(super) fn finish(mut self) -> io::Result<HashingWriter<W>> {
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
pub(super) fn join<T>(h: Option<JoinHandle<io::Result<T>>>, what: &str) -> io::Result<T> {
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

/// A pipeline's result once it has ended: the hashed output and the diff_id
/// with its size.
pub(super) type Collected<W> = io::Result<(HashingWriter<W>, Digest, u64)>;
