//! Reading a blob back: which compression its first bytes show, and a
//! reader of its uncompressed stream.
//!
//! Invariants: detection looks at magic bytes only (a media type may lie;
//! the bytes decide); gzip is read member after member to the end, since
//! strata writes multi-member gzip; a decoder that cannot start becomes a
//! reader that fails on its first read, so callers see one error path.

use std::io::{self, Read};

use super::choice::Compression;

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

    #[test]
    fn magic_bytes() {
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::zstd());
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Compression::gzip());
        assert_eq!(detect(b"etc/"), Compression::None);
    }
}
