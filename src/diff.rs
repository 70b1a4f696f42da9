//! `strata diff`: why two images (or two layers) have different digests.
//!
//! Compares top down and stops nowhere: `index.json` → index → manifests →
//! config (field by field) → layers by position (a reordering of the same
//! layers, and "same diff_id, different compression", are findings of their
//! own) → tar entries (paths only in A or B; for common paths every header
//! field, xattrs, PAX records, content sha256 and header dialect; entry order).
//!
//! Invariants:
//! - every difference found is a [`Finding`] with a [`Class`]; `--semantic`
//!   only filters classes that cannot change a container's behaviour
//!   (timestamps, entry order, compression, tar dialect, history, image
//!   names, and the digests/sizes that follow from them) and counts what it
//!   filtered, so the report says what it ignored;
//! - findings come out in a fixed order (index, manifest, config, layers in
//!   position, entries in A's stream order then B-only ones) and config maps
//!   are walked in key order: the same inputs give the same report;
//! - layers are streamed through [`crate::layer::read`]; only entry headers
//!   and content digests are held, never contents;
//! - a blob whose digest does not match its descriptor is an error, not a
//!   finding (the input is corrupt, not different).
//! - `ignore` globs ([`crate::glob`]) leave out entries whose path or an
//!   ancestor's matches: their findings (and their place in the entry order)
//!   are counted under [`MATCHING_PATHS`], never reported; index, manifest,
//!   config and digest findings are not paths and are never left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{json, Value};

use crate::descriptor::{Descriptor, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::glob::Glob;
use crate::layer::compress::Compression;
use crate::layer::read::{EntryType, LayerReader, LayerSummary, TarEntry};
use crate::layout::Layout;
use crate::media_type::is_index;

/// What a diff input turned out to be.
pub enum Input {
    /// An OCI layout (directory, oci-archive or strata's docker-archive).
    Image(Layout),
    /// A single layer blob or tar.
    Layer(Utf8PathBuf),
}

/// Open `path` as an image (layout directory, or a tar — plain, gzip or zstd
/// — with a top-level `oci-layout` or `manifest.json`: an OCI archive or a
/// docker-archive of any age) or else as a single layer blob.
pub fn open_input(path: &Utf8Path) -> Result<Input> {
    let meta = std::fs::metadata(path).io_context(|| format!("opening {path}"))?;
    if meta.is_dir() {
        return Ok(Input::Image(Layout::open(path)?));
    }
    let f = File::open(path).io_context(|| format!("opening {path}"))?;
    let mut r = LayerReader::new(io::BufReader::new(f), path.as_str())?;
    let mut image = false;
    // Headers only (contents are skipped); a tar that fails to read here is
    // read again as a layer, which reports the problem.
    while let Ok(Some(e)) = r.next_entry() {
        match (e.path.as_str(), e.kind) {
            ("oci-layout" | "manifest.json", EntryType::File) => {
                image = true;
                break;
            }
            // Why stop here: no image archive holds such a path (at most
            // `<id>/layer.tar` or `blobs/sha256/<hex>`), so this is a layer,
            // and a compressed layer is not decompressed to its end for nothing.
            (p, _) if !in_image_archive(p) => break,
            _ => {}
        }
    }
    if image {
        Ok(Input::Image(Layout::open(path)?))
    } else {
        Ok(Input::Layer(path.to_path_buf()))
    }
}

/// Whether an image archive (OCI or docker-archive) can hold entry `p`.
fn in_image_archive(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    matches!(parts.as_slice(), [_] | [_, _] | ["blobs", _, _])
}

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

/// Options of [`diff`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Ignore what cannot change a container's behaviour.
    pub semantic: bool,
    /// Leave out tar entries whose path, or an ancestor directory's, matches
    /// one of these ([`Glob::covers`]); their findings are counted under
    /// [`MATCHING_PATHS`] instead.
    pub ignore: Vec<Glob>,
}

