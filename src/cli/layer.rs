//! `strata layer`: flags to [`LayerInputs`] and [`BuildOptions`]; the work is
//! [`build_layer_file`].

use camino::Utf8PathBuf;
use clap::Args;

use super::common::{finish_side_output, hint, side_output, CompressionArg, EntryArgs};
use super::{usage, CliResult, Failure};
use strata::error::{Error, Result};
use strata::glob::Glob;
use strata::json::to_canonical;
use strata::layer::dir_options::DirOptions;
use strata::layer::inputs::{build_layer_file, BuildOptions, DirInput, LayerInputs};
use strata::layer::LayerOptions;

#[derive(Args)]
pub(super) struct LayerArgs {
    /// Where to write the layer blob.
    #[arg(long)]
    out: Utf8PathBuf,
    /// Also write a JSON descriptor {mediaType, digest, size, diffId} here.
    #[arg(long)]
    descriptor: Option<Utf8PathBuf>,
    /// The blob's compression.
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    /// Compression level (gzip 1-12, default 5; zstd 1-19, default 3).
    #[arg(long)]
    level: Option<i32>,
    #[command(flatten)]
    entry: EntryArgs,
    /// Store identical files separately instead of as hard links to the first.
    #[arg(long)]
    no_dedupe: bool,
    /// Print nothing on success (the digest is in --descriptor).
    #[arg(long, short)]
    quiet: bool,
    /// A layer spec (JSON, {"version":1,"entries":[...]}); repeatable.
    #[arg(long)]
    spec: Vec<Utf8PathBuf>,
    /// Directories whose contents become the layer root; DIR=/prefix puts them under /prefix.
    inputs: Vec<String>,
    /// Modes of DIR inputs: default (0755/0644 by the executable bit) or keep (the tree's, setuid/setgid/sticky included; for root filesystems).
    #[arg(long, default_value = "default")]
    modes: String,
    /// Owners of DIR inputs: root (0:0), keep (the tree's numeric uid/gid; names empty) or keep-names (also names from the tree's own etc/passwd and etc/group).
    #[arg(long, default_value = "root")]
    owners: String,
    /// Keep file capabilities (the security.capability xattr, no other) of DIR inputs.
    #[arg(long)]
    xattrs: bool,
    /// Write character/block devices and FIFOs of DIR inputs instead of refusing them.
    #[arg(long)]
    devices: bool,
    /// Leave out layer paths matching GLOB, with their subtrees (`*` within a component, `**` across, `?`); repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

pub(super) fn layer(a: LayerArgs) -> CliResult {
    let compression = usage(a.compression.with_level(a.level))?;
    let mtime = usage(a.entry.mtime())?;
    if a.inputs.is_empty() && a.spec.is_empty() {
        return Err(Failure::Usage(Error::invalid(
            "no inputs: give directories and/or --spec FILE",
        )));
    }
    let dir_options = usage(dir_options(&a))?;
    let dir_flags = a.modes != "default"
        || a.owners != "root"
        || a.xattrs
        || a.devices
        || !a.exclude.is_empty();
    if a.inputs.is_empty() && dir_flags {
        // Why refuse: silently ignoring e.g. --exclude would build another layer than asked.
        return Err(Failure::Usage(Error::invalid(
            "--modes, --owners, --xattrs, --devices and --exclude apply to DIR inputs; \
             a spec's tree entries take the same as fields (\"modes\", \"exclude\", ...)",
        )));
    }
    let inputs = LayerInputs {
        dirs: usage(a.inputs.iter().map(|s| DirInput::parse(s)).collect())?,
        specs: a.spec.clone(),
        dir_options,
    };
    let opts = BuildOptions {
        layer: LayerOptions {
            compression,
            mtime,
            threads: a.entry.threads(),
        },
        dedupe: !a.no_dedupe,
    };
    let desc_out = side_output(a.descriptor.as_deref())?;
    let desc = build_layer_file(&inputs, &a.out, &opts).map_err(dir_flag_hint)?;
    finish_side_output(desc_out, &to_canonical(&desc))?;
    if !a.quiet {
        outln!("{}", desc.digest);
    }
    Ok(0)
}

/// The flags that let a walked tree's special files in, or leave them out.
fn dir_flag_hint(e: Error) -> Error {
    let e = hint(e, "a socket cannot go into a layer", "--exclude");
    hint(
        e,
        "cannot go into a layer unless asked for",
        "--devices, --exclude",
    )
}

/// `strata layer`'s attribute policy for DIR inputs (spec trees say their own).
fn dir_options(a: &LayerArgs) -> Result<DirOptions> {
    // The library's message names the value; the flag is prefixed to it.
    let flag = |e: Error, name: &str| e.context(format!("--{name}"));
    let (owners, owner_names) =
        strata::spec::parse_owners(&a.owners).map_err(|e| flag(e, "owners"))?;
    Ok(DirOptions {
        modes: strata::spec::parse_modes(&a.modes).map_err(|e| flag(e, "modes"))?,
        owners,
        owner_names,
        xattrs: a.xattrs,
        devices: a.devices,
        exclude: a
            .exclude
            .iter()
            .map(|g| Glob::new(g).map_err(|e| flag(e, "exclude")))
            .collect::<Result<_>>()?,
    })
}
