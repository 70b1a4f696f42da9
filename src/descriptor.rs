//! OCI descriptors and platforms (media types: [`crate::media_type`]).
//!
//! Maps are `BTreeMap` (never `HashMap`), and unknown descriptor fields read
//! from other tools' manifests (`urls`, `data`, …) are kept in `extra` so a
//! base image's layer descriptors are carried over unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

// The media types moved to their own module; the old paths stay for callers.
pub use crate::media_type::{
    is_index, is_manifest, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG,
    OCI_INDEX, OCI_MANIFEST,
};
/// Annotation naming the tag of an image in a layout (umoci, skopeo `oci:DIR:REF`).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd (and `docker load` since 25) reads for the image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A platform, as in an index entry or a config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| !p.is_empty();
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform::new(os, arch, None)),
            [os, arch, var] if ok(os) && ok(arch) && ok(var) => {
                Ok(Platform::new(os, arch, Some(var)))
            }
            _ => Err(Error::invalid(format!(
                "platform {s:?}: expected os/arch or os/arch/variant, e.g. linux/amd64"
            ))),
        }
    }

    /// A platform from its parts.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: None,
        }
    }

    /// The platform an image config declares (`architecture`, `os`,
    /// `variant`, `os.version`; missing fields are empty).
    pub fn of_config(config: &serde_json::Value) -> Platform {
        let s = |k: &str| config.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Platform {
            architecture: s("architecture").unwrap_or_default(),
            os: s("os").unwrap_or_default(),
            variant: s("variant"),
            os_version: s("os.version"),
            os_features: None,
        }
    }

    /// Whether `self` (what the user asked for) matches `other` (what an image has).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Any other fields, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_REF_NAME)
            .map(String::as_str)
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The manifest media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Any other fields, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image index (also the layout's `index.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The index media type.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Any other fields, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Index {
    /// An OCI index of `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(crate::media_type::OCI_INDEX.to_string()),
            manifests,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// Split `name:tag` into the full image name and the tag (`latest` if none).
///
/// `registry:5000/app` has no tag (the colon is in the host part).
pub fn split_tag(reference: &str) -> Result<(String, String)> {
    if reference.is_empty() || reference.contains(char::is_whitespace) || reference.contains('@') {
        return Err(Error::invalid(format!(
            "tag {reference:?}: expected NAME[:TAG], e.g. app:1 (no digest, no spaces)"
        )));
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => {
            let name = &reference[..reference.len() - tag.len() - 1];
            Ok((name.to_string(), tag.to_string()))
        }
        Some(_) => Err(Error::invalid(format!(
            "tag {reference:?}: empty tag after ':'"
        ))),
        None => Ok((reference.to_string(), "latest".to_string())),
    }
}

/// The fully qualified name containerd stores (`docker.io/library/app:1`).
pub fn containerd_name(name: &str, tag: &str) -> String {
    let first = name.split('/').next().unwrap_or(name);
    let has_host =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_host {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{full}:{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(split_tag("app:1").unwrap(), ("app".into(), "1".into()));
        assert_eq!(split_tag("app").unwrap(), ("app".into(), "latest".into()));
        assert_eq!(
            split_tag("localhost:5000/app").unwrap(),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert!(split_tag("a b").is_err());
        assert_eq!(containerd_name("app", "1"), "docker.io/library/app:1");
        assert_eq!(containerd_name("me/app", "1"), "docker.io/me/app:1");
        assert_eq!(
            containerd_name("localhost:5000/app", "1"),
            "localhost:5000/app:1"
        );
    }

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("linux").is_err());
    }
}
