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
use strata::normalize::{Modes, Owners};

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
    #[arg(long, default_value = "default", value_parser = modes_flag)]
    modes: Modes,
    /// Owners of DIR inputs: root (0:0), keep (the tree's numeric uid/gid; names empty) or keep-names (also names from the tree's own etc/passwd and etc/group).
    #[arg(long, default_value = "root", value_parser = owners_flag)]
    owners: (Owners, bool),
    /// Keep file capabilities (the security.capability xattr, no other) of DIR inputs.
    #[arg(long)]
    xattrs: bool,
    /// Write character/block devices and FIFOs of DIR inputs instead of refusing them.
    #[arg(long)]
    devices: bool,
    /// Leave out layer paths matching GLOB, with their subtrees (`*` within a component, `**` across, `?`); repeatable.
    #[arg(long, value_name = "GLOB", value_parser = exclude_flag)]
    exclude: Vec<Glob>,
}

pub(super) fn layer(a: LayerArgs) -> CliResult {
    let compression = usage(a.compression.with_level(a.level))?;
    let mtime = usage(a.entry.mtime())?;
    if a.inputs.is_empty() && a.spec.is_empty() {
        return Err(Failure::Usage(Error::invalid(
            "no inputs: give directories and/or --spec FILE",
        )));
    }
    let dir_flags = a.modes != Modes::Default
        || a.owners != (Owners::Root, false)
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
        dir_options: DirOptions {
            modes: a.modes,
            owners: a.owners.0,
            owner_names: a.owners.1,
            xattrs: a.xattrs,
            devices: a.devices,
            exclude: a.exclude.clone(),
        },
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

// `strata layer`'s attribute policy for DIR inputs (spec trees say their
// own). The library's messages name the value; the flag is prefixed.

fn modes_flag(s: &str) -> Result<Modes> {
    strata::spec::parse_modes(s).map_err(|e| e.context("--modes"))
}

fn owners_flag(s: &str) -> Result<(Owners, bool)> {
    strata::spec::parse_owners(s).map_err(|e| e.context("--owners"))
}

fn exclude_flag(s: &str) -> Result<Glob> {
    Glob::new(s).map_err(|e| e.context("--exclude"))
}
