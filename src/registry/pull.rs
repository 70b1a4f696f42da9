//! `strata pull`: a manifest or index from a registry into an OCI layout.
//!
//! The manifest is fetched by digest (recommended) or tag; its bytes are
//! checked against the digest asked for, or against the one the registry
//! announces, and the resolved digest is reported. An index with a platform
//! chosen becomes that platform's image; without one, the whole index comes
//! (every child manifest). Every blob is verified while it streams into a
//! staging directory beside the output, then the layout is assembled and
//! renamed into place; a failure leaves nothing. `shallow` fetches only the
//! JSON blobs and records where each layer lives ([`crate::layout::REMOTE_FILE`]).
//! `index.json` is written as `strata image` writes it (the manifest with
//! its config's platform, the tag annotations), so pulling back what strata
//! pushed gives the same layout, byte for byte.

use std::collections::BTreeMap;
use std::io::Read;

use camino::Utf8Path;

use crate::descriptor::{Descriptor, Index, Manifest, Platform};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::image::tag_annotations;
use crate::json;
use crate::layout::{choose_platform, BlobSource, LayoutPlan, RemoteBlob};
use crate::media_type::{is_index, is_manifest, MANIFEST_ACCEPT};
use crate::output::AtomicDir;
use crate::parallel::parallel;
use crate::registry::client::{self, Body, Client};
use crate::registry::{download_blob, Outcome, Progress, Reference, Registries};

/// What to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Choose this platform from an index.
    pub platform: Option<Platform>,
    /// Leave layers in the registry (record them instead).
    pub shallow: bool,
    /// `NAME:TAG` to record in index.json.
    pub tag: Option<String>,
    /// Blobs downloaded at once.
    pub jobs: usize,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The digest of the manifest or index written to index.json.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Per layer blob: digest, size, outcome, bytes received.
    pub blobs: Vec<(Digest, u64, Outcome, u64)>,
}

/// Fetch manifest `reference` (tag or digest) of `repository`: its bytes,
/// media type and digest, verified.
pub fn fetch_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    expect: Option<&Digest>,
) -> Result<(Vec<u8>, String, Digest)> {
    let at = if reference.starts_with("sha256:") {
        format!("{}/{repository}@{reference}", client.registry())
    } else {
        format!("{}/{repository}:{reference}", client.registry())
    };
    let what = format!("fetching manifest {at}");
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    let resp = client.send(
        "GET",
        &url,
        &[("Accept", MANIFEST_ACCEPT)],
        Body::Empty,
        &[client::scope(repository, false)],
        &what,
    )?;
    match resp.status() {
        200 => {}
        404 => {
            return Err(Error::invalid(format!(
                "{what}: 404 Not Found: no such manifest{}",
                client::registry_message(resp)
            )))
        }
        _ => return Err(client::status_error(&what, resp)),
    }
    let announced = resp.header("docker-content-digest").map(str::to_string);
    let ctype = resp
        .header("content-type")
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
    let bytes = read_json_body(resp, &what)?;
    let got = Digest::of(&bytes);
    if let Some(want) = expect {
        if got != *want {
            return Err(Error::corrupt(format!(
                "{what}: digest mismatch: the registry sent bytes hashing to {got}; refused"
            )));
        }
    } else if let Some(a) = announced {
        if a != got.to_string() {
            return Err(Error::corrupt(format!(
                "{what}: the registry announced {a} but sent bytes hashing to {got}; refused"
            )));
        }
    }
    let body_type: Option<String> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        });
    let media_type = match (body_type, ctype) {
        (Some(b), _) => b,
        (None, Some(c)) if is_index(&c) || is_manifest(&c) => c,
        _ => {
            return Err(Error::unsupported(format!(
            "{what}: neither the body nor the Content-Type says what it is (a schema 1 manifest?)"
        )))
        }
    };
    Ok((bytes, media_type, got))
}

/// The body of a registry's JSON answer, at most [`json::MAX_JSON_BYTES`].
pub(crate) fn read_json_body(resp: ureq::Response, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(json::MAX_JSON_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::new(
                ErrorKind::Remote,
                format!("{what}: {}", crate::error::describe_io(&e)),
            )
        })?;
    if bytes.len() > json::MAX_JSON_BYTES {
        return Err(Error::corrupt(format!(
            "{what}: larger than the {} byte limit",
            json::MAX_JSON_BYTES
        )));
    }
    Ok(bytes)
}

pub(crate) fn fetch_json_blob(
    client: &Client,
    repository: &str,
    desc: &Descriptor,
) -> Result<Vec<u8>> {
    let what = format!(
        "fetching blob {} from {}/{repository}",
        desc.digest,
        client.registry()
    );
    if desc.size > json::MAX_JSON_BYTES as u64 {
        return Err(Error::corrupt(format!(
            "{what}: descriptor size {} exceeds the {} byte limit for JSON blobs",
            desc.size,
            json::MAX_JSON_BYTES
        )));
    }
    let mut r =
        crate::registry::open_blob(client, repository, &desc.digest, 0)?.take(desc.size + 1);
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Remote,
            format!("{what}: {}", crate::error::describe_io(&e)),
        )
    })?;
    if bytes.len() as u64 != desc.size || Digest::of(&bytes) != desc.digest {
        return Err(Error::corrupt(format!(
            "{what}: the registry sent {} bytes hashing to {}, not what the descriptor says; refused",
            bytes.len(),
            Digest::of(&bytes)
        )));
    }
    Ok(bytes)
}

#[derive(Default)]
struct Work {
    plan: LayoutPlan,
    layers: BTreeMap<Digest, u64>,
}

