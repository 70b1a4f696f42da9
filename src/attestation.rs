//! An attested image: a layout holding an image plus its SBOM and SLSA
//! provenance as OCI 1.1 referrers, made in one step from a layout that is
//! left untouched (a build action's input is read-only; its output is new).
//!
//! [`attested`] plans the new layout: every blob the source's `index.json`
//! reaches (images, indexes, existing attachments; a shallow layout's remote
//! blobs stay remote), the attachment manifests and their blobs, and an
//! `index.json` listing the source's entries then the attachments in digest
//! order (as `strata attach` in place orders them). [`crate::layout::LayoutPlan::write_dir`]
//! writes it atomically.
//!
//! Invariants: the documents are those `strata sbom` and `strata provenance`
//! write for the same image and options (same bytes), each attached with the
//! artifact type a registry's referrers list shows ([`SPDX_ARTIFACT_TYPE`],
//! [`CYCLONEDX_ARTIFACT_TYPE`], [`PROVENANCE_ARTIFACT_TYPE`]); the
//! attachment manifests are canonical JSON with no annotation that depends
//! on anything but the document, so the same image and options give the
//! same layout bytes, `index.json` included, whichever front end calls it.

use std::collections::BTreeMap;

use crate::descriptor::{Descriptor, Manifest};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json;
use crate::layout::{Image, Layout, LayoutPlan};
use crate::media_type::{is_index, is_manifest};
use crate::provenance::{statement, ProvenanceOptions, PREDICATE_TYPE};
use crate::referrer::{artifact, Artifact, Blob};
use crate::sbom::{cyclonedx, describe, spdx, DescribeOptions, Sbom};

/// Artifact type (and blob media type) of an attached SPDX 2.3 JSON SBOM.
pub const SPDX_ARTIFACT_TYPE: &str = "application/spdx+json";
/// Artifact type (and blob media type) of an attached CycloneDX JSON SBOM.
pub const CYCLONEDX_ARTIFACT_TYPE: &str = "application/vnd.cyclonedx+json";
/// Artifact type (and blob media type) of an attached in-toto statement
/// (unsigned; `strata attest` attaches signed ones as DSSE envelopes).
pub const PROVENANCE_ARTIFACT_TYPE: &str = crate::envelope::IN_TOTO_PAYLOAD_TYPE;

/// Deepest nesting of indexes followed when collecting blobs.
const MAX_DEPTH: usize = 4;

/// The SBOM format to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    CycloneDx,
}

impl SbomFormat {
    /// `spdx` or `cyclonedx`.
    pub fn parse(s: &str) -> Result<SbomFormat> {
        match s {
            "spdx" => Ok(SbomFormat::Spdx),
            "cyclonedx" => Ok(SbomFormat::CycloneDx),
            _ => Err(Error::invalid(format!(
                "SBOM format {s:?}: expected spdx or cyclonedx"
            ))),
        }
    }

    /// The artifact type it is attached as.
    pub fn artifact_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => SPDX_ARTIFACT_TYPE,
            SbomFormat::CycloneDx => CYCLONEDX_ARTIFACT_TYPE,
        }
    }
}

/// What to attach.
#[derive(Debug, Clone, Default)]
pub struct AttestOptions {
    /// The SBOM formats to attach (each once).
    pub sbom: Vec<SbomFormat>,
    /// How to describe the image in the SBOM.
    pub describe: DescribeOptions,
    /// Attach a SLSA v1 provenance statement made with these options.
    pub provenance: Option<ProvenanceOptions>,
}

/// The documents made for one image, and their attachments.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The new layout: the source's blobs, the attachments, `index.json`.
    pub plan: LayoutPlan,
    /// The attachments, in the order the options name them (SBOMs, then
    /// provenance), each with the document it attaches as its second blob.
    pub artifacts: Vec<Artifact>,
}

impl SbomFormat {
    /// The document bytes `sbom` gives in this format.
    pub fn write(self, sbom: &Sbom) -> Vec<u8> {
        match self {
            SbomFormat::Spdx => spdx::write(sbom),
            SbomFormat::CycloneDx => cyclonedx::write(sbom),
        }
    }
}

