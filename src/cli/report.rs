//! The progress [`Reporter`] of registry transfers on stderr: one line per
//! blob and, on a terminal, a live status line.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::common::human;
use super::one_line;

/// Transfer reports on stderr: one line per blob (what happened, bytes
/// moved) and, on a terminal, a live status line. Quiet: nothing.
pub(crate) struct Reporter {
    quiet: bool,
    tty: bool,
    verb: &'static str,
    state: std::sync::Mutex<ReporterState>,
}

struct ReporterState {
    started: std::time::Instant,
    last_draw: Option<std::time::Instant>,
    moved: u64,
    total: u64,
    counts: BTreeMap<&'static str, usize>,
}

impl Reporter {
    pub(crate) fn new(quiet: bool, verb: &'static str) -> Reporter {
        use std::io::IsTerminal;
        Reporter {
            quiet,
            tty: io::stderr().is_terminal(),
            verb,
            state: std::sync::Mutex::new(ReporterState {
                started: std::time::Instant::now(),
                last_draw: None,
                moved: 0,
                total: 0,
                counts: BTreeMap::new(),
            }),
        }
    }

    pub(crate) fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        let mut e = io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{}", one_line(s));
    }

    /// The summary: `3 present, 1 uploaded; 12.0 MiB sent in 0.4 s`.
    pub(crate) fn summary(&self) -> String {
        let st = self.state.lock().expect("lock");
        let parts: Vec<String> = st.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "{}; {} moved in {:.1} s",
            if parts.is_empty() {
                "no blobs".to_string()
            } else {
                parts.join(", ")
            },
            human(st.moved),
            st.started.elapsed().as_secs_f64()
        )
    }

    pub(crate) fn finish(&self) {
        if !self.quiet && self.tty {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}

fn short(d: &strata::Digest) -> String {
    d.to_string()[..19].to_string()
}

impl strata::registry::Progress for Reporter {
    fn start(&self, _d: &strata::Digest, size: u64) {
        self.state.lock().expect("lock").total += size;
    }
    fn advance(&self, _d: &strata::Digest, bytes: u64) {
        if self.quiet || !self.tty {
            return;
        }
        let mut st = self.state.lock().expect("lock");
        st.moved += bytes;
        let now = std::time::Instant::now();
        if st
            .last_draw
            .is_some_and(|t| now.duration_since(t).as_millis() < 100)
        {
            return;
        }
        st.last_draw = Some(now);
        let secs = st.started.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            io::stderr().lock(),
            "\r\x1b[K{} {} of {} ({}/s)",
            self.verb,
            human(st.moved),
            human(st.total),
            human((st.moved as f64 / secs) as u64)
        );
    }
    fn done(&self, d: &strata::Digest, size: u64, outcome: strata::registry::Outcome, moved: u64) {
        {
            let mut st = self.state.lock().expect("lock");
            *st.counts.entry(outcome.as_str()).or_default() += 1;
            if !self.tty {
                st.moved += moved;
            }
        }
        self.line(&format!(
            "{} {:>10}  {}{}",
            short(d),
            human(size),
            outcome.as_str(),
            if moved > 0 {
                format!(" ({} moved)", human(moved))
            } else {
                String::new()
            }
        ));
    }
    fn retry(&self, d: &strata::Digest, why: &str) {
        self.line(&format!("{} retrying: {why}", short(d)));
    }
}
