//! `strata nix-layers`: flags to [`LayeringOptions`]; the work is
//! [`write_layering`].

use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};

use super::{usage, CliResult, Failure};
use strata::error::Error;
use strata::nix::layering::{write_layering, LayeringOptions};
use strata::nix::{Group, Strategy};

#[derive(Args)]
pub(super) struct NixLayersArgs {
    /// At most this many layers (>= 1).
    #[arg(long)]
    max_layers: usize,
    /// Directory to write the specs to (0001.json, 0002.json, ..., bottom first); replaced as a whole.
    #[arg(long)]
    out_dir: Utf8PathBuf,
    /// A store path to leave out (its references stay); repeatable.
    #[arg(long)]
    drop: Vec<String>,
    /// A references graph whose paths another layer holds (left out); repeatable.
    #[arg(long)]
    exclude_graph: Vec<Utf8PathBuf>,
    /// size (default): the largest store paths alone, the rest grouped by the large paths using
    /// them; popularity: the most depended-on paths one each, the rest in the last layer.
    #[arg(long, default_value = "size", value_parser = strategy)]
    strategy: StrategyArg,
    /// A lock a previous build wrote (--lock-out): keep its unchanged layers (size: the rest re-split by what changes together; popularity: paths matched by name, new paths on top).
    #[arg(long)]
    previous: Option<Utf8PathBuf>,
    /// Write this split's lock here (canonical JSON), for the next build's --previous.
    #[arg(long)]
    lock_out: Option<Utf8PathBuf>,
    /// PATTERN[,PATTERN...]: the store paths matched (a store path, or a name glob such as
    /// 'python3*') share one layer of their own, below the split; repeatable.
    #[arg(long)]
    group: Vec<String>,
    /// References graphs (exportReferencesGraph files) whose paths are layered.
    #[arg(required = true)]
    graphs: Vec<Utf8PathBuf>,
}

/// `--strategy`.
#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    Size,
    Popularity,
}

/// Parse `--strategy` (its message as it always was).
fn strategy(s: &str) -> Result<StrategyArg, Error> {
    StrategyArg::from_str(s, false)
        .map_err(|_| Error::invalid(format!("--strategy {s}: must be size or popularity")))
}

pub(super) fn nix_layers(a: NixLayersArgs) -> CliResult {
    if a.max_layers < 1 {
        return Err(Failure::Usage(Error::invalid(
            "--max-layers 0: must be at least 1",
        )));
    }
    if a.out_dir.file_name().is_none() {
        return Err(Failure::Usage(Error::invalid(format!(
            "--out-dir {}: needs a name of its own (not ., .. or /): it is replaced as a whole",
            a.out_dir
        ))));
    }
    let strategy = match a.strategy {
        StrategyArg::Size => Strategy::Size,
        StrategyArg::Popularity => Strategy::Popularity,
    };
    let groups = usage(
        a.group
            .iter()
            .map(|g| Group::parse(g, "--group"))
            .collect::<strata::Result<Vec<_>>>(),
    )?;
    let opts = LayeringOptions {
        drop: a.drop,
        exclude_graphs: a.exclude_graph,
        previous: a.previous,
        lock_out: a.lock_out,
        groups,
        ..LayeringOptions::new(a.max_layers, strategy)
    };
    for spec in write_layering(&a.graphs, &a.out_dir, &opts)? {
        outln!("{spec}");
    }
    Ok(0)
}
