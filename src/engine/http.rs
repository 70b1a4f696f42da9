//! A minimal HTTP/1.1 client over a unix socket: what a container engine's
//! API (Docker's `/var/run/docker.sock`) needs, and nothing more.
//!
//! One request per connection (`Connection: close`). Request bodies are sent
//! chunked, straight from the caller's writer (a multi-gigabyte archive never
//! touches the disk or memory whole). The engine's answer is untrusted input:
//! the status line and headers together are bounded by [`MAX_HEAD_BYTES`],
//! chunk-size lines by [`MAX_LINE_BYTES`], and a body is read only up to the
//! caller's limit; anything malformed is an error naming the engine, never a
//! panic or an unbounded allocation.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{describe_io, Error, ErrorKind, Result};

/// Most bytes of a status line plus headers strata reads.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

use super::chunked::{clip, Chunked};
pub use super::chunked::{ChunkWriter, MAX_LINE_BYTES};

/// Writes a request body into the connection, as it goes.
pub type BodyWriter<'a> = &'a mut dyn FnMut(&mut dyn Write) -> Result<()>;

/// An engine's API socket.
#[derive(Debug, Clone)]
pub struct Socket {
    path: Utf8PathBuf,
    engine: String,
    timeout: Option<Duration>,
}

/// A response: status, headers, and the body still on the wire.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercased) and values, in order.
    pub headers: Vec<(String, String)>,
    body: Body,
    engine: String,
}

enum Body {
    Length(io::Take<BufReader<UnixStream>>),
    Chunked(Chunked),
    Close(BufReader<UnixStream>),
}

impl Socket {
    /// The socket at `path`; `engine` names it in errors (e.g. `docker`).
    pub fn new(path: &Utf8Path, engine: &str) -> Socket {
        Socket {
            path: path.to_path_buf(),
            engine: engine.to_string(),
            timeout: None,
        }
    }

    /// Give up on an engine that stays silent this long (default: wait).
    pub fn with_timeout(mut self, t: Duration) -> Socket {
        self.timeout = Some(t);
        self
    }

    /// `ENGINE at unix://PATH`, how errors name the engine.
    pub fn name(&self) -> String {
        format!("{} at unix://{}", self.engine, self.path)
    }

    fn err(&self, kind: ErrorKind, what: impl std::fmt::Display) -> Error {
        Error::new(kind, format!("{}: {what}", self.name()))
    }

