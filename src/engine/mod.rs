//! Loading an image into a container engine, sending only the layers the
//! engine lacks (`strata load`).
//!
//! An engine stores layers by *chain ID*: chainID(L0) = diffID(L0),
//! chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). The image's bottom
//! layers whose chain the engine already holds (the longest such prefix) are
//! left out of what is sent; the engine finds them by chain ID and never
//! opens their blobs. Should the engine lose one meanwhile (an image removed
//! between the question and the load), the load fails naming the missing
//! blob, and is retried once with every blob.
//!
//! Invariants: nothing is written to disk for Docker (the archive is streamed
//! into the request body); layers an engine cannot take are refused before
//! anything is sent; the image ID is checked against the config digest after
//! the load; answers from the engine are untrusted (bounded, see [`http`]).

mod chunked;
pub mod docker;
pub mod http;
pub mod podman;
pub mod stream;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::descriptor::{Descriptor, ANNOTATION_CONTAINERD_NAME};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::compress::Compression;
use crate::layout::{BlobSource, Image, Layout, RemoteBlob};
use crate::registry::cache::Cache;
use crate::registry::{Progress, Registries};

/// The engines strata loads into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker Engine (API 1.41, Docker 20.10 and later), over its socket.
    Docker,
    /// podman, through its binary (`podman pull oci:DIR`).
    Podman,
}

impl EngineKind {
    /// Parse an engine name.
    pub fn parse(s: &str) -> Result<EngineKind> {
        match s {
            "docker" => Ok(EngineKind::Docker),
            "podman" => Ok(EngineKind::Podman),
            _ => Err(Error::invalid(format!(
                "engine {s:?}: expected docker or podman"
            ))),
        }
    }
}

/// One layer of an image to load.
#[derive(Debug, Clone)]
pub struct LoadLayer {
    /// The layer blob's descriptor.
    pub desc: Descriptor,
    /// Its diff ID (digest of the uncompressed tar), from the config.
    pub diff_id: Digest,
    /// The chain ID of the image's layers up to and including this one.
    pub chain_id: Digest,
    /// Where its bytes are.
    pub source: BlobSource,
}

/// An image ready to be loaded: config, manifest, layers and the tags to give it.
#[derive(Debug, Clone)]
pub struct LoadImage {
    /// The manifest's descriptor.
    pub manifest_desc: Descriptor,
    /// The manifest, byte for byte.
    pub manifest_bytes: Vec<u8>,
    /// The config's digest: the image ID engines give it.
    pub config_digest: Digest,
    /// The config, byte for byte.
    pub config_bytes: Vec<u8>,
    /// Layers, bottom first.
    pub layers: Vec<LoadLayer>,
    /// `NAME:TAG`s to give the image (may be empty).
    pub tags: Vec<String>,
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The image ID (the config digest).
    pub image_id: Digest,
    /// Layers sent, and their bytes as stored in the image.
    pub sent_layers: usize,
    /// Bytes on the wire (the whole request body: archive framing included).
    pub bytes_sent: u64,
    /// Layers the engine already held, not sent.
    pub skipped_layers: usize,
    /// Their bytes as stored in the image.
    pub bytes_skipped: u64,
    /// Whether a first attempt failed for a layer the engine had lost, and
    /// everything was sent again.
    pub retried: bool,
}

/// The chain IDs of a stack of diff IDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => *d,
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// How many bottom layers an engine holding the chain IDs `held` need not be
/// sent: the longest prefix whose chain ID it holds.
pub fn held_prefix(layers: &[LoadLayer], held: &BTreeSet<Digest>) -> usize {
    layers
        .iter()
        .rposition(|l| held.contains(&l.chain_id))
        .map_or(0, |i| i + 1)
}

