//! Keeping a size lock, churn-aware: the layers a release leaves untouched
//! are kept byte for byte, and the paths of the layers it touches anyway are
//! re-split by how often they are expected to change together.
//!
//! A store path's hash covers its dependencies' hashes, so a path changes
//! whenever anything in its closure changes: a path's *churn* is the number
//! of store paths in its closure (itself included), taking every path as
//! likely to change as any other. A layer's expected upload per release is
//! then its bytes times the size of the union of its paths' closures (a
//! change anywhere in that union rebuilds one of its paths, and the layer
//! is re-uploaded whole).
//!
//! The rule (see [`keep`]):
//! - a *clean* lock layer (every store path it lists is in the closure,
//!   unchanged: same hash) is kept as it is: it costs nothing to push;
//! - every other path (a rebuilt or new path, or the unchanged neighbours of
//!   a rebuilt one, whose layer is re-uploaded anyway) starts alone;
//! - while there are more layers than the budget, the two whose merge costs
//!   least are merged: the cost is [`HORIZON`] releases of the merged layer's
//!   expected upload above the two apart, plus, for a clean layer, its bytes
//!   now (merged, it is uploaded again). So rebuilt paths land with the
//!   paths that change with them, a clean layer is merged only when that is
//!   cheaper than mixing churn, and no layer is ever moved for nothing.
//!
//! This is where the split re-balances: only inside what a release
//! re-uploads anyway, plus the cheapest clean merges when new paths need
//! room. Invariants: same closure + same lock → same layers (units are
//! ordered by lock order then path bytes, ties go to the lower pair; costs
//! are integers); never more than `max_layers` layers.

use std::collections::BTreeMap;

use super::graph::Closure;
use super::lock::Lock;

/// How many releases a layering is expected to live: a merge's extra
/// expected upload is counted over this many releases against the bytes a
/// clean layer's merge uploads now. (Fixed, so the same inputs give the same
/// layers; measured in BENCHMARKS.md.)
pub const HORIZON: u128 = 10;

/// A layer being formed: its paths, bytes, the union of their closures and
/// whether it is a clean lock layer (re-uploaded only if merged).
struct Unit {
    paths: Vec<usize>,
    bytes: u64,
    bits: Vec<u64>,
    churn: u64,
    clean: bool,
    top: bool,
}

/// With more paths than this to re-split, they start from the fresh
/// split's groups rather than alone: the pair search costs the square of
/// the units (1.6 s for 2000 in a release build on a busy 2-core machine).
pub const MAX_ALONE: usize = 2048;