    fn connect(&self) -> Result<UnixStream> {
        let s = UnixStream::connect(&self.path).map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::NotFound => "no engine there (no such socket)".to_string(),
                io::ErrorKind::ConnectionRefused => {
                    "no engine there (connection refused: nothing listens on the socket)"
                        .to_string()
                }
                io::ErrorKind::PermissionDenied => {
                    "permission denied on the socket (not in the engine's group?)".to_string()
                }
                _ => format!("cannot connect: {}", describe_io(&e)),
            };
            self.err(ErrorKind::Remote, why)
        })?;
        s.set_read_timeout(self.timeout)
            .and_then(|_| s.set_write_timeout(self.timeout))
            .map_err(|e| self.err(ErrorKind::Remote, describe_io(&e)))?;
        Ok(s)
    }

    /// `GET path`; the whole body, at most `limit` bytes.
    pub fn get(&self, path: &str, limit: usize) -> Result<(u16, Vec<u8>)> {
        let mut r = self.request("GET", path, None, None)?;
        let body = r.read_body(limit)?;
        Ok((r.status, body))
    }

    /// Send a request; with `body`, it is sent chunked as `content_type`,
    /// written by `body` into the connection as it goes.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<BodyWriter<'_>>,
    ) -> Result<Response> {
        let stream = self.connect()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: strata/{}\r\nConnection: close\r\n", env!("CARGO_PKG_VERSION"));
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if body.is_some() {
            head.push_str("Transfer-Encoding: chunked\r\n");
        }
        head.push_str("\r\n");
        let wire = |e: &io::Error| {
            self.err(
                ErrorKind::Remote,
                format!("sending {method} {path}: {}", describe_io(e)),
            )
        };
        let mut w = stream.try_clone().map_err(|e| wire(&e))?;
        w.write_all(head.as_bytes()).map_err(|e| wire(&e))?;
        let mut sent = Ok(());
        if let Some(f) = body {
            let mut cw = ChunkWriter::new(&mut w);
            sent = f(&mut cw).and_then(|_| cw.finish().map_err(|e| wire(&e)));
        }
        // Why read even after a failed send: an engine that refuses a body
        // (an error status) may close while strata is still writing; its
        // answer says why, better than "broken pipe".
        match (sent, self.read_response(stream)) {
            (Ok(()), r) => r,
            (Err(_), Ok(r)) if r.status >= 400 => Ok(r),
            (Err(e), _) => Err(e),
        }
    }

    fn read_response(&self, stream: UnixStream) -> Result<Response> {
        let mut r = BufReader::with_capacity(64 << 10, stream);
        let bad = |what: String| self.err(ErrorKind::Remote, format!("malformed answer: {what}"));
        let head = read_head(&mut r).map_err(|e| match e {
            HeadError::Io(e) => self.err(
                ErrorKind::Remote,
                format!("reading the answer: {}", describe_io(&e)),
            ),
            HeadError::Bad(s) => bad(s),
        })?;
        let text = String::from_utf8(head).map_err(|_| bad("headers are not UTF-8".into()))?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !proto.starts_with("HTTP/1.") {
            return Err(bad(format!("status line {:?}", clip(status_line))));
        }
        let status: u16 = match code.parse() {
            Ok(c) if (100..600).contains(&c) => c,
            _ => return Err(bad(format!("status line {:?}", clip(status_line)))),
        };
        let mut headers = Vec::new();
        for l in lines.filter(|l| !l.is_empty()) {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| bad(format!("header line {:?}", clip(l))))?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let header = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            Body::Chunked(Chunked::new(r))
        } else if let Some(n) = header("content-length") {
            let n: u64 = n
                .parse()
                .map_err(|_| bad(format!("Content-Length {:?}", clip(n))))?;
            Body::Length(r.take(n))
        } else {
            Body::Close(r)
        };
        Ok(Response {
            status,
            headers,
            body,
            engine: self.name(),
        })
    }
}

enum HeadError {
    Io(io::Error),
    Bad(String),
}