/// The [`Report::ignored`] key counting findings in paths left out by
/// [`DiffOptions::ignore`].
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
    /// The ignore patterns given ([`DiffOptions::ignore`]), as written.
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
struct Sink {
    report: Report,
    ignore: Vec<Glob>,
    muted: bool,
}

impl Sink {
    fn ignores(&self, path: &str) -> bool {
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

    fn add(&mut self, place: &str, path: Option<&str>, field: &str, a: Value, b: Value, c: Class) {
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

/// Compare two inputs (see the module docs).
pub fn diff(a: &Input, b: &Input, opts: DiffOptions) -> Result<Report> {
    let mut sink = Sink {
        report: Report {
            semantic: opts.semantic,
            ignore: opts.ignore.iter().map(|g| g.as_str().to_string()).collect(),
            ..Report::default()
        },
        ignore: opts.ignore,
        muted: false,
    };
    match (a, b) {
        (Input::Image(la), Input::Image(lb)) => diff_images(la, lb, &mut sink)?,
        (Input::Layer(pa), Input::Layer(pb)) => {
            let ra = read_layer(open_file(pa)?, pa.as_str(), None)?;
            let rb = read_layer(open_file(pb)?, pb.as_str(), None)?;
            diff_layers("layer", &ra, &rb, &mut sink);
        }
        (Input::Image(l), Input::Layer(p)) | (Input::Layer(p), Input::Image(l)) => {
            return Err(Error::invalid(format!(
                "{} is an image and {p} a single layer: compare an image with an image, a layer with a layer",
                l.path()
            )))
        }
    }
    Ok(sink.report)
}

fn open_file(p: &Utf8Path) -> Result<Box<dyn Read + Send>> {
    Ok(Box::new(
        File::open(p).io_context(|| format!("reading {p}"))?,
    ))
}

/// JSON path segment for an object key.
fn key_seg(prefix: &str, k: &str) -> String {
    let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (prefix.is_empty(), plain) {
        (true, true) => k.to_string(),
        (false, true) => format!("{prefix}.{k}"),
        (_, false) => format!("{prefix}[{}]", Value::String(k.to_string())),
    }
}

/// Walk two JSON documents; one finding per differing leaf. Objects recurse
/// by key; arrays of objects by index; other arrays compare whole (`Env`,
/// `Cmd`: one finding says more than one per element).
fn compare_json(
    place: &str,
    prefix: &str,
    a: Option<&Value>,
    b: Option<&Value>,
    classify: &dyn Fn(&str) -> Class,
    sink: &mut Sink,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                compare_json(
                    place,
                    &key_seg(prefix, k),
                    x.get(k),
                    y.get(k),
                    classify,
                    sink,
                );
            }
        }
        // Why: an object on one side only (`annotations`) is compared key by
        // key, so each key is classified (an image-name annotation is a name).
        (Some(Value::Object(x)), None | Some(Value::Null)) if !x.is_empty() => {
            for (k, v) in x {
                compare_json(place, &key_seg(prefix, k), Some(v), None, classify, sink);
            }
        }
        (None | Some(Value::Null), Some(Value::Object(y))) if !y.is_empty() => {
            for (k, v) in y {
                compare_json(place, &key_seg(prefix, k), None, Some(v), classify, sink);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y)))
            if x.iter().chain(y.iter()).all(Value::is_object) =>
        {
            for i in 0..x.len().max(y.len()) {
                compare_json(
                    place,
                    &format!("{prefix}[{i}]"),
                    x.get(i),
                    y.get(i),
                    classify,
                    sink,
                );
            }
        }
        (x, y) if x == y => {}
        (x, y) => {
            let class = match classify(prefix) {
                Class::Meaningful if is_empty(x) && is_empty(y) => Class::Empty,
                c => c,
            };
            sink.add(
                place,
                None,
                prefix,
                x.cloned().unwrap_or(Value::Null),
                y.cloned().unwrap_or(Value::Null),
                class,
            )
        }
    }
}

