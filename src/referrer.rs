//! OCI 1.1 referrers ("attachments"): artifact manifests whose `subject` is
//! an image manifest (an SBOM, a signature, an attestation), and cosign's
//! `sha256-<hex>.sig` tag form of a signature.
//!
//! In a layout, an attachment is a top-level entry of `index.json`:
//! a referrer carries `artifactType` on its descriptor, a cosign signature
//! manifest carries the ref name `sha256-<hex>.sig`. Everything that picks
//! "the image" from a layout skips these entries ([`is_attachment`]).
//! An artifact manifest is an OCI image manifest with `artifactType`, the
//! empty descriptor as config and the attached file as its one layer
//! (image-spec 1.1, "Guidelines for artifact usage").
//!
//! Invariants: manifests and `index.json` are canonical JSON; attachments
//! are listed after the images in digest order, so the same attachments give
//! the same `index.json` whatever order they were added in. Attaching
//! rewrites a layout *directory* in place: new blobs first, each written to a
//! temporary and renamed, then `index.json` likewise, so a failure leaves the
//! layout as it was or with unreferenced blobs only.

use std::collections::BTreeMap;

use camino::Utf8Path;
use serde_json::json;

use crate::descriptor::{is_manifest, Descriptor, Index, Manifest, OCI_MANIFEST};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json;
use crate::layout::Layout;
// What marks an attachment lives below `layout` (which skips them).
pub use crate::attachment::{
    artifact_type, is_attachment, is_cosign_tag, subject_of, ARTIFACT_TYPE, SUBJECT,
};

/// The media type of the empty descriptor (image-spec 1.1).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the empty blob: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Most attachments strata reads for one image (index.json, a registry's
/// referrers list).
pub const MAX_REFERRERS: usize = 1000;

/// The empty descriptor: config of every artifact manifest strata writes.
pub fn empty_descriptor() -> Descriptor {
    let mut d = Descriptor::new(EMPTY_MEDIA_TYPE, Digest::of(EMPTY_JSON), 2);
    // Why `data`: the spec's canonical empty descriptor embeds its bytes.
    d.extra.insert("data".into(), json!("e30="));
    d
}

/// The referrers tag schema's tag for `subject` (`sha256-<hex>`).
pub fn referrers_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// cosign's signature tag for `subject` (`sha256-<hex>.sig`).
pub fn signature_tag(subject: &Digest) -> String {
    format!("{}.sig", referrers_tag(subject))
}

/// One blob of an attachment: bytes, media type, annotations.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Media type of the blob.
    pub media_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Annotations on its descriptor.
    pub annotations: BTreeMap<String, String>,
}

impl Blob {
    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(
            &self.media_type,
            Digest::of(&self.bytes),
            self.bytes.len() as u64,
        );
        d.annotations = self.annotations.clone();
        d
    }
}

/// A manifest ready to be added to a layout or pushed: its bytes, the
/// descriptor that lists it, and the blobs it references.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest, canonical JSON.
    pub manifest: Vec<u8>,
    /// Its descriptor as `index.json` and a referrers list carry it.
    pub descriptor: Descriptor,
    /// Config and layers, with their bytes.
    pub blobs: Vec<Vec<u8>>,
}

/// An artifact manifest: `layer` attached to the image `subject` as
/// `artifact_type`, with manifest `annotations`.
pub fn artifact(
    subject: &Descriptor,
    artifact_type: &str,
    layer: &Blob,
    annotations: &BTreeMap<String, String>,
) -> Result<Artifact> {
    check_media_type(artifact_type, "artifact type")?;
    check_media_type(&layer.media_type, "media type")?;
    if !is_manifest(&subject.media_type) && !crate::descriptor::is_index(&subject.media_type) {
        return Err(Error::unsupported(format!(
            "{}: attachments refer to an image manifest or index, not a {:?}",
            subject.digest, subject.media_type
        )));
    }
    let subject_desc = Descriptor::new(&subject.media_type, subject.digest, subject.size);
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject_desc,
    });
    if !annotations.is_empty() {
        m["annotations"] = json!(annotations);
    }
    let manifest = json::to_canonical(&m);
    let mut descriptor =
        Descriptor::new(OCI_MANIFEST, Digest::of(&manifest), manifest.len() as u64);
    descriptor
        .extra
        .insert(ARTIFACT_TYPE.into(), json!(artifact_type));
    descriptor.annotations = annotations.clone();
    Ok(Artifact {
        manifest,
        descriptor,
        blobs: vec![EMPTY_JSON.to_vec(), layer.bytes.clone()],
    })
}

