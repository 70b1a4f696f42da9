//! The archive `docker load` reads, written as a stream: `manifest.json`
//! listing every layer, the config, and only the blobs of the layers the
//! engine lacks.
//!
//! Invariants: strata's one tar dialect (0:0, files 0644, directories 0755,
//! every mtime 0); entries in a fixed order (`manifest.json`, `blobs/`,
//! `blobs/sha256/`, config, then the sent layers bottom first), so the same
//! image and the same held prefix give the same bytes. A layer's source must
//! have exactly the size its descriptor says (the engine checks its diff ID).

use std::io::{self, Read, Write};

use serde_json::json;

use crate::archive::{header, write_small};
use crate::error::{Error, IoContext, Result};
use crate::json::to_canonical;
use crate::layer::tar::{self, TarKind};
use crate::layout::Layout;

use super::LoadImage;

/// A writer counting the bytes that pass.
pub struct Counting<W> {
    /// The inner writer.
    pub inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Docker's `manifest.json` for `img`: every layer listed.
pub fn docker_manifest(img: &LoadImage) -> Vec<u8> {
    let layers: Vec<String> = img
        .layers
        .iter()
        .map(|l| Layout::blob_name(&l.desc.digest))
        .collect();
    to_canonical(&json!([{
        "Config": Layout::blob_name(&img.config_digest),
        "RepoTags": img.tags,
        "Layers": layers,
    }]))
}

/// Write the archive for `img` into `w`, leaving out the blobs of the
/// `skip` bottom layers.
pub fn write_docker_archive(w: &mut dyn Write, img: &LoadImage, skip: usize) -> Result<()> {
    // Why 0: the archive's bytes must not depend on the clock.
    let mtime = 0;
    let ctx = || "streaming the image";
    write_small(w, "manifest.json", &docker_manifest(img), mtime).io_context(ctx)?;
    let mut w = w;
    tar::write_header(&mut w, &header("blobs/", TarKind::Dir, 0, mtime)).io_context(ctx)?;
    tar::write_header(&mut w, &header("blobs/sha256/", TarKind::Dir, 0, mtime)).io_context(ctx)?;
    write_small(
        w,
        &Layout::blob_name(&img.config_digest),
        &img.config_bytes,
        mtime,
    )
    .io_context(ctx)?;
    let mut seen = std::collections::BTreeSet::new();
    for l in &img.layers[skip.min(img.layers.len())..] {
        // Why: the same blob twice in one image is one tar entry.
        if !seen.insert(l.desc.digest) {
            continue;
        }
        let d = &l.desc.digest;
        let size = l.desc.size;
        tar::write_header(
            &mut w,
            &header(&Layout::blob_name(d), TarKind::File, size, mtime),
        )
        .io_context(ctx)?;
        let mut r = l.source.open()?.take(size);
        let n = io::copy(&mut r, &mut w).map_err(|e| {
            // A read error names the blob; a write error is the engine's.
            Error::io(format!("streaming layer {d}"), &e)
        })?;
        if n != size {
            return Err(Error::corrupt(format!(
                "layer {d}: source has {n} bytes, descriptor says {size}"
            )));
        }
        tar::write_padding(&mut w, size).io_context(ctx)?;
    }
    tar::write_end(&mut w).io_context(ctx)
}
