//! Attachments over the distribution API: pushed after their image, pulled
//! back into a layout.
//!
//! Push: each attachment's blobs, then its manifest by digest. A registry
//! with the referrers API answers that PUT with an `OCI-Subject` header and
//! lists the referrer itself; otherwise strata maintains the referrers tag
//! schema (distribution-spec 1.1): the index at tag `sha256-<hex>` is
//! fetched, the new descriptors added (each manifest once, in digest order,
//! so the same attachments give the same index), and put back. A cosign
//! `.sig` manifest goes under its tag `sha256-<hex>.sig`. The tag schema is
//! read-modify-write: two clients pushing referrers of one image at once can
//! lose one's entry (the spec's own caveat); pushing again repairs it.
//!
//! Pull: `GET /v2/<name>/referrers/<digest>` when it answers 200 with an
//! index, else the tag schema index, plus the `.sig` tag. Everything a
//! registry answers is untrusted: lists are parsed with the JSON limits and
//! at most [`MAX_REFERRERS`] entries, every manifest and blob is fetched by
//! digest and verified, a manifest whose `subject` is not the image is
//! skipped, attached blobs are bounded by the JSON blob size limit.

use camino::Utf8Path;

use crate::descriptor::{
    is_manifest, Descriptor, Index, Manifest, ANNOTATION_REF_NAME, OCI_INDEX, OCI_MANIFEST,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json;
use crate::layout::Layout;
use crate::referrer::{
    self, artifact_type, merge_referrers_index, parse_referrers_list, referrers_tag, signature_tag,
    subject_of, Artifact, ARTIFACT_TYPE, MAX_REFERRERS,
};
use crate::registry::client::{self, Body, Client, MANIFEST_ACCEPT};
use crate::registry::pull::{fetch_json_blob, fetch_manifest, read_json_body};
use crate::registry::push::{push_blob, put_manifest, PushOptions};
use crate::registry::{Progress, Reference, Registries};

/// What pushing or pulling attachments did.
#[derive(Debug, Clone, Default)]
pub struct ReferrersReport {
    /// The attachment manifests sent or received, in order.
    pub manifests: Vec<Digest>,
    /// Whether the registry's referrers API listed them (else the tag schema).
    pub api: bool,
}

/// Push the attachments `layout` holds for the image `image` (already
/// pushed to `dest`'s repository).
pub fn push_attachments(
    layout: &Layout,
    image: &Digest,
    dest: &Reference,
    regs: &Registries,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<ReferrersReport> {
    let list = referrer::attachments(layout, image)?;
    let mut report = ReferrersReport::default();
    if list.is_empty() {
        return Ok(report);
    }
    let client = regs.client(&dest.registry, dest.plain_http)?;
    let mut for_tag_schema = Vec::new();
    for a in &list {
        for b in std::iter::once(&a.manifest.config).chain(a.manifest.layers.iter()) {
            let src = layout.blob(&b.digest).ok_or_else(|| {
                Error::corrupt(format!(
                    "{}: blob {} of attachment {} is missing",
                    layout.path(),
                    b.digest,
                    a.descriptor.digest
                ))
            })?;
            let (outcome, moved) =
                push_blob(&client, dest, &b.digest, b.size, &src, regs, opts, progress)?;
            progress.done(&b.digest, b.size, outcome, moved);
        }
        let bytes = layout.read_json_blob(&a.descriptor)?;
        if a.artifact_type.is_none() {
            // A cosign `.sig` manifest: its tag is how cosign finds it.
            put_manifest(&client, dest, &signature_tag(image), &a.descriptor, &bytes)?;
        } else {
            let d = &a.descriptor;
            let subject = put_manifest(&client, dest, &d.digest.to_string(), d, &bytes)?;
            if subject.as_deref() == Some(image.to_string().as_str()) {
                report.api = true;
            } else {
                let mut listed = Descriptor::new(&d.media_type, d.digest, d.size);
                if let Some(t) = &a.artifact_type {
                    listed.extra.insert(ARTIFACT_TYPE.into(), t.as_str().into());
                }
                listed.annotations = a.manifest.annotations.clone();
                for_tag_schema.push(listed);
            }
        }
        report.manifests.push(a.descriptor.digest);
    }
    if !for_tag_schema.is_empty() {
        let tag = referrers_tag(image);
        let existing = get_index(&client, &dest.repository, &tag)?;
        let idx = merge_referrers_index(existing, &for_tag_schema);
        let bytes = json::to_canonical(&idx);
        let d = Descriptor::new(OCI_INDEX, Digest::of(&bytes), bytes.len() as u64);
        put_manifest(&client, dest, &tag, &d, &bytes)?;
    }
    Ok(report)
}

/// The index at `reference` of `repository`, `None` when the registry has
/// none (404). Untrusted: size- and depth-limited, at most [`MAX_REFERRERS`]
/// entries, its bytes checked against the digest the registry announces.
fn get_index(client: &Client, repository: &str, reference: &str) -> Result<Option<Index>> {
    let what = format!(
        "fetching referrers {}/{repository}:{reference}",
        client.registry()
    );
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    let bytes = match get_json(client, repository, &url, OCI_INDEX, &what)? {
        Some((bytes, announced)) => {
            if let Some(a) = announced {
                if a != Digest::of(&bytes).to_string() {
                    return Err(Error::corrupt(format!(
                        "{what}: the registry announced {a} but sent other bytes; refused"
                    )));
                }
            }
            bytes
        }
        None => return Ok(None),
    };
    let idx: Index = json::parse(&bytes, &what)?;
    if idx.manifests.len() > MAX_REFERRERS {
        return Err(Error::corrupt(format!(
            "{what}: lists {} referrers, more than the limit of {MAX_REFERRERS}",
            idx.manifests.len()
        )));
    }
    Ok(Some(idx))
}

/// GET a JSON document with an index `Accept`: its bytes (bounded) and the
/// announced digest on 200, `None` on 404 (and, for the referrers API, on
/// the 400/405 of a registry that does not have it).
fn get_json(
    client: &Client,
    repository: &str,
    url: &str,
    accept: &str,
    what: &str,
) -> Result<Option<(Vec<u8>, Option<String>)>> {
    let resp = client.send(
        "GET",
        url,
        &[("Accept", accept)],
        Body::Empty,
        &[client::scope(repository, false)],
        what,
    )?;
    match resp.status() {
        200 => {}
        404 | 400 | 405 => return Ok(None),
        _ => return Err(client::status_error(what, resp)),
    }
    let announced = resp.header("docker-content-digest").map(str::to_string);
    let bytes = read_json_body(resp, what)?;
    Ok(Some((bytes, announced)))
}

/// The referrers of `image` in `repository`: from the referrers API when it
/// answers, else from the tag schema; and whether the API answered.
fn list_referrers(
    client: &Client,
    repository: &str,
    image: &Digest,
) -> Result<(Vec<Descriptor>, bool)> {
    let what = format!(
        "fetching referrers of {}/{repository}@{image}",
        client.registry()
    );
    let url = client.url(&format!("/v2/{repository}/referrers/{image}"));
    if let Some((bytes, _)) = get_json(client, repository, &url, OCI_INDEX, &what)? {
        return Ok((parse_referrers_list(&bytes, &what)?, true));
    }
    let tagged = get_index(client, repository, &referrers_tag(image))?;
    let list = match tagged {
        Some(idx) => idx
            .manifests
            .into_iter()
            .filter(|d| is_manifest(&d.media_type))
            .collect(),
        None => Vec::new(),
    };
    Ok((list, false))
}

/// Pull the attachments of the image `image` from `src`'s repository into
/// the layout directory `out` (which holds the image).
pub fn pull_attachments(
    regs: &Registries,
    src: &Reference,
    image: &Digest,
    out: &Utf8Path,
) -> Result<ReferrersReport> {
    let client = regs.client(&src.registry, src.plain_http)?;
    let repo = &src.repository;
    let (list, api) = list_referrers(&client, repo, image)?;
    let mut arts = Vec::new();
    let mut report = ReferrersReport {
        manifests: Vec::new(),
        api,
    };
    for d in &list {
        if arts
            .iter()
            .any(|a: &Artifact| a.descriptor.digest == d.digest)
        {
            continue;
        }
        let (bytes, mt, got) =
            fetch_manifest(&client, repo, &d.digest.to_string(), Some(&d.digest))?;
        let name = format!("{}/{repo}@{got}", client.registry());
        let m: Manifest = json::parse(&bytes, &name)?;
        // Why skip: a listed manifest that does not name the image is not its
        // attachment, whatever the (untrusted) list says.
        if subject_of(&m) != Some(*image) {
            continue;
        }
        let mut desc = Descriptor::new(&mt, got, bytes.len() as u64);
        let t = artifact_type(&m.extra)
            .map(str::to_string)
            .unwrap_or_else(|| m.config.media_type.clone());
        desc.extra.insert(ARTIFACT_TYPE.into(), t.into());
        desc.annotations = m.annotations.clone();
        arts.push(artifact_from(&client, repo, &m, bytes, desc, &name)?);
    }
    let sig_tag = signature_tag(image);
    let url = client.url(&format!("/v2/{repo}/manifests/{sig_tag}"));
    let name = format!("{}/{repo}:{sig_tag}", client.registry());
    let what = format!("fetching {name}");
    if let Some((bytes, announced)) = get_json(&client, repo, &url, MANIFEST_ACCEPT, &what)? {
        let got = Digest::of(&bytes);
        if announced.is_some_and(|a| a != got.to_string()) {
            return Err(Error::corrupt(format!(
                "{what}: the registry announced another digest than its bytes have; refused"
            )));
        }
        let m: Manifest = json::parse(&bytes, &name)?;
        let mt = m
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        if is_manifest(&mt) {
            let mut desc = Descriptor::new(&mt, got, bytes.len() as u64);
            desc.annotations.insert(ANNOTATION_REF_NAME.into(), sig_tag);
            arts.push(artifact_from(&client, repo, &m, bytes, desc, &name)?);
        }
    }
    report.manifests = arts.iter().map(|a| a.descriptor.digest).collect();
    if !arts.is_empty() {
        referrer::add_to_layout(out, &arts)?;
    }
    Ok(report)
}

/// An attachment manifest and its blobs, fetched and verified.
fn artifact_from(
    client: &Client,
    repo: &str,
    m: &Manifest,
    bytes: Vec<u8>,
    descriptor: Descriptor,
    name: &str,
) -> Result<Artifact> {
    if m.layers.len() > MAX_REFERRERS {
        return Err(Error::corrupt(format!(
            "{name}: {} layers, more than an attachment may have",
            m.layers.len()
        )));
    }
    let mut blobs = Vec::new();
    for b in std::iter::once(&m.config).chain(m.layers.iter()) {
        blobs.push(fetch_json_blob(client, repo, b)?);
    }
    Ok(Artifact {
        manifest: bytes,
        descriptor,
        blobs,
    })
}
