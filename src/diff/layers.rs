//! Comparing two layers: the blobs (digest, compression, diff_id, how the
//! archive ends), then their tar entries: paths only in A or B, every header
//! field, xattrs, PAX records, content sha256 and header dialect of common
//! paths, and entry order.
//!
//! Invariants: a layer is read with the hostile-input reader
//! ([`crate::layer::read`]) and only headers and content digests are held;
//! entries are compared in A's stream order, then B-only ones; a path under
//! an ignored glob is compared (muted) so its findings are counted, never
//! reported.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use serde_json::{json, Value};

use super::report::{Class, Sink};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::compress::Compression;
use crate::layer::read::{EntryType, LayerReader, LayerSummary, TarEntry};

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
pub(super) fn diff_layers(place: &str, a: &ReadLayer, b: &ReadLayer, sink: &mut Sink) {
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
    use crate::diff::Report;
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
        let mut s = Sink::new(semantic, Vec::new());
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
}
