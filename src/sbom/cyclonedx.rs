//! The CycloneDX 1.6 JSON writer.
//!
//! Document shape: `metadata.component` is the image (type `container`, its
//! manifest sha256, a `pkg:oci` purl); `components` holds one component per
//! layer (type `file`, the blob's sha256) whose nested `components` are the
//! packages that layer introduced (type `library`, with purl) and, when
//! asked, its files (type `file`, sha1 and sha256): nesting is CycloneDX's
//! "contains". The base image, when known, is a `container` component the
//! image `dependsOn` (in `dependencies`). Details without a CycloneDX field
//! (diff_id, dpkg architecture and source, Nix store path and hash, the
//! database a package was read from) are `strata:`-prefixed properties.
//!
//! Invariants: `bom-ref`s are derived from content (like the SPDX
//! identifiers), `serialNumber` from the manifest digest, `timestamp` from
//! the image's creation time; the document validates against the 1.6 JSON
//! schema (checked by the tests with cyclonedx-python-lib's strict
//! validator).

use serde_json::{json, Value};

use super::spdx::short_id;
use super::{Package, PackageKind, Sbom, TOOL_VERSION};
use crate::digest::Digest;
use crate::json::to_canonical;

fn prop(name: &str, value: impl ToString) -> Value {
    json!({"name": name, "value": value.to_string()})
}

fn sha256(d: &Digest) -> Value {
    json!({"alg": "SHA-256", "content": d.hex()})
}

fn package(p: &Package) -> Value {
    let mut props = vec![prop("strata:package:database", &p.evidence)];
    if let Some(a) = &p.arch {
        props.push(prop("strata:dpkg:architecture", a));
    }
    if let Some(s) = &p.source {
        props.push(prop("strata:dpkg:source", s));
    }
    if let Some(sp) = &p.store_path {
        props.push(prop("strata:nix:store-path", sp));
    }
    if let Some(h) = &p.store_hash {
        props.push(prop("strata:nix:store-hash", h));
    }
    let mut v = json!({
        "type": "library",
        "bom-ref": format!("pkg-{}", short_id(&p.key())),
        "name": p.name,
        "purl": p.purl(),
        "properties": props,
    });
    if let Some(ver) = &p.version {
        v["version"] = json!(ver);
    }
    if let Some(l) = &p.license {
        v["licenses"] = json!([{"license": {"name": l}}]);
    }
    if p.kind == PackageKind::Deb {
        v["group"] = json!("debian");
    }
    v
}

/// The CycloneDX 1.6 JSON document of `sbom`, canonical.
pub fn write(sbom: &Sbom) -> Vec<u8> {
    let s = &sbom.subject;
    let mut components = Vec::new();
    for (i, l) in sbom.inventory.layers.iter().enumerate() {
        let mut inner: Vec<Value> = sbom
            .inventory
            .packages
            .iter()
            .filter(|p| p.layer == i)
            .map(package)
            .collect();
        for f in &l.files {
            inner.push(json!({
                "type": "file",
                "bom-ref": format!("file-{}", short_id(&format!("{i}/{}", f.path))),
                "name": format!("./{}", f.path),
                "hashes": [{"alg": "SHA-1", "content": f.sha1}, sha256(&f.sha256)],
                "properties": [prop("strata:file:size", f.size)],
            }));
        }
        let mut c = json!({
            "type": "file",
            "bom-ref": format!("layer-{i}"),
            "name": format!("layer {i} {}", l.descriptor.digest),
            "version": l.descriptor.digest.to_string(),
            "hashes": [sha256(&l.descriptor.digest)],
            "properties": [
                prop("strata:layer:index", i),
                prop("strata:layer:media-type", &l.descriptor.media_type),
                prop("strata:layer:size", l.descriptor.size),
                prop("strata:layer:diff-id", l.diff_id),
            ],
        });
        if !inner.is_empty() {
            c["components"] = Value::Array(inner);
        }
        components.push(c);
    }
    let mut deps = Vec::new();
    if let Some(b) = &s.base {
        components.push(json!({
            "type": "container",
            "bom-ref": "base-image",
            "name": b.name.clone().unwrap_or_else(|| b.digest.to_string()),
            "version": b.digest.to_string(),
            "hashes": [sha256(&b.digest)],
            "purl": super::oci_purl(b.name.as_deref(), &b.digest),
            "description": "base image",
        }));
        deps.push(json!({"ref": "image", "dependsOn": ["base-image"]}));
        deps.push(json!({"ref": "base-image"}));
    }
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", sbom.uuid("cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": s.created,
            "tools": {"components": [{
                "type": "application",
                "name": "strata",
                "version": TOOL_VERSION,
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": s.display_name(),
                "version": s.manifest.digest.to_string(),
                "hashes": [sha256(&s.manifest.digest)],
                "purl": s.purl(),
                "properties": [
                    prop("strata:image:media-type", &s.manifest.media_type),
                    prop("strata:image:config", s.config),
                    prop("strata:image:platform", &s.platform),
                ],
            },
        },
        "components": components,
    });
    if !deps.is_empty() {
        doc["dependencies"] = Value::Array(deps);
    }
    to_canonical(&doc)
}