/// Read up to and including the blank line ending the headers.
fn read_head(r: &mut impl BufRead) -> std::result::Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    loop {
        let buf = r.fill_buf().map_err(HeadError::Io)?;
        if buf.is_empty() {
            return Err(HeadError::Bad(if head.is_empty() {
                "the engine closed the connection without answering".into()
            } else {
                "the connection closed inside the headers".into()
            }));
        }
        // Byte by byte up to the end marker: never consume body bytes.
        let mut used = 0;
        for &b in buf {
            used += 1;
            head.push(b);
            if head.ends_with(b"\r\n\r\n") {
                r.consume(used);
                head.truncate(head.len() - 4);
                return Ok(head);
            }
            if head.len() > MAX_HEAD_BYTES {
                return Err(HeadError::Bad(format!(
                    "headers larger than {MAX_HEAD_BYTES} bytes"
                )));
            }
        }
        r.consume(used);
    }
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The whole body; an error past `limit` bytes.
    pub fn read_body(&mut self, limit: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let n = self
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| self.body_error(&e))?;
        if n > limit {
            return Err(Error::new(
                ErrorKind::Remote,
                format!("{}: answer larger than the {limit} byte limit", self.engine),
            ));
        }
        Ok(out)
    }

    /// The error for a failed body read.
    pub fn body_error(&self, e: &io::Error) -> Error {
        Error::new(
            ErrorKind::Remote,
            format!("{}: reading the answer: {}", self.engine, describe_io(e)),
        )
    }

    /// Read one `\n`-terminated line of at most `limit` bytes (without the
    /// newline); `None` at the end of the body.
    pub fn read_line(&mut self, limit: usize) -> Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            match self.read(&mut b) {
                Ok(0) => return Ok((!line.is_empty()).then_some(line)),
                Ok(_) if b[0] == b'\n' => return Ok(Some(line)),
                Ok(_) => {
                    if line.len() >= limit {
                        return Err(Error::new(
                            ErrorKind::Remote,
                            format!("{}: answer line longer than {limit} bytes", self.engine),
                        ));
                    }
                    line.push(b[0]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.body_error(&e)),
            }
        }
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.body {
            Body::Length(r) => {
                let want = r.limit();
                let n = r.read(buf)?;
                if n == 0 && want > 0 && !buf.is_empty() {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(n)
            }
            Body::Chunked(c) => c.read(buf),
            Body::Close(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::chunked::CHUNK;
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread;

    /// Each request the fake engine saw: its head and its (de-chunked) body.
    pub(crate) type Seen = Vec<(String, Vec<u8>)>;

    /// A fake engine: answers each of `answers` (raw bytes) to one connection,
    /// in order, after reading the request head (and a chunked body, if any).
    /// Returns the socket path (under `dir`) and the requests it saw.
    pub(crate) fn fake_engine(
        dir: &Utf8Path,
        answers: Vec<Vec<u8>>,
    ) -> (Utf8PathBuf, thread::JoinHandle<Seen>) {
        let path = dir.join("fake.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = thread::spawn(move || {
            let mut seen = Vec::new();
            for a in answers {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let head = match read_head(&mut r) {
                    Ok(h) => String::from_utf8(h).unwrap(),
                    Err(_) => String::new(),
                };
                let mut body = Vec::new();
                if head.contains("Transfer-Encoding: chunked") {
                    let mut c = Chunked::new(r);
                    let _ = c.read_to_end(&mut body);
                }
                let mut w = s;
                let _ = w.write_all(&a);
                seen.push((head, body));
            }
            seen
        });
        (path, h)
    }

    fn tmp() -> (tempfile::TempDir, Utf8PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        (t, p)
    }

    #[test]
    fn chunked_upload_and_chunked_answer() {
        let (_t, d) = tmp();
        let (p, h) = fake_engine(
            &d,
            vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n".to_vec()],
        );
        let s = Socket::new(&p, "docker");
        let data = vec![7u8; CHUNK * 2 + 5];
        let mut f = |w: &mut dyn Write| -> Result<()> {
            w.write_all(&data).unwrap();
            Ok(())
        };
        let mut r = s
            .request("POST", "/x", Some("application/x-tar"), Some(&mut f))
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.read_body(100).unwrap(), b"hello!");
        let seen = h.join().unwrap();
        assert!(seen[0].0.starts_with("POST /x HTTP/1.1\r\n"));
        assert_eq!(seen[0].1, data);
    }

    #[test]
    fn hostile_answers_are_errors() {
        let (_t, d) = tmp();
        let huge_head = {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            while v.len() <= MAX_HEAD_BYTES {
                v.extend_from_slice(b"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            }
            v
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "closed the connection without answering"),
            (b"SSH-2.0-x\r\n\r\n".to_vec(), "status line"),
            (b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), "status line"),
            (
                b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n".to_vec(),
                "header line",
            ),
            (huge_head, "headers larger than"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec(),
                "Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
                "truncated",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                    .iter()
                    .copied()
                    .chain([b'a'; 1000])
                    .collect(),
                "byte limit",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
                "bad chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"
                    .to_vec(),
                "bad chunk size",
            ),
            (
                [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
                    vec![b'1'; 5000],
                ]
                .concat(),
                "chunk-size line too long",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n".to_vec(),
                "not followed by CRLF",
            ),
        ];
        let n = cases.len();
        let (p, h) = fake_engine(&d, cases.iter().map(|c| c.0.clone()).collect());
        let s = Socket::new(&p, "docker");
        for (i, (_, want)) in cases.iter().enumerate() {
            let err = s
                .get("/v1.41/images/json", 100)
                .map(|_| ())
                .expect_err(&format!("case {i} must fail"));
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("docker at unix://{p}: ")), "{msg}");
            assert!(msg.contains(want), "case {i}: {msg}");
        }
        assert_eq!(h.join().unwrap().len(), n);
    }

    #[test]
    fn no_engine_and_permission_denied() {
        let (_t, d) = tmp();
        let s = Socket::new(&d.join("none.sock"), "docker");
        let e = s.get("/", 10).unwrap_err().to_string();
        assert!(e.contains("no engine there (no such socket)"), "{e}");
        // A socket file nobody listens on.
        let p = d.join("dead.sock");
        drop(UnixListener::bind(&p).unwrap());
        let e = Socket::new(&p, "docker")
            .get("/", 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("connection refused"), "{e}");
    }
}
