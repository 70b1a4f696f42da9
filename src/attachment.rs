//! What marks an entry of a layout's `index.json` (or a manifest) as an
//! attachment — an OCI 1.1 referrer or a cosign `.sig`/`.att`/`.sbom` tag
//! manifest — rather than an image. Pure functions on descriptors and
//! manifests: `layout` uses them to skip attachments when it picks "the
//! image", `referrer` and `signature` to list and write them; so this module
//! sits below all three (no import circle).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::descriptor::{Descriptor, Manifest};
use crate::digest::Digest;

/// The descriptor field naming an artifact's type.
pub const ARTIFACT_TYPE: &str = "artifactType";
/// The manifest field naming the manifest an artifact refers to.
pub const SUBJECT: &str = "subject";

/// What `strata inspect` calls a cosign `.sig` tag manifest (it has no artifact type).
pub const COSIGN_SIGNATURE_TAG_TYPE: &str = "cosign-signature-tag";

/// Whether `tag` is a cosign-style tag (`sha256-<64 hex>.sig|.att|.sbom`).
pub fn is_cosign_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(suffix, "sig" | "att" | "sbom")
}

/// Whether a top-level `index.json` entry is an attachment, not an image.
pub fn is_attachment(d: &Descriptor) -> bool {
    d.extra.contains_key(ARTIFACT_TYPE) || d.ref_name().is_some_and(is_cosign_tag)
}

/// The `artifactType` of a descriptor or manifest's extra fields.
pub fn artifact_type(extra: &BTreeMap<String, Value>) -> Option<&str> {
    extra.get(ARTIFACT_TYPE).and_then(Value::as_str)
}

/// The digest a manifest's `subject` names, if it has one.
pub fn subject_of(m: &Manifest) -> Option<Digest> {
    m.extra
        .get(SUBJECT)
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .and_then(|s| Digest::parse(s).ok())
}
