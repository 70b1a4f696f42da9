//! `strata sbom` and `strata provenance`: flags, `SOURCE_DATE_EPOCH` and
//! output; the work is in `strata::sbom` and `strata::provenance`. Kept
//! beside `cli.rs` so the commands touch the shared command table in a few
//! lines only.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use clap::Args;

use super::{source_date_epoch, usage, CliResult};
use strata::descriptor::Platform;
use strata::digest::Digest;
use strata::error::{Error, Result};
use strata::layout::{Image, Layout};
use strata::output;
use strata::provenance::{statement, ProvenanceOptions};
use strata::sbom::{describe, recorded_name, BaseImage, DescribeOptions, InventoryOptions};

/// The flags both commands share: which image, where to write.
#[derive(Args)]
struct Target {
    /// The image: an OCI layout directory, oci-archive or docker-archive.
    image: Utf8PathBuf,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
    /// From an index: which platform (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Write the document here (atomically) instead of to standard output.
    #[arg(long)]
    out: Option<Utf8PathBuf>,
    /// The base image, [NAME@]sha256:HEX, when the image's annotations do not record it.
    #[arg(long)]
    base: Option<String>,
}

#[derive(Args)]
pub(super) struct SbomArgs {
    #[command(flatten)]
    target: Target,
    /// spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.6 JSON).
    #[arg(long)]
    format: String,
    /// Also list every regular file of every layer with sha1 and sha256 (off by default: a root filesystem has tens of thousands).
    #[arg(long)]
    files: bool,
}

#[derive(Args)]
pub(super) struct ProvenanceArgs {
    #[command(flatten)]
    target: Target,
    /// A build parameter K=V recorded in externalParameters.parameters; repeatable.
    #[arg(long)]
    param: Vec<String>,
    /// runDetails.builder.id (default: urn:strata:builder:strata-VERSION).
    #[arg(long)]
    builder_id: Option<String>,
}

/// `[NAME@]sha256:HEX`.
fn parse_base(s: &str) -> Result<BaseImage> {
    let (name, digest) = match s.rsplit_once('@') {
        Some((n, d)) if !n.is_empty() => (Some(n.to_string()), d),
        _ => (None, s),
    };
    let digest = Digest::parse(digest).map_err(|e| e.context(format!("--base {s:?}")))?;
    Ok(BaseImage { name, digest })
}

/// Open the image; its name (as its layout records it, or `--ref`) and base.
fn open(t: &Target) -> CliResult<(Layout, Image, Option<String>, Option<BaseImage>)> {
    let platform = usage(t.platform.as_deref().map(Platform::parse).transpose())?;
    let base = usage(t.base.as_deref().map(parse_base).transpose())?;
    let layout = Layout::open(&t.image)?;
    let reference = t.reference.as_deref();
    let top = layout.top(reference)?;
    let image = layout.image(reference, platform.as_ref())?;
    let name = recorded_name(&top).or_else(|| reference.map(str::to_string));
    Ok((layout, image, name, base))
}

/// The bytes to `out`, or to standard output with a newline.
fn emit(out: Option<&Utf8PathBuf>, bytes: &[u8]) -> CliResult {
    match out {
        Some(p) => output::write_file(p, bytes)?,
        None => out!("{}\n", String::from_utf8_lossy(bytes)),
    }
    Ok(0)
}

pub(super) fn sbom(a: SbomArgs) -> CliResult {
    let write = match a.format.as_str() {
        "spdx" => strata::sbom::spdx::write,
        "cyclonedx" => strata::sbom::cyclonedx::write,
        f => {
            return Err(super::Failure::Usage(Error::invalid(format!(
                "--format {f:?}: expected spdx or cyclonedx"
            ))))
        }
    };
    let fallback_time = usage(source_date_epoch())?.unwrap_or(0);
    let (layout, image, name, base) = open(&a.target)?;
    let opts = DescribeOptions {
        name,
        base,
        fallback_time,
        inventory: InventoryOptions { files: a.files },
    };
    let sbom = describe(&layout, &image, &opts)?;
    emit(a.target.out.as_ref(), &write(&sbom))
}

pub(super) fn provenance(a: ProvenanceArgs) -> CliResult {
    let mut parameters = BTreeMap::new();
    for p in &a.param {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                super::Failure::Usage(Error::invalid(format!("--param {p:?}: expected K=V")))
            })?;
        if parameters.insert(k.to_string(), v.to_string()).is_some() {
            return Err(super::Failure::Usage(Error::invalid(format!(
                "--param {k}: given twice"
            ))));
        }
    }
    let time = usage(source_date_epoch())?;
    let (layout, image, name, base) = open(&a.target)?;
    let opts = ProvenanceOptions {
        name,
        base,
        parameters,
        time,
        builder_id: a.builder_id,
    };
    emit(a.target.out.as_ref(), &statement(&layout, &image, &opts)?)
}
