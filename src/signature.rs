//! Image signatures in cosign's format, and their verification.
//!
//! A signature signs a *simple signing* payload naming the image manifest
//! digest (`{"critical":{"identity":{"docker-reference":…},"image":
//! {"docker-manifest-digest":…},"type":"cosign container image
//! signature"},"optional":null}`); the payload is a blob of media type
//! [`SIMPLE_SIGNING_MEDIA_TYPE`] whose descriptor carries the base64 DER
//! signature in the [`SIGNATURE_ANNOTATION`] annotation. It is attached twice:
//! as an OCI 1.1 referrer (artifact type [`SIGNATURE_ARTIFACT_TYPE`]) and as
//! the manifest cosign looks for under the tag `sha256-<hex>.sig`.
//!
//! Invariants: the payload is canonical JSON (the field order cosign's Go
//! structs give is the sorted order) and signing is deterministic, so the
//! same image, identity and key give the same signature manifests. A
//! signature verifies only when the DER signature checks with the key over
//! the exact payload bytes *and* the payload names this image's digest.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

pub use crate::attachment::COSIGN_SIGNATURE_TAG_TYPE;
use crate::descriptor::{Descriptor, Manifest, ANNOTATION_REF_NAME, OCI_CONFIG, OCI_MANIFEST};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json;
use crate::layout::Layout;
use crate::referrer::{self, Artifact, Blob};
use crate::signing_key::{Signer, VerifyingKey};

/// The media type of cosign's simple signing payload.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact type of a signature referrer (cosign's OCI 1.1 mode).
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `type` of a cosign container image signature payload.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// The timestamp go-containerregistry's empty image carries (Go's zero time).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The simple signing payload for the image `image`, claimed for `identity`
/// (the repository, e.g. `registry.example/app`; may be empty).
pub fn payload(image: &Digest, identity: &str) -> Vec<u8> {
    json::to_canonical(&json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": image},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    }))
}

/// Sign the image `image` (its manifest descriptor): the referrer and the
/// `.sig` tag manifest, in that order.
pub fn sign(image: &Descriptor, identity: &str, signer: &dyn Signer) -> Result<Vec<Artifact>> {
    let payload = payload(&image.digest, identity);
    let der = signer.sign(&payload)?;
    let layer = Blob {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        bytes: payload,
        annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), BASE64.encode(der))]),
    };
    let referrer = referrer::artifact(image, SIGNATURE_ARTIFACT_TYPE, &layer, &BTreeMap::new())?;
    Ok(vec![referrer, tag_manifest(&image.digest, &layer)])
}

/// cosign's `.sig` manifest: a config like go-containerregistry's empty
/// image with the payload as its one layer, listed under the tag.
fn tag_manifest(image: &Digest, layer: &Blob) -> Artifact {
    let ld = layer.descriptor();
    // Why fixed fields: the config must be a function of the payload only.
    let config = json::to_canonical(&json!({
        "architecture": "",
        "config": {},
        "created": ZERO_TIME,
        "history": [{"created": ZERO_TIME}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [ld.digest]},
    }));
    let cd = Descriptor::new(OCI_CONFIG, Digest::of(&config), config.len() as u64);
    let manifest = json::to_canonical(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": cd,
        "layers": [ld],
    }));
    let mut descriptor =
        Descriptor::new(OCI_MANIFEST, Digest::of(&manifest), manifest.len() as u64);
    descriptor
        .annotations
        .insert(ANNOTATION_REF_NAME.into(), referrer::signature_tag(image));
    Artifact {
        manifest,
        descriptor,
        blobs: vec![config, layer.bytes.clone()],
    }
}

/// What [`verify_attached`] checked.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Image signatures that verified (referrers and `.sig` manifests).
    pub signatures: usize,
    /// DSSE envelopes that verified.
    pub envelopes: usize,
}