/// Keep `lock` for `ids` (paths of `closure`, `size[id]` bytes each) within
/// `max_layers` (see the module doc). Past `max_alone` paths to re-split
/// (callers pass [`MAX_ALONE`]), they start from `fresh`, the split without
/// a lock. Clean lock layers come first in lock order, then the re-split
/// layers; each layer's paths in path byte order.
pub fn keep(
    lock: &Lock,
    closure: &Closure,
    ids: &[usize],
    size: &[u64],
    max_layers: usize,
    fresh: &[Vec<usize>],
    max_alone: usize,
) -> Vec<Vec<usize>> {
    let by_path: BTreeMap<&str, usize> = ids.iter().map(|&i| (closure.name(i), i)).collect();
    let mut taken = vec![false; closure.refs.len()];
    let mut groups: Vec<(Vec<usize>, bool)> = Vec::new();
    for l in &lock.layers {
        let present: Option<Vec<usize>> = l
            .iter()
            .map(|p| by_path.get(p.path.as_str()).copied())
            .collect();
        if let Some(paths) = present.filter(|p| !p.is_empty()) {
            for &i in &paths {
                taken[i] = true;
            }
            groups.push((paths, true));
        }
    }
    let rest: Vec<usize> = by_path.values().copied().filter(|&i| !taken[i]).collect();
    if rest.len() <= max_alone {
        // The rest alone, in path byte order (by_path's), never graph order.
        groups.extend(rest.into_iter().map(|i| (vec![i], false)));
    } else {
        // Too many to pair up (the search is quadratic): they start from
        // the fresh split's groups instead, in its order.
        let mut rest_of = vec![false; closure.refs.len()];
        for &i in &rest {
            rest_of[i] = true;
        }
        for l in fresh {
            let g: Vec<usize> = l.iter().copied().filter(|&i| rest_of[i]).collect();
            for &i in &g {
                rest_of[i] = false;
            }
            if !g.is_empty() {
                groups.push((g, false));
            }
        }
        // A path the fresh split does not hold (none should): alone.
        groups.extend(
            rest.into_iter()
                .filter(|&i| rest_of[i])
                .map(|i| (vec![i], false)),
        );
    }
    let closures = closures(closure, ids);
    let mut used = vec![false; closure.refs.len()];
    for &i in ids {
        for &r in &closure.refs[i] {
            used[r] = true;
        }
    }
    let mut units: Vec<Unit> = groups
        .into_iter()
        .map(|(paths, clean)| {
            let mut bits = vec![0u64; words(closure)];
            for &i in &paths {
                or(&mut bits, &closures[&i]);
            }
            Unit {
                // Saturating: narSize is the graph's word, however large.
                bytes: paths.iter().fold(0u64, |t, &i| t.saturating_add(size[i])),
                churn: count(&bits),
                top: paths.iter().any(|&i| !used[i]),
                paths,
                bits,
                clean,
            }
        })
        .collect();
    merge_down(&mut units, closure.refs.len() as u128, max_layers.max(1));
    units
        .into_iter()
        .filter(|u| !u.paths.is_empty())
        .map(|mut u| {
            u.paths
                .sort_by(|&a, &b| closure.name(a).cmp(closure.name(b)));
            u.paths
        })
        .collect()
}

/// A merge's cost (see [`cost`]) and the other unit, compared as a pair so
/// that ties go to the lower index.
type Offer = ((u8, u128), usize);

/// How many cheapest partners each unit remembers: when a merge changes or
/// removes its best one, the next is at hand instead of a pass over all.
const NEAR: usize = 8;

/// The cheapest partners of one unit, ascending, and a bound every other
/// live unit's offer is at least (`None`: the list holds every one).
struct Near {
    list: Vec<Offer>,
    bound: Option<Offer>,
}

impl Near {
    /// Every live unit's offer to `a`, the [`NEAR`] cheapest kept.
    fn of(units: &[Unit], alive: &[usize], a: usize, n: u128) -> Near {
        let mut all: Vec<Offer> = alive
            .iter()
            .filter(|&&b| b != a)
            .map(|&b| (cost(&units[a], &units[b], n), b))
            .collect();
        all.sort_unstable();
        let bound = (all.len() > NEAR).then(|| all[NEAR - 1]);
        all.truncate(NEAR);
        Near { list: all, bound }
    }
}

/// Merge the cheapest pair until at most `max` units are left (merged
/// units keep the lower index; emptied ones have no paths).
fn merge_down(units: &mut [Unit], n: u128, max: usize) {
    let mut alive: Vec<usize> = (0..units.len()).collect();
    if alive.len() <= max {
        return;
    }
    let mut near: BTreeMap<usize, Near> = alive
        .iter()
        .map(|&a| (a, Near::of(units, &alive, a, n)))
        .collect();
    while alive.len() > max {
        // The cheapest pair; ties to the lowest (lower index, higher index).
        let (_, a, b) = alive
            .iter()
            .map(|&a| {
                let (c, b) = near[&a].list[0];
                (c, a.min(b), a.max(b))
            })
            .min()
            .expect("units left");
        absorb(units, a, b);
        alive.retain(|&x| x != b);
        near.remove(&b);
        if alive.len() <= 1 {
            break;
        }
        near.insert(a, Near::of(units, &alive, a, n));
        for &k in &alive {
            if k == a {
                continue;
            }
            let m = near.get_mut(&k).expect("every live unit has a list");
            m.list.retain(|&(_, j)| j != a && j != b);
            // a changed: its new offer, unless the bound says an unlisted
            // unit may beat it (then it is unlisted too).
            let offer = (cost(&units[k], &units[a], n), a);
            if m.bound.map_or(true, |bound| offer < bound) {
                let at = m.list.partition_point(|&o| o < offer);
                m.list.insert(at, offer);
            }
            if m.list.is_empty() {
                *m = Near::of(units, &alive, k, n);
            }
        }
    }
}

