//! `strata push`: an image (layout, oci-archive, strata docker-archive,
//! shallow or not) to a registry.
//!
//! Order: every blob first (in parallel, each once), then child manifests by
//! digest, then the top manifest or index under each tag (or its digest), so
//! a tag never names something incomplete. Per blob: `HEAD` at the
//! destination (present → nothing sent); a remote blob of a shallow layout
//! in the same registry is mounted across repositories; otherwise the bytes
//! go up (local → uploaded; remote elsewhere → streamed from the source
//! registry through memory, never the disk). Small blobs go in one `PUT`,
//! large ones in fixed-size `PATCH` chunks: a dropped chunk resumes at the
//! offset the registry reports, or the upload restarts (bounded attempts).
//! Every blob's digest is checked on the way before the registry is asked to
//! commit it. Manifests are sent byte for byte.

use std::collections::BTreeMap;
use std::io::Read;

use crate::descriptor::{Descriptor, Index, Manifest};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};
use crate::json;
use crate::layout::{BlobSource, Layout};
use crate::media_type::{is_index, is_manifest};
use crate::parallel::parallel;
use crate::registry::client::{self, Body, Client};
use crate::registry::{open_blob, read_full, Outcome, Progress, Reference, Registries};

/// Tuning for a push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs up to this size go in one request; larger ones in chunks of it.
    pub chunk_size: usize,
    /// Blobs transferred at once.
    pub jobs: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_size: 8 << 20,
            jobs: 3,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The digest of what the tags name.
    pub digest: Digest,
    /// Per blob: digest, size, outcome, bytes sent.
    pub blobs: Vec<(Digest, u64, Outcome, u64)>,
}

#[derive(Default)]
struct Work {
    blobs: BTreeMap<Digest, (u64, BlobSource)>,
    /// Manifests and indexes, children before parents.
    manifests: Vec<(Descriptor, Vec<u8>)>,
}

fn collect(layout: &Layout, desc: &Descriptor, depth: usize, w: &mut Work) -> Result<()> {
    if depth > 4 {
        return Err(Error::corrupt(format!(
            "{}: indexes nested more than 4 deep",
            layout.path()
        )));
    }
    if w.manifests.iter().any(|(d, _)| d.digest == desc.digest) {
        return Ok(());
    }
    let name = layout.name(&Layout::blob_name(&desc.digest));
    let bytes = layout.read_json_blob(desc)?;
    if is_index(&desc.media_type) {
        let idx: Index = json::parse(&bytes, &name)?;
        for m in &idx.manifests {
            if m.digest == desc.digest {
                return Err(Error::corrupt(format!("{name}: index lists itself")));
            }
            collect(layout, m, depth + 1, w)?;
        }
    } else if is_manifest(&desc.media_type) {
        let m: Manifest = json::parse(&bytes, &name)?;
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            let src = layout
                .blob(&b.digest)
                .ok_or_else(|| Error::corrupt(format!("{name}: blob {} is missing", b.digest)))?;
            w.blobs.insert(b.digest, (b.size, src));
        }
    } else {
        return Err(Error::unsupported(format!(
            "{name}: cannot push media type {:?}",
            desc.media_type
        )));
    }
    w.manifests.push((desc.clone(), bytes));
    Ok(())
}