/// Check every signature and DSSE envelope attached to the image `image` of
/// `layout` with `key`: each must verify, and at least one signature must
/// be there.
pub fn verify_attached(layout: &Layout, image: &Descriptor, key: &VerifyingKey) -> Result<Checked> {
    let mut checked = Checked::default();
    for a in referrer::attachments(layout, &image.digest)? {
        let kind = a.artifact_type.as_deref();
        for l in &a.manifest.layers {
            let name = layout.name(&Layout::blob_name(&l.digest));
            if l.media_type == SIMPLE_SIGNING_MEDIA_TYPE
                && matches!(kind, None | Some(SIGNATURE_ARTIFACT_TYPE))
            {
                let payload = layout.read_json_blob(l)?;
                check_signature(&payload, l, &image.digest, key, &name)?;
                checked.signatures += 1;
            } else if l.media_type == crate::envelope::DSSE_MEDIA_TYPE {
                let bytes = layout.read_json_blob(l)?;
                crate::envelope::verify(&bytes, &image.digest, key, &name)?;
                checked.envelopes += 1;
            }
        }
    }
    if checked.signatures == 0 {
        return Err(Error::invalid(format!(
            "{}: image {} has no signature attached (strata sign adds one)",
            layout.path(),
            image.digest
        )));
    }
    Ok(checked)
}

/// Check one simple signing payload and the signature its descriptor carries.
pub fn check_signature(
    payload: &[u8],
    desc: &Descriptor,
    image: &Digest,
    key: &VerifyingKey,
    name: &str,
) -> Result<()> {
    let sig = desc
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| Error::corrupt(format!("{name}: no {SIGNATURE_ANNOTATION} annotation")))?;
    let der = BASE64
        .decode(sig.trim())
        .map_err(|_| Error::corrupt(format!("{name}: the signature annotation is not base64")))?;
    if !key.verify(payload, &der) {
        return Err(Error::invalid(format!(
            "{name}: the signature does not verify with the given key (wrong key, or the payload was altered)"
        )));
    }
    let v: Value = json::parse(payload, name)?;
    let names = v
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str);
    if v.pointer("/critical/type").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(Error::corrupt(format!(
            "{name}: not a cosign container image signature payload"
        )));
    }
    if names != Some(image.to_string().as_str()) {
        return Err(Error::invalid(format!(
            "{name}: the signature is for {}, not for image {image}",
            names.unwrap_or("no image")
        )));
    }
    Ok(())
}

/// The signature layers of a cosign `.sig` or referrer manifest `m`.
pub fn signature_layers(m: &Manifest) -> impl Iterator<Item = &Descriptor> {
    m.layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing_key::SigningKey;

    fn key() -> SigningKey {
        let pem = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIETFj1Hi86qE39mxVW4jtvFoAPFVFiHO6sQpCprzuTzPoAoGCCqGSM49
AwEHoUQDQgAE6guJaMBw6xqUhcSOnlaQRQiL3n8+JcNa/XQmGXWDBId5TIQLHy1A
gm7pdIcY8M8iBQiyr7VdO9fWTZb8n5PnFA==
-----END EC PRIVATE KEY-----
";
        SigningKey::from_pem(pem.as_bytes(), "k.pem").unwrap()
    }

    #[test]
    fn payload_is_cosigns() {
        let d = Digest::of(b"m");
        let p = String::from_utf8(payload(&d, "r/app")).unwrap();
        assert_eq!(
            p,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
    }

    #[test]
    fn signatures_check_key_payload_and_image() {
        let k = key();
        let img = Descriptor::new(OCI_MANIFEST, Digest::of(b"m"), 1);
        let arts = sign(&img, "r/app", &k).unwrap();
        assert_eq!(arts.len(), 2);
        assert_eq!(
            arts[0].manifest,
            sign(&img, "r/app", &k).unwrap()[0].manifest
        );
        let m: Manifest = json::parse(&arts[0].manifest, "m").unwrap();
        let l = signature_layers(&m).next().unwrap();
        let p = payload(&img.digest, "r/app");
        let pubk = k.verifying_key();
        check_signature(&p, l, &img.digest, &pubk, "p").unwrap();
        let mut bad = p.clone();
        bad[10] ^= 1;
        let e = check_signature(&bad, l, &img.digest, &pubk, "p").unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        let other = Digest::of(b"other");
        let e = check_signature(&p, l, &other, &pubk, "p").unwrap_err();
        assert!(e.to_string().contains("not for image"), "{e}");
    }
}