/// Absent, or a zero value a Go encoder writes where others write nothing.
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Number(_)) | Some(Value::Bool(true)) => false,
    }
}

fn is_name_annotation(path: &str) -> bool {
    path.contains(ANNOTATION_REF_NAME) || path.contains(ANNOTATION_CONTAINERD_NAME)
}

fn classify_descriptor_list(path: &str) -> Class {
    if path.ends_with(".digest") || path.ends_with(".size") {
        Class::Digest
    } else if is_name_annotation(path) {
        Class::Name
    } else if path.contains("org.opencontainers.image.created") {
        Class::Timestamp
    } else {
        Class::Meaningful
    }
}

fn classify_manifest(path: &str) -> Class {
    if path.starts_with("layers[") && path.ends_with(".mediaType") {
        Class::Compression
    } else {
        classify_descriptor_list(path)
    }
}

fn classify_config(path: &str) -> Class {
    if path == "created" {
        Class::Timestamp
    } else if path.starts_with("history") {
        Class::History
    } else if path.starts_with("rootfs.diff_ids") {
        Class::Digest
    } else if path == "container"
        || path == "docker_version"
        || path == "container_config"
        || path.starts_with("container_config.")
    {
        Class::Builder
    } else if path.contains("org.opencontainers.image.created") {
        Class::Timestamp
    } else {
        Class::Meaningful
    }
}

/// The images a layout holds, keyed by platform (else ref name, else position).
type ImageRef = (String, Descriptor, Option<(Descriptor, Value)>);

fn images_of(l: &Layout) -> Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    for (i, top) in l.index.manifests.iter().enumerate() {
        if is_index(&top.media_type) {
            let idx = l.read_index(top)?;
            let v = serde_json::to_value(&idx).unwrap_or(Value::Null);
            for (j, m) in idx.manifests.iter().enumerate() {
                let key = m
                    .platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("image {i}.{j}"));
                out.push((key, m.clone(), Some((top.clone(), v.clone()))));
            }
        } else {
            let key = top
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .or_else(|| top.ref_name().map(str::to_string))
                .unwrap_or_else(|| format!("image {i}"));
            out.push((key, top.clone(), None));
        }
    }
    Ok(out)
}