/// Merge unit `b` into unit `a` (which is no longer a clean layer); `b` is
/// left without paths.
fn absorb(units: &mut [Unit], a: usize, b: usize) {
    let moved = std::mem::take(&mut units[b].paths);
    let bits = std::mem::take(&mut units[b].bits);
    let (bytes, top, u) = (units[b].bytes, units[b].top, &mut units[a]);
    u.paths.extend(moved);
    or(&mut u.bits, &bits);
    u.churn = count(&u.bits);
    u.bytes = u.bytes.saturating_add(bytes);
    u.clean = false;
    u.top |= top;
}

/// What merging `a` and `b` costs: first how many of them hold a top (a
/// path no other layered path uses: an application, which changes far more
/// often than its closure's size says, so it stays alone as in the size
/// split while anything else can merge); then, in bytes × paths,
/// [`HORIZON`] releases of the extra expected upload (bytes × churn, over
/// the `n` paths a change picks from) plus the bytes a clean unit uploads
/// now, both scaled by `n`.
fn cost(a: &Unit, b: &Unit, n: u128) -> (u8, u128) {
    let union = a
        .bits
        .iter()
        .zip(&b.bits)
        .map(|(x, y)| u64::from((x | y).count_ones()))
        .sum::<u64>() as u128;
    let (ab, aa, bb) = (
        (a.bytes as u128 + b.bytes as u128) * union,
        a.bytes as u128 * a.churn as u128,
        b.bytes as u128 * b.churn as u128,
    );
    let now = if a.clean { a.bytes as u128 } else { 0 } + if b.clean { b.bytes as u128 } else { 0 };
    (
        u8::from(a.top) + u8::from(b.top),
        HORIZON * (ab - aa - bb) + n * now,
    )
}

fn words(closure: &Closure) -> usize {
    closure.refs.len().div_ceil(64)
}

fn or(into: &mut [u64], from: &[u64]) {
    for (x, y) in into.iter_mut().zip(from) {
        *x |= y;
    }
}

fn count(bits: &[u64]) -> u64 {
    bits.iter().map(|w| w.count_ones() as u64).sum()
}