/// Push the image or index `top` of `layout` to `dest` (and `tags`, more
/// tags in the same repository).
pub fn push(
    layout: &Layout,
    top: &Descriptor,
    dest: &Reference,
    tags: &[String],
    regs: &Registries,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let mut work = Work::default();
    collect(layout, top, 0, &mut work)?;
    if let Some(d) = dest.digest {
        if d != top.digest {
            return Err(Error::invalid(format!(
                "{dest}: the reference names {d}, but the image is {}",
                top.digest
            )));
        }
    }
    let client = regs.client(&dest.registry, dest.plain_http)?;
    let jobs: Vec<(Digest, u64, BlobSource)> = work
        .blobs
        .iter()
        .map(|(d, (n, s))| (*d, *n, s.clone()))
        .collect();
    // In digest order (the BTreeMap's), whichever thread finishes first.
    let blobs = parallel(&jobs, opts.jobs, |(d, n, src)| {
        let (outcome, moved) = push_blob(&client, dest, d, *n, src, regs, opts, progress)?;
        progress.done(d, *n, outcome, moved);
        Ok((*d, *n, outcome, moved))
    })?;

    let (children, top_entry) = work.manifests.split_at(work.manifests.len() - 1);
    for (d, bytes) in children {
        put_manifest(&client, dest, &d.digest.to_string(), d, bytes)?;
    }
    let (d, bytes) = &top_entry[0];
    let mut refs: Vec<String> = dest.tag.iter().cloned().collect();
    for t in tags {
        let r = dest.with_tag(t)?;
        refs.extend(r.tag);
    }
    if refs.is_empty() {
        refs.push(d.digest.to_string());
    }
    for r in &refs {
        put_manifest(&client, dest, r, d, bytes)?;
    }
    Ok(PushReport {
        digest: d.digest,
        blobs,
    })
}

