//! The SPDX 2.3 JSON writer.
//!
//! Document shape: one package for the image (purpose `CONTAINER`, its
//! manifest sha256, a `pkg:oci` purl, `builtDate` = its creation time), one
//! per layer (purpose `ARCHIVE`, the blob's sha256), one per package found
//! (purl as a `PACKAGE-MANAGER` external reference), one for the base image
//! when known; files (with sha1 and sha256) when asked. Relationships:
//! DOCUMENT DESCRIBES the image, the image CONTAINS each layer, a layer
//! CONTAINS the packages it introduced and its files, the image DEPENDS_ON
//! its base image.
//!
//! Invariants: SPDX identifiers are derived from content (the layer's index,
//! a hash of a package's key or a file's layer and path), never from a
//! counter over a hash map, so the same image gives the same bytes; the
//! document validates with `pyspdxtools` (checked by the tests).

use serde_json::{json, Value};

use super::{Package, PackageKind, Sbom, TOOL_VERSION};
use crate::digest::Digest;
use crate::json::to_canonical;

const NOASSERTION: &str = "NOASSERTION";

/// A short content-derived identifier suffix: 16 hex digits of sha256.
pub(crate) fn short_id(key: &str) -> String {
    Digest::of(key.as_bytes()).hex()[..16].to_string()
}

/// `package` with what strata does not know said so (`NOASSERTION`: no
/// download location, licenses or copyright are claimed) and its files not
/// analyzed (a layer with `--files` turns that on).
fn unknowns(mut package: Value) -> Value {
    for k in [
        "downloadLocation",
        "licenseConcluded",
        "licenseDeclared",
        "copyrightText",
    ] {
        package[k] = json!(NOASSERTION);
    }
    package["filesAnalyzed"] = json!(false);
    package
}

fn purl_ref(purl: &str) -> Value {
    json!([{
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    }])
}

fn sha256(d: &Digest) -> Value {
    json!({"algorithm": "SHA256", "checksumValue": d.hex()})
}

fn package(p: &Package) -> Value {
    let mut v = unknowns(json!({
        "SPDXID": format!("SPDXRef-Package-{}", short_id(&p.key())),
        "name": p.name,
        "externalRefs": purl_ref(&p.purl()),
    }));
    let o = v.as_object_mut().expect("an object");
    if let Some(ver) = &p.version {
        o.insert("versionInfo".into(), json!(ver));
    }
    if let Some(s) = &p.source {
        o.insert(
            "sourceInfo".into(),
            json!(format!("built from source package {s}")),
        );
    }
    if let Some(l) = &p.license {
        // Free text: a database's License field is not checked to be an SPDX expression.
        o.insert(
            "licenseComments".into(),
            json!(format!("License field: {l}")),
        );
    }
    match p.kind {
        PackageKind::Deb => {
            o.insert(
                "comment".into(),
                json!(format!("dpkg database {}", p.evidence)),
            );
        }
        PackageKind::Declared => {
            o.insert("comment".into(), json!(p.evidence));
        }
        PackageKind::Nix => {
            if let Some(sp) = &p.store_path {
                o.insert("packageFileName".into(), json!(sp));
            }
            if let Some(h) = &p.store_hash {
                o.insert(
                    "comment".into(),
                    json!(format!("Nix store path, store hash {h}")),
                );
            }
        }
    }
    v
}

/// SPDX 2.3 §7.9: sha1 of the files' sha1s (hex), sorted and concatenated.
fn verification_code(files: &[super::FileRecord]) -> String {
    use sha1::{Digest as _, Sha1};
    let mut sums: Vec<&str> = files.iter().map(|f| f.sha1.as_str()).collect();
    sums.sort_unstable();
    let mut h = Sha1::new();
    for s in sums {
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The SPDX 2.3 JSON document of `sbom`, canonical.
pub fn write(sbom: &Sbom) -> Vec<u8> {
    let s = &sbom.subject;
    let image_id = "SPDXRef-Image";
    let mut packages = vec![unknowns(json!({
        "SPDXID": image_id,
        "name": s.display_name(),
        "versionInfo": s.manifest.digest.to_string(),
        "checksums": [sha256(&s.manifest.digest)],
        "externalRefs": purl_ref(&s.purl()),
        "primaryPackagePurpose": "CONTAINER",
        "builtDate": s.created,
        "comment": format!("OCI image manifest {} ({}), config {}, platform {}",
            s.manifest.digest, s.manifest.media_type, s.config, s.platform),
    }))];
    let mut files = Vec::new();
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let rel = |a: &str, t: &str, b: &str| json!({"spdxElementId": a, "relationshipType": t, "relatedSpdxElement": b});
    if let Some(b) = &s.base {
        let id = "SPDXRef-BaseImage";
        packages.push(unknowns(json!({
            "SPDXID": id,
            "name": b.name.clone().unwrap_or_else(|| b.digest.to_string()),
            "versionInfo": b.digest.to_string(),
            "checksums": [sha256(&b.digest)],
            "externalRefs": purl_ref(&super::oci_purl(b.name.as_deref(), &b.digest)),
            "primaryPackagePurpose": "CONTAINER",
            "comment": "base image",
        })));
        rels.push(rel(image_id, "DEPENDS_ON", id));
    }
    for (i, l) in sbom.inventory.layers.iter().enumerate() {
        let lid = format!("SPDXRef-Layer-{i}");
        let mut layer = unknowns(json!({
            "SPDXID": lid,
            "name": format!("layer {i} {}", l.descriptor.digest),
            "versionInfo": l.descriptor.digest.to_string(),
            "checksums": [sha256(&l.descriptor.digest)],
            "primaryPackagePurpose": "ARCHIVE",
            "comment": format!("OCI layer {i}: {}, {} bytes, diff_id {}",
                l.descriptor.media_type, l.descriptor.size, l.diff_id),
        }));
        if !l.files.is_empty() {
            // SPDX: a package that CONTAINS files has them analyzed, with a
            // verification code over their sha1s.
            layer["filesAnalyzed"] = json!(true);
            layer["packageVerificationCode"] =
                json!({"packageVerificationCodeValue": verification_code(&l.files)});
        }
        packages.push(layer);
        rels.push(rel(image_id, "CONTAINS", &lid));
        for p in sbom.inventory.packages.iter().filter(|p| p.layer == i) {
            let pv = package(p);
            rels.push(rel(
                &lid,
                "CONTAINS",
                pv["SPDXID"].as_str().unwrap_or_default(),
            ));
            packages.push(pv);
        }
        for f in &l.files {
            let fid = format!("SPDXRef-File-{}", short_id(&format!("{i}/{}", f.path)));
            files.push(json!({
                "SPDXID": fid,
                "fileName": format!("./{}", f.path),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1},
                    sha256(&f.sha256),
                ],
                "licenseConcluded": NOASSERTION,
                "copyrightText": NOASSERTION,
            }));
            rels.push(rel(&lid, "CONTAINS", &fid));
        }
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("sbom of {}", s.display_name()),
        // Why a urn:uuid: derived from the manifest digest, it names the same
        // document on every rebuild without claiming anyone's web domain.
        "documentNamespace": format!("urn:uuid:{}", sbom.uuid("spdx")),
        "creationInfo": {
            "created": s.created,
            "creators": [format!("Tool: strata-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": rels,
    });
    if !files.is_empty() {
        doc["files"] = Value::Array(files);
    }
    to_canonical(&doc)
}
