//! `strata diff` and `strata normalize`: flags and printing only; the work is
//! in `strata::diff` and `strata::normalize`. Kept beside `cli.rs` so the
//! audit commands touch the shared command table in two lines only.

use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};

use super::common::{finish_side_output, hint, print_json, side_output, CompressionArg, EntryArgs};
use super::{usage, CliResult, Failure};
use strata::diff::DiffOptions;
use strata::error::{Error, Result};
use strata::glob::Glob;
use strata::input::{open_input, Input};
use strata::json::to_canonical;
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
    /// The output's compression (default: the input's, at the default level).
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    /// Compression level (gzip 1-12, default 5; zstd 1-19, default 3).
    #[arg(long)]
    level: Option<i32>,
    #[command(flatten)]
    entry: EntryArgs,
    /// Owners of the entries.
    #[arg(long, value_enum, default_value = "keep")]
    owners: OwnersArg,
    /// Modes of the entries.
    #[arg(long, value_enum, default_value = "keep")]
    modes: ModesArg,
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

/// `normalize --owners`.
#[derive(Clone, Copy, ValueEnum)]
enum OwnersArg {
    /// The input's owners and names.
    Keep,
    /// uid/gid 0, no user/group names.
    Root,
}

/// `normalize --modes`.
#[derive(Clone, Copy, ValueEnum)]
enum ModesArg {
    /// The input's modes.
    Keep,
    /// 0755/0644 by the executable bit, dirs 0755, as `strata layer`.
    Default,
}

fn options(a: &NormalizeArgs) -> Result<NormalizeOptions> {
    let compression = match (a.compression, a.level) {
        (Some(c), l) => Some(c.with_level(l)?),
        (None, Some(l)) => {
            return Err(Error::invalid(format!(
                "--level {l}: give --compression too"
            )))
        }
        (None, None) => None,
    };
    let owners = match a.owners {
        OwnersArg::Keep => Owners::Keep,
        OwnersArg::Root => Owners::Root,
    };
    let modes = match a.modes {
        ModesArg::Keep => Modes::Keep,
        ModesArg::Default => Modes::Default,
    };
    Ok(NormalizeOptions {
        compression,
        mtime: a.entry.mtime()?,
        threads: a.entry.threads(),
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
            let desc_out = side_output(a.descriptor.as_deref())?;
            let desc = normalize_layer_file(&p, &a.out, &opts).map_err(normalize_hint)?;
            finish_side_output(desc_out, &to_canonical(&desc))?;
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
            )
            .map_err(normalize_hint)?;
            outln!("{}", d.digest);
        }
    }
    Ok(0)
}

/// The flags that normalize what the library refuses to keep.
fn normalize_hint(e: Error) -> Error {
    let e = hint(e, "drop xattrs to normalize it", "--drop-xattrs");
    hint(e, "root owners drop it", "--owners root")
}
