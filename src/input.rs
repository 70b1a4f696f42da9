//! What a path given as an image or a layer is: an OCI layout (a directory,
//! or a tar — plain, gzip or zstd — holding an oci-archive or a
//! docker-archive of any age) or else a single layer blob. Used by `strata
//! diff` and `strata normalize`.
//!
//! Invariants: detection reads tar headers only, never contents, and stops
//! at the first entry no image archive can hold, so a large layer is not
//! decompressed to its end just to be told apart; a tar that fails to read
//! as an image is taken as a layer, whose reader then reports the problem.

use std::fs::File;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{IoContext, Result};
use crate::layer::read::{EntryType, LayerReader};
use crate::layout::Layout;

/// What an input path turned out to be.
pub enum Input {
    /// An OCI layout (directory, oci-archive or strata's docker-archive).
    /// (Boxed: a `Layout` is large beside a path.)
    Image(Box<Layout>),
    /// A single layer blob or tar.
    Layer(Utf8PathBuf),
}

/// Open `path` as an image (layout directory, or a tar — plain, gzip or zstd
/// — with a top-level `oci-layout` or `manifest.json`: an OCI archive or a
/// docker-archive of any age) or else as a single layer blob.
pub fn open_input(path: &Utf8Path) -> Result<Input> {
    let meta = std::fs::metadata(path).io_context(|| format!("opening {path}"))?;
    if meta.is_dir() {
        return Ok(Input::Image(Box::new(Layout::open(path)?)));
    }
    let f = File::open(path).io_context(|| format!("opening {path}"))?;
    let mut r = LayerReader::new(io::BufReader::new(f), path.as_str())?;
    let mut image = false;
    // Headers only (contents are skipped); a tar that fails to read here is
    // read again as a layer, which reports the problem.
    while let Ok(Some(e)) = r.next_entry() {
        match (e.path.as_str(), e.kind) {
            ("oci-layout" | "manifest.json", EntryType::File) => {
                image = true;
                break;
            }
            // Why stop here: no image archive holds such a path (at most
            // `<id>/layer.tar` or `blobs/sha256/<hex>`), so this is a layer,
            // and a compressed layer is not decompressed to its end for nothing.
            (p, _) if !in_image_archive(p) => break,
            _ => {}
        }
    }
    if image {
        Ok(Input::Image(Box::new(Layout::open(path)?)))
    } else {
        Ok(Input::Layer(path.to_path_buf()))
    }
}

/// Whether an image archive (OCI or docker-archive) can hold entry `p`.
fn in_image_archive(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    matches!(parts.as_slice(), [_] | [_, _] | ["blobs", _, _])
}
