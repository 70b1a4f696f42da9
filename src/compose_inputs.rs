//! Constructors for what [`compose`](crate::image::compose) takes: a
//! [`NewLayer`] from a layer file (read once and checked, like
//! go-containerregistry's `LayerFromFile`) or from a blob in memory, and
//! [`ImageOptions`] with a creation time.
//!
//! Invariants: a layer file nobody described is read through the hardened
//! tar reader before it is trusted; `created` comes from the caller's
//! seconds, never from the clock.

use std::sync::Arc;

use camino::Utf8Path;

use crate::error::Result;
use crate::image::{rfc3339, ImageOptions, NewLayer};
use crate::layer::check::describe_file;
use crate::layer::LayerDescriptor;
use crate::layout::BlobSource;

impl NewLayer {
    /// A layer blob file (plain, gzip or zstd tar, told by its bytes),
    /// described by reading it once through the layer checks: a hostile or
    /// corrupt tar is refused here, naming `path`.
    pub fn from_file(path: &Utf8Path) -> Result<NewLayer> {
        let desc = describe_file(path, &format!("layer {path}"))?;
        Ok(NewLayer {
            desc,
            source: BlobSource::File(path.to_path_buf()),
        })
    }

    /// A layer whose blob is `bytes` in memory, as
    /// [`LayerBuilder::write`](crate::layer::builder::LayerBuilder::write)
    /// returns it with its descriptor.
    pub fn from_blob(desc: LayerDescriptor, bytes: Vec<u8>) -> NewLayer {
        NewLayer {
            desc,
            source: BlobSource::Bytes(Arc::new(bytes)),
        }
    }
}

impl ImageOptions {
    /// Options with no config changes, created at `created` seconds since the
    /// epoch (pass `SOURCE_DATE_EPOCH`'s value, or 0). Why not
    /// `Default`: its empty `created` is not a valid time.
    pub fn created_at(created: u64) -> ImageOptions {
        ImageOptions {
            created: rfc3339(created),
            ..ImageOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::builder::LayerBuilder;
    use crate::layer::LayerOptions;
    use camino::Utf8PathBuf;

    #[test]
    fn a_file_and_its_bytes_give_one_layer() {
        let mut b = LayerBuilder::new();
        b.file("a", "a\n", 0o644).unwrap();
        let (bytes, desc) = b.write(Vec::new(), &LayerOptions::default()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().join("l.tgz")).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(NewLayer::from_file(&p).unwrap().desc, desc);
        assert_eq!(NewLayer::from_blob(desc.clone(), bytes).desc, desc);
    }

    #[test]
    fn a_file_that_is_no_layer_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().join("x")).unwrap();
        std::fs::write(&p, b"not a tar at all").unwrap();
        let e = NewLayer::from_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("layer {p}: ")), "{e}");
    }

    #[test]
    fn a_layer_unsafe_to_extract_is_refused() {
        // A tar entry climbing out of the root, written header byte by header byte.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..7].copy_from_slice(b"../evil");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        let d = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(d.path().join("evil.tar")).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        let e = NewLayer::from_file(&p).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("layer {p}: ")) && e.contains("../evil"),
            "{e}"
        );
    }

    #[test]
    fn created_at_is_rfc3339() {
        assert_eq!(ImageOptions::created_at(0).created, "1970-01-01T00:00:00Z");
    }
}
