//! SLSA v1 provenance of an image: an in-toto Statement v1 whose subject is
//! the image manifest digest.
//!
//! Shape: `_type` `https://in-toto.io/Statement/v1`, `predicateType`
//! `https://slsa.dev/provenance/v1`; `buildDefinition.buildType` is
//! [`BUILD_TYPE`]; `externalParameters` hold what defined the image (its
//! name, runtime config, creation time, platform, manifest annotations and
//! the caller's `parameters`); `resolvedDependencies` are the base image
//! (when the manifest records `org.opencontainers.image.base.digest` or the
//! caller names one) and every layer blob, by digest, bottom first.
//!
//! Invariants: no clock. `runDetails.metadata.startedOn`/`finishedOn` are
//! written only when the caller passes a time (the CLI passes
//! `SOURCE_DATE_EPOCH`); maps are sorted; the JSON is canonical. So the same
//! image and parameters give the same statement bytes, and so the same
//! attestation digest, on every rebuild.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::Result;
use crate::json::to_canonical;
use crate::layout::{Image, Layout};
use crate::sbom::{recorded_base, BaseImage, TOOL_VERSION};

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// strata's build type: "an OCI image composed by strata from layer blobs
/// (onto an optional base image) and a config". A URN, since strata has no
/// web home whose URL would last; the README documents its parameters.
pub const BUILD_TYPE: &str = "urn:strata:buildtype:oci-image:v1";

/// What [`statement`] needs beyond the image.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceOptions {
    /// The image's name (`name:tag`); the subject's name. Default: the
    /// manifest digest.
    pub name: Option<String>,
    /// The base image, when the manifest's annotations do not record it.
    pub base: Option<BaseImage>,
    /// Build parameters given by the caller (`K=V`).
    pub parameters: BTreeMap<String, String>,
    /// Seconds since the epoch to record as the build's start and finish;
    /// none → no timestamps.
    pub time: Option<u64>,
    /// `runDetails.builder.id`; default `urn:strata:builder:strata-VERSION`.
    pub builder_id: Option<String>,
}

fn digest_set(d: &crate::digest::Digest) -> Value {
    json!({ d.algorithm(): d.hex() })
}

/// The provenance statement of `image`, canonical JSON.
pub fn statement(layout: &Layout, image: &Image, opts: &ProvenanceOptions) -> Result<Vec<u8>> {
    let mname = layout.name(&Layout::blob_name(&image.manifest_desc.digest));
    let base = match &opts.base {
        Some(b) => Some(b.clone()),
        None => recorded_base(image, &mname)?,
    };
    let digest = image.manifest_desc.digest;
    let name = opts.name.clone().unwrap_or_else(|| digest.to_string());
    let ids = image.diff_ids()?;
    let mut deps = Vec::new();
    if let Some(b) = &base {
        let mut d = json!({
            "name": "base image",
            "digest": digest_set(&b.digest),
            "mediaType": crate::descriptor::OCI_MANIFEST,
        });
        if let Some(n) = &b.name {
            d["uri"] = json!(format!("oci://{n}@{}", b.digest));
        }
        deps.push(d);
    }
    for (i, l) in image.manifest.layers.iter().enumerate() {
        let mut annotations = json!({"size": l.size});
        if let Some(id) = ids.get(i) {
            annotations["diffID"] = json!(id.to_string());
        }
        deps.push(json!({
            "name": format!("layer {i}"),
            "digest": digest_set(&l.digest),
            "mediaType": l.media_type,
            "annotations": annotations,
        }));
    }
    let mut external = json!({
        "image": name,
        "config": image.config.get("config").cloned().unwrap_or(json!({})),
        "platform": image.platform().to_string(),
        "annotations": image.manifest.annotations,
        "parameters": opts.parameters,
    });
    if let Some(c) = image.config.get("created") {
        external["created"] = c.clone();
    }
    let mut run = json!({
        "builder": {
            "id": opts.builder_id.clone()
                .unwrap_or_else(|| format!("urn:strata:builder:strata-{TOOL_VERSION}")),
            "version": {"strata": TOOL_VERSION},
        },
    });
    if let Some(t) = opts.time {
        let at = crate::image::rfc3339(t);
        run["metadata"] = json!({"startedOn": at, "finishedOn": at});
    }
    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": digest_set(&digest)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": run,
        },
    });
    Ok(to_canonical(&doc))
}
