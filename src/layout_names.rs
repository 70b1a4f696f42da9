//! The names inside an OCI image layout: the `oci-layout` file's contents
//! and where a blob lives (`blobs/<algorithm>/<hex>`).
//!
//! Invariants: names are a function of the digest only, so every writer and
//! reader (layouts, oci-archives, docker-archives) agrees on them.

use crate::digest::Digest;

/// The `oci-layout` file every layout carries.
pub const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The path of blob `d` inside a layout.
pub fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}
