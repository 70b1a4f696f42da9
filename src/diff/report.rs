//! The diff report: findings, their classes (what `semantic` mode may
//! ignore), the report as JSON and as text, and the sink that collects
//! findings while filtering and counting the ignorable ones.
//!
//! Invariants: findings keep the order they were found in (the comparison
//! walks in a fixed order, so the report is the same for the same inputs);
//! nothing is dropped silently: every finding left out (by class in
//! semantic mode, or under an ignored path) is counted in
//! [`Report::ignored`].

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::glob::Glob;

/// What kind of difference a finding is (decides what `--semantic` ignores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Can change what a container sees or does.
    Meaningful,
    /// mtime/atime/ctime, `created`.
    Timestamp,
    /// Tar entry order.
    Order,
    /// Layer compression (same tar, different blob).
    Compression,
    /// How the tar is encoded (header format, PAX/GNU extensions, padding).
    Dialect,
    /// The config's `history`.
    History,
    /// Image names and tags (ref.name annotations).
    Name,
    /// Digests and sizes, which follow from the other differences.
    Digest,
    /// An empty value (`null`, `false`, `""`, `[]`, `{}`) on one side and
    /// none on the other: Go-written configs (Docker's) spell out zero
    /// values that other writers leave out; a runtime reads both the same.
    Empty,
    /// What a builder records about itself, not about the image: Docker's
    /// `container_config` (the build container's config), `container` (its
    /// ID) and `docker_version`. No runtime applies them to a container.
    Builder,
}

impl Class {
    /// What `--semantic` calls this class when it ignores it.
    pub fn ignored_label(self) -> Option<&'static str> {
        match self {
            Class::Meaningful => None,
            Class::Timestamp => Some("timestamps"),
            Class::Order => Some("entry order"),
            Class::Compression => Some("compression"),
            Class::Dialect => Some("tar dialect"),
            Class::History => Some("history"),
            Class::Name => Some("image names"),
            Class::Digest => Some("digests and sizes"),
            Class::Empty => Some("empty vs absent values"),
            Class::Builder => Some("builder metadata"),
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Where: `index.json`, `index`, `manifest`, `config`, `layer 2`
    /// (prefixed by the platform when comparing several images).
    pub place: String,
    /// The tar entry, for entry findings.
    pub path: Option<String>,
    /// What differs: a field (`config.Env`, `mode`, `content`) or a fact
    /// (`only in A`, `same diff_id, different compression`, `entry order`).
    pub field: String,
    /// A's value (`null` when A lacks it).
    pub a: Value,
    /// B's value (`null` when B lacks it).
    pub b: Value,
    /// The kind of difference.
    pub class: Class,
}

/// The [`Report::ignored`] key counting findings in paths left out by
/// [`DiffOptions::ignore`](super::DiffOptions::ignore).
pub const MATCHING_PATHS: &str = "matching paths";

/// The result of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Differences reported, in a fixed order.
    pub findings: Vec<Finding>,
    /// With `--semantic`: differences ignored, counted by class label.
    pub ignored: BTreeMap<String, usize>,
    /// Whether `--semantic` was on.
    pub semantic: bool,
    /// The ignore patterns given ([`DiffOptions::ignore`](super::DiffOptions::ignore)), as written.
    pub ignore: Vec<String>,
}

impl Report {
    /// True when nothing (not ignored) differs.
    pub fn identical(&self) -> bool {
        self.findings.is_empty()
    }

    /// The `--json` document.
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut v = json!({
                    "place": f.place, "field": f.field, "a": f.a, "b": f.b,
                    "class": format!("{:?}", f.class).to_lowercase(),
                });
                if let Some(p) = &f.path {
                    v["path"] = json!(p);
                }
                v
            })
            .collect();
        let mut v = json!({
            "identical": self.identical(),
            "semantic": self.semantic,
            "findings": findings,
            "ignored": self.ignored,
        });
        // Only with patterns: the document without them stays as it was.
        if !self.ignore.is_empty() {
            v["ignore"] = json!(self.ignore);
        }
        v
    }

    /// The readable report: one line per finding, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&f.place);
            out.push_str(": ");
            if let Some(p) = &f.path {
                out.push_str(p);
                out.push_str(": ");
            }
            if f.field.starts_with("only in") {
                let v = if f.a.is_null() { &f.b } else { &f.a };
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| show(v));
                out.push_str(&format!("{} ({v})\n", f.field));
            } else {
                out.push_str(&format!(
                    "{}: A {}, B {}\n",
                    f.field,
                    show(&f.a),
                    show(&f.b)
                ));
            }
        }
        let n = self.findings.len();
        out.push_str(&match n {
            0 if self.semantic => "identical (semantically)".to_string(),
            0 => "identical".to_string(),
            1 => "1 difference".to_string(),
            n => format!("{n} differences"),
        });
        if self.semantic {
            let parts: Vec<String> = self
                .ignored
                .iter()
                .filter(|(k, _)| k.as_str() != MATCHING_PATHS)
                .map(|(k, v)| format!("{k} ({v})"))
                .collect();
            if parts.is_empty() {
                out.push_str("; --semantic ignored nothing");
            } else {
                out.push_str(&format!("; --semantic ignored: {}", parts.join(", ")));
            }
        }
        if !self.ignore.is_empty() {
            match self.ignored.get(MATCHING_PATHS) {
                Some(n) => out.push_str(&format!("; --ignore ignored: {MATCHING_PATHS} ({n})")),
                None => out.push_str("; --ignore ignored nothing"),
            }
        }
        out.push('\n');
        out
    }
}

/// A value for the text report: plain strings stay plain, the rest is JSON.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".to_string(),
        Value::String(s) if !s.is_empty() && !s.chars().any(char::is_control) => s.clone(),
        other => String::from_utf8_lossy(&crate::json::to_canonical(other)).into_owned(),
    }
}

/// Collects findings; with `semantic`, filters and counts ignorable ones;
/// while `muted` (an entry in an ignored path), counts every finding.
pub(super) struct Sink {
    pub(super) report: Report,
    ignore: Vec<Glob>,
    /// Inside an ignored path: every finding is counted, none reported.
    pub(super) muted: bool,
}

impl Sink {
    /// An empty report; with `semantic`, ignorable classes are counted, not
    /// reported; findings under `ignore` are counted under [`MATCHING_PATHS`].
    pub(super) fn new(semantic: bool, ignore: Vec<Glob>) -> Sink {
        Sink {
            report: Report {
                semantic,
                ignore: ignore.iter().map(|g| g.as_str().to_string()).collect(),
                ..Report::default()
            },
            ignore,
            muted: false,
        }
    }

    pub(super) fn ignores(&self, path: &str) -> bool {
        self.ignore.iter().any(|g| g.covers(path))
    }

    fn push(&mut self, f: Finding) {
        if self.muted {
            *self
                .report
                .ignored
                .entry(MATCHING_PATHS.to_string())
                .or_default() += 1;
            return;
        }
        if self.report.semantic {
            if let Some(label) = f.class.ignored_label() {
                *self.report.ignored.entry(label.to_string()).or_default() += 1;
                return;
            }
        }
        self.report.findings.push(f);
    }

    pub(super) fn add(
        &mut self,
        place: &str,
        path: Option<&str>,
        field: &str,
        a: Value,
        b: Value,
        c: Class,
    ) {
        self.push(Finding {
            place: place.to_string(),
            path: path.map(str::to_string),
            field: field.to_string(),
            a,
            b,
            class: c,
        });
    }
}