/// Plan `layout` with `image`'s SBOM(s) and provenance attached to it.
pub fn attested(layout: &Layout, image: &Image, opts: &AttestOptions) -> Result<Attested> {
    if opts.sbom.is_empty() && opts.provenance.is_none() {
        return Err(Error::invalid(format!(
            "{}: nothing to attach (no SBOM format, no provenance)",
            layout.path()
        )));
    }
    let subject = &image.manifest_desc;
    let mut artifacts = Vec::new();
    let mut formats: Vec<SbomFormat> = Vec::new();
    for f in &opts.sbom {
        if !formats.contains(f) {
            formats.push(*f);
        }
    }
    if !formats.is_empty() {
        // Why once: the inventory reads every layer; each format writes from it.
        let sbom = describe(layout, image, &opts.describe)?;
        for f in formats {
            artifacts.push(attach(
                subject,
                f.artifact_type(),
                f.write(&sbom),
                BTreeMap::new(),
            )?);
        }
    }
    if let Some(p) = &opts.provenance {
        let doc = statement(layout, image, p)?;
        // The predicate type, as `strata attest` and cosign annotate theirs.
        let ann = BTreeMap::from([(
            crate::envelope::PREDICATE_TYPE_ANNOTATION.to_string(),
            PREDICATE_TYPE.to_string(),
        )]);
        artifacts.push(attach(subject, PROVENANCE_ARTIFACT_TYPE, doc, ann)?);
    }
    let plan = with_artifacts(layout, &artifacts)?;
    Ok(Attested { plan, artifacts })
}

/// Plan a new layout: everything `layout`'s `index.json` reaches, plus
/// `artifacts`, listed after the source's entries in digest order.
pub fn with_artifacts(layout: &Layout, artifacts: &[Artifact]) -> Result<LayoutPlan> {
    let mut plan = LayoutPlan::default();
    for d in &layout.index.manifests {
        add_reachable(layout, d, &mut plan, 0)?;
    }
    for a in artifacts {
        for b in &a.blobs {
            plan.add_bytes(b.clone());
        }
        plan.add_bytes(a.manifest.clone());
    }
    let mut index = layout.index.clone();
    index
        .manifests
        .extend(artifacts.iter().map(|a| a.descriptor.clone()));
    index.manifests = crate::referrer::ordered(index.manifests);
    plan.index_json = json::to_canonical(&index);
    Ok(plan)
}

/// `doc` attached to `subject` as `artifact_type`, with manifest annotations `ann`.
fn attach(
    subject: &Descriptor,
    artifact_type: &str,
    doc: Vec<u8>,
    ann: BTreeMap<String, String>,
) -> Result<Artifact> {
    let blob = Blob {
        media_type: artifact_type.to_string(),
        bytes: doc,
        annotations: BTreeMap::new(),
    };
    artifact(subject, artifact_type, &blob, &ann)
}

/// Add the blob `d` names and, for a manifest or index, every blob it
/// references (recursively) to `plan`.
fn add_reachable(
    layout: &Layout,
    d: &Descriptor,
    plan: &mut LayoutPlan,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt(format!(
            "{}: indexes nested more than {MAX_DEPTH} deep",
            layout.name("index.json")
        )));
    }
    add_blob(layout, &d.digest, d.size, plan)?;
    if is_index(&d.media_type) {
        for child in layout.read_index(d)?.manifests {
            add_reachable(layout, &child, plan, depth + 1)?;
        }
    } else if is_manifest(&d.media_type) {
        let bytes = layout.read_json_blob(d)?;
        let m: Manifest = json::parse(&bytes, &layout.name(&Layout::blob_name(&d.digest)))?;
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            add_blob(layout, &b.digest, b.size, plan)?;
        }
    }
    Ok(())
}

fn add_blob(layout: &Layout, digest: &Digest, size: u64, plan: &mut LayoutPlan) -> Result<()> {
    if plan.blobs.contains_key(digest) {
        return Ok(());
    }
    let src = layout
        .blob(digest)
        .ok_or_else(|| Error::corrupt(format!("{}: blob {digest} is missing", layout.path())))?;
    plan.blobs.insert(*digest, (size, src));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_formats_and_their_artifact_types() {
        assert_eq!(
            SbomFormat::parse("spdx").unwrap().artifact_type(),
            SPDX_ARTIFACT_TYPE
        );
        assert_eq!(
            SbomFormat::parse("cyclonedx").unwrap().artifact_type(),
            CYCLONEDX_ARTIFACT_TYPE
        );
        let e = SbomFormat::parse("SPDX").unwrap_err().to_string();
        assert!(e.contains("expected spdx or cyclonedx"), "{e}");
    }
}
