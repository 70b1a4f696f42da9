//! Limits on untrusted input: how much strata reads before it calls an input
//! hostile. One place, so a limit is the same wherever the data is met
//! (composing, reading a layout, an archive, a registry, a layer) and
//! README/SECURITY.md document one number.
//!
//! Invariants: every limit is a constant (never from the environment or the
//! machine), and exceeding one is an error naming the input and the limit,
//! never a truncation.

/// Most layers an image may have (base plus new), composed or read.
pub const MAX_LAYERS: usize = 1000;

/// Most entries strata reads from an archive (an image archive or a layer).
pub const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;

/// Largest PAX extended header or GNU long name/link strata reads.
///
/// Why 1 MiB: a path is at most 4 KiB on Linux and an xattr value 64 KiB; a
/// bigger header is an attempt to exhaust memory.
pub const MAX_TAR_EXTENSION_BYTES: u64 = 1 << 20;