impl LoadImage {
    /// The image `img` of `layout`, to be tagged `tags`; without tags, with
    /// the tag the layout records for it (its `io.containerd.image.name`).
    pub fn from_layout(layout: &Layout, img: &Image, tags: Vec<String>) -> Result<LoadImage> {
        let diff_ids = img.diff_ids()?;
        let mname = layout.name(&Layout::blob_name(&img.manifest_desc.digest));
        if diff_ids.len() != img.manifest.layers.len() {
            return Err(Error::corrupt(format!(
                "{mname}: {} layers, but the config lists {} diff_ids",
                img.manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let chain = chain_ids(&diff_ids);
        let mut layers = Vec::with_capacity(diff_ids.len());
        for ((desc, diff_id), chain_id) in img.manifest.layers.iter().zip(diff_ids).zip(chain) {
            let source = layout.blob(&desc.digest).ok_or_else(|| {
                Error::corrupt(format!(
                    "{}: layer blob {} is missing",
                    layout.path(),
                    desc.digest
                ))
            })?;
            layers.push(LoadLayer {
                desc: desc.clone(),
                diff_id,
                chain_id,
                source,
            });
        }
        // Attachments beside the image do not count (`Layout::images`).
        let images = layout.images();
        let tags = if tags.is_empty() {
            img.manifest_desc
                .annotations
                .get(ANNOTATION_CONTAINERD_NAME)
                .or_else(|| {
                    // Why: `strata image --tag` annotates the top descriptor
                    // of index.json; an image reached through an index has it there.
                    images.first().and_then(|d| {
                        (images.len() == 1)
                            .then(|| d.annotations.get(ANNOTATION_CONTAINERD_NAME))
                            .flatten()
                    })
                })
                .cloned()
                .into_iter()
                .collect()
        } else {
            tags
        };
        Ok(LoadImage {
            manifest_bytes: layout.read_json_blob(&img.manifest_desc)?,
            manifest_desc: img.manifest_desc.clone(),
            config_digest: img.manifest.config.digest,
            config_bytes: img.config_bytes.clone(),
            layers,
            tags,
        })
    }

    /// Refuse layers `engine` cannot take (zstd into Docker), naming the first.
    pub fn check_engine(&self, engine: EngineKind) -> Result<()> {
        if engine != EngineKind::Docker {
            return Ok(());
        }
        for l in &self.layers {
            if matches!(
                Compression::from_media_type(&l.desc.media_type),
                Some(Compression::Zstd { .. })
            ) {
                return Err(Error::unsupported(format!(
                    "layer {} is tar+zstd, which docker cannot load (Docker 20.10 takes gzip or uncompressed layers); nothing was sent",
                    l.desc.digest
                )));
            }
            if Compression::from_media_type(&l.desc.media_type).is_none() {
                return Err(Error::unsupported(format!(
                    "layer {} has media type {:?}, which docker cannot load; nothing was sent",
                    l.desc.digest, l.desc.media_type
                )));
            }
        }
        Ok(())
    }

    /// The layers from `skip` up whose bytes are only in a registry.
    pub fn remote_layers(&self, skip: usize) -> Vec<(Digest, RemoteBlob)> {
        self.layers[skip.min(self.layers.len())..]
            .iter()
            .filter_map(|l| match &l.source {
                BlobSource::Remote { digest, at } => Some((*digest, at.clone())),
                _ => None,
            })
            .collect()
    }

    /// Point the layers from `skip` up whose bytes are only in a registry
    /// at files of `cache`, fetching the blobs it lacks.
    pub fn fetch_remote_layers(
        &mut self,
        skip: usize,
        cache: &Cache,
        regs: &Registries,
        progress: &dyn Progress,
    ) -> Result<()> {
        for (d, at) in self.remote_layers(skip) {
            let (path, _) = cache.get(regs, &d, &at, progress)?;
            for l in self.layers.iter_mut().filter(|l| l.desc.digest == d) {
                l.source = BlobSource::File(path.clone());
            }
        }
        Ok(())
    }

    /// Bytes (as stored) of the layers below `skip`, and of the others.
    pub fn split_bytes(&self, skip: usize) -> (u64, u64) {
        let skip = skip.min(self.layers.len());
        let sum = |ls: &[LoadLayer]| ls.iter().map(|l| l.desc.size).sum::<u64>();
        (sum(&self.layers[..skip]), sum(&self.layers[skip..]))
    }

    /// The report of a load that left out the `skip` bottom layers and put
    /// `bytes_sent` on the wire.
    pub fn report(&self, image_id: Digest, skip: usize, bytes_sent: u64) -> LoadReport {
        let skip = skip.min(self.layers.len());
        LoadReport {
            image_id,
            sent_layers: self.layers.len() - skip,
            bytes_sent,
            skipped_layers: skip,
            bytes_skipped: self.split_bytes(skip).0,
            retried: false,
        }
    }

    /// Whether an engine's error message says it lacks the blob of one of
    /// the layers below `skip` (it lost a layer strata thought it held).
    pub fn names_skipped_blob(&self, message: &str, skip: usize) -> bool {
        self.layers[..skip.min(self.layers.len())]
            .iter()
            .any(|l| message.contains(&l.desc.digest.hex()))
    }
}

/// Load `img` by `once(img, skip)`, leaving out the layers the engine holds
/// (`held`); once more with every layer if the engine's error names a blob
/// it was thought to hold (it lost the layer meanwhile). `prepare(img,
/// skip)` runs before each attempt (e.g. to fetch the layers from `skip` up
/// that are only in a registry). The same for every engine.
pub(crate) fn load_with_retry(
    img: &mut LoadImage,
    held: &BTreeSet<Digest>,
    prepare: &mut dyn FnMut(&mut LoadImage, usize) -> Result<()>,
    once: &dyn Fn(&LoadImage, usize) -> Result<LoadReport>,
) -> Result<LoadReport> {
    let skip = held_prefix(&img.layers, held);
    prepare(img, skip)?;
    match once(img, skip) {
        Err(e) if skip > 0 && img.names_skipped_blob(e.message(), skip) => {
            prepare(img, 0)?;
            let mut r = once(img, 0)?;
            r.retried = true;
            Ok(r)
        }
        r => r,
    }
}

/// A one-line summary of a report: what was sent and what was skipped.
pub fn summary(r: &LoadReport) -> String {
    let mut s = format!(
        "sent {} bytes ({} layer{}), skipped {} bytes ({} layer{} the engine holds)",
        r.bytes_sent,
        r.sent_layers,
        if r.sent_layers == 1 { "" } else { "s" },
        r.bytes_skipped,
        r.skipped_layers,
        if r.skipped_layers == 1 { "" } else { "s" },
    );
    if r.retried {
        let _ = write!(
            s,
            "; the engine had lost a layer it held: sent everything again"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a, b]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }
}
