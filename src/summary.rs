//! Summaries of an image or index: what `strata inspect` and
//! `strata digest --json` show, as data a caller renders.
//!
//! JSON forms are built with `serde_json` objects and written canonically by
//! the caller, so their bytes do not depend on field order here.

use serde_json::{json, Value};

use crate::descriptor::{is_index, Descriptor, Platform};
use crate::digest::Digest;
use crate::error::Result;
use crate::layout::{Image, Layout};

/// What a layout's selected top-level entry is.
#[derive(Debug, Clone)]
pub enum Summary {
    /// An index, when no platform was asked for.
    Index {
        /// The index's descriptor in `index.json`.
        top: Box<Descriptor>,
        /// Its manifests, with their platforms.
        manifests: Vec<Descriptor>,
    },
    /// One image.
    Image(Box<ImageSummary>),
}

/// One image and its layers' diff_ids.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// The image, its JSON blobs verified.
    pub image: Image,
    /// The config's `rootfs.diff_ids`, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

impl ImageSummary {
    fn of(image: Image) -> Result<ImageSummary> {
        let diff_ids = image.diff_ids()?;
        Ok(ImageSummary { image, diff_ids })
    }

    /// The config's `config` object (`{}` when absent).
    pub fn config(&self) -> Value {
        self.image
            .config
            .get("config")
            .cloned()
            .unwrap_or(json!({}))
    }

    /// The config's `created` time, when it is a string.
    pub fn created(&self) -> Option<&str> {
        self.image.config.get("created").and_then(|v| v.as_str())
    }

    /// The sum of the layer blobs' sizes.
    pub fn layers_size(&self) -> u64 {
        self.image.manifest.layers.iter().map(|l| l.size).sum()
    }

    /// The JSON form: digest, platform, created, config digest and object,
    /// layers (digest, size, media type, diff_id) and annotations.
    pub fn to_json(&self) -> Value {
        let img = &self.image;
        let layers: Vec<Value> = img
            .manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| json!({"digest": l.digest, "size": l.size, "mediaType": l.media_type, "diffId": self.diff_ids.get(i)}))
            .collect();
        json!({
            "digest": img.manifest_desc.digest,
            "platform": img.platform().to_string(),
            "created": img.config.get("created"),
            "configDigest": img.manifest.config.digest,
            "config": self.config(),
            "layers": layers,
            "annotations": img.manifest.annotations,
        })
    }
}

impl Summary {
    /// The JSON form (`strata inspect --json`).
    pub fn to_json(&self) -> Value {
        match self {
            Summary::Index { top, manifests } => {
                json!({"digest": top.digest, "mediaType": top.media_type, "manifests": manifests})
            }
            Summary::Image(i) => i.to_json(),
        }
    }
}

/// Summarize the image `reference` selects (or the only one), or, for an
/// index with no `platform` asked for, the index; with a `platform`, the
/// index's image for it.
pub fn summarize(
    layout: &Layout,
    reference: Option<&str>,
    platform: Option<&Platform>,
) -> Result<Summary> {
    let top = layout.top(reference)?;
    if is_index(&top.media_type) && platform.is_none() {
        let manifests = layout.read_index(&top)?.manifests;
        return Ok(Summary::Index {
            top: Box::new(top),
            manifests,
        });
    }
    let img = layout.image(reference, platform)?;
    Ok(Summary::Image(Box::new(ImageSummary::of(img)?)))
}

/// The digests of the top-level entry `reference` selects, as JSON: for an
/// index, its digest and each manifest's with its platform; for an image,
/// the manifest, config, layer and diff_id digests.
pub fn digests(layout: &Layout, reference: Option<&str>) -> Result<Value> {
    let top = layout.top(reference)?;
    Ok(if is_index(&top.media_type) {
        let idx = layout.read_index(&top)?;
        let ms: Vec<Value> = idx
            .manifests
            .iter()
            .map(|m| json!({"digest": m.digest, "platform": m.platform}))
            .collect();
        json!({"index": top.digest, "manifests": ms})
    } else {
        let img = layout.image_at(&top)?;
        let ids = img.diff_ids()?;
        json!({
            "manifest": top.digest,
            "config": img.manifest.config.digest,
            "layers": img.manifest.layers.iter().map(|l| l.digest).collect::<Vec<_>>(),
            "diffIds": ids,
        })
    })
}
