//! `strata diff`: why two images (or two layers) have different digests.
//!
//! Compares top down and stops nowhere: `index.json` → index → manifests →
//! config (field by field) → layers by position (a reordering of the same
//! layers, and "same diff_id, different compression", are findings of their
//! own) → tar entries (paths only in A or B; for common paths every header
//! field, xattrs, PAX records, content sha256 and header dialect; entry order).
//!
//! Invariants:
//! - every difference found is a [`Finding`] with a [`Class`]; `--semantic`
//!   only filters classes that cannot change a container's behaviour
//!   (timestamps, entry order, compression, tar dialect, history, image
//!   names, and the digests/sizes that follow from them) and counts what it
//!   filtered, so the report says what it ignored;
//! - findings come out in a fixed order (index, manifest, config, layers in
//!   position, entries in A's stream order then B-only ones) and config maps
//!   are walked in key order: the same inputs give the same report;
//! - layers are streamed through [`crate::layer::read`]; only entry headers
//!   and content digests are held, never contents;
//! - a blob whose digest does not match its descriptor is an error, not a
//!   finding (the input is corrupt, not different).
//! - `ignore` globs ([`crate::glob`]) leave out entries whose path or an
//!   ancestor's matches: their findings (and their place in the entry order)
//!   are counted under [`MATCHING_PATHS`], never reported; index, manifest,
//!   config and digest findings are not paths and are never left out.
//!
//! Files, one noun each: `report.rs` (findings, classes, the report),
//! `images.rs` (index, manifests, configs), `config.rs` (JSON field by
//! field), `layers.rs` (blobs and tar entries). What an input path is
//! (image or layer) is [`crate::input`]'s question.

mod config;
mod images;
mod layers;
mod report;

use std::fs::File;
use std::io::Read;

use camino::Utf8Path;

use crate::error::{Error, IoContext, Result};
use crate::glob::Glob;
// The input detection moved to its own module; the old paths stay for callers.
pub use crate::input::{open_input, Input};
pub use layers::{read_layer, ReadLayer};
use report::Sink;
pub use report::{Class, Finding, Report, MATCHING_PATHS};

/// Options of [`diff`].
/// Options of [`diff`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Ignore what cannot change a container's behaviour.
    pub semantic: bool,
    /// Leave out tar entries whose path, or an ancestor directory's, matches
    /// one of these ([`Glob::covers`]); their findings are counted under
    /// [`MATCHING_PATHS`] instead.
    pub ignore: Vec<Glob>,
}

/// Compare two inputs (see the module docs).
pub fn diff(a: &Input, b: &Input, opts: DiffOptions) -> Result<Report> {
    let mut sink = Sink::new(opts.semantic, opts.ignore);
    match (a, b) {
        (Input::Image(la), Input::Image(lb)) => images::diff_images(la, lb, &mut sink)?,
        (Input::Layer(pa), Input::Layer(pb)) => {
            let ra = read_layer(open_file(pa)?, pa.as_str(), None)?;
            let rb = read_layer(open_file(pb)?, pb.as_str(), None)?;
            layers::diff_layers("layer", &ra, &rb, &mut sink);
        }
        (Input::Image(l), Input::Layer(p)) | (Input::Layer(p), Input::Image(l)) => {
            return Err(Error::invalid(format!(
                "{} is an image and {p} a single layer: compare an image with an image, a layer with a layer",
                l.path()
            )))
        }
    }
    Ok(sink.report)
}

fn open_file(p: &Utf8Path) -> Result<Box<dyn Read + Send>> {
    Ok(Box::new(
        File::open(p).io_context(|| format!("reading {p}"))?,
    ))
}
