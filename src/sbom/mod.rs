//! Software bills of materials (SPDX 2.3 and CycloneDX 1.6 JSON) of an
//! image, from what its layers hold.
//!
//! [`describe`] reads an image into an [`Sbom`]: the image itself (manifest
//! digest, name, platform, creation time, base image), its layers and the
//! packages of its final filesystem ([`inventory`]); [`spdx::write`] and
//! [`cyclonedx::write`] serialize it.
//!
//! Determinism (an SBOM is an output like a layer: same image, same bytes):
//! - no clock: the creation time is the config's `created` (normalized to
//!   whole seconds, UTC), else the time the caller passes (the CLI passes
//!   `SOURCE_DATE_EPOCH`, else 0);
//! - the SPDX `documentNamespace` and the CycloneDX `serialNumber` are
//!   name-based UUIDs (version 5) of the manifest digest, so rebuilding the
//!   same image gives the same document identity;
//! - every list is sorted (packages by [`Package::key`], files by path,
//!   layers in manifest order), maps are `BTreeMap`s, and the JSON is
//!   canonical ([`crate::json::to_canonical`]).

pub mod cyclonedx;
pub mod declared;
pub mod dpkg;
pub mod inventory;
pub mod package;
pub mod spdx;
pub mod store_path;

use sha1::{Digest as _, Sha1};

use crate::descriptor::{Descriptor, Platform, ANNOTATION_CONTAINERD_NAME};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::{Image, Layout};

pub use inventory::{take_inventory, FileRecord, Inventory, InventoryOptions, LayerRecord};
pub use package::{Package, PackageKind};

/// The annotation naming the digest of the image an image was built on.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// The annotation naming the image an image was built on.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// The tool name and version written into documents.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The image an image was built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// Its name (`registry/repo:tag`), when known.
    pub name: Option<String>,
    /// Its manifest digest.
    pub digest: Digest,
}

/// The image an SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The config blob's digest.
    pub config: Digest,
    /// The image's name (`name:tag`, as its layout records it), if any.
    pub name: Option<String>,
    /// The platform the config declares.
    pub platform: Platform,
    /// Creation time, RFC 3339 UTC in whole seconds.
    pub created: String,
    /// The base image, if known.
    pub base: Option<BaseImage>,
}

impl Subject {
    /// The name shown for the image: its name, else its manifest digest.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.manifest.digest.to_string())
    }

    /// `pkg:oci/NAME@sha256%3A…` (NAME: the last path segment of the
    /// repository, lowercase; `image` when unnamed).
    pub fn purl(&self) -> String {
        oci_purl(self.name.as_deref(), &self.manifest.digest)
    }
}

/// The purl of an OCI image by digest.
pub fn oci_purl(name: Option<&str>, digest: &Digest) -> String {
    let repo = name.map(strip_tag).unwrap_or("image");
    let last = repo.rsplit('/').next().unwrap_or(repo).to_lowercase();
    let last = if last.is_empty() {
        "image".into()
    } else {
        last
    };
    format!(
        "pkg:oci/{}@{}",
        package::purl_encode(&last),
        package::purl_encode(&digest.to_string())
    )
}

