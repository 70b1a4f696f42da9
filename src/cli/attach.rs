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
use strata::attestation::{attested, AttestOptions, SbomFormat};
use strata::descriptor::Descriptor;
use strata::error::{Error, Result};
use strata::layer::read_small_file;
use strata::layout::Layout;
use strata::provenance::ProvenanceOptions;
use strata::referrer::{self, Blob};
use strata::sbom::{DescribeOptions, InventoryOptions};

/// Largest file `strata attach` attaches (it is read into memory; `pull
/// --referrers` fetches attached blobs with the same bound).
const MAX_ATTACHMENT_BYTES: usize = strata::json::MAX_JSON_BYTES;

#[derive(Args)]
pub(super) struct AttachArgs {
    /// The image: an OCI layout directory (attachments are added in place),
    /// or with --out any layout, oci-archive or docker-archive.
    image: Utf8PathBuf,
    /// The file to attach (or --sbom / --provenance instead).
    #[arg(required_unless_present_any = ["sbom", "provenance"])]
    file: Option<Utf8PathBuf>,
    /// Its artifact type, e.g. application/spdx+json.
    #[arg(long, requires = "file")]
    artifact_type: Option<String>,
    /// Media type of the file's blob (default: the artifact type).
    #[arg(long, requires = "file")]
    media_type: Option<String>,
    /// Annotation on the artifact manifest, KEY=VALUE; repeatable.
    #[arg(long, requires = "file")]
    annotation: Vec<String>,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Attach the image's SBOM in this format, spdx or cyclonedx (the bytes
    /// `strata sbom` writes); repeatable.
    #[arg(long, conflicts_with = "file")]
    sbom: Vec<String>,
    /// Attach the image's SLSA v1 provenance statement (the bytes `strata
    /// provenance` writes), unsigned, as application/vnd.in-toto+json.
    #[arg(long, conflicts_with = "file")]
    provenance: bool,
    /// Write the image and its attachments as a new layout directory here
    /// (atomically; same inputs, same bytes) instead of changing IMAGE.
    #[arg(long)]
    out: Option<Utf8PathBuf>,
    /// With --sbom: packages the build declares for a layer, LAYER=FILE (as
    /// `strata sbom --packages`); repeatable.
    #[arg(long, requires = "sbom")]
    packages: Vec<String>,
    /// With --sbom: also list every regular file of every layer.
    #[arg(long, requires = "sbom")]
    files: bool,
    /// From an index: which platform's image (os/arch[/variant]).
    #[arg(long, conflicts_with = "file")]
    platform: Option<String>,
    /// The base image, [NAME@]sha256:HEX, when the image's annotations do not record it.
    #[arg(long, conflicts_with = "file")]
    base: Option<String>,
    /// With --provenance: a build parameter K=V; repeatable.
    #[arg(long, requires = "provenance")]
    param: Vec<String>,
    /// With --out: write each blob that comes from a file inside DIR as a
    /// symlink to that file's absolute canonical path instead of a copy
    /// (as `strata image --link-under`; e.g. /nix/store).
    #[arg(long, value_name = "DIR", requires = "out")]
    link_under: Option<Utf8PathBuf>,
    /// Print nothing (the attachments' digests are in index.json).
    #[arg(short, long)]
    quiet: bool,
    // With --sbom on a shallow image: where its remote layers are cached.
    #[command(flatten)]
    cache: super::common::CacheDirArg,
}

pub(super) fn attach(a: AttachArgs) -> CliResult {
    let Some(file) = &a.file else {
        return attach_documents(&a);
    };
    let Some(artifact_type) = &a.artifact_type else {
        return Err(super::Failure::Usage(Error::invalid(
            "--artifact-type: required with a FILE to attach",
        )));
    };
    let annotations: BTreeMap<String, String> = usage(kv(&a.annotation, "annotation"))?
        .into_iter()
        .collect();
    let layout = Layout::open(&a.image)?;
    let image = layout.top(a.reference.as_deref())?;
    let bytes = read_small_file(file, MAX_ATTACHMENT_BYTES)?;
    let blob = Blob {
        media_type: a
            .media_type
            .clone()
            .unwrap_or_else(|| artifact_type.clone()),
        bytes,
        annotations: BTreeMap::new(),
    };
    let art = usage(
        referrer::artifact(&image, artifact_type, &blob, &annotations).map_err(|e| e.context(file)),
    )?;
    match &a.out {
        Some(out) => {
            // The same new-layout path the documents take, with this one attachment.
            let planned = strata::attestation::with_artifacts(&layout, std::slice::from_ref(&art))?;
            write_layout(&planned, out, a.link_under.as_deref())?;
        }
        None => referrer::add_to_layout(&a.image, std::slice::from_ref(&art))?,
    }
    if !a.quiet {
        outln!("{}", art.descriptor.digest);
    }
    Ok(0)
}

/// `--sbom` / `--provenance`: make the documents and attach them.
fn attach_documents(a: &AttachArgs) -> CliResult {
    let sbom = usage(
        a.sbom
            .iter()
            .map(|f| SbomFormat::parse(f))
            .collect::<Result<Vec<_>>>(),
    )?;
    let declared = super::sbom::declared_packages(&a.packages)?;
    let (mut layout, image, name, base) = super::sbom::open_image(
        &a.image,
        a.reference.as_deref(),
        a.platform.as_deref(),
        a.base.as_deref(),
    )?;
    // Kept until the layers were read: a temporary fetch directory, if one was needed.
    let _fetched = if sbom.is_empty() {
        None
    } else {
        super::registry::fetch_image_layers(
            &mut layout,
            &image,
            a.cache.cache_dir.as_deref(),
            a.out.as_deref(),
        )?
    };
    let time = usage(super::source_date_epoch())?;
    let opts = AttestOptions {
        sbom,
        describe: DescribeOptions {
            name: name.clone(),
            base: base.clone(),
            fallback_time: time.unwrap_or(0),
            inventory: InventoryOptions { files: a.files },
            declared,
        },
        provenance: a
            .provenance
            .then(|| -> CliResult<ProvenanceOptions> {
                Ok(ProvenanceOptions {
                    name,
                    base,
                    parameters: super::sbom::parse_params(&a.param)?,
                    time,
                    builder_id: None,
                })
            })
            .transpose()?,
    };
    let done = attested(&layout, &image, &opts)?;
    match &a.out {
        Some(out) => write_layout(&done.plan, out, a.link_under.as_deref())?,
        None => referrer::add_to_layout(&a.image, &done.artifacts)?,
    }
    for art in done.artifacts.iter().filter(|_| !a.quiet) {
        outln!("{}", art.descriptor.digest);
    }
    Ok(0)
}

/// Write `plan` as a layout directory at `out`, linking blobs under `link_under`.
fn write_layout(
    plan: &strata::LayoutPlan,
    out: &camino::Utf8Path,
    link_under: Option<&camino::Utf8Path>,
) -> Result<()> {
    match link_under {
        Some(dir) => plan.write_dir_linking(out, dir),
        None => plan.write_dir(out),
    }
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
