//! ECDSA P-256 keys: the private key that signs and the public key that
//! verifies image signatures and attestation envelopes.
//!
//! Private keys are read from PEM, PKCS#8 (`BEGIN PRIVATE KEY`, what
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes)
//! or SEC1 (`BEGIN EC PRIVATE KEY`); public keys from PEM SPKI
//! (`BEGIN PUBLIC KEY`, what `openssl pkey -pubout` and cosign write).
//! Signatures are ASN.1 DER over SHA-256 of the data, as cosign and
//! securesystemslib write them. Invariants: key bytes never appear in an
//! error or in any output (errors name the file and the problem only; the
//! secret is zeroized on drop by `p256`), and signing is deterministic
//! (RFC 6979 nonces): the same data and key give the same signature bytes.

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

use crate::error::{Error, Result};

/// Largest key file strata reads (a P-256 PEM is ~250 bytes).
pub const MAX_KEY_BYTES: usize = 64 << 10;

/// Something that signs bytes: a private key here, or an external signer
/// (a KMS, cosign, notation) the caller runs.
pub trait Signer {
    /// The ASN.1 DER ECDSA signature over SHA-256 of `data`.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>>;
}

/// An ECDSA P-256 private key.
pub struct SigningKey(p256::ecdsa::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Why: a key must never reach a log through `{:?}`.
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Read a PEM private key (PKCS#8 or SEC1); `name` is the file, for errors.
    pub fn from_pem(pem: &[u8], name: &str) -> Result<SigningKey> {
        let text = key_text(pem, name)?;
        let secret = if text.contains("-----BEGIN PRIVATE KEY-----") {
            p256::SecretKey::from_pkcs8_pem(text).map_err(|_| {
                Error::invalid(format!(
                    "{name}: not an ECDSA P-256 private key (PKCS#8 PEM that does not parse, or another algorithm or curve)"
                ))
            })?
        } else if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(text).map_err(|_| {
                Error::invalid(format!(
                    "{name}: not an ECDSA P-256 private key (SEC1 PEM that does not parse, or another curve)"
                ))
            })?
        } else if text.contains("ENCRYPTED PRIVATE KEY") {
            return Err(Error::unsupported(format!(
                "{name}: an encrypted private key; decrypt it first (openssl pkey -in KEY -out PLAIN) or sign with an external signer"
            )));
        } else {
            return Err(Error::invalid(format!(
                "{name}: no PEM private key (expected BEGIN PRIVATE KEY or BEGIN EC PRIVATE KEY)"
            )));
        };
        Ok(SigningKey(p256::ecdsa::SigningKey::from(secret)))
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(*self.0.verifying_key())
    }
}

impl Signer for SigningKey {
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        // Why RFC 6979 (p256's `Signer`): the nonce comes from key and data,
        // so the signature bytes are a function of the inputs.
        let sig: Signature = self.0.sign(data);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// An ECDSA P-256 public key.
#[derive(Debug, Clone)]
pub struct VerifyingKey(p256::ecdsa::VerifyingKey);

impl VerifyingKey {
    /// Read a PEM public key (SPKI); `name` is the file, for errors.
    pub fn from_pem(pem: &[u8], name: &str) -> Result<VerifyingKey> {
        let text = key_text(pem, name)?;
        if !text.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(Error::invalid(format!(
                "{name}: no PEM public key (expected BEGIN PUBLIC KEY; `openssl pkey -in KEY -pubout` writes one)"
            )));
        }
        let key = p256::PublicKey::from_public_key_pem(text).map_err(|_| {
            Error::invalid(format!(
                "{name}: not an ECDSA P-256 public key (SPKI PEM that does not parse, or another algorithm or curve)"
            ))
        })?;
        Ok(VerifyingKey(key.into()))
    }

    /// Whether `der` is a valid signature by this key over `data`.
    pub fn verify(&self, data: &[u8], der: &[u8]) -> bool {
        match Signature::from_der(der) {
            Ok(sig) => self.0.verify(data, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// Check that `der` is an ASN.1 DER ECDSA P-256 signature (what an external
/// signer must return); returns it normalized to DER.
pub fn check_der_signature(der: &[u8]) -> Result<Vec<u8>> {
    let sig = DerSignature::try_from(der)
        .map_err(|_| Error::invalid("the signature is not an ASN.1 DER ECDSA P-256 signature"))?;
    Ok(sig.as_bytes().to_vec())
}

fn key_text<'a>(pem: &'a [u8], name: &str) -> Result<&'a str> {
    if pem.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!(
            "{name}: larger than the {MAX_KEY_BYTES} byte limit for a key file"
        )));
    }
    std::str::from_utf8(pem)
        .map_err(|_| Error::invalid(format!("{name}: not a PEM file (not text)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway test key (generated for these tests only).
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRMWPUeLzqoTf2bFV
biO28WgA8VUWIc7qxCkKmvO5PM+hRANCAATqC4lowHDrGpSFxI6eVpBFCIvefz4l
w1r9dCYZdYMEh3lMhAsfLUCCbul0hxjwzyIFCLKvtV0719ZNlvyfk+cU
-----END PRIVATE KEY-----
";

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let k = SigningKey::from_pem(PKCS8.as_bytes(), "k.pem").unwrap();
        let a = k.sign(b"payload").unwrap();
        assert_eq!(a, k.sign(b"payload").unwrap());
        let pubk = k.verifying_key();
        assert!(pubk.verify(b"payload", &a));
        assert!(!pubk.verify(b"payloae", &a));
        assert!(!pubk.verify(b"payload", &a[1..]));
        assert!(check_der_signature(&a).is_ok());
        assert!(check_der_signature(b"nonsense").is_err());
        assert!(format!("{k:?}") == "SigningKey(..)");
    }

    #[test]
    fn bad_keys_are_one_line_errors_without_key_bytes() {
        let e = SigningKey::from_pem(b"hello", "k.pem")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("k.pem: no PEM private key"), "{e}");
        let bogus = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = SigningKey::from_pem(bogus.as_bytes(), "k.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not an ECDSA P-256 private key") && !e.contains("AAAA"),
            "{e}"
        );
        let e = VerifyingKey::from_pem(PKCS8.as_bytes(), "p.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no PEM public key") && !e.contains("MIGH"),
            "{e}"
        );
    }
}