/// `registry/repo:tag` → `registry/repo` (a `:` after the last `/` is a tag).
fn strip_tag(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// An image and its inventory: everything a writer needs.
#[derive(Debug, Clone)]
pub struct Sbom {
    /// The image.
    pub subject: Subject,
    /// Its layers and packages.
    pub inventory: Inventory,
    /// Whether files were asked for (part of the document's identity).
    pub files: bool,
}

impl Sbom {
    /// A name-based UUID (RFC 9562 version 5, URL namespace) of the manifest
    /// digest, the document format and the options: the document's identity.
    pub fn uuid(&self, format: &str) -> String {
        let name = format!(
            "strata:sbom:{format}:{}{}",
            self.subject.manifest.digest,
            if self.files { ":files" } else { "" }
        );
        uuid_v5(&name)
    }
}

/// UUID version 5 of `name` in the RFC 4122 URL namespace.
pub fn uuid_v5(name: &str) -> String {
    // 6ba7b811-9dad-11d1-80b4-00c04fd430c8: the URL namespace.
    const URL_NS: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = Sha1::new();
    h.update(URL_NS);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// What [`describe`] needs beyond the image.
#[derive(Debug, Clone, Default)]
pub struct DescribeOptions {
    /// The image's name, when the caller knows it better than the layout.
    pub name: Option<String>,
    /// The base image, when the image's annotations do not record it.
    pub base: Option<BaseImage>,
    /// Seconds since the epoch used when the config has no `created`.
    pub fallback_time: u64,
    /// What to inventory.
    pub inventory: InventoryOptions,
    /// Packages the build declared, by layer diff_id.
    pub declared: declared::Declared,
}

/// The name a layout records for the image at `top`.
pub fn recorded_name(top: &Descriptor) -> Option<String> {
    top.annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .map(String::as_str)
        .or_else(|| top.ref_name())
        .map(str::to_string)
}

/// The base image the manifest's annotations record, if any.
pub fn recorded_base(image: &Image, what: &str) -> Result<Option<BaseImage>> {
    let a = &image.manifest.annotations;
    let Some(d) = a.get(ANNOTATION_BASE_DIGEST) else {
        return Ok(None);
    };
    let digest =
        Digest::parse(d).map_err(|e| e.context(format!("{what}: {ANNOTATION_BASE_DIGEST}")))?;
    Ok(Some(BaseImage {
        name: a.get(ANNOTATION_BASE_NAME).cloned(),
        digest,
    }))
}

/// The subject of `image`: name, platform, creation time, base.
pub fn subject(layout: &Layout, image: &Image, opts: &DescribeOptions) -> Result<Subject> {
    let cfg_name = layout.name(&Layout::blob_name(&image.manifest.config.digest));
    let created = match image.config.get("created") {
        None | Some(serde_json::Value::Null) => crate::image::rfc3339(opts.fallback_time),
        Some(v) => {
            let s = v
                .as_str()
                .ok_or_else(|| Error::corrupt(format!("{cfg_name}: created is not a string")))?;
            crate::image::rfc3339(crate::image::parse_rfc3339(s).ok_or_else(|| {
                Error::corrupt(format!(
                    "{cfg_name}: created {s:?} is not an RFC 3339 time after 1970"
                ))
            })?)
        }
    };
    let mname = layout.name(&Layout::blob_name(&image.manifest_desc.digest));
    let base = match &opts.base {
        Some(b) => Some(b.clone()),
        None => recorded_base(image, &mname)?,
    };
    Ok(Subject {
        manifest: Descriptor::new(
            &image.manifest_desc.media_type,
            image.manifest_desc.digest,
            image.manifest_desc.size,
        ),
        config: image.manifest.config.digest,
        name: opts.name.clone(),
        platform: image.platform(),
        created,
        base,
    })
}

/// Read `image` and take its inventory.
pub fn describe(layout: &Layout, image: &Image, opts: &DescribeOptions) -> Result<Sbom> {
    let subject = subject(layout, image, opts)?;
    let mut inventory = take_inventory(layout, image, opts.inventory)?;
    if !opts.declared.is_empty() {
        let what = layout.name(&Layout::blob_name(&image.manifest_desc.digest));
        let ids = image.diff_ids()?;
        inventory
            .packages
            .extend(declared::packages(&opts.declared, &ids, &what)?);
        // Same order rule as the inventory's: by key.
        inventory.packages.sort_by_key(|p| p.key());
    }
    Ok(Sbom {
        subject,
        inventory,
        files: opts.inventory.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_matches_the_rfc_example() {
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "https://example.com")
        assert_eq!(
            uuid_v5("https://example.com"),
            "4fd35a71-71ef-5a55-a9d9-aa75c889a6d0"
        );
    }

    #[test]
    fn oci_purls_use_the_last_repository_segment() {
        let d = Digest::of(b"x");
        let p = oci_purl(Some("registry.example:5000/team/App:1.0"), &d);
        assert_eq!(p, format!("pkg:oci/app@sha256%3A{}", d.hex()));
        assert!(oci_purl(None, &d).starts_with("pkg:oci/image@"));
    }
}
