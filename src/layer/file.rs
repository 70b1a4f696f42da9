//! A layer blob file handed to an image, and its descriptor: read from a
//! descriptor file (as `strata layer --descriptor` writes it) and checked
//! against the file, or computed by reading the file once through the
//! extraction checks when nobody vouched for it.
//!
//! A descriptor file is trusted for the digests it records (the image's
//! `verify` re-reads every layer); its media type must be a layer type and
//! its size must be the file's, so a stale descriptor is caught at once.

use std::fs;

use camino::Utf8Path;

use super::check::describe_file;
use super::compress::Compression;
use super::{read_small_file, LayerDescriptor};
use crate::error::{Error, IoContext, Result};
use crate::json;

/// The descriptor of the layer blob `file`: read from `descriptor` when
/// given (checked: a layer media type, the file's size), else computed from
/// the file. Errors name `layer FILE`.
pub fn describe_layer_file(
    file: &Utf8Path,
    descriptor: Option<&Utf8Path>,
) -> Result<LayerDescriptor> {
    let meta = fs::metadata(file).io_context(|| format!("layer {file}"))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("layer {file}: not a regular file")));
    }
    let Some(dp) = descriptor else {
        // Why read and checked: nobody vouched for this layer (see layer::check).
        return describe_file(file, &format!("layer {file}"));
    };
    let bytes = read_small_file(dp, json::MAX_JSON_BYTES)?;
    let d: LayerDescriptor = json::parse(&bytes, dp.as_str())?;
    if Compression::from_media_type(&d.media_type).is_none() {
        return Err(Error::invalid(format!(
            "{dp}: unknown layer media type {:?}",
            d.media_type
        )));
    }
    if d.size != meta.len() {
        return Err(Error::corrupt(format!(
            "layer {file}: size mismatch: descriptor {dp} says {} bytes, file has {}",
            d.size,
            meta.len()
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::entry::{Content, Entry, EntryKind};
    use crate::layer::{write_layer_file, LayerOptions};

    #[test]
    fn a_descriptor_file_must_match_the_blob() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        let entries = vec![Entry {
            kind: EntryKind::File(Content::Inline(b"hi\n".to_vec())),
            mode: 0o644,
            ..Entry::dir(crate::layer::path::LayerPath::parse("a").unwrap(), "test")
        }];
        let opts = LayerOptions {
            compression: Compression::gzip(),
            mtime: 0,
            threads: 1,
        };
        let blob = root.join("l.tgz");
        let want = write_layer_file(&entries, &blob, &opts).unwrap();
        assert_eq!(describe_layer_file(&blob, None).unwrap(), want);
        let dp = root.join("l.json");
        fs::write(&dp, serde_json::to_vec(&want).unwrap()).unwrap();
        assert_eq!(describe_layer_file(&blob, Some(&dp)).unwrap(), want);
        let stale = LayerDescriptor {
            size: want.size + 1,
            ..want
        };
        fs::write(&dp, serde_json::to_vec(&stale).unwrap()).unwrap();
        let e = describe_layer_file(&blob, Some(&dp)).unwrap_err();
        assert!(e.to_string().contains("size mismatch"), "{e}");
        let e = describe_layer_file(root, None).unwrap_err();
        assert!(e.to_string().ends_with("not a regular file"), "{e}");
    }
}
