//! `strata attach` (a file attached to an image as an OCI 1.1 referrer) and
//! the attachment listing `strata inspect` prints. Flags and printing only;
//! the work is in `strata::referrer`. Kept beside `cli.rs` so the commands
//! touch the shared command table in a few lines only.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use clap::Args;
use serde_json::{json, Value};

use super::common::{human, kv};
use super::{usage, CliResult};
use strata::descriptor::Descriptor;
use strata::error::{Error, IoContext, Result};
use strata::layout::Layout;
use strata::referrer::{self, Blob};

/// Largest file `strata attach` attaches (it is read into memory; `pull
/// --referrers` fetches attached blobs with the same bound).
const MAX_ATTACHMENT_BYTES: u64 = strata::json::MAX_JSON_BYTES as u64;

#[derive(Args)]
pub(super) struct AttachArgs {
    /// The image: an OCI layout directory (the attachment is added in place).
    image: Utf8PathBuf,
    /// The file to attach.
    file: Utf8PathBuf,
    /// Its artifact type, e.g. application/spdx+json.
    #[arg(long)]
    artifact_type: String,
    /// Media type of the file's blob (default: the artifact type).
    #[arg(long)]
    media_type: Option<String>,
    /// Annotation on the artifact manifest, KEY=VALUE; repeatable.
    #[arg(long)]
    annotation: Vec<String>,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
}

pub(super) fn attach(a: AttachArgs) -> CliResult {
    let annotations: BTreeMap<String, String> = usage(kv(&a.annotation, "annotation"))?
        .into_iter()
        .collect();
    let layout = Layout::open(&a.image)?;
    let image = layout.top(a.reference.as_deref())?;
    let bytes = read_limited(&a.file, MAX_ATTACHMENT_BYTES)?;
    let blob = Blob {
        media_type: a.media_type.unwrap_or_else(|| a.artifact_type.clone()),
        bytes,
        annotations: BTreeMap::new(),
    };
    let art = usage(
        referrer::artifact(&image, &a.artifact_type, &blob, &annotations)
            .map_err(|e| e.context(&a.file)),
    )?;
    referrer::add_to_layout(&a.image, std::slice::from_ref(&art))?;
    outln!("{}", art.descriptor.digest);
    Ok(0)
}

/// Read a whole file of at most `limit` bytes.
pub(super) fn read_limited(path: &camino::Utf8Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).io_context(|| format!("reading {path}"))?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .io_context(|| format!("reading {path}"))?;
    if bytes.len() as u64 > limit {
        return Err(Error::invalid(format!(
            "{path}: larger than the {limit} byte limit"
        )));
    }
    Ok(bytes)
}

/// The attachments of `image` as `strata inspect --json` lists them.
pub(super) fn attachments_json(layout: &Layout, image: &Descriptor) -> Result<Value> {
    let list = referrer::attachments(layout, &image.digest)?;
    Ok(Value::Array(
        list.iter()
            .map(|a| {
                let size: u64 = a.manifest.layers.iter().map(|l| l.size).sum();
                json!({
                    "artifactType": a.kind(),
                    "digest": a.descriptor.digest,
                    "size": size,
                    "annotations": a.manifest.annotations,
                })
            })
            .collect(),
    ))
}

/// Print the attachments of `image` (type, manifest digest, size of what is attached).
pub(super) fn print_attachments(layout: &Layout, image: &Descriptor) -> Result<()> {
    let list = referrer::attachments(layout, &image.digest)?;
    if list.is_empty() {
        return Ok(());
    }
    outln!("attachments {}", list.len());
    for a in &list {
        let size: u64 = a.manifest.layers.iter().map(|l| l.size).sum();
        outln!(
            "  {}  {:>10}  {}",
            a.descriptor.digest,
            human(size),
            a.kind()
        );
    }
    Ok(())
}
