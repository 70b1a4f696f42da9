//! DSSE envelopes around in-toto statements: attestations about an image.
//!
//! An envelope is `{"payload": base64, "payloadType":
//! "application/vnd.in-toto+json", "signatures": [{"keyid": "", "sig":
//! base64 DER}]}`; the signature is over the DSSE pre-authentication encoding
//! ([`pae`]: `DSSEv1 <len> <type> <len> <payload>`), never over the bare
//! payload. The envelope is attached to the image as an OCI 1.1 referrer of
//! artifact type [`DSSE_MEDIA_TYPE`].
//!
//! Invariants: the statement's bytes are carried as given (its digest is
//! what was signed); the statement must name the image manifest digest among
//! its subjects, so an attestation cannot be moved to another image; the
//! envelope is canonical JSON and signing is deterministic. `keyid` is empty
//! (as cosign writes it): the key is chosen by the verifier, not the envelope.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json;
use crate::referrer::{self, Artifact, Blob};
use crate::signing_key::{Signer, VerifyingKey};

/// The media type (and artifact type) of a DSSE envelope.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The layer annotation naming the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// Most signatures strata reads from one envelope.
const MAX_SIGNATURES: usize = 64;

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The payload, base64.
    pub payload: String,
    /// What the payload is.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signatures over [`pae`] of type and payload.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Key hint (strata writes it empty).
    #[serde(default)]
    pub keyid: String,
    /// The signature, base64 of DER.
    pub sig: String,
}

/// The DSSE v1 pre-authentication encoding of `payload` of `payload_type`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Seal `payload` of `payload_type` in an envelope signed by `signer`.
pub fn seal(payload_type: &str, payload: &[u8], signer: &dyn Signer) -> Result<Envelope> {
    let der = signer.sign(&pae(payload_type, payload))?;
    Ok(Envelope {
        payload: BASE64.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: BASE64.encode(der),
        }],
    })
}

/// The statement's predicate type, after checking that `statement` is an
/// in-toto Statement naming `image` among its subjects.
pub fn check_statement(statement: &[u8], image: &Digest, what: &str) -> Result<String> {
    let v: Value = json::parse(statement, what)?;
    let ty = v.get("_type").and_then(Value::as_str).unwrap_or_default();
    if !ty.starts_with("https://in-toto.io/Statement/") {
        return Err(Error::invalid(format!(
            "{what}: not an in-toto Statement (_type {ty:?})"
        )));
    }
    let names_image = v
        .get("subject")
        .and_then(Value::as_array)
        .is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s.pointer("/digest/sha256").and_then(Value::as_str) == Some(image.hex().as_str())
            })
        });
    if !names_image {
        return Err(Error::invalid(format!(
            "{what}: no subject of the statement has the image's digest sha256:{}",
            image.hex()
        )));
    }
    Ok(v.get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// Attest `statement` (an in-toto Statement naming the image) about the
/// image `image`: a signed envelope, as a referrer.
pub fn attest(
    image: &Descriptor,
    statement: &[u8],
    what: &str,
    signer: &dyn Signer,
) -> Result<Artifact> {
    let predicate = check_statement(statement, &image.digest, what)?;
    let env = seal(IN_TOTO_PAYLOAD_TYPE, statement, signer)?;
    let mut annotations = BTreeMap::new();
    if !predicate.is_empty() {
        annotations.insert(PREDICATE_TYPE_ANNOTATION.to_string(), predicate);
    }
    let layer = Blob {
        media_type: DSSE_MEDIA_TYPE.into(),
        bytes: json::to_canonical(&env),
        annotations,
    };
    referrer::artifact(image, DSSE_MEDIA_TYPE, &layer, &BTreeMap::new())
}

/// Check the envelope `bytes` (untrusted): parsed with limits, at least one
/// signature verifies with `key` over the PAE, and its statement names the
/// image. Returns the statement.
pub fn verify(bytes: &[u8], image: &Digest, key: &VerifyingKey, what: &str) -> Result<Vec<u8>> {
    let env: Envelope = json::parse(bytes, what)?;
    if env.signatures.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: the envelope has no signature"
        )));
    }
    if env.signatures.len() > MAX_SIGNATURES {
        return Err(Error::corrupt(format!(
            "{what}: more than {MAX_SIGNATURES} signatures"
        )));
    }
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Error::unsupported(format!(
            "{what}: payload type {:?} (expected {IN_TOTO_PAYLOAD_TYPE})",
            env.payload_type
        )));
    }
    let payload = BASE64
        .decode(env.payload.as_bytes())
        .map_err(|_| Error::corrupt(format!("{what}: the payload is not base64")))?;
    let signed = pae(&env.payload_type, &payload);
    let ok = env.signatures.iter().any(|s| {
        BASE64
            .decode(s.sig.as_bytes())
            .is_ok_and(|der| key.verify(&signed, &der))
    });
    if !ok {
        return Err(Error::invalid(format!(
            "{what}: no signature of the envelope verifies with the given key (wrong key, or the statement was altered)"
        )));
    }
    check_statement(&payload, image, what)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::OCI_MANIFEST;
    use crate::signing_key::SigningKey;

    #[test]
    fn pae_is_dsse_v1() {
        // The example of the DSSE specification (protocol.md).
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelopes_verify_and_refuse_tampering() {
        let k = SigningKey::from_pem(
            include_str!("signing_key.rs")
                .split("const PKCS8: &str = \"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap()
                .as_bytes(),
            "k.pem",
        )
        .unwrap();
        let img = Descriptor::new(OCI_MANIFEST, Digest::of(b"m"), 1);
        let st = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{{}}}}"#,
            img.digest.hex()
        );
        let a = attest(&img, st.as_bytes(), "st.json", &k).unwrap();
        let env_bytes = &a.blobs[1];
        let pubk = k.verifying_key();
        assert_eq!(
            verify(env_bytes, &img.digest, &pubk, "e").unwrap(),
            st.as_bytes()
        );
        let mut env: Envelope = json::parse(env_bytes, "e").unwrap();
        let mut p = BASE64.decode(&env.payload).unwrap();
        p[5] ^= 1;
        env.payload = BASE64.encode(&p);
        let e = verify(&json::to_canonical(&env), &img.digest, &pubk, "e").unwrap_err();
        assert!(e.to_string().contains("no signature"), "{e}");
        let other = Descriptor::new(OCI_MANIFEST, Digest::of(b"n"), 1);
        assert!(attest(&other, st.as_bytes(), "st.json", &k).is_err());
        assert!(verify(b"{\"payload\":1}", &img.digest, &pubk, "e").is_err());
    }
}