/// A media type a user gave: `type/subtype`, printable, no spaces.
fn check_media_type(mt: &str, what: &str) -> Result<()> {
    let ok = mt.len() <= 255
        && mt
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && mt.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {mt:?}: expected a media type, e.g. application/spdx+json"
        )))
    }
}

/// An attachment found in a layout.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Its `index.json` entry.
    pub descriptor: Descriptor,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The artifact type (a referrer), or `None` for a cosign `.sig` tag manifest.
    pub artifact_type: Option<String>,
}

impl Attachment {
    /// The artifact type to show: the manifest's, else cosign's signature type.
    pub fn kind(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(crate::attachment::COSIGN_SIGNATURE_TAG_TYPE)
    }
}

/// The attachments of the image `subject` in `layout`, in `index.json` order.
pub fn attachments(layout: &Layout, subject: &Digest) -> Result<Vec<Attachment>> {
    let sig_tag = signature_tag(subject);
    let mut out = Vec::new();
    // Marked entries, and manifests with a `subject` listed unmarked by another tool.
    let images: Vec<Digest> = layout.images().iter().map(|d| d.digest).collect();
    let listed = layout
        .index
        .manifests
        .iter()
        .filter(|d| is_attachment(d) || !images.contains(&d.digest));
    for d in listed {
        if out.len() >= MAX_REFERRERS {
            return Err(Error::corrupt(format!(
                "{}: more than {MAX_REFERRERS} attachments",
                layout.name("index.json")
            )));
        }
        let name = layout.name(&Layout::blob_name(&d.digest));
        let bytes = layout.read_json_blob(d)?;
        let manifest: Manifest = json::parse(&bytes, &name)?;
        let is_sig_tag = d.ref_name() == Some(sig_tag.as_str());
        if subject_of(&manifest) != Some(*subject) && !is_sig_tag {
            continue;
        }
        let artifact_type = artifact_type(&manifest.extra)
            .or_else(|| artifact_type(&d.extra))
            .map(str::to_string);
        out.push(Attachment {
            descriptor: d.clone(),
            manifest,
            artifact_type: if is_sig_tag { None } else { artifact_type },
        });
    }
    Ok(out)
}

/// Add `artifacts` to the layout directory `dir` (in place): blobs it lacks,
/// then `index.json` listing the images as before and the attachments in
/// digest order. An entry with the same ref name as a new one (a cosign
/// `.sig` manifest re-made) is replaced.
pub fn add_to_layout(dir: &Utf8Path, artifacts: &[Artifact]) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(format!("opening {dir}"), &e))?;
    if !meta.is_dir() {
        return Err(Error::unsupported(format!(
            "{dir}: attachments are added to a layout directory, not an archive"
        )));
    }
    let layout = Layout::open(dir)?;
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).map_err(|e| Error::io(format!("writing {blob_dir}"), &e))?;
    for a in artifacts {
        for bytes in a.blobs.iter().chain(std::iter::once(&a.manifest)) {
            let path = blob_dir.join(Digest::of(bytes).hex());
            // An existing blob is kept only when its bytes are right.
            if std::fs::read(&path).is_ok_and(|have| have == *bytes) {
                continue;
            }
            crate::output::write_file(&path, bytes)?;
        }
    }
    let mut index = layout.index.clone();
    let new_refs: Vec<&str> = artifacts
        .iter()
        .filter_map(|a| a.descriptor.ref_name())
        .collect();
    index
        .manifests
        .retain(|d| !(is_attachment(d) && d.ref_name().is_some_and(|r| new_refs.contains(&r))));
    index
        .manifests
        .extend(artifacts.iter().map(|a| a.descriptor.clone()));
    index.manifests = ordered(index.manifests);
    crate::output::write_file(&dir.join("index.json"), &json::to_canonical(&index))
}

/// Images first (as they were), then attachments by digest, each once.
pub(crate) fn ordered(entries: Vec<Descriptor>) -> Vec<Descriptor> {
    let (mut images, attached): (Vec<Descriptor>, Vec<Descriptor>) =
        entries.into_iter().partition(|d| !is_attachment(d));
    // Why a map by digest: the order of `strata attach` runs must not show.
    let by_digest: BTreeMap<Digest, Descriptor> =
        attached.into_iter().map(|d| (d.digest, d)).collect();
    images.extend(by_digest.into_values());
    images
}

