//! Legacy docker-archives read as OCI layouts: what `docker save` wrote
//! before Docker 25 (`manifest.json`, `<id>/layer.tar`, `<id>/json`,
//! `<id>/VERSION`, `<config-hex>.json`, `repositories`), what `podman save`
//! and skopeo's `docker-archive:` write (`<diff_id-hex>.tar` at the top,
//! `<id>/layer.tar` a symlink to it), plain or gzip/zstd-compressed, holding
//! one image or several.
//!
//! The archive is presented as the in-memory model the rest of strata reads
//! (`oci-layout`, `index.json` → manifest → config → layer blobs), so every
//! command that opens an image reads it through [`crate::layout::Layout`]:
//! - the config is the archive's bytes, byte for byte (never re-serialized:
//!   its digest is the image ID Docker shows);
//! - each layer is the archive member byte for byte: a plain tar becomes an
//!   `application/vnd.oci.image.layer.v1.tar` layer whose digest is its
//!   diff_id (why not recompress: the base's diff_ids, its layer bytes and the
//!   cost of composing on it stay what they are; a registry stores it as
//!   is); a member that is already gzip or zstd keeps that media type;
//! - the manifest is synthesized: canonical OCI JSON (sorted keys, compact,
//!   [`crate::json::to_canonical`]) with the config and layer descriptors and
//!   nothing else, so its digest is what `strata push` of the archive gives;
//! - `index.json` lists one manifest per `manifest.json` entry, in that order,
//!   with the platform its config declares and annotated with the image's
//!   first RepoTag; every RepoTag (an untagged image: its image ID) can
//!   select it.
//!
//! Invariants (the archive is untrusted): JSON is read within
//! [`json::MAX_JSON_BYTES`] and parsed with its depth limit; member names in
//! `manifest.json` must be relative, without `..` or NUL; links are resolved
//! inside the archive only; a named member that is missing, a layer count that
//! disagrees with `rootfs.diff_ids`, or a plain layer whose content is not its
//! diff_id is one error line naming the archive and the member.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use serde::Deserialize;

use crate::blob_source::BlobSource;
use crate::descriptor::{Descriptor, Index, Manifest, Platform, ANNOTATION_REF_NAME};
use crate::digest::{digest_reader, Digest};
use crate::error::{Error, Result};
use crate::json;
use crate::layer::compress::{detect, Compression};
use crate::layer::read::check_path;
use crate::layout_names::{blob_name, OCI_LAYOUT_FILE};
use crate::media_type::{OCI_CONFIG, OCI_MANIFEST};
use crate::tar_members::{Member, Members};

/// Most images one archive may hold.
pub const MAX_IMAGES: usize = 4096;

/// One entry of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A legacy archive as the files of an OCI layout.
#[derive(Debug, Clone)]
pub struct LegacyLayout {
    /// Layout file name (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) →
    /// where its bytes are.
    pub files: BTreeMap<String, BlobSource>,
    /// Layout file name → the archive member it is (for messages).
    pub names: BTreeMap<String, String>,
    /// The RepoTags of each `index.json` entry, in order (an untagged
    /// image: its image ID, `sha256:<config digest>`).
    pub tags: Vec<Vec<String>>,
}

/// Whether `members` look like a legacy docker-archive (a `manifest.json`,
/// no `oci-layout`).
pub fn is_legacy(members: &Members) -> bool {
    !members.files.contains_key("oci-layout") && members.files.contains_key("manifest.json")
}

