//! A small scoped worker pool: run a function over items on a few threads.
//!
//! Invariants: results come back in item order, and so does the error — the
//! one of the first failing item in item order — so nothing a caller sees
//! depends on which thread finished first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Run `f` on every item, on up to `jobs` threads (1–16). After a failure no
/// new item starts; the items before it (all started already, since items are
/// taken in order) finish, and the error of the first failing item is returned.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    let failed: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 16).min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || failed.lock().expect("lock").is_some() {
                    return;
                }
                match f(&items[i]) {
                    Ok(r) => done.lock().expect("lock").push((i, r)),
                    Err(e) => {
                        let mut first = failed.lock().expect("lock");
                        if first.as_ref().map_or(true, |(k, _)| i < *k) {
                            *first = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = failed.into_inner().expect("lock") {
        return Err(e);
    }
    let mut done = done.into_inner().expect("lock");
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_errors_in_item_order() {
        let items: Vec<u32> = (0..500).collect();
        for jobs in [1, 2, 8] {
            let got = parallel(&items, jobs, |&i| Ok(i * 2)).unwrap();
            assert_eq!(got, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            let e = parallel(&items, jobs, |&i| {
                if i % 100 == 37 {
                    Err(Error::invalid(format!("item {i}")))
                } else {
                    Ok(i)
                }
            })
            .unwrap_err();
            assert_eq!(e.to_string(), "item 37", "jobs {jobs}");
        }
    }
}
