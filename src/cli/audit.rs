//! `strata diff` and `strata normalize`: flags and printing only; the work is
//! in `strata::diff` and `strata::normalize`. Kept beside `cli.rs` so the
//! audit commands touch the shared command table in two lines only.

use camino::Utf8PathBuf;
use clap::Args;

use super::{epoch, print_json, threads, usage, CliResult, Failure};
use strata::diff::DiffOptions;
use strata::error::{Error, Result};
use strata::glob::Glob;
use strata::input::{open_input, Input};
use strata::json::to_canonical;
use strata::layer::compress::Compression;
use strata::normalize::{normalize_image, normalize_layer_file, Modes, NormalizeOptions, Owners};

#[derive(Args)]
pub(super) struct DiffArgs {
    /// An OCI layout directory, oci-archive, docker-archive, or a layer blob/tar.
    a: Utf8PathBuf,
    /// The same kind of input as A.
    b: Utf8PathBuf,
    /// Ignore what cannot change a container's behaviour (timestamps, entry
    /// order, compression, tar dialect, history, image names) and say so.
    #[arg(long)]
    semantic: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
    /// Leave out tar entries whose path (or a parent directory's) matches
    /// GLOB (`*` within a component, `**` across, `?`, `[a-z]`), counted as
    /// ignored; repeatable.
    #[arg(long, value_name = "GLOB")]
    ignore: Vec<String>,
}

/// Exit 0 identical, 1 different, 2 error (usage errors too), as `cmp`/`diff`.
pub(super) fn diff(a: DiffArgs) -> i32 {
    let run = || -> Result<strata::diff::Report> {
        let ignore = a
            .ignore
            .iter()
            .map(|g| Glob::new(g).map_err(|e| Error::invalid(format!("--ignore: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let ia = open_input(&a.a)?;
        let ib = open_input(&a.b)?;
        strata::diff::diff(
            &ia,
            &ib,
            DiffOptions {
                semantic: a.semantic,
                ignore,
            },
        )
    };
    match run() {
        Ok(report) => {
            if a.json {
                print_json(&report.to_json());
            } else {
                out!("{}", report.to_text());
            }
            i32::from(!report.identical())
        }
        Err(e) => {
            eprintln!("strata: {}", super::one_line(&e.to_string()));
            2
        }
    }
}

#[derive(Args)]
pub(super) struct NormalizeArgs {
    /// A layer blob/tar, or an image (OCI layout directory, oci-archive, docker-archive).
    input: Utf8PathBuf,
    /// Where to write: a layer blob for a layer, an OCI layout directory for an image.
    out: Utf8PathBuf,
    /// gzip, zstd or none (default: the input's compression, at the default level).
    #[arg(long)]
    compression: Option<String>,
    /// Compression level (gzip 1-12, default 5; zstd 1-19, default 3).
    #[arg(long)]
    level: Option<i32>,
    /// mtime of every entry and the image's created time (default: SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    mtime: Option<String>,
    /// Compression threads (default: all cores; the bytes never depend on it).
    #[arg(long)]
    threads: Option<usize>,
    /// keep (default) or root (uid/gid 0, no user/group names).
    #[arg(long, default_value = "keep")]
    owners: String,
    /// keep (default) or default (0755/0644 by the executable bit, dirs 0755, as `strata layer`).
    #[arg(long, default_value = "keep")]
    modes: String,
    /// Synthesize missing parent directories (0755, 0:0).
    #[arg(long)]
    parents: bool,
    /// Store identical files as hard links to the first, as `strata layer` does.
    #[arg(long)]
    dedupe: bool,
    /// Drop xattrs instead of refusing entries that carry them.
    #[arg(long)]
    drop_xattrs: bool,
    /// Also write the layer's JSON descriptor here (layer input only).
    #[arg(long)]
    descriptor: Option<Utf8PathBuf>,
    /// Which image of the input, by tag, when it holds several.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// For an index: which platform (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
}

fn options(a: &NormalizeArgs) -> Result<NormalizeOptions> {
    let compression = match (&a.compression, a.level) {
        (Some(c), l) => {
            Compression::parse(c, None).map_err(|e| e.context("--compression"))?;
            Some(Compression::parse(c, l).map_err(|e| e.context("--level"))?)
        }
        (None, Some(l)) => {
            return Err(Error::invalid(format!(
                "--level {l}: give --compression too"
            )))
        }
        (None, None) => None,
    };
    let owners = match a.owners.as_str() {
        "keep" => Owners::Keep,
        "root" => Owners::Root,
        o => {
            return Err(Error::invalid(format!(
                "--owners {o:?}: expected keep or root"
            )))
        }
    };
    let modes = match a.modes.as_str() {
        "keep" => Modes::Keep,
        "default" => Modes::Default,
        m => {
            return Err(Error::invalid(format!(
                "--modes {m:?}: expected keep or default"
            )))
        }
    };
    Ok(NormalizeOptions {
        compression,
        mtime: epoch(a.mtime.as_deref(), "mtime")?,
        threads: threads(a.threads),
        owners,
        modes,
        parents: a.parents,
        dedupe: a.dedupe,
        drop_xattrs: a.drop_xattrs,
    })
}

pub(super) fn normalize(a: NormalizeArgs) -> CliResult {
    let opts = usage(options(&a))?;
    let platform = usage(
        a.platform
            .as_deref()
            .map(strata::descriptor::Platform::parse)
            .transpose(),
    )?;
    match open_input(&a.input)? {
        Input::Layer(p) => {
            if a.reference.is_some() || platform.is_some() {
                return Err(Failure::Usage(Error::invalid(format!(
                    "{p}: a single layer: --ref and --platform apply to images"
                ))));
            }
            let desc_out = super::side_output(a.descriptor.as_deref())?;
            let desc = normalize_layer_file(&p, &a.out, &opts)?;
            super::finish_side_output(desc_out, &to_canonical(&desc))?;
            outln!("{}", desc.digest);
        }
        Input::Image(layout) => {
            if a.descriptor.is_some() {
                return Err(Failure::Usage(Error::invalid(format!(
                    "{}: an image: --descriptor applies to a single layer",
                    a.input
                ))));
            }
            let d = normalize_image(
                &layout,
                a.reference.as_deref(),
                platform.as_ref(),
                &a.out,
                &opts,
            )?;
            outln!("{}", d.digest);
        }
    }
    Ok(0)
}
