//! HTTP/1.1 chunked transfer encoding, both ways: the decoder for an
//! engine's chunked answers (untrusted: chunk-size lines bounded by
//! [`MAX_LINE_BYTES`], sizes of at most 16 hex digits, every chunk followed by
//! CRLF, trailers bounded likewise) and the writer that streams a request body
//! as chunks of at most 1 MiB, so a multi-gigabyte archive never sits in
//! memory whole.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

/// Longest chunk-size line (with extensions) strata reads.
pub const MAX_LINE_BYTES: usize = 4096;

/// How many bytes a request body is cut into chunks of.
pub(super) const CHUNK: usize = 1 << 20;

/// A chunked-encoding body decoder with bounded size lines.
pub(super) struct Chunked {
    r: BufReader<UnixStream>,
    left: u64,
    done: bool,
}

impl Chunked {
    /// The chunked body that follows the head already read from `r`.
    pub(super) fn new(r: BufReader<UnixStream>) -> Chunked {
        Chunked {
            r,
            left: 0,
            done: false,
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.r)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if line.len() > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk-size line too long",
            ));
        }
        if !line.ends_with(b"\n") {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        String::from_utf8(line)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk-size line not UTF-8"))
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let l = self.line()?;
            let size = l.split(';').next().unwrap_or("").trim();
            let n = u64::from_str_radix(size, 16)
                .ok()
                .filter(|_| !size.is_empty() && size.len() <= 16)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad chunk size {:?}", clip(&l)),
                    )
                })?;
            if n == 0 {
                // Trailers, bounded like the head, then done.
                loop {
                    if self.line()?.is_empty() {
                        break;
                    }
                }
                self.done = true;
                return Ok(0);
            }
            self.left = n;
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            let end = self.line()?;
            if !end.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk not followed by CRLF",
                ));
            }
        }
        Ok(n)
    }
}

/// Writes a request body as HTTP/1.1 chunks of up to `CHUNK` bytes.
pub struct ChunkWriter<W: Write> {
    w: W,
    buf: Vec<u8>,
}

impl<W: Write> ChunkWriter<W> {
    /// Chunks written into `w`.
    pub fn new(w: W) -> ChunkWriter<W> {
        ChunkWriter {
            w,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        write!(self.w, "{:x}\r\n", self.buf.len())?;
        self.w.write_all(&self.buf)?;
        self.w.write_all(b"\r\n")?;
        self.buf.clear();
        Ok(())
    }

    /// Send what is buffered and the last (empty) chunk.
    pub fn finish(&mut self) -> io::Result<()> {
        self.emit()?;
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
}

impl<W: Write> Write for ChunkWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.emit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()?;
        self.w.flush()
    }
}

/// At most 80 characters of `s`, for an error that quotes an engine's answer.
pub(super) fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}