/// PUT a manifest; returns the registry's `OCI-Subject` header, if any (a
/// registry with the referrers API sends it for a manifest with a subject).
pub(crate) fn put_manifest(
    client: &Client,
    dest: &Reference,
    reference: &str,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<Option<String>> {
    let what = format!(
        "pushing manifest {} to {}:{reference}",
        desc.digest,
        dest.name()
    );
    let what = what.replace(&format!(":{}", desc.digest), &format!("@{}", desc.digest));
    let url = client.url(&format!("/v2/{}/manifests/{reference}", dest.repository));
    let resp = client.send(
        "PUT",
        &url,
        &[("Content-Type", desc.media_type.as_str())],
        Body::Bytes(bytes),
        &[client::scope(&dest.repository, true)],
        &what,
    )?;
    match resp.status() {
        200..=299 => {
            if let Some(h) = resp.header("docker-content-digest") {
                if h != desc.digest.to_string() {
                    return Err(Error::new(
                        ErrorKind::Remote,
                        format!(
                            "{what}: the registry computed {h} for it; refused to trust the push"
                        ),
                    ));
                }
            }
            Ok(resp.header("oci-subject").map(str::to_string))
        }
        _ => Err(client::status_error(&what, resp)),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn push_blob(
    client: &Client,
    dest: &Reference,
    digest: &Digest,
    size: u64,
    src: &BlobSource,
    regs: &Registries,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<(Outcome, u64)> {
    let repo = &dest.repository;
    let what = format!("pushing blob {digest} to {}", dest.name());
    let push_scope = client::scope(repo, true);
    let url = client.url(&format!("/v2/{repo}/blobs/{digest}"));
    let head = client.send(
        "HEAD",
        &url,
        &[],
        Body::Empty,
        std::slice::from_ref(&push_scope),
        &what,
    )?;
    match head.status() {
        200 => return Ok((Outcome::Present, 0)),
        404 => {}
        _ => return Err(client::status_error(&what, head)),
    }
    let mut session = None;
    if let BlobSource::Remote { at, .. } = src {
        if at.registry == client.registry() && at.plain_http == client.plain_http() {
            let url = client.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                enc(&digest.to_string()),
                at.repository
            ));
            let scopes = [push_scope.clone(), client::scope(&at.repository, false)];
            let resp = client.send("POST", &url, &[], Body::Empty, &scopes, &what)?;
            match resp.status() {
                201 => return Ok((Outcome::Mounted, 0)),
                202 => session = resp.header("location").map(str::to_string),
                _ => return Err(client::status_error(&what, resp)),
            }
        }
    }
    let (outcome, open): (Outcome, Box<Opener<'_>>) = match src {
        BlobSource::Remote { at, .. } => {
            let src_client = regs.client(&at.registry, at.plain_http)?;
            let repo = at.repository.clone();
            let d = *digest;
            (
                Outcome::Streamed,
                Box::new(move || open_blob(&src_client, &repo, &d, 0)),
            )
        }
        _ => (Outcome::Uploaded, Box::new(|| src.open())),
    };
    let moved = upload(
        client, repo, digest, size, &*open, session, opts, progress, &what,
    )?;
    Ok((outcome, moved))
}

/// Opens a blob's bytes from the start.
type Opener<'a> = dyn Fn() -> Result<Box<dyn Read + Send>> + 'a;

/// Percent-encode what a query value must not hold raw.
fn enc(s: &str) -> String {
    s.replace(':', "%3A")
}

fn with_digest(loc: &str, digest: &Digest) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={}", enc(&digest.to_string()))
}

enum Fail {
    /// Start over (a new upload session), if attempts remain.
    Retry(Error),
    /// Give up.
    Fatal(Error),
}

fn classify(e: Error) -> Fail {
    match e.kind() {
        ErrorKind::Remote => Fail::Retry(e),
        _ => Fail::Fatal(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn upload(
    client: &Client,
    repo: &str,
    digest: &Digest,
    size: u64,
    open: &dyn Fn() -> Result<Box<dyn Read + Send>>,
    mut session: Option<String>,
    opts: &PushOptions,
    progress: &dyn Progress,
    what: &str,
) -> Result<u64> {
    let chunk = opts.chunk_size.max(1 << 10);
    let mut buf = vec![0u8; (size.min(chunk as u64) as usize).max(1)];
    let mut attempt = 0;
    let mut moved = 0u64;
    loop {
        match upload_once(
            client,
            repo,
            digest,
            size,
            open,
            session.take(),
            &mut buf,
            progress,
            what,
            &mut moved,
        ) {
            Ok(()) => return Ok(moved),
            Err(Fail::Retry(e)) if attempt < client.retries() => {
                progress.retry(digest, e.message());
                client.pause(attempt);
                attempt += 1;
            }
            Err(Fail::Retry(e)) | Err(Fail::Fatal(e)) => return Err(e),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn upload_once(
    client: &Client,
    repo: &str,
    digest: &Digest,
    size: u64,
    open: &dyn Fn() -> Result<Box<dyn Read + Send>>,
    session: Option<String>,
    buf: &mut [u8],
    progress: &dyn Progress,
    what: &str,
    moved: &mut u64,
) -> Result<(), Fail> {
    let scopes = [client::scope(repo, true)];
    let loc = match session {
        Some(l) => l,
        None => {
            let url = client.url(&format!("/v2/{repo}/blobs/uploads/"));
            let resp = client
                .send("POST", &url, &[], Body::Empty, &scopes, what)
                .map_err(classify)?;
            if resp.status() != 202 {
                return Err(classify(client::status_error(what, resp)));
            }
            resp.header("location").map(str::to_string).ok_or_else(|| {
                Fail::Fatal(Error::new(
                    ErrorKind::Remote,
                    format!("{what}: the registry started an upload without a Location"),
                ))
            })?
        }
    };
    let mut loc = client.resolve(&loc);
    let mut r = open().map_err(classify)?;
    let mut hasher = Hasher::new();
    progress.start(digest, size);
    let src_short = |n: u64| {
        classify(Error::new(
            ErrorKind::Remote,
            format!("{what}: the source ended after {n} of {size} bytes"),
        ))
    };
    let read_err = |e: std::io::Error| {
        classify(Error::new(
            ErrorKind::Remote,
            format!(
                "{what}: reading the source: {}",
                crate::error::describe_io(&e)
            ),
        ))
    };
    let verify = |hasher: Hasher| -> Result<(), Fail> {
        let (got, n) = hasher.finish();
        if got != *digest {
            return Err(Fail::Fatal(Error::corrupt(format!(
                "{what}: the source's {n} bytes hash to {got}, not {digest}; refused"
            ))));
        }
        Ok(())
    };
    let octet = ("Content-Type", "application/octet-stream");
    if size <= buf.len() as u64 {
        let want = size as usize;
        let n = read_full(&mut *r, &mut buf[..want]).map_err(read_err)?;
        if n < want {
            return Err(src_short(n as u64));
        }
        let mut extra = [0u8; 1];
        if read_full(&mut *r, &mut extra).map_err(read_err)? != 0 {
            return Err(Fail::Fatal(Error::corrupt(format!(
                "{what}: the source has more than the {size} bytes its descriptor says"
            ))));
        }
        hasher.update(&buf[..n]);
        verify(hasher)?;
        let len = n.to_string();
        let resp = client
            .send_once(
                "PUT",
                &with_digest(&loc, digest),
                &[octet, ("Content-Length", &len)],
                Body::Bytes(&buf[..n]),
                &scopes,
                what,
            )
            .map_err(classify)?;
        if !(200..300).contains(&resp.status()) {
            return Err(Fail::Retry(client::status_error(what, resp)));
        }
        *moved += size;
        progress.advance(digest, size);
        return Ok(());
    }
    let mut offset = 0u64;
    while offset < size {
        let want = (size - offset).min(buf.len() as u64) as usize;
        let n = read_full(&mut *r, &mut buf[..want]).map_err(read_err)?;
        if n < want {
            return Err(src_short(offset + n as u64));
        }
        hasher.update(&buf[..n]);
        let mut sent_from = 0usize;
        let mut resumed = false;
        loop {
            let start = offset + sent_from as u64;
            let end = offset + n as u64 - 1;
            let range = format!("{start}-{end}");
            let len = (n - sent_from).to_string();
            let res = client.send_once(
                "PATCH",
                &loc,
                &[octet, ("Content-Range", &range), ("Content-Length", &len)],
                Body::Bytes(&buf[sent_from..n]),
                &scopes,
                what,
            );
            match res {
                Ok(resp) if resp.status() == 202 || resp.status() == 204 => {
                    if let Some(l) = resp.header("location") {
                        loc = client.resolve(l);
                    }
                    *moved += (n - sent_from) as u64;
                    break;
                }
                Ok(resp) => return Err(Fail::Retry(client::status_error(what, resp))),
                Err(e) if e.kind() == ErrorKind::Remote && !resumed => {
                    // Ask how much arrived; resume inside this chunk if we can.
                    resumed = true;
                    match upload_status(client, &loc, &scopes, what) {
                        Some((l, committed))
                            if committed >= offset && committed <= offset + n as u64 =>
                        {
                            loc = l;
                            sent_from = (committed - offset) as usize;
                            progress.retry(digest, &format!("resuming at byte {committed}"));
                            if sent_from == n {
                                break;
                            }
                        }
                        _ => return Err(Fail::Retry(e)),
                    }
                }
                Err(e) => return Err(classify(e)),
            }
        }
        offset += n as u64;
        progress.advance(digest, n as u64);
    }
    let mut extra = [0u8; 1];
    if read_full(&mut *r, &mut extra).map_err(read_err)? != 0 {
        return Err(Fail::Fatal(Error::corrupt(format!(
            "{what}: the source has more than the {size} bytes its descriptor says"
        ))));
    }
    verify(hasher)?;
    let resp = client
        .send_once(
            "PUT",
            &with_digest(&loc, digest),
            &[octet],
            Body::Empty,
            &scopes,
            what,
        )
        .map_err(classify)?;
    if !(200..300).contains(&resp.status()) {
        return Err(Fail::Retry(client::status_error(what, resp)));
    }
    Ok(())
}

/// The upload's new location and how many bytes the registry holds, if it says.
fn upload_status(
    client: &Client,
    loc: &str,
    scopes: &[String],
    what: &str,
) -> Option<(String, u64)> {
    let resp = client
        .send("GET", loc, &[], Body::Empty, scopes, what)
        .ok()?;
    if resp.status() != 204 {
        return None;
    }
    let range = resp.header("range")?;
    let end: u64 = range.trim().strip_prefix("0-")?.parse().ok()?;
    let l = resp
        .header("location")
        .map(|l| client.resolve(l))
        .unwrap_or_else(|| loc.to_string());
    // "0-0" is both "nothing" and "one byte" in distribution's answers.
    Some((l, if end == 0 { 0 } else { end + 1 }))
}
