//! Single-file outputs: `oci-archive` (an OCI layout as one tar) and
//! `docker-archive` (ONE tar that is at once an OCI layout and a `docker load`
//! archive: `manifest.json` with Config/RepoTags/Layers beside `index.json`,
//! as `docker save` writes since Docker 25).
//!
//! Invariants: entries sorted in canonical order (`blobs/`, `blobs/sha256/`,
//! the blobs by hex digest, `index.json`, `manifest.json`, `oci-layout`),
//! written with strata's one tar dialect ([`crate::layer::tar`]): 0:0, empty
//! owner names, files 0644, directories 0755, every mtime the caller's.

use std::io::{self, Read, Write};

use camino::Utf8Path;
use serde_json::json;

use crate::error::{Error, IoContext, Result};
use crate::image::Composed;
use crate::json::to_canonical;
use crate::layer::compress::Compression;
use crate::layer::tar::{self, TarHeader, TarKind};
use crate::layout::{Layout, LayoutPlan, OCI_LAYOUT_FILE};
use crate::output::AtomicFile;

/// The output formats of `strata image` and `strata index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OCI layout directory.
    Oci,
    /// An OCI layout as a tar.
    OciArchive,
    /// A tar that is both an OCI layout and a `docker load` archive.
    DockerArchive,
}

impl Format {
    /// Parse a format's name: `oci`, `oci-archive` or `docker-archive`.
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "oci" => Ok(Format::Oci),
            "oci-archive" => Ok(Format::OciArchive),
            "docker-archive" => Ok(Format::DockerArchive),
            _ => Err(Error::invalid(format!(
                "format {s:?}: expected oci, oci-archive or docker-archive"
            ))),
        }
    }
}

/// Write a composed image in `format` at `dest`.
pub fn write_image(c: &Composed, format: Format, dest: &Utf8Path, mtime: u64) -> Result<()> {
    match format {
        Format::Oci => c.plan.write_dir(dest),
        Format::OciArchive => write_tar(&c.plan, dest, mtime),
        Format::DockerArchive => {
            let mut plan = c.plan.clone();
            plan.extra_files
                .insert("manifest.json".into(), docker_manifest(c)?);
            write_tar(&plan, dest, mtime)
        }
    }
}

/// The `manifest.json` `docker load` reads.
fn docker_manifest(c: &Composed) -> Result<Vec<u8>> {
    for l in &c.layers {
        if matches!(
            Compression::from_media_type(&l.media_type),
            Some(Compression::Zstd { .. })
        ) {
            return Err(Error::unsupported(format!(
                "layer {} is tar+zstd, which docker-archive cannot carry (docker load 20.10 and skopeo refuse it); write an OCI layout or an oci-archive",
                l.digest
            )));
        }
    }
    let layers: Vec<String> = c
        .layers
        .iter()
        .map(|l| Layout::blob_name(&l.digest))
        .collect();
    let mut tags: Vec<String> = c.repo_tag.iter().cloned().collect();
    tags.extend(c.extra_repo_tags.iter().cloned());
    Ok(to_canonical(&json!([{
        "Config": Layout::blob_name(&c.config_digest),
        "RepoTags": tags,
        "Layers": layers,
    }])))
}

/// Write `plan` as a tar at `dest`, atomically.
pub fn write_tar(plan: &LayoutPlan, dest: &Utf8Path, mtime: u64) -> Result<()> {
    // Why first: fail before creating anything when a blob is only remote.
    if let Some(e) = plan.first_remote() {
        return Err(e.context(format!("writing {dest}")));
    }
    let (file, atomic) = AtomicFile::create(dest)?;
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    write_tar_stream(plan, &mut w, mtime, dest)?;
    let file = w
        .into_inner()
        .map_err(|e| Error::io(format!("writing {dest}"), e.error()))?;
    atomic.commit(file)
}

pub(crate) fn header(name: &str, kind: TarKind, size: u64, mtime: u64) -> TarHeader<'_> {
    TarHeader {
        name,
        kind,
        mode: if kind == TarKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        uname: "",
        gname: "",
        size,
        mtime,
        linkname: "",
    }
}

pub(crate) fn write_small(
    w: &mut dyn Write,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut w = w;
    tar::write_header(
        &mut w,
        &header(name, TarKind::File, bytes.len() as u64, mtime),
    )?;
    w.write_all(bytes)?;
    tar::write_padding(&mut w, bytes.len() as u64)
}

fn write_tar_stream(
    plan: &LayoutPlan,
    w: &mut dyn Write,
    mtime: u64,
    dest: &Utf8Path,
) -> Result<()> {
    let ctx = || format!("writing {dest}");
    let mut w = w;
    tar::write_header(&mut w, &header("blobs/", TarKind::Dir, 0, mtime)).io_context(ctx)?;
    tar::write_header(&mut w, &header("blobs/sha256/", TarKind::Dir, 0, mtime)).io_context(ctx)?;
    for (d, (size, src)) in &plan.blobs {
        let name = Layout::blob_name(d);
        tar::write_header(&mut w, &header(&name, TarKind::File, *size, mtime)).io_context(ctx)?;
        let mut r = src.open()?.take(*size);
        let n = io::copy(&mut r, &mut w)
            .map_err(|e| Error::io(format!("copying blob {d} into {dest}"), &e))?;
        if n != *size {
            return Err(Error::corrupt(format!(
                "blob {d}: source has {n} bytes, descriptor says {size}"
            )));
        }
        tar::write_padding(&mut w, *size).io_context(ctx)?;
    }
    write_small(w, "index.json", &plan.index_json, mtime).io_context(ctx)?;
    for (name, bytes) in &plan.extra_files {
        write_small(w, name, bytes, mtime).io_context(ctx)?;
    }
    write_small(w, "oci-layout", OCI_LAYOUT_FILE, mtime).io_context(ctx)?;
    tar::write_end(&mut w).io_context(ctx)
}