/// Read the legacy archive whose members are `members`.
pub fn read(members: &Members) -> Result<LegacyLayout> {
    let archive = &members.archive;
    let (_, mj) = members.resolve("manifest.json", "file")?;
    let bytes = read_json_member(members, "manifest.json", mj)?;
    let entries: Vec<Entry> = json::parse(&bytes, &format!("{archive}:manifest.json"))?;
    if entries.is_empty() {
        return Err(Error::corrupt(format!(
            "{archive}:manifest.json: lists no images"
        )));
    }
    if entries.len() > MAX_IMAGES {
        return Err(Error::corrupt(format!(
            "{archive}:manifest.json: {} images exceeds the limit of {MAX_IMAGES}",
            entries.len()
        )));
    }
    let mut out = LegacyLayout {
        files: BTreeMap::new(),
        names: BTreeMap::new(),
        tags: Vec::new(),
    };
    out.files.insert(
        "oci-layout".into(),
        BlobSource::Bytes(Arc::new(OCI_LAYOUT_FILE.to_vec())),
    );
    // Member name → (digest, media type): a layer shared by several images is hashed once.
    let mut layer_cache: BTreeMap<String, (Digest, &'static str)> = BTreeMap::new();
    let mut tops = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let what = format!("manifest.json[{i}]");
        let cfg_name = member_path(members, &what, "Config", &e.config)?;
        let (cfg_real, cfg_member) = members.resolve(&cfg_name, &format!("{what}: config"))?;
        let cfg_bytes = read_json_member(members, &cfg_real, cfg_member)?;
        let cfg_label = format!("{archive}:{cfg_real}");
        let cfg: serde_json::Value = json::parse(&cfg_bytes, &cfg_label)?;
        if !cfg.is_object() {
            return Err(Error::corrupt(format!("{cfg_label}: not a JSON object")));
        }
        let diff_ids = diff_ids(&cfg, &cfg_label)?;
        if diff_ids.len() != e.layers.len() {
            return Err(Error::corrupt(format!(
                "{archive}:manifest.json: image {i} lists {} layers, its config {cfg_real} {} diff_ids",
                e.layers.len(),
                diff_ids.len()
            )));
        }
        if e.layers.len() > crate::limits::MAX_LAYERS {
            return Err(Error::corrupt(format!(
                "{archive}:manifest.json: image {i}: {} layers exceeds the limit of {}",
                e.layers.len(),
                crate::limits::MAX_LAYERS
            )));
        }
        let cfg_digest = Digest::of(&cfg_bytes);
        let cfg_desc = Descriptor::new(OCI_CONFIG, cfg_digest, cfg_bytes.len() as u64);
        out.add(&cfg_digest, &cfg_real, cfg_member.source.clone());
        let mut layers = Vec::with_capacity(e.layers.len());
        for (j, (l, diff_id)) in e.layers.iter().zip(&diff_ids).enumerate() {
            let name = member_path(members, &what, "Layers", l)?;
            let (real, m) = members.resolve(&name, &format!("{what}: layer {j}"))?;
            let (digest, media_type) = match layer_cache.get(&real) {
                Some(&x) => x,
                None => {
                    let x = layer_identity(members, &real, m)?;
                    layer_cache.insert(real.clone(), x);
                    x
                }
            };
            if media_type == Compression::None.media_type() && digest != *diff_id {
                return Err(Error::corrupt(format!(
                    "{archive}:{real}: layer {j} of image {i} is {digest}, but its config says diff_id {diff_id}"
                )));
            }
            out.add(&digest, &real, m.source.clone());
            layers.push(Descriptor::new(media_type, digest, m.size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config: cfg_desc,
            layers,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        let mbytes = json::to_canonical(&manifest);
        let mdigest = Digest::of(&mbytes);
        let mut top = Descriptor::new(OCI_MANIFEST, mdigest, mbytes.len() as u64);
        let platform = Platform::of_config(&cfg);
        // As strata's own index.json entries: the platform the config declares.
        if !platform.os.is_empty() && !platform.architecture.is_empty() {
            top.platform = Some(platform);
        }
        let tags = e.repo_tags.clone().unwrap_or_default();
        if let Some(t) = tags.first() {
            top.annotations
                .insert(ANNOTATION_REF_NAME.to_string(), t.clone());
        }
        out.files
            .insert(blob_name(&mdigest), BlobSource::Bytes(Arc::new(mbytes)));
        // Why the image ID for an untagged image: it can be chosen then too.
        out.tags.push(if tags.is_empty() {
            vec![cfg_digest.to_string()]
        } else {
            tags
        });
        tops.push(top);
    }
    out.files.insert(
        "index.json".into(),
        BlobSource::Bytes(Arc::new(json::to_canonical(&Index::new(tops)))),
    );
    Ok(out)
}

impl LegacyLayout {
    fn add(&mut self, d: &Digest, member: &str, source: BlobSource) {
        let name = blob_name(d);
        self.names.insert(name.clone(), member.to_string());
        self.files.insert(name, source);
    }
}

/// Whether RepoTag `have` (as `docker save`/`podman save` wrote it) is what
/// the user asked for with `want`: equal, or equal once Docker Hub's implied
/// parts (`docker.io/`, `library/`, podman's `localhost/`) and `:latest` are
/// filled in on both sides.
pub fn tag_matches(have: &str, want: &str) -> bool {
    have == want || normalize_tag(have) == normalize_tag(want)
}

fn normalize_tag(t: &str) -> String {
    let mut s = t;
    for p in ["docker.io/", "index.docker.io/", "localhost/"] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
            break;
        }
    }
    let s = s.strip_prefix("library/").unwrap_or(s);
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.contains(':') || last.contains('@') {
        s.to_string()
    } else {
        format!("{s}:latest")
    }
}

/// A member name as `manifest.json` gives it, checked: relative, no `..`, no NUL.
fn member_path(members: &Members, what: &str, field: &str, p: &str) -> Result<String> {
    match check_path(p) {
        Ok(n) if n != "." => Ok(n),
        Ok(_) => Err(Error::corrupt(format!(
            "{}:manifest.json: {what}: {field} {p:?} names no file",
            members.archive
        ))),
        Err(m) => Err(Error::corrupt(format!(
            "{}:manifest.json: {what}: {field}: {m}",
            members.archive
        ))),
    }
}

/// Read a JSON member within [`json::MAX_JSON_BYTES`].
fn read_json_member(members: &Members, name: &str, m: &Member) -> Result<Vec<u8>> {
    let label = format!("{}:{name}", members.archive);
    let limit = json::MAX_JSON_BYTES as u64;
    if m.size > limit {
        return Err(Error::corrupt(format!(
            "{label}: {} bytes exceeds the {limit} byte limit for JSON",
            m.size
        )));
    }
    let mut bytes = Vec::new();
    m.source
        .open()?
        .take(m.size)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {label}"), &e))?;
    if bytes.len() as u64 != m.size {
        return Err(Error::corrupt(format!(
            "{label}: truncated: the header declares {} bytes, the archive holds {}",
            m.size,
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(cfg: &serde_json::Value, label: &str) -> Result<Vec<Digest>> {
    let Some(ids) = cfg.pointer("/rootfs/diff_ids") else {
        return Ok(Vec::new());
    };
    let ids = ids
        .as_array()
        .ok_or_else(|| Error::corrupt(format!("{label}: rootfs.diff_ids is not an array")))?;
    ids.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| {
                    Error::corrupt(format!("{label}: rootfs.diff_ids holds a non-string"))
                })
                .and_then(|s| Digest::parse(s).map_err(|e| e.context(label)))
        })
        .collect()
}

/// A layer member's digest (from the scan, else by hashing it) and media
/// type (from its magic bytes: plain tar, gzip or zstd).
fn layer_identity(members: &Members, name: &str, m: &Member) -> Result<(Digest, &'static str)> {
    let label = format!("{}:{name}", members.archive);
    let mut magic = Vec::with_capacity(6);
    m.source
        .open()?
        .take(6)
        .read_to_end(&mut magic)
        .map_err(|e| Error::io(format!("reading {label}"), &e))?;
    if magic.starts_with(b"BZh") || magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(Error::unsupported(format!(
            "{label}: a bzip2 or xz-compressed layer (OCI has no media type for it; decompress it first)"
        )));
    }
    let media_type = detect(&magic).media_type();
    let digest = match m.digest {
        Some(d) => d,
        None => {
            let (d, n) = digest_reader(m.source.open()?)
                .map_err(|e| Error::io(format!("reading {label}"), &e))?;
            if n != m.size {
                return Err(Error::corrupt(format!(
                    "{label}: truncated: the header declares {} bytes, the archive holds {n}",
                    m.size
                )));
            }
            d
        }
    };
    Ok((digest, media_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_with_docker_hub_defaults() {
        assert!(tag_matches("base:1", "base:1"));
        assert!(tag_matches("docker.io/library/base:1", "base:1"));
        assert!(tag_matches("localhost/base:1", "base:1"));
        assert!(tag_matches("base:latest", "base"));
        assert!(tag_matches(
            "127.0.0.1:5000/a/b",
            "127.0.0.1:5000/a/b:latest"
        ));
        assert!(!tag_matches("base:1", "base:2"));
        assert!(!tag_matches("other/base:1", "base:1"));
    }
}