/// Add the manifest `bytes` (and its config, and its layers to fetch) to
/// `w`; returns its config's platform.
fn add_manifest(
    client: &Client,
    repository: &str,
    bytes: Vec<u8>,
    name: &str,
    w: &mut Work,
) -> Result<Platform> {
    let m: Manifest = json::parse(&bytes, name)?;
    if m.layers.len() > crate::limits::MAX_LAYERS {
        return Err(Error::corrupt(format!(
            "{name}: {} layers exceeds the limit of {}",
            m.layers.len(),
            crate::limits::MAX_LAYERS
        )));
    }
    let config = fetch_json_blob(client, repository, &m.config)?;
    // A config that is not JSON (its bytes are verified, not parsed) gets an
    // empty platform here; `strata verify` of the pulled layout reports it.
    let platform = Platform::of_config(&serde_json::from_slice(&config).unwrap_or_default());
    w.plan.add_bytes(config);
    for l in &m.layers {
        w.layers.insert(l.digest, l.size);
    }
    w.plan.add_bytes(bytes);
    Ok(platform)
}

fn add_index(
    client: &Client,
    repository: &str,
    bytes: Vec<u8>,
    name: &str,
    depth: usize,
    w: &mut Work,
) -> Result<()> {
    if depth > 4 {
        return Err(Error::corrupt(format!(
            "{name}: indexes nested more than 4 deep"
        )));
    }
    let idx: Index = json::parse(&bytes, name)?;
    for m in &idx.manifests {
        if w.plan.blobs.contains_key(&m.digest) {
            continue;
        }
        let (b, mt, d) =
            fetch_manifest(client, repository, &m.digest.to_string(), Some(&m.digest))?;
        let cname = format!("{}/{repository}@{d}", client.registry());
        if is_index(&mt) {
            add_index(client, repository, b, &cname, depth + 1, w)?;
        } else if is_manifest(&mt) {
            add_manifest(client, repository, b, &cname, w)?;
        } else {
            return Err(Error::unsupported(format!(
                "{name}: lists {d} of media type {mt:?}, which strata cannot pull"
            )));
        }
    }
    w.plan.add_bytes(bytes);
    Ok(())
}

/// Pull `reference` into a layout at `out`.
pub fn pull(
    regs: &Registries,
    reference: &Reference,
    opts: &PullOptions,
    out: &Utf8Path,
    progress: &dyn Progress,
) -> Result<PullReport> {
    let client = regs.client(&reference.registry, reference.plain_http)?;
    let repo = &reference.repository;
    let (mut bytes, mut media_type, mut digest) = fetch_manifest(
        &client,
        repo,
        &reference.manifest_ref(),
        reference.digest.as_ref(),
    )?;
    let name = |d: &Digest| format!("{}/{repo}@{d}", reference.registry);
    if is_index(&media_type) {
        if let Some(p) = &opts.platform {
            let idx: Index = json::parse(&bytes, &name(&digest))?;
            let child = choose_platform(&idx, Some(p)).map_err(|e| e.context(name(&digest)))?;
            let (b, mt, d) = fetch_manifest(
                &client,
                repo,
                &child.digest.to_string(),
                Some(&child.digest),
            )?;
            (bytes, media_type, digest) = (b, mt, d);
        }
    }
    let size = bytes.len() as u64;
    let mut w = Work::default();
    let mut top = Descriptor::new(&media_type, digest, size);
    if is_index(&media_type) {
        add_index(&client, repo, bytes, &name(&digest), 0, &mut w)?;
    } else if is_manifest(&media_type) {
        let p = add_manifest(&client, repo, bytes, &name(&digest), &mut w)?;
        top.platform = Some(p);
    } else {
        return Err(Error::unsupported(format!(
            "{}: media type {media_type:?} is neither an image manifest nor an index",
            name(&digest)
        )));
    }
    tag_annotations(&mut top, opts.tag.as_deref())?;
    w.plan.index_json = json::to_canonical(&Index::new(vec![top]));

    // Layers in digest order (the BTreeMap's); their outcomes in that order.
    let layers: Vec<(Digest, u64)> = w.layers.iter().map(|(d, n)| (*d, *n)).collect();
    let blobs = if opts.shallow {
        let mut blobs = Vec::new();
        for &(digest, size) in &layers {
            let at = RemoteBlob {
                registry: reference.registry.clone(),
                repository: repo.clone(),
                size,
                plain_http: client.plain_http(),
            };
            w.plan
                .blobs
                .insert(digest, (size, BlobSource::Remote { digest, at }));
            progress.done(&digest, size, Outcome::Remote, 0);
            blobs.push((digest, size, Outcome::Remote, 0));
        }
        w.plan.write_dir(out)?;
        blobs
    } else {
        // Staging beside the output: same filesystem, so the layout links, not copies.
        let staging = AtomicDir::create(
            &out.with_file_name(format!("{}.download", out.file_name().unwrap_or("out"))),
        )?;
        let dir = staging.path();
        let got = parallel(&layers, opts.jobs, |&(digest, size)| {
            let path = dir.join(digest.hex());
            let mut f = std::fs::File::create(&path)
                .map_err(|e| Error::io(format!("writing {path}"), &e))?;
            let n = download_blob(&client, repo, &digest, size, &mut f, &path, progress)?;
            progress.done(&digest, size, Outcome::Downloaded, n);
            Ok(((digest, size, Outcome::Downloaded, n), path))
        })?;
        let mut blobs = Vec::new();
        for (b, path) in got {
            w.plan.blobs.insert(b.0, (b.1, BlobSource::File(path)));
            blobs.push(b);
        }
        w.plan.write_dir(out)?;
        blobs
    };
    Ok(PullReport {
        digest,
        media_type,
        blobs,
    })
}
