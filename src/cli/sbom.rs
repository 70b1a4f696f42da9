//! `strata sbom` and `strata provenance`: flags, `SOURCE_DATE_EPOCH` and
//! output; the work is in `strata::sbom` and `strata::provenance`. Kept
//! beside `cli.rs` so the commands touch the shared command table in a few
//! lines only.

use std::collections::{BTreeMap, BTreeSet};

use camino::Utf8PathBuf;
use clap::Args;

use super::{source_date_epoch, usage, CliResult};
use strata::descriptor::Platform;
use strata::digest::Digest;
use strata::error::{Error, Result};
use strata::layout::{Image, Layout};
use strata::output;
use strata::provenance::{statement, ProvenanceOptions};
use strata::sbom::declared::{self, Declared};
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
    /// Packages the build declares for a layer, LAYER=FILE: LAYER is the
    /// layer's diff_id (sha256:HEX) or the descriptor file `strata layer
    /// --descriptor` wrote; FILE lists purls, one a line; repeatable.
    #[arg(long)]
    packages: Vec<String>,
    #[command(flatten)]
    cache: super::common::CacheDirArg,
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
pub(super) fn parse_base(s: &str) -> Result<BaseImage> {
    let (name, digest) = match s.rsplit_once('@') {
        Some((n, d)) if !n.is_empty() => (Some(n.to_string()), d),
        _ => (None, s),
    };
    let digest = Digest::parse(digest).map_err(|e| e.context(format!("--base {s:?}")))?;
    Ok(BaseImage { name, digest })
}

/// Open the image; its name (as its layout records it, or `--ref`) and base.
fn open(t: &Target) -> CliResult<(Layout, Image, Option<String>, Option<BaseImage>)> {
    open_image(
        &t.image,
        t.reference.as_deref(),
        t.platform.as_deref(),
        t.base.as_deref(),
    )
}

/// The image at `path` (`--ref`, `--platform`), its name and base (`--base`).
pub(super) fn open_image(
    path: &camino::Utf8Path,
    reference: Option<&str>,
    platform: Option<&str>,
    base: Option<&str>,
) -> CliResult<(Layout, Image, Option<String>, Option<BaseImage>)> {
    let platform = usage(platform.map(Platform::parse).transpose())?;
    let base = usage(base.map(parse_base).transpose())?;
    let layout = Layout::open(path)?;
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
    let (mut layout, image, name, base) = open(&a.target)?;
    // Kept until the layers were read: a temporary fetch directory, if one was needed.
    let _fetched = super::registry::fetch_image_layers(
        &mut layout,
        &image,
        a.cache.cache_dir.as_deref(),
        a.target.out.as_deref(),
    )?;
    let opts = DescribeOptions {
        name,
        base,
        fallback_time,
        inventory: InventoryOptions { files: a.files },
        declared: declared_packages(&a.packages)?,
    };
    let sbom = describe(&layout, &image, &opts)?;
    emit(a.target.out.as_ref(), &write(&sbom))
}

pub(super) fn provenance(a: ProvenanceArgs) -> CliResult {
    let parameters = parse_params(&a.param)?;
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

/// `--param K=V` flags as a map; a key given twice is a usage error.
pub(super) fn parse_params(params: &[String]) -> CliResult<BTreeMap<String, String>> {
    let mut parameters = BTreeMap::new();
    for p in params {
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
    Ok(parameters)
}

/// Largest purl list or layer descriptor file read for `--packages`.
const MAX_PACKAGES_FILE: usize = 4 << 20;

/// `--packages LAYER=FILE` flags, merged.
pub(super) fn declared_packages(flags: &[String]) -> CliResult<Declared> {
    let parts = flags
        .iter()
        .map(|f| read_packages(f))
        .collect::<CliResult<Vec<_>>>()?;
    usage(declared::merge(parts))
}

/// One `--packages LAYER=FILE`: the layer's diff_id and the purls FILE lists.
fn read_packages(flag: &str) -> CliResult<(Digest, BTreeSet<String>)> {
    let Some((layer, file)) = flag
        .split_once('=')
        .filter(|(l, f)| !l.is_empty() && !f.is_empty())
    else {
        return Err(super::Failure::Usage(Error::invalid(format!(
            "--packages {flag:?}: expected LAYER=FILE (LAYER: sha256:HEX or a layer descriptor file)"
        ))));
    };
    let diff_id = match Digest::parse(layer) {
        Ok(d) => d,
        Err(_) => {
            let path = Utf8PathBuf::from(layer);
            let bytes = strata::layer::read_small_file(&path, MAX_PACKAGES_FILE)?;
            let v: serde_json::Value = strata::json::parse(&bytes, path.as_str())?;
            let id = v.get("diffId").and_then(|d| d.as_str()).ok_or_else(|| {
                Error::invalid(format!("{path}: not a layer descriptor (no diffId)"))
            })?;
            Digest::parse(id).map_err(|e| e.context(format!("{path}: diffId")))?
        }
    };
    let path = Utf8PathBuf::from(file);
    let bytes = strata::layer::read_small_file(&path, MAX_PACKAGES_FILE)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::invalid(format!("{path}: not UTF-8 text")))?;
    Ok((diff_id, declared::parse_list(text, path.as_str())?))
}
