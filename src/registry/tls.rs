//! TLS for registry connections: Mozilla's roots plus certificates a user
//! trusts, read from PEM files.
//!
//! Invariants: certificates are always verified (there is no switch to turn
//! verification off; plain HTTP is a separate, explicit choice); a malformed
//! or empty PEM file is refused when it is read, never skipped later.

use crate::error::{Error, Result};

/// Mozilla's roots plus `extra` (certificates a user trusts); certificates
/// are always verified.
pub(super) fn tls_config(extra: &[Vec<u8>]) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra {
        // Why ignore a bad one here: `parse_pem_certs` already refused malformed files.
        let _ = roots.add(rustls::pki_types::CertificateDer::from(der.clone()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(cfg)
}

/// The certificates of a PEM file (`--ca-cert`), as DER.
pub fn parse_pem_certs(path: &camino::Utf8Path) -> Result<Vec<Vec<u8>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {path}"), &e))?;
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid(format!("{path}: not a PEM certificate file")))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "{path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    for (i, c) in certs.iter().enumerate() {
        let mut store = rustls::RootCertStore::empty();
        store
            .add(CertificateDer::from(c.clone()))
            .map_err(|e| Error::invalid(format!("{path}: certificate {}: {e}", i + 1)))?;
    }
    Ok(certs)
}