fn diff_images(la: &Layout, lb: &Layout, sink: &mut Sink) -> Result<()> {
    let va = serde_json::to_value(&la.index).unwrap_or(Value::Null);
    let vb = serde_json::to_value(&lb.index).unwrap_or(Value::Null);
    compare_json(
        "index.json",
        "",
        Some(&va),
        Some(&vb),
        &classify_descriptor_list,
        sink,
    );
    let ia = images_of(la)?;
    let ib = images_of(lb)?;
    // Nested indexes (multi-platform): compare each distinct pair once.
    let idx_a: Vec<&(Descriptor, Value)> = ia.iter().filter_map(|x| x.2.as_ref()).collect();
    let idx_b: Vec<&(Descriptor, Value)> = ib.iter().filter_map(|x| x.2.as_ref()).collect();
    if let (Some(x), Some(y)) = (idx_a.first(), idx_b.first()) {
        compare_json(
            "index",
            "",
            Some(&x.1),
            Some(&y.1),
            &classify_descriptor_list,
            sink,
        );
    }
    let pairs: Vec<(String, Option<&Descriptor>, Option<&Descriptor>)> =
        if ia.len() == 1 && ib.len() == 1 {
            vec![(String::new(), Some(&ia[0].1), Some(&ib[0].1))]
        } else {
            let keys: BTreeSet<&String> = ia.iter().chain(ib.iter()).map(|x| &x.0).collect();
            keys.into_iter()
                .map(|k| {
                    let find = |v: &[ImageRef]| v.iter().position(|x| &x.0 == k);
                    (
                        format!("{k} "),
                        find(&ia).map(|i| &ia[i].1),
                        find(&ib).map(|i| &ib[i].1),
                    )
                })
                .collect()
        };
    for (prefix, da, db) in pairs {
        match (da, db) {
            (Some(da), Some(db)) => diff_image(&prefix, la, da, lb, db, sink)?,
            (Some(d), None) => sink.add(
                prefix.trim_end(),
                None,
                "only in A",
                json!(d.digest.to_string()),
                Value::Null,
                Class::Meaningful,
            ),
            (None, Some(d)) => sink.add(
                prefix.trim_end(),
                None,
                "only in B",
                Value::Null,
                json!(d.digest.to_string()),
                Class::Meaningful,
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

fn diff_image(
    prefix: &str,
    la: &Layout,
    da: &Descriptor,
    lb: &Layout,
    db: &Descriptor,
    sink: &mut Sink,
) -> Result<()> {
    let a = la.image_at(da)?;
    let b = lb.image_at(db)?;
    let ma = serde_json::to_value(&a.manifest).unwrap_or(Value::Null);
    let mb = serde_json::to_value(&b.manifest).unwrap_or(Value::Null);
    compare_json(
        &format!("{prefix}manifest"),
        "",
        Some(&ma),
        Some(&mb),
        &classify_manifest,
        sink,
    );
    compare_json(
        &format!("{prefix}config"),
        "",
        Some(&a.config),
        Some(&b.config),
        &classify_config,
        sink,
    );
    let (xa, xb) = (&a.manifest.layers, &b.manifest.layers);
    let digests = |v: &[Descriptor]| v.iter().map(|d| d.digest).collect::<Vec<Digest>>();
    let (sa, sb) = (digests(xa), digests(xb));
    if sa != sb {
        let (mut ta, mut tb) = (sa.clone(), sb.clone());
        ta.sort();
        tb.sort();
        if ta == tb {
            // The same blobs in another order: one finding, nothing deeper differs.
            let show = |v: &[Digest]| json!(v.iter().map(|d| d.to_string()).collect::<Vec<_>>());
            sink.add(
                &format!("{prefix}layers"),
                None,
                "layer order (the same layers in another order)",
                show(&sa),
                show(&sb),
                Class::Meaningful,
            );
            return Ok(());
        }
    }
    for i in 0..xa.len().max(xb.len()) {
        let place = format!("{prefix}layer {i}");
        match (xa.get(i), xb.get(i)) {
            (Some(x), Some(y)) if x.digest == y.digest => {}
            (Some(x), Some(y)) => {
                let ra = read_layer(open_blob(la, x)?, &blob_name(la, x), Some(x))?;
                let rb = read_layer(open_blob(lb, y)?, &blob_name(lb, y), Some(y))?;
                diff_layers(&place, &ra, &rb, sink);
            }
            (Some(x), None) => sink.add(
                &place,
                None,
                "only in A",
                json!(x.digest.to_string()),
                Value::Null,
                Class::Meaningful,
            ),
            (None, Some(y)) => sink.add(
                &place,
                None,
                "only in B",
                Value::Null,
                json!(y.digest.to_string()),
                Class::Meaningful,
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

fn blob_name(l: &Layout, d: &Descriptor) -> String {
    l.name(&Layout::blob_name(&d.digest))
}

fn open_blob(l: &Layout, d: &Descriptor) -> Result<Box<dyn Read + Send>> {
    l.blob(&d.digest)
        .ok_or_else(|| Error::corrupt(format!("{}: blob is missing", blob_name(l, d))))?
        .open()
}

/// A layer read to its end: entries (with content digests) and summary.
pub struct ReadLayer {
    /// Entries in stream order, with the sha256 of regular files' content.
    pub entries: Vec<(TarEntry, Option<Digest>)>,
    /// The blob as a whole.
    pub summary: LayerSummary,
}

/// Read a layer blob; with `desc`, its digest and size must match.
pub fn read_layer(r: impl Read, name: &str, desc: Option<&Descriptor>) -> Result<ReadLayer> {
    let mut lr = LayerReader::new(r, name)?;
    let mut entries = Vec::new();
    while let Some(e) = lr.next_entry()? {
        let d = if e.kind == EntryType::File {
            Some(lr.content(&mut io::sink())?)
        } else {
            None
        };
        entries.push((e, d));
    }
    let summary = lr.finish()?;
    if let Some(d) = desc {
        if summary.digest != d.digest || summary.size != d.size {
            return Err(Error::corrupt(format!(
                "{name}: content is {} ({} bytes) but its descriptor says {} ({} bytes)",
                summary.digest, summary.size, d.digest, d.size
            )));
        }
    }
    Ok(ReadLayer { entries, summary })
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip { .. } => "gzip",
        Compression::Zstd { .. } => "zstd",
    }
}

fn blob_text(s: &LayerSummary) -> Value {
    json!(format!(
        "{} ({}, {} bytes)",
        s.digest,
        compression_name(s.compression),
        s.size
    ))
}

fn end_text(s: &LayerSummary) -> Value {
    let end = if s.end_marker {
        "two zero blocks"
    } else {
        "no end-of-archive marker"
    };
    json!(format!("{end}, {} bytes after", s.trailing))
}

/// Compare two layers read in full.
fn diff_layers(place: &str, a: &ReadLayer, b: &ReadLayer, sink: &mut Sink) {
    let (sa, sb) = (&a.summary, &b.summary);
    if sa.digest == sb.digest {
        return;
    }
    if sa.diff_id == sb.diff_id {
        sink.add(
            place,
            None,
            "same diff_id, different compression",
            blob_text(sa),
            blob_text(sb),
            Class::Compression,
        );
        return;
    }
    sink.add(
        place,
        None,
        "diff_id",
        json!(sa.diff_id.to_string()),
        json!(sb.diff_id.to_string()),
        Class::Digest,
    );
    if sa.compression != sb.compression {
        sink.add(
            place,
            None,
            "compression",
            json!(compression_name(sa.compression)),
            json!(compression_name(sb.compression)),
            Class::Compression,
        );
    }
    if (sa.end_marker, sa.trailing) != (sb.end_marker, sb.trailing) {
        sink.add(
            place,
            None,
            "end of archive",
            end_text(sa),
            end_text(sb),
            Class::Dialect,
        );
    }
    let keyed = |v: &[(TarEntry, Option<Digest>)]| -> Vec<String> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        v.iter()
            .map(|(e, _)| {
                let n = seen.entry(e.path.as_str()).or_default();
                *n += 1;
                if *n == 1 {
                    e.path.clone()
                } else {
                    format!("{} (occurrence {n})", e.path)
                }
            })
            .collect()
    };
    let (ka, kb) = (keyed(&a.entries), keyed(&b.entries));
    let map_b: BTreeMap<&str, usize> = kb
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let map_a: BTreeMap<&str, usize> = ka
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    for (i, k) in ka.iter().enumerate() {
        let (ea, ca) = &a.entries[i];
        sink.muted = sink.ignores(&ea.path);
        match map_b.get(k.as_str()) {
            None => sink.add(
                place,
                Some(k),
                "only in A",
                json!(describe(ea)),
                Value::Null,
                Class::Meaningful,
            ),
            Some(&j) => {
                let (eb, cb) = &b.entries[j];
                diff_entry(place, k, ea, ca, eb, cb, sink);
            }
        }
    }
    for (j, k) in kb.iter().enumerate() {
        if !map_a.contains_key(k.as_str()) {
            sink.muted = sink.ignores(&b.entries[j].0.path);
            sink.add(
                place,
                Some(k),
                "only in B",
                Value::Null,
                json!(describe(&b.entries[j].0)),
                Class::Meaningful,
            );
        }
    }
    sink.muted = false;
    // Order of the common entries (ignored paths left out).
    let ca: Vec<&str> = ka
        .iter()
        .zip(&a.entries)
        .filter(|(k, (e, _))| map_b.contains_key(k.as_str()) && !sink.ignores(&e.path))
        .map(|(k, _)| k.as_str())
        .collect();
    let cb: Vec<&str> = kb
        .iter()
        .zip(&b.entries)
        .filter(|(k, (e, _))| map_a.contains_key(k.as_str()) && !sink.ignores(&e.path))
        .map(|(k, _)| k.as_str())
        .collect();
    if let Some(pos) = ca.iter().zip(&cb).position(|(x, y)| x != y) {
        sink.add(
            place,
            None,
            &format!("entry order (first difference at common entry {pos})"),
            json!(ca[pos]),
            json!(cb[pos]),
            Class::Order,
        );
    }
}

fn describe(e: &TarEntry) -> String {
    match e.kind {
        EntryType::File => format!("file, {} bytes", e.size),
        EntryType::Symlink | EntryType::Hardlink => format!("{} to {}", e.kind.name(), e.linkname),
        k => k.name().to_string(),
    }
}

fn octal(m: u32) -> Value {
    json!(format!("{m:04o}"))
}

fn diff_entry(
    place: &str,
    path: &str,
    a: &TarEntry,
    ca: &Option<Digest>,
    b: &TarEntry,
    cb: &Option<Digest>,
    sink: &mut Sink,
) {
    let mut add = |field: &str, x: Value, y: Value, c: Class| {
        if x != y {
            sink.add(place, Some(path), field, x, y, c);
        }
    };
    use Class::{Dialect, Meaningful, Timestamp};
    add(
        "type",
        json!(a.kind.name()),
        json!(b.kind.name()),
        Meaningful,
    );
    if a.mode & 0o7777 != b.mode & 0o7777 {
        add(
            "mode",
            octal(a.mode & 0o7777),
            octal(b.mode & 0o7777),
            Meaningful,
        );
    } else {
        add(
            "mode (file-type bits)",
            octal(a.mode),
            octal(b.mode),
            Dialect,
        );
    }
    add("uid", json!(a.uid), json!(b.uid), Meaningful);
    add("gid", json!(a.gid), json!(b.gid), Meaningful);
    add("uname", json!(a.uname), json!(b.uname), Meaningful);
    add("gname", json!(a.gname), json!(b.gname), Meaningful);
    add(
        "mtime",
        json!(a.mtime_text()),
        json!(b.mtime_text()),
        Timestamp,
    );
    add("size", json!(a.size), json!(b.size), Meaningful);
    add("linkname", json!(a.linkname), json!(b.linkname), Meaningful);
    add("devmajor", json!(a.devmajor), json!(b.devmajor), Meaningful);
    add("devminor", json!(a.devminor), json!(b.devminor), Meaningful);
    let xkeys: BTreeSet<&String> = a.xattrs.keys().chain(b.xattrs.keys()).collect();
    for k in xkeys {
        let v = |m: &BTreeMap<String, Vec<u8>>| {
            m.get(k)
                .map(|x| json!(String::from_utf8_lossy(x).escape_default().to_string()))
                .unwrap_or(Value::Null)
        };
        add(
            &format!("xattr {k}"),
            v(&a.xattrs),
            v(&b.xattrs),
            Meaningful,
        );
    }
    // Records that restate a header field were compared as that field.
    const FIELDS: [&str; 8] = [
        "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime",
    ];
    let pkeys: BTreeSet<&String> = a
        .pax
        .keys()
        .chain(b.pax.keys())
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .collect();
    for k in pkeys {
        let v = |m: &BTreeMap<String, String>| m.get(k).map(|x| json!(x)).unwrap_or(Value::Null);
        let class = if k.ends_with("time") {
            Timestamp
        } else {
            Dialect
        };
        add(&format!("PAX {k}"), v(&a.pax), v(&b.pax), class);
    }
    let content = |c: &Option<Digest>| c.map(|d| json!(d.to_string())).unwrap_or(Value::Null);
    add("content", content(ca), content(cb), Meaningful);
    add("header format", json!(a.format), json!(b.format), Dialect);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tar::{write_end, write_header, write_padding, TarHeader, TarKind};

    fn layer(items: &[(&str, &[u8], u32, u64)]) -> ReadLayer {
        let mut v = Vec::new();
        for (name, body, mode, mtime) in items {
            let h = TarHeader {
                name,
                kind: TarKind::File,
                mode: *mode,
                uid: 0,
                gid: 0,
                uname: "",
                gname: "",
                size: body.len() as u64,
                mtime: *mtime,
                linkname: "",
            };
            write_header(&mut v, &h).unwrap();
            v.extend_from_slice(body);
            write_padding(&mut v, body.len() as u64).unwrap();
        }
        write_end(&mut v).unwrap();
        read_layer(&v[..], "t", None).unwrap()
    }

    fn run(a: &ReadLayer, b: &ReadLayer, semantic: bool) -> Report {
        let mut s = Sink {
            report: Report {
                semantic,
                ..Report::default()
            },
            ignore: Vec::new(),
            muted: false,
        };
        diff_layers("layer", a, b, &mut s);
        s.report
    }

    #[test]
    fn finds_each_entry_difference() {
        let a = layer(&[("a", b"1", 0o644, 0), ("b", b"2", 0o644, 0)]);
        let b = layer(&[("a", b"1", 0o600, 5), ("c", b"3", 0o644, 0)]);
        let r = run(&a, &b, false);
        let fields: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{}:{}", f.path.clone().unwrap_or_default(), f.field))
            .collect();
        assert_eq!(
            fields,
            [
                ":diff_id",
                "a:mode",
                "a:mtime",
                "b:only in A",
                "c:only in B"
            ]
        );
        let text = r.to_text();
        assert!(text.contains("layer: a: mode: A 0644, B 0600\n"), "{text}");
        assert!(
            text.contains("layer: b: only in A (file, 1 bytes)"),
            "{text}"
        );
        let s = run(&a, &b, true);
        assert_eq!(s.findings.len(), 3, "{:?}", s.findings);
        assert_eq!(s.ignored["timestamps"], 1);
        assert_eq!(s.ignored["digests and sizes"], 1);
    }

    #[test]
    fn order_only() {
        let a = layer(&[("a", b"1", 0o644, 0), ("b", b"2", 0o644, 0)]);
        let b = layer(&[("b", b"2", 0o644, 0), ("a", b"1", 0o644, 0)]);
        let r = run(&a, &b, false);
        assert_eq!(r.findings.len(), 2);
        assert_eq!(r.findings[1].class, Class::Order);
        assert!(run(&a, &b, true).identical());
    }

    #[test]
    fn zero_values_and_builder_metadata_are_not_semantic() {
        let a = serde_json::json!({"config": {"Env": ["A=1"]}});
        let b = serde_json::json!({
            "config": {"Env": ["A=1"], "Cmd": null, "Tty": false, "Hostname": "",
                       "Volumes": {}, "OnBuild": [], "User": "nobody"},
            "container_config": {"Cmd": ["/bin/sh"]},
            "docker_version": "20.10.24"
        });
        let mut sink = Sink {
            report: Report {
                semantic: true,
                ..Report::default()
            },
            ignore: Vec::new(),
            muted: false,
        };
        compare_json(
            "config",
            "",
            Some(&a),
            Some(&b),
            &classify_config,
            &mut sink,
        );
        let fields: Vec<&str> = sink
            .report
            .findings
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["config.User"]);
        assert_eq!(sink.report.ignored["empty vs absent values"], 5);
        assert_eq!(sink.report.ignored["builder metadata"], 2);
    }

    #[test]
    fn json_paths() {
        assert_eq!(key_seg("", "config"), "config");
        assert_eq!(key_seg("config", "Env"), "config.Env");
        assert_eq!(
            key_seg("config.Labels", "org.x"),
            "config.Labels[\"org.x\"]"
        );
    }
}