/// The referrers tag schema index (`existing`, if the registry had one)
/// with `add` listed: each manifest once, in digest order.
pub fn merge_referrers_index(existing: Option<Index>, add: &[Descriptor]) -> Index {
    let mut idx = existing.unwrap_or_else(|| Index::new(Vec::new()));
    let mut by_digest: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    for d in idx.manifests.drain(..).chain(add.iter().cloned()) {
        by_digest.insert(d.digest, d);
    }
    idx.manifests = by_digest.into_values().collect();
    idx.media_type = Some(crate::descriptor::OCI_INDEX.to_string());
    idx
}

/// Parse a referrers list (the referrers API's answer or the tag schema's
/// index) from an untrusted registry: bounded size and depth, at most
/// [`MAX_REFERRERS`] entries, only image manifests naming `subject`'s
/// referrers kept (other entries are skipped, not trusted).
pub fn parse_referrers_list(bytes: &[u8], what: &str) -> Result<Vec<Descriptor>> {
    let idx: Index = json::parse(bytes, what)?;
    if idx.manifests.len() > MAX_REFERRERS {
        return Err(Error::corrupt(format!(
            "{what}: lists {} referrers, more than the limit of {MAX_REFERRERS}",
            idx.manifests.len()
        )));
    }
    Ok(idx
        .manifests
        .into_iter()
        .filter(|d| is_manifest(&d.media_type))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn image() -> Descriptor {
        Descriptor::new(OCI_MANIFEST, Digest::of(b"m"), 1)
    }

    #[test]
    fn empty_descriptor_is_the_specs() {
        let d = empty_descriptor();
        assert_eq!(
            d.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.size, 2);
    }

    #[test]
    fn artifacts_are_deterministic_and_typed() {
        let b = Blob {
            media_type: "application/spdx+json".into(),
            bytes: b"{}".to_vec(),
            annotations: BTreeMap::new(),
        };
        let a = artifact(&image(), "application/spdx+json", &b, &BTreeMap::new()).unwrap();
        let a2 = artifact(&image(), "application/spdx+json", &b, &BTreeMap::new()).unwrap();
        assert_eq!(a.manifest, a2.manifest);
        let m: Manifest = json::parse(&a.manifest, "m").unwrap();
        assert_eq!(subject_of(&m), Some(image().digest));
        assert!(is_attachment(&a.descriptor));
        assert!(artifact(&image(), "no type", &b, &BTreeMap::new()).is_err());
    }

    #[test]
    fn cosign_tags() {
        let d = Digest::of(b"x");
        assert!(is_cosign_tag(&signature_tag(&d)));
        assert!(!is_cosign_tag(&referrers_tag(&d)));
        assert!(!is_cosign_tag("sha256-abc.sig"));
    }

    #[test]
    fn referrers_index_is_ordered_and_deduplicated() {
        let a = Descriptor::new(OCI_MANIFEST, Digest::of(b"a"), 1);
        let b = Descriptor::new(OCI_MANIFEST, Digest::of(b"b"), 1);
        let one = merge_referrers_index(None, &[b.clone(), a.clone()]);
        let two = merge_referrers_index(
            Some(merge_referrers_index(None, std::slice::from_ref(&a))),
            &[b, a],
        );
        assert_eq!(json::to_canonical(&one), json::to_canonical(&two));
        assert_eq!(one.manifests.len(), 2);
    }

    #[test]
    fn hostile_referrers_lists_are_refused() {
        let many: Vec<Value> = (0..=MAX_REFERRERS)
            .map(|i| json!({"mediaType": OCI_MANIFEST, "digest": Digest::of(&[i as u8, (i >> 8) as u8]), "size": 1}))
            .collect();
        let body = json::to_canonical(&json!({"schemaVersion": 2, "manifests": many}));
        let e = parse_referrers_list(&body, "r").unwrap_err().to_string();
        assert!(e.contains("more than the limit"), "{e}");
        let deep = "[".repeat(100);
        assert!(parse_referrers_list(deep.as_bytes(), "r").is_err());
        assert!(parse_referrers_list(b"{\"manifests\": 3}", "r").is_err());
        let odd = br#"{"schemaVersion":2,"manifests":[{"mediaType":"text/plain","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
        assert!(parse_referrers_list(odd, "r").unwrap().is_empty());
    }
}
