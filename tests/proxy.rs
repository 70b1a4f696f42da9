//! A loopback HTTP/1.1 proxy that injects faults in front of a real server
//! (the registry tests put it before `docker-registry`) and records what the
//! client really sent.
//!
//! It speaks HTTP one request at a time per connection (clients do not
//! pipeline), so it knows where each request and response starts and ends:
//! every request's line, headers, arrival time, body bytes forwarded and the
//! status that went back are recorded. [`Rule`]s pick requests by method and
//! a substring of the target, skip the first `skip` matches, then act on the
//! next `times`: answer themselves (a 503, a 429 with `Retry-After`) without
//! forwarding, or cut the connection after so many bytes of the request or
//! response body. Everything else passes through unchanged (the `Host`
//! header too, so the server's `Location`s point back at the proxy).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a rule does to a request it matches.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer `status` with these extra header lines (each ending `\r\n`),
    /// without forwarding; the connection is closed after.
    Answer(u16, String),
    /// Answer `status` with these extra header lines and this body (a
    /// hostile registry's answer), without forwarding; closed after.
    Reply(u16, String, Vec<u8>),
    /// Forward the head and this many body bytes, then cut both connections.
    DropRequestAfter(u64),
    /// Forward the request, then this many bytes of the response body, then
    /// cut both connections.
    DropResponseAfter(u64),
}

/// A fault: `action` on the matching requests after the first `skip`, `times` times.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The method, e.g. `PATCH`.
    pub method: &'static str,
    /// A substring of the request target.
    pub target_has: String,
    /// Matching requests to let through first.
    pub skip: usize,
    /// How many to act on.
    pub times: usize,
    /// What to do.
    pub action: Action,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// When its head had arrived.
    pub at: Instant,
    /// Method and target.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body bytes passed on to the server.
    pub body_forwarded: u64,
    /// The status the client got (0: none, the connection was cut).
    pub status: u16,
    /// Whether a rule acted on it.
    pub faulted: bool,
}

/// One line per request (`METHOD PATH STATUS [Content-Range|Range]`), for
/// assertion messages.
pub fn summary(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| {
            let path = s.target.split('?').next().unwrap_or("");
            let range = s
                .header("content-range")
                .map(|r| format!(" Content-Range: {r}"))
                .or_else(|| s.header("range").map(|r| format!(" Range: {r}")))
                .unwrap_or_default();
            let fault = if s.faulted { " (fault)" } else { "" };
            format!("{} {path} {}{range}{fault}\n", s.method, s.status)
        })
        .collect()
}

impl Seen {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running proxy (its threads end with the test process).
pub struct Proxy {
    /// The loopback port it listens on.
    pub port: u16,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Head {
    raw: Vec<u8>,
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn content_length(&self) -> Option<u64> {
        self.get("content-length").and_then(|v| v.parse().ok())
    }
}

/// Read a request or response head; `None` at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        if r.read_until(b'\n', &mut raw)? == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if raw[before..] == *b"\r\n" || raw[before..] == *b"\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Some(Head {
        raw,
        first,
        headers,
    }))
}

/// Copy `n` bytes (or up to EOF when `None`); returns how many went.
fn copy_n(from: &mut impl Read, to: &mut impl Write, n: Option<u64>) -> io::Result<u64> {
    match n {
        Some(n) => io::copy(&mut from.take(n), to),
        None => io::copy(from, to),
    }
}