/// The closure (itself included) of each of `ids`, as bit sets over the
/// closure's paths: a walk per path, exact whatever the graph's shape.
fn closures(closure: &Closure, ids: &[usize]) -> BTreeMap<usize, Vec<u64>> {
    let mut out = BTreeMap::new();
    for &p in ids {
        let mut bits = vec![0u64; words(closure)];
        let mut stack = vec![p];
        bits[p / 64] |= 1 << (p % 64);
        while let Some(x) = stack.pop() {
            for &y in &closure.refs[x] {
                if bits[y / 64] & (1 << (y % 64)) == 0 {
                    bits[y / 64] |= 1 << (y % 64);
                    stack.push(y);
                }
            }
        }
        out.insert(p, bits);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::nix::graph::tests::json_closure as closure;

    fn names(c: &Closure, layers: &[Vec<usize>]) -> Vec<Vec<String>> {
        layers
            .iter()
            .map(|l| l.iter().map(|&i| c.name(i)[3..].to_string()).collect())
            .collect()
    }

    /// The lock of `layers` (names) over `c`.
    fn lock_of(c: &Closure, layers: &[&[&str]], max: usize) -> Lock {
        let all = c.layered(&[]);
        let ids: Vec<Vec<usize>> = layers
            .iter()
            .map(|l| {
                l.iter()
                    .map(|n| *all.iter().find(|&&i| c.name(i)[3..] == **n).unwrap())
                    .collect()
            })
            .collect();
        let size = super::super::size::sizes(c, &all).unwrap();
        Lock::of(c, &ids, &size, max, "size")
    }

    fn run(lock: &Lock, c: &Closure, max: usize) -> Vec<Vec<String>> {
        let all = c.layered(&[]);
        let size = super::super::size::sizes(c, &all).unwrap();
        names(c, &keep(lock, c, &all, &size, max, &[], MAX_ALONE))
    }

    #[test]
    fn untouched_layers_stay_what_changes_together_shares_a_layer() {
        // app -> {y, z, base}, y -> x.
        let old = closure(&[
            ("base-1", 100, &[]),
            ("x-1", 10, &[]),
            ("y-1", 10, &["x-1"]),
            ("z-1", 10, &[]),
            ("app-1", 5, &["y-1", "z-1", "base-1"]),
        ]);
        let lock = lock_of(
            &old,
            &[&["base-1"], &["x-1", "z-1"], &["y-1"], &["app-1"]],
            4,
        );
        // Same closure, same lock: the same layers.
        assert_eq!(
            run(&lock, &old, 4),
            [
                vec!["base-1"],
                vec!["x-1", "z-1"],
                vec!["y-1"],
                vec!["app-1"]
            ]
        );
        // x bumped: y and app are rebuilt (new hashes), z and base are not.
        let new = closure(&[
            ("base-1", 100, &[]),
            ("x-2", 10, &[]),
            ("y-2", 10, &["x-2"]),
            ("z-1", 10, &[]),
            ("app-2", 5, &["y-2", "z-1", "base-1"]),
        ]);
        // base's layer is clean: kept. x and z's is re-uploaded anyway: z
        // leaves x, which goes with y (y changes whenever x does); app, a
        // top, stays alone though it is the smallest.
        assert_eq!(
            run(&lock, &new, 4),
            [
                vec!["base-1"],
                vec!["app-2"],
                vec!["x-2", "y-2"],
                vec!["z-1"]
            ]
        );
        // Room for all: nothing merges.
        assert_eq!(run(&lock, &new, 5).len(), 5);
        // Three layers: the clean one stays, z joins x and y (cheaper than
        // uploading base again).
        assert_eq!(
            run(&lock, &new, 3),
            [vec!["base-1"], vec!["app-2"], vec!["x-2", "y-2", "z-1"]]
        );
        // Two: the top stays alone longest, so even the clean layer merges.
        assert_eq!(
            run(&lock, &new, 2),
            [vec!["base-1", "x-2", "y-2", "z-1"], vec!["app-2"]]
        );
        assert_eq!(run(&lock, &new, 1).len(), 1);
        // Past max_alone, the re-split starts from the fresh split's groups
        // (base's, clean, left out of them).
        let all = new.layered(&[]);
        let size = super::super::size::sizes(&new, &all).unwrap();
        let id = |n: &str| *all.iter().find(|&&i| new.name(i)[3..] == *n).unwrap();
        let fresh = vec![
            vec![id("base-1"), id("x-2"), id("y-2")],
            vec![id("z-1"), id("app-2")],
        ];
        assert_eq!(
            names(&new, &keep(&lock, &new, &all, &size, 4, &fresh, 3)),
            [vec!["base-1"], vec!["x-2", "y-2"], vec!["app-2", "z-1"]]
        );
        // A path fresh lacks is alone.
        assert_eq!(
            names(&new, &keep(&lock, &new, &all, &size, 4, &fresh[..1], 3)),
            [
                vec!["base-1"],
                vec!["x-2", "y-2"],
                vec!["app-2"],
                vec!["z-1"]
            ]
        );
    }

    #[test]
    fn never_more_than_the_budget_whatever_the_order() {
        let base: Vec<String> = (0..40).map(|i| format!("p{i:02}")).collect();
        let graph = |rev: bool, bump: usize| {
            // p_i -> p_j for some j > i; bumping p_k renames it and (its
            // hash covering theirs) every p_i that reaches it.
            let mut nodes: Vec<(String, u64, Vec<String>)> = Vec::new();
            let mut changed = [false; 40];
            for i in (0..40).rev() {
                let refs: Vec<usize> = (0..40).filter(|j| *j > i && (j * 7 + i) % 5 == 0).collect();
                changed[i] = i == bump || refs.iter().any(|&j| changed[j]);
            }
            let name = |i: usize| format!("{}-{}", base[i], u8::from(changed[i]));
            for i in 0..40 {
                let refs = (0..40)
                    .filter(|j| *j > i && (j * 7 + i) % 5 == 0)
                    .map(name)
                    .collect();
                nodes.push((name(i), (i as u64 * 37) % 23 + 1, refs));
            }
            if rev {
                nodes.reverse();
            }
            nodes
        };
        let c = |nodes: &[(String, u64, Vec<String>)]| {
            let refs: Vec<Vec<&str>> = nodes
                .iter()
                .map(|n| n.2.iter().map(String::as_str).collect())
                .collect();
            let v: Vec<(&str, u64, &[&str])> = nodes
                .iter()
                .zip(&refs)
                .map(|(n, r)| (n.0.as_str(), n.1, r.as_slice()))
                .collect();
            closure(&v)
        };
        let old = c(&graph(false, 99));
        for n in [1, 2, 5, 13, 30, 39, 40, 45] {
            let all = old.layered(&[]);
            let size = super::super::size::sizes(&old, &all).unwrap();
            let split = super::super::size::split_by_size(&old, &all, &size, n);
            let lock = Lock::of(&old, &split, &size, n, "size");
            // Unchanged: the lock's layers, byte for byte.
            assert_eq!(run(&lock, &old, n), names(&old, &split), "{n}");
            for bump in [3, 17, 39] {
                let new = c(&graph(false, bump));
                let got = run(&lock, &new, n);
                assert!(got.len() <= n, "{n}: {}", got.len());
                assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 40);
                assert_eq!(got, run(&lock, &c(&graph(true, bump)), n), "{n} {bump}");
            }
        }
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let big = u64::MAX / 2;
        let old = closure(&[("a-1", big, &[]), ("b-1", big, &["a-1"]), ("c-1", big, &[])]);
        let lock = lock_of(&old, &[&["a-1", "b-1", "c-1"]], 2);
        let new = closure(&[("a-2", big, &[]), ("b-2", big, &["a-2"]), ("c-1", big, &[])]);
        assert_eq!(run(&lock, &new, 1).len(), 1);
        assert_eq!(run(&lock, &new, 2).len(), 2);
    }

    #[test]
    fn near_lists_pick_what_a_full_scan_picks() {
        // 60 units of varied bytes and overlapping closures (bit i and the
        // bits of i's "dependencies"), some clean, some tops.
        let make = || -> Vec<Unit> {
            (0..60u64)
                .map(|i| {
                    let mut bits = vec![0u64; 1];
                    for j in 0..60u64 {
                        if j == i || (j > i && (i * 13 + j * 7) % 6 == 0) {
                            bits[0] |= 1 << j;
                        }
                    }
                    Unit {
                        paths: vec![i as usize],
                        bytes: (i * 7919) % 101 + 1,
                        churn: count(&bits),
                        bits,
                        clean: i % 5 == 0,
                        top: i % 11 == 0,
                    }
                })
                .collect()
        };
        for max in [1, 7, 30, 59] {
            let mut fast = make();
            merge_down(&mut fast, 60, max);
            // The reference: every pair, every time.
            let mut slow = make();
            let mut alive: Vec<usize> = (0..60).collect();
            while alive.len() > max {
                let mut pairs = Vec::new();
                for (x, &a) in alive.iter().enumerate() {
                    for &b in &alive[x + 1..] {
                        pairs.push((cost(&slow[a], &slow[b], 60), a, b));
                    }
                }
                let (_, a, b) = pairs.into_iter().min().unwrap();
                absorb(&mut slow, a, b);
                alive.retain(|&x| x != b);
            }
            let paths = |u: &[Unit]| u.iter().map(|u| u.paths.clone()).collect::<Vec<_>>();
            assert_eq!(paths(&fast), paths(&slow), "{max}");
        }
    }
}
