//! The popularity split (nixpkgs' `buildLayeredImage` before `auto-layer`): the
//! store paths most others depend on in layers of their own, the rest in one.
//!
//! Invariants (the semantics of the awk script `nix/closure.awk` this
//! replaced, kept byte for byte so images built through Nix keep their
//! digests):
//! - popularity(p) = how many paths listed in the layered graphs, dropped and
//!   excluded ones included, reach p through references, p itself included;
//!   paths are ordered by popularity, most popular first, then by path bytes;
//! - with k paths and N layers: k ≤ N gives every path its own layer; else the
//!   first N−1 paths get one each and the rest share the last.

use std::cmp::Reverse;

use super::graph::Closure;
use crate::error::{Error, Result};

impl Closure {
    /// How many listed paths reach each path (by id), the path itself included.
    fn popularity(&self) -> Vec<usize> {
        let n = self.names.len();
        let mut pop = vec![0usize; n];
        let mut seen = vec![usize::MAX; n];
        let mut stack = Vec::new();
        for start in (0..n).filter(|&i| self.listed[i]) {
            seen[start] = start;
            stack.push(start);
            while let Some(x) = stack.pop() {
                pop[x] += 1;
                for &y in &self.refs[x] {
                    if seen[y] != start {
                        seen[y] = start;
                        stack.push(y);
                    }
                }
            }
        }
        pop
    }

    /// The paths to layer with their popularity, most popular first, ties by
    /// path bytes; `drop` paths are left out (their references stay).
    pub fn ordered(&self, drop: &[String]) -> Vec<(String, usize)> {
        let pop = self.popularity();
        self.ordered_ids(&pop, drop)
            .into_iter()
            .map(|i| (self.names[i].clone(), pop[i]))
            .collect()
    }

    /// [`Closure::ordered`] as ids, given the popularity.
    fn ordered_ids(&self, pop: &[usize], drop: &[String]) -> Vec<usize> {
        let mut ids = self.layered(drop);
        ids.sort_by(|&a, &b| {
            (Reverse(pop[a]), &self.names[a]).cmp(&(Reverse(pop[b]), &self.names[b]))
        });
        ids
    }

    /// The popularity split of the paths to layer, as ids (see the module doc).
    pub(super) fn split_by_popularity(
        &self,
        drop: &[String],
        max_layers: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let pop = self.popularity();
        split(self.ordered_ids(&pop, drop), max_layers)
    }
}

/// Split ordered paths into at most `max_layers` layers: with k ≤ N paths one
/// each, else the first N−1 one each and the rest together in the last.
pub fn split<T>(paths: Vec<T>, max_layers: usize) -> Result<Vec<Vec<T>>> {
    if max_layers < 1 {
        return Err(Error::invalid(format!(
            "max layers {max_layers}: must be at least 1"
        )));
    }
    let mut layers: Vec<Vec<T>> = Vec::new();
    for (i, p) in paths.into_iter().enumerate() {
        if i < max_layers {
            layers.push(vec![p]);
        } else {
            layers.last_mut().expect("max_layers >= 1").push(p);
        }
    }
    Ok(layers)
}