/// Copy a chunked body, framing included, up to `limit` bytes; returns the
/// bytes copied and whether the body ended.
fn copy_chunked(
    from: &mut impl BufRead,
    to: &mut impl Write,
    limit: u64,
) -> io::Result<(u64, bool)> {
    let mut sent = 0u64;
    loop {
        let mut line = Vec::new();
        from.read_until(b'\n', &mut line)?;
        let size_text = String::from_utf8_lossy(&line);
        let size = u64::from_str_radix(size_text.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        let mut chunk = line;
        (&mut *from).take(size + 2).read_to_end(&mut chunk)?;
        if size == 0 {
            // The trailer section ends with an empty line (already read when
            // there are no trailers).
            let take = chunk.len().min((limit - sent) as usize);
            to.write_all(&chunk[..take])?;
            return Ok((sent + take as u64, take == chunk.len()));
        }
        let take = chunk.len().min((limit - sent) as usize);
        to.write_all(&chunk[..take])?;
        sent += take as u64;
        if take < chunk.len() {
            return Ok((sent, false));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    }
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream` applying `rules` in order (the first
    /// rule with acts left that matches a request decides).
    pub fn start(upstream: u16, rules: Vec<Rule>) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let rules = Arc::new(Mutex::new(rules));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (r2, s2) = (Arc::clone(&rules), Arc::clone(&seen));
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(client) = c else { return };
                let (rules, seen) = (Arc::clone(&r2), Arc::clone(&s2));
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &rules, &seen);
                });
            }
        });
        Proxy { port, rules, seen }
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Whether every rule has acted as often as it was told.
    pub fn all_fired(&self) -> bool {
        self.rules.lock().unwrap().iter().all(|r| r.times == 0)
    }
}

/// Pick the action for a request and count it against its rule.
fn decide(rules: &Mutex<Vec<Rule>>, method: &str, target: &str) -> Option<Action> {
    let mut rules = rules.lock().unwrap();
    for r in rules.iter_mut() {
        if r.times == 0 || r.method != method || !target.contains(&r.target_has) {
            continue;
        }
        if r.skip > 0 {
            r.skip -= 1;
            return None;
        }
        r.times -= 1;
        return Some(r.action.clone());
    }
    None
}

fn serve(
    client: TcpStream,
    upstream: u16,
    rules: &Mutex<Vec<Rule>>,
    seen: &Mutex<Vec<Seen>>,
) -> io::Result<()> {
    let mut to_client = client.try_clone()?;
    let mut from_client = BufReader::new(client);
    let mut server: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let cut = |server: &Option<(TcpStream, BufReader<TcpStream>)>, c: &TcpStream| {
        let _ = c.shutdown(Shutdown::Both);
        if let Some((s, _)) = server {
            let _ = s.shutdown(Shutdown::Both);
        }
    };
    while let Some(req) = read_head(&mut from_client)? {
        let mut parts = req.first.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let body_len = req.content_length().unwrap_or(0);
        let action = decide(rules, &method, &target);
        let idx = {
            let mut s = seen.lock().unwrap();
            s.push(Seen {
                at: Instant::now(),
                method: method.clone(),
                target,
                headers: req.headers.clone(),
                body_forwarded: 0,
                status: 0,
                faulted: action.is_some(),
            });
            s.len() - 1
        };
        let record = |f: &dyn Fn(&mut Seen)| f(&mut seen.lock().unwrap()[idx]);
        if let Some(Action::Answer(status, extra)) = &action {
            copy_n(&mut from_client, &mut io::sink(), Some(body_len))?;
            write!(
                to_client,
                "HTTP/1.1 {status} {}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n",
                reason(*status)
            )?;
            record(&|s| s.status = *status);
            cut(&server, &to_client);
            return Ok(());
        }
        if let Some(Action::Reply(status, extra, body)) = &action {
            copy_n(&mut from_client, &mut io::sink(), Some(body_len))?;
            write!(
                to_client,
                "HTTP/1.1 {status} {}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                reason(*status),
                body.len()
            )?;
            to_client.write_all(body)?;
            record(&|s| s.status = *status);
            cut(&server, &to_client);
            return Ok(());
        }
        if server.is_none() {
            let s = TcpStream::connect(("127.0.0.1", upstream))?;
            let r = BufReader::new(s.try_clone()?);
            server = Some((s, r));
        }
        let (to_server, from_server) = server.as_mut().unwrap();
        to_server.write_all(&req.raw)?;
        let limit = match action {
            Some(Action::DropRequestAfter(n)) => n.min(body_len),
            _ => body_len,
        };
        let n = copy_n(&mut from_client, to_server, Some(limit))?;
        record(&|s| s.body_forwarded = n);
        if let Some(Action::DropRequestAfter(_)) = action {
            to_server.flush()?;
            cut(&server, &to_client);
            return Ok(());
        }
        let Some(resp) = read_head(from_server)? else {
            cut(&server, &to_client);
            return Ok(());
        };
        let status: u16 = resp
            .first
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        record(&|s| s.status = status);
        to_client.write_all(&resp.raw)?;
        let limit = match action {
            Some(Action::DropResponseAfter(n)) => n,
            _ => u64::MAX,
        };
        let chunked = resp
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let whole = if method == "HEAD" || status == 204 || status == 304 || status < 200 {
            true
        } else if chunked {
            copy_chunked(from_server, &mut to_client, limit)?.1
        } else if let Some(len) = resp.content_length() {
            copy_n(from_server, &mut to_client, Some(len.min(limit)))? == len
        } else {
            copy_n(&mut from_server.take(limit), &mut to_client, None)?;
            false
        };
        let close = resp
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !whole || close {
            cut(&server, &to_client);
            return Ok(());
        }
    }
    cut(&server, &to_client);
    Ok(())
}
