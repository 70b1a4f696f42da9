//! Where a spec's layers come from: a layer blob with its descriptor, or a
//! directory of numbered `N.layer` (+ `N.desc`) pairs that a build wrote at
//! build time (Nix's closure layers).
//!
//! Invariants: a directory's layers are taken in number order, never readdir
//! order; `1.layer` beside `01.layer` is refused; at most `MAX_LAYERS`.

use std::collections::BTreeMap;
use std::fs;

use camino::Utf8Path;

use crate::error::{Error, IoContext, Result};
use crate::image::NewLayer;
use crate::layout::BlobSource;

/// Most layers one directory entry may hold.
const MAX_DIR_LAYERS: usize = crate::image::MAX_LAYERS;

/// A layer blob and its descriptor (trusted, size checked), or the blob read,
/// checked and described when there is no descriptor.
pub fn load_layer(file: &Utf8Path, descriptor: Option<&Utf8Path>) -> Result<NewLayer> {
    let desc = crate::layer::file::describe_layer_file(file, descriptor)?;
    Ok(NewLayer {
        desc,
        source: BlobSource::File(file.to_path_buf()),
    })
}

/// The `N.layer` blobs of `dir` in increasing `N`, each with `N.desc` if present.
pub(super) fn load_dir(dir: &Utf8Path) -> Result<Vec<NewLayer>> {
    let mut numbered: BTreeMap<u64, String> = BTreeMap::new();
    for e in fs::read_dir(dir).io_context(|| format!("reading layer directory {dir}"))? {
        let e = e.io_context(|| format!("reading layer directory {dir}"))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(n) = name.strip_suffix(".layer") else {
            continue;
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let num: u64 = n
            .parse()
            .map_err(|_| Error::invalid(format!("{dir}/{name}: layer number too large")))?;
        // Why refuse: "1.layer" and "01.layer" would have no defined order.
        if let Some(prev) = numbered.insert(num, n.to_string()) {
            return Err(Error::invalid(format!(
                "{dir}: {prev}.layer and {n}.layer have the same number"
            )));
        }
        if numbered.len() > MAX_DIR_LAYERS {
            return Err(Error::invalid(format!(
                "{dir}: more than {MAX_DIR_LAYERS} layers"
            )));
        }
    }
    // Why by number, not readdir order: readdir order is the file system's.
    numbered
        .values()
        .map(|n| {
            let desc = dir.join(format!("{n}.desc"));
            let has_desc = fs::symlink_metadata(&desc).is_ok();
            load_layer(&dir.join(format!("{n}.layer")), has_desc.then_some(&*desc))
        })
        .collect()
}
