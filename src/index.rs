//! Image indexes: one multi-platform image made of single-platform images.
//!
//! [`compose_index`] lists each image's manifest under its config's platform
//! (one image per platform), in the order given, and plans a layout holding
//! the index and every blob the images reference; [`ComposedIndex::write`]
//! writes it as an OCI layout or an oci-archive. The index bytes are
//! canonical JSON, so the digest depends only on the images and their order.

use camino::Utf8Path;

use crate::archive::{write_tar, Format};
use crate::descriptor::{Descriptor, Index, OCI_INDEX};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::tag_annotations;
use crate::json::to_canonical;
use crate::layout::{Image, Layout, LayoutPlan};

/// How to compose an index.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// `NAME:TAG` recorded in `index.json` (ref.name annotations).
    pub tag: Option<String>,
}

/// An index ready to write: its digest and the layout that holds it.
#[derive(Debug, Clone)]
pub struct ComposedIndex {
    /// Digest of the index blob (what `index.json` points at).
    pub digest: Digest,
    /// `index.json` and every blob: the index, and each image's manifest,
    /// config and layers (remote ones for a shallow image).
    pub plan: LayoutPlan,
}

/// Compose the single-platform image of each layout (its only image) into an
/// index, bottom of the list first. Two images of one platform are refused.
pub fn compose_index(images: &[Layout], opts: &IndexOptions) -> Result<ComposedIndex> {
    let mut plan = LayoutPlan::default();
    let mut entries: Vec<Descriptor> = Vec::new();
    for layout in images {
        let path = layout.path();
        let img = layout.image(None, None).map_err(|e| e.context(path))?;
        let platform = img.platform();
        if entries
            .iter()
            .any(|d| d.platform.as_ref() == Some(&platform))
        {
            return Err(Error::invalid(format!(
                "{path}: a second image for platform {platform}"
            )));
        }
        let mut d = Descriptor::new(
            &img.manifest_desc.media_type,
            img.manifest_desc.digest,
            img.manifest_desc.size,
        );
        d.platform = Some(platform);
        entries.push(d);
        add_image_blobs(layout, &img, &mut plan)?;
    }
    let index_bytes = to_canonical(&Index::new(entries));
    let (digest, size) = plan.add_bytes(index_bytes);
    let mut top = Descriptor::new(OCI_INDEX, digest, size);
    tag_annotations(&mut top, opts.tag.as_deref())?;
    plan.index_json = to_canonical(&Index::new(vec![top]));
    Ok(ComposedIndex { digest, plan })
}

/// Plan the image's manifest, config and layers from `layout`.
fn add_image_blobs(layout: &Layout, img: &Image, plan: &mut LayoutPlan) -> Result<()> {
    let mut all = vec![img.manifest_desc.clone(), img.manifest.config.clone()];
    all.extend(img.manifest.layers.iter().cloned());
    for d in all {
        let src = layout.blob(&d.digest).ok_or_else(|| {
            Error::corrupt(format!("{}: blob {} is missing", layout.path(), d.digest))
        })?;
        plan.blobs.insert(d.digest, (d.size, src));
    }
    Ok(())
}

impl ComposedIndex {
    /// Whether `format` can hold an index (a docker-archive holds one image).
    pub fn can_write(format: Format) -> bool {
        format != Format::DockerArchive
    }

    /// Write the index at `dest` as `format`; `mtime` stamps an archive's
    /// members. An archive needs every blob's bytes: fill a shallow image's
    /// remote layers first (see [`crate::registry::cache`]).
    pub fn write(&self, format: Format, dest: &Utf8Path, mtime: u64) -> Result<()> {
        match format {
            Format::Oci => self.plan.write_dir(dest),
            Format::OciArchive => write_tar(&self.plan, dest, mtime),
            Format::DockerArchive => Err(Error::invalid(format!(
                "{dest}: a docker-archive holds one image, not an index; write an OCI layout or an oci-archive"
            ))),
        }
    }
}
