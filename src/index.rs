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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::write_image;
    use crate::descriptor::Platform;
    use crate::image::{compose, rfc3339, ImageOptions, NewLayer};
    use crate::layer::compress::Compression;
    use crate::layer::inputs::{build_layer_file, BuildOptions, DirInput, LayerInputs};
    use crate::layer::LayerOptions;
    use crate::layout::BlobSource;
    use crate::summary::{summarize, Summary};

    /// A one-layer image for `platform` at `root/NAME`, all through the library.
    fn image(root: &Utf8Path, name: &str, platform: &str) -> Layout {
        let inputs = LayerInputs {
            dirs: vec![DirInput::parse(root.join("tree").as_str()).unwrap()],
            ..LayerInputs::default()
        };
        let opts = BuildOptions {
            layer: LayerOptions {
                compression: Compression::gzip(),
                mtime: 0,
                threads: 1,
            },
            dedupe: true,
        };
        let blob = root.join(format!("{name}.tgz"));
        let desc = build_layer_file(&inputs, &blob, &opts).unwrap();
        let layer = NewLayer {
            desc,
            source: BlobSource::File(blob),
        };
        let opts = ImageOptions {
            platform: Some(Platform::parse(platform).unwrap()),
            created: rfc3339(0),
            ..ImageOptions::default()
        };
        let composed = compose(None, vec![layer], &opts).unwrap();
        write_image(&composed, Format::Oci, &root.join(name), 0).unwrap();
        Layout::open(&root.join(name)).unwrap()
    }

    #[test]
    fn an_index_of_two_platforms_round_trips_and_refuses_a_twin() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        std::fs::create_dir(root.join("tree")).unwrap();
        std::fs::write(root.join("tree/motd"), b"hi\n").unwrap();
        let amd = image(root, "amd", "linux/amd64");
        let arm = image(root, "arm", "linux/arm64");
        let opts = IndexOptions {
            tag: Some("multi:1".into()),
        };
        let c = compose_index(&[amd, arm], &opts).unwrap();
        c.write(Format::Oci, &root.join("idx"), 0).unwrap();
        let e = c.write(Format::DockerArchive, &root.join("x.tar"), 0);
        assert!(e.unwrap_err().to_string().contains("holds one image"));
        let idx = Layout::open(&root.join("idx")).unwrap();
        match summarize(&idx, Some("1"), None).unwrap() {
            Summary::Index { top, manifests } => {
                assert_eq!(top.digest, c.digest);
                let ps: Vec<String> = manifests
                    .iter()
                    .map(|m| m.platform.as_ref().unwrap().to_string())
                    .collect();
                assert_eq!(ps, ["linux/amd64", "linux/arm64"]);
            }
            Summary::Image(_) => panic!("an index summarized as an image"),
        }
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let Summary::Image(s) = summarize(&idx, None, Some(&arm64)).unwrap() else {
            panic!("no image for linux/arm64");
        };
        assert_eq!(s.image.platform().to_string(), "linux/arm64");
        assert_eq!(s.diff_ids.len(), 1);
        let twin = [
            image(root, "a1", "linux/amd64"),
            image(root, "a2", "linux/amd64"),
        ];
        let e = compose_index(&twin, &IndexOptions::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("a second image for platform linux/amd64"),
            "{e}"
        );
    }
}
