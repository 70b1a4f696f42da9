//! Where a blob's bytes are: in memory, a whole file, a slice of a plain
//! tar, a slice of the tar stream inside a compressed archive, or absent
//! (in a registry, for a shallow layout); and opening them for reading.
//!
//! Invariants: opening never extracts or copies (a slice of a plain tar is
//! a seek; a slice of a compressed archive is read by decompressing from its
//! start, see `tar_members`); an absent blob is an error naming
//! where it lives, never an empty read.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::compress::{detect, Compression};

/// Where an absent blob lives: a repository of a registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteBlob {
    /// Registry host, e.g. `127.0.0.1:5000`.
    pub registry: String,
    /// Repository, e.g. `library/debian`.
    pub repository: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the registry speaks plain HTTP (as it was pulled from).
    #[serde(default, rename = "plainHttp", skip_serializing_if = "is_false")]
    pub plain_http: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// In memory (config, manifest, index).
    Bytes(Arc<Vec<u8>>),
    /// A whole file (a layer blob, a blob of a layout directory).
    File(Utf8PathBuf),
    /// A slice of a tar archive.
    Slice {
        /// The archive.
        archive: Utf8PathBuf,
        /// Offset of the content.
        offset: u64,
        /// Length of the content.
        size: u64,
    },
    /// A slice of the tar stream inside a gzip- or zstd-compressed archive
    /// (not seekable: read by decompressing from the start, see
    /// `tar_members`).
    Compressed {
        /// The compressed archive.
        archive: Utf8PathBuf,
        /// Offset of the content in the decompressed tar stream.
        offset: u64,
        /// Length of the content.
        size: u64,
    },
    /// Absent here: it lives in a registry.
    Remote {
        /// The blob's digest.
        digest: Digest,
        /// Where it lives.
        at: RemoteBlob,
    },
}

impl BlobSource {
    /// Open the bytes for reading.
    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            BlobSource::Bytes(b) => Box::new(io::Cursor::new(Arc::clone(b).to_vec())),
            BlobSource::File(p) => Box::new(File::open(p).io_context(|| format!("reading {p}"))?),
            BlobSource::Slice {
                archive,
                offset,
                size,
            } => {
                let mut f = File::open(archive).io_context(|| format!("reading {archive}"))?;
                f.seek(SeekFrom::Start(*offset))
                    .io_context(|| format!("reading {archive}"))?;
                Box::new(f.take(*size))
            }
            BlobSource::Compressed {
                archive,
                offset,
                size,
            } => open_compressed(archive, *offset, *size)?,
            BlobSource::Remote { digest, at } => return Err(remote_error(digest, at)),
        })
    }
}

/// The error for needing the bytes of a blob that lives only in a registry.
pub fn remote_error(digest: &Digest, at: &RemoteBlob) -> Error {
    Error::invalid(format!(
        "blob {digest} is not local: it lives at {}/{} (a shallow base); fetch it from there, or pull the base in full",
        at.registry, at.repository
    ))
}

/// The compression of the file at `path`, by its magic bytes.
pub fn compression_of(path: &Utf8Path) -> Result<Compression> {
    let mut f = File::open(path).io_context(|| format!("opening {path}"))?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("reading {path}"), &e)),
        }
    }
    Ok(detect(&magic[..n]))
}

/// Open `archive` (compressed by `c`) decompressed, positioned at `offset`
/// of its tar stream, limited to `size` bytes.
pub fn open_compressed(archive: &Utf8Path, offset: u64, size: u64) -> Result<Box<dyn Read + Send>> {
    let c = compression_of(archive)?;
    let f = File::open(archive).io_context(|| format!("reading {archive}"))?;
    let buffered = BufReader::with_capacity(1 << 16, f);
    let mut r: Box<dyn Read + Send> = match c {
        Compression::Gzip { .. } => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd { .. } => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered)
                .io_context(|| format!("reading {archive}"))?,
        ),
        Compression::None => Box::new(buffered),
    };
    let skipped = io::copy(&mut (&mut r).take(offset), &mut io::sink())
        .map_err(|e| Error::io(format!("reading {archive}"), &e))?;
    if skipped != offset {
        return Err(Error::corrupt(format!(
            "{archive}: truncated: the archive ends before offset {offset} of its tar stream"
        )));
    }
    Ok(Box::new(r.take(size)))
}
