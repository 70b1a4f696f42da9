//! The whole closure layering in one verb: references graphs in, a
//! directory of layer specs (and optionally a lock) out — what
//! `strata nix-layers` runs, for a Rust caller too.
//!
//! Everything is read and checked (graphs, the previous lock) before the
//! split; the specs are written as one directory replaced as a whole, then
//! the lock, each atomically.

use camino::{Utf8Path, Utf8PathBuf};

use super::{split_closure, write_specs, Closure, Group, Lock, Strategy};
use crate::error::Result;
use crate::json::{to_canonical, MAX_JSON_BYTES};
use crate::layer::read_small_file;
use crate::output::write_file;

/// How to layer a closure.
#[derive(Debug, Clone)]
pub struct LayeringOptions {
    /// At most this many layers (at least 1).
    pub max_layers: usize,
    /// Store paths left out (their references stay).
    pub drop: Vec<String>,
    /// References graphs whose paths another layer holds (left out).
    pub exclude_graphs: Vec<Utf8PathBuf>,
    /// How the paths are split.
    pub strategy: Strategy,
    /// A lock a previous layering wrote: its unchanged layers are kept
    /// (size: the rest re-split by what changes together, `churn`;
    /// popularity: paths matched by name, new paths on top).
    pub previous: Option<Utf8PathBuf>,
    /// Where to write this layering's lock (canonical JSON), if anywhere.
    pub lock_out: Option<Utf8PathBuf>,
    /// Store paths that share a layer of their own, below the split.
    pub groups: Vec<Group>,
}

impl LayeringOptions {
    /// At most `max_layers` layers by `strategy`, nothing else asked for.
    pub fn new(max_layers: usize, strategy: Strategy) -> LayeringOptions {
        LayeringOptions {
            max_layers,
            drop: Vec::new(),
            exclude_graphs: Vec::new(),
            strategy,
            previous: None,
            lock_out: None,
            groups: Vec::new(),
        }
    }
}

/// Split the paths of the references `graphs` into layers and replace
/// `out_dir` with their specs (`0001.json`, … bottom first); write the lock
/// to `opts.lock_out` when set. Returns the spec paths written.
pub fn write_layering(
    graphs: &[Utf8PathBuf],
    out_dir: &Utf8Path,
    opts: &LayeringOptions,
) -> Result<Vec<Utf8PathBuf>> {
    let mut closure = Closure::new();
    for g in graphs {
        closure.read_graph(g, false)?;
    }
    for g in &opts.exclude_graphs {
        closure.read_graph(g, true)?;
    }
    let previous = match &opts.previous {
        Some(p) => {
            let bytes = read_small_file(p, MAX_JSON_BYTES)?;
            let lock = Lock::parse(&bytes, p.as_str())?;
            lock.check(p.as_str(), opts.max_layers, opts.strategy.name())?;
            Some(lock)
        }
        None => None,
    };
    let split = split_closure(
        &closure,
        &opts.drop,
        opts.max_layers,
        opts.strategy,
        previous.as_ref(),
        opts.lock_out.is_some(),
        &opts.groups,
    )?;
    let specs = write_specs(&split.layers, out_dir)?;
    if let (Some(out), Some(lock)) = (&opts.lock_out, &split.lock) {
        write_file(out, &to_canonical(&lock.to_json()))?;
    }
    Ok(specs)
}
