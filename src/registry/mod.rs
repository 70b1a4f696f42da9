//! Registries: push and pull over the OCI distribution API, and the blob
//! cache shallow layouts fill on demand.
//!
//! Invariants:
//! - every byte received is checked against the digest that named it while
//!   it streams (manifests by the digest asked for, or the one the registry
//!   announced, else computed and reported); nothing unverified is written
//!   where a later command could take it for verified;
//! - manifests and indexes are sent with their exact bytes, so the registry's
//!   digest is `strata digest`'s;
//! - a secret never reaches a message (see [`auth`], [`client`]);
//! - the library never prints: transfers report through [`Progress`].

pub mod auth;
pub mod cache;
pub mod client;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
mod status;
mod tls;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use camino::Utf8Path;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, ErrorKind, IoContext, Result};
use client::{Body, Client, ClientOptions};

pub use reference::Reference;

/// What happened to one blob of a push or pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already at the destination: nothing sent.
    Present,
    /// Cross-repository mount: the registry linked it, nothing sent.
    Mounted,
    /// Copied from another registry without touching the disk.
    Streamed,
    /// Uploaded from local bytes.
    Uploaded,
    /// Downloaded (pull, cache fill).
    Downloaded,
    /// Found in the local cache.
    Cached,
    /// Left in the registry (shallow pull).
    Remote,
}

impl Outcome {
    /// The word shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Present => "present",
            Outcome::Mounted => "mounted",
            Outcome::Streamed => "streamed",
            Outcome::Uploaded => "uploaded",
            Outcome::Downloaded => "downloaded",
            Outcome::Cached => "cached",
            Outcome::Remote => "remote",
        }
    }
}

/// Receives transfer events (the CLI draws them; tests count them).
pub trait Progress: Sync {
    /// A transfer of `size` bytes of `digest` starts (or restarts).
    fn start(&self, _digest: &Digest, _size: u64) {}
    /// `bytes` more bytes of `digest` moved.
    fn advance(&self, _digest: &Digest, _bytes: u64) {}
    /// `digest` is done: what happened and how many bytes crossed the network.
    fn done(&self, _digest: &Digest, _size: u64, _outcome: Outcome, _moved: u64) {}
    /// A transfer failed and is retried (`why` is one line).
    fn retry(&self, _digest: &Digest, _why: &str) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

type OptionsFor = dyn Fn(&str, bool) -> Result<ClientOptions> + Send + Sync;

/// Clients by registry, made on first use with the options the caller
/// chooses per registry (credentials, plain HTTP).
pub struct Registries {
    options_for: Box<OptionsFor>,
    clients: Mutex<BTreeMap<(String, bool), Arc<Client>>>,
}

impl Registries {
    /// `options_for(registry, plain_http)` gives each client's options.
    pub fn new(
        options_for: impl Fn(&str, bool) -> Result<ClientOptions> + Send + Sync + 'static,
    ) -> Registries {
        Registries {
            options_for: Box::new(options_for),
            clients: Mutex::new(BTreeMap::new()),
        }
    }

    /// The client for `registry` (plain HTTP when `plain_http`).
    pub fn client(&self, registry: &str, plain_http: bool) -> Result<Arc<Client>> {
        let key = (registry.to_string(), plain_http);
        if let Some(c) = self.clients.lock().expect("clients").get(&key) {
            return Ok(Arc::clone(c));
        }
        let mut opts = (self.options_for)(registry, plain_http)?;
        opts.plain_http |= plain_http;
        let c = Arc::new(Client::new(registry, opts));
        self.clients
            .lock()
            .expect("clients")
            .insert(key, Arc::clone(&c));
        Ok(c)
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// GET a blob from `repository`, starting at `offset` (a `Range` request;
/// a registry that ignores it is skipped forward). The reader yields the
/// blob's bytes from `offset` on, unverified.
pub fn open_blob(
    client: &Client,
    repository: &str,
    digest: &Digest,
    offset: u64,
) -> Result<Box<dyn Read + Send>> {
    let what = format!(
        "fetching blob {digest} from {}/{repository}",
        client.registry()
    );
    let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
    let range = format!("bytes={offset}-");
    let headers: Vec<(&str, &str)> = if offset > 0 {
        vec![("Range", range.as_str())]
    } else {
        vec![]
    };
    let resp = client.send(
        "GET",
        &url,
        &headers,
        Body::Empty,
        &[client::scope(repository, false)],
        &what,
    )?;
    match resp.status() {
        206 => Ok(Box::new(resp.into_reader())),
        200 => {
            let mut r = resp.into_reader();
            if offset > 0 {
                let skipped = io::copy(&mut (&mut r).take(offset), &mut io::sink())
                    .map_err(|e| Error::io(&what, &e))?;
                if skipped != offset {
                    return Err(Error::new(
                        ErrorKind::Remote,
                        format!("{what}: the blob ended after {skipped} bytes"),
                    ));
                }
            }
            Ok(Box::new(r))
        }
        404 => Err(Error::new(
            ErrorKind::Remote,
            format!("{what}: 404 Not Found: the registry does not have it"),
        )),
        _ => Err(client::status_error(&what, resp)),
    }
}

/// Download blob `digest` (`size` bytes) from `repository` into `file`,
/// verifying size and digest; a broken connection resumes where it stopped
/// (up to the client's retries). Returns the bytes moved.
pub fn download_blob(
    client: &Client,
    repository: &str,
    digest: &Digest,
    size: u64,
    file: &mut File,
    dest: &Utf8Path,
    progress: &dyn Progress,
) -> Result<u64> {
    let what = format!(
        "fetching blob {digest} from {}/{repository}",
        client.registry()
    );
    let mut hasher = Hasher::new();
    let mut attempt = 0;
    let mut buf = vec![0u8; 1 << 20];
    progress.start(digest, size);
    loop {
        let offset = hasher.len();
        let res: Result<()> = (|| {
            let mut r = open_blob(client, repository, digest, offset)?.take(size + 1 - offset);
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::Remote,
                            format!(
                                "{what}: connection broken: {}",
                                crate::error::describe_io(&e)
                            ),
                        ))
                    }
                };
                if hasher.len() + n as u64 > size {
                    return Err(Error::corrupt(format!(
                        "{what}: the registry sent more than the {size} bytes the descriptor says"
                    )));
                }
                hasher.update(&buf[..n]);
                file.write_all(&buf[..n])
                    .io_context(|| format!("writing {dest}"))?;
                progress.advance(digest, n as u64);
            }
        })();
        match res {
            Ok(()) if hasher.len() == size => break,
            Ok(()) => {
                // Ended early: a dropped connection looks like this too.
                if attempt >= client.retries() {
                    return Err(Error::corrupt(format!(
                        "{what}: truncated: got {} of {size} bytes",
                        hasher.len()
                    )));
                }
                progress.retry(digest, "connection ended early");
            }
            Err(e) if e.kind() == ErrorKind::Remote && attempt < client.retries() => {
                progress.retry(digest, e.message());
            }
            Err(e) => return Err(e),
        }
        client.pause(attempt);
        attempt += 1;
    }
    let (got, n) = hasher.finish();
    if got != *digest {
        return Err(Error::corrupt(format!(
            "{what}: digest mismatch: the registry sent {n} bytes hashing to {got}; refused"
        )));
    }
    Ok(n)
}
