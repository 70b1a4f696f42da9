//! `strata digest`, `strata verify` and `strata inspect`: flags and printing;
//! the work is [`strata::summary`] and [`strata::verify`].

use camino::Utf8PathBuf;
use clap::Args;

use super::common::{human, print_json};
use super::{one_line, usage, CliResult};
use strata::descriptor::Platform;
use strata::json::to_canonical;
use strata::layout::Layout;
use strata::summary::{digests, summarize, Summary};
use strata::verify::{verify_with, VerifyOptions};

#[derive(Args)]
pub(super) struct DigestArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Which image, by tag, when the layout holds several.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Print manifest, config and layer digests as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct VerifyArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Fail when a layer is only recorded as remote (a shallow layout).
    #[arg(long)]
    require_complete: bool,
    /// Also check the image's attached signatures and attestations with this
    /// ECDSA P-256 public key (PEM); at least one signature must be attached.
    #[arg(long)]
    key: Option<Utf8PathBuf>,
    /// With --key: which image's signatures, by tag, when the layout holds several.
    #[arg(long = "ref", requires = "key")]
    reference: Option<String>,
}

#[derive(Args)]
pub(super) struct InspectArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Which image, by tag.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// For an index: which platform.
    #[arg(long)]
    platform: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub(super) fn digest(a: DigestArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    if a.json {
        print_json(&digests(&layout, a.reference.as_deref())?);
    } else {
        outln!("{}", layout.top(a.reference.as_deref())?.digest);
    }
    Ok(0)
}

pub(super) fn verify(a: VerifyArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    let opts = VerifyOptions {
        require_complete: a.require_complete,
    };
    let mut report = verify_with(&layout, &opts);
    let signed = match (&a.key, report.ok()) {
        (Some(k), true) => match super::sign::verify_signatures(&layout, a.reference.as_deref(), k)
        {
            Ok(line) => Some(line),
            Err(e) => {
                report.problems.push(e.to_string());
                None
            }
        },
        _ => None,
    };
    if report.ok() {
        if !report.remote.is_empty() {
            eprintln!(
                "strata: {}: shallow: {} layer(s) live in a registry, not checked here: {}",
                a.path,
                report.remote.len(),
                one_line(&report.remote.join(", "))
            );
        }
        // The images first; attachments (signatures, SBOMs) only counted.
        let images = layout.images();
        let top: Vec<String> = images.iter().map(|d| d.digest.to_string()).collect();
        let attached = match layout.index.manifests.len() - images.len() {
            0 => String::new(),
            n => format!(", {n} attachment(s)"),
        };
        outln!(
            "ok: {} ({} blobs, {} layers verified{attached})",
            top.join(", "),
            report.blobs_checked,
            report.layers_checked
        );
        if let Some(line) = signed {
            outln!("{line}");
        }
        Ok(0)
    } else {
        // One line, as every error: the problem itself, or all of them.
        let line = match report.problems.as_slice() {
            [one] => one.clone(),
            all => format!("{}: {} problems: {}", a.path, all.len(), all.join("; ")),
        };
        eprintln!("strata: {}", one_line(&line));
        Ok(1)
    }
}

pub(super) fn inspect(a: InspectArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    let platform = usage(a.platform.as_deref().map(Platform::parse).transpose())?;
    let summary = summarize(&layout, a.reference.as_deref(), platform.as_ref())?;
    if a.json {
        let mut json = summary.to_json();
        if let (Summary::Image(s), Some(obj)) = (&summary, json.as_object_mut()) {
            obj.insert(
                "attachments".into(),
                super::attach::attachments_json(&layout, &s.image.manifest_desc)?,
            );
        }
        print_json(&json);
        return Ok(0);
    }
    let s = match summary {
        Summary::Index { top, manifests } => {
            outln!("index     {}", top.digest);
            for m in &manifests {
                let p = m
                    .platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into());
                outln!("  {p:<16} {}  {}", m.digest, human(m.size));
            }
            super::attach::print_attachments(&layout, &top)?;
            return Ok(0);
        }
        Summary::Image(s) => *s,
    };
    let img = &s.image;
    outln!("image     {}", img.manifest_desc.digest);
    outln!("platform  {}", img.platform());
    if let Some(c) = s.created() {
        outln!("created   {c}");
    }
    outln!("config    {}", img.manifest.config.digest);
    if let Some(obj) = s.config().as_object() {
        for (k, v) in obj {
            outln!("  {k:<13} {}", String::from_utf8_lossy(&to_canonical(v)));
        }
    }
    outln!(
        "layers    {} ({})",
        img.manifest.layers.len(),
        human(s.layers_size())
    );
    for l in &img.manifest.layers {
        let kind = l.media_type.rsplit('.').next().unwrap_or(&l.media_type);
        outln!("  {}  {:>10}  {kind}", l.digest, human(l.size));
    }
    super::attach::print_attachments(&layout, &img.manifest_desc)?;
    Ok(0)
}
