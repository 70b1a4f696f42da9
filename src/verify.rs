//! `strata verify`: check a layout from `index.json` down.
//!
//! Every reachable blob's size and digest, every manifest's and config's
//! JSON, the references between index, manifest and config, and every layer's
//! diff_id are checked. Layers are read as a stream through the hardened tar
//! reader with the extraction checks ([`crate::layer::check`]), so a layer
//! that is unsafe to extract (`..` or absolute paths, entries through a
//! symlink of the layer, hard links to nothing, lying sizes, PAX bombs,
//! truncated streams, …) is a problem naming the image, layer and entry,
//! while what real distro layers hold (devices, xattrs, setuid files,
//! whiteouts, absolute symlink targets) is not. All problems are
//! collected, each naming the blob and what is wrong; nothing stops at the
//! first one, so an auditor sees the whole damage in one run.

use std::collections::BTreeSet;
use std::io::Read;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::layer::check::check_entries;
use crate::layer::compress::Compression;
use crate::layer::read::LayerReader;
use crate::layout::{BlobSource, Layout};
use crate::media_type::{is_index, is_manifest};

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per problem.
    pub problems: Vec<String>,
    /// Blobs checked (each once).
    pub blobs_checked: usize,
    /// Layers whose diff_id was checked.
    pub layers_checked: usize,
    /// Layers absent here that a shallow layout records as living in a
    /// registry: `sha256:… at HOST/REPO`. Not problems, unless complete
    /// layouts are required.
    pub remote: Vec<String>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verify everything `layout` references.
pub fn verify(layout: &Layout) -> Report {
    let mut v = Verifier {
        layout,
        seen: BTreeSet::new(),
        report: Report::default(),
    };
    if layout.index.manifests.is_empty() {
        v.report
            .problems
            .push(format!("{}: lists no manifests", layout.name("index.json")));
    }
    // Attachments: marked entries, and manifests with a `subject` another
    // tool listed unmarked (`Layout::images` leaves both out).
    let images: BTreeSet<Digest> = layout.images().iter().map(|d| d.digest).collect();
    for d in &layout.index.manifests {
        if crate::referrer::is_attachment(d) || !images.contains(&d.digest) {
            v.attachment(d);
        } else {
            v.visit(d, 0);
        }
    }
    v.report
}

/// How strict [`verify_with`] is.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// A layer only recorded as living in a registry (a shallow layout) is
    /// a problem, not just reported in [`Report::remote`].
    pub require_complete: bool,
}

/// Verify everything `layout` references, as [`verify`], under `opts`.
pub fn verify_with(layout: &Layout, opts: &VerifyOptions) -> Report {
    let mut report = verify(layout);
    if opts.require_complete && !report.remote.is_empty() {
        let n = report.remote.len();
        report.problems.push(format!(
            "{}: {n} layer(s) only in a registry (shallow): {}",
            layout.path(),
            report.remote.join(", ")
        ));
    }
    report
}

struct Verifier<'a> {
    layout: &'a Layout,
    seen: BTreeSet<Digest>,
    report: Report,
}

impl Verifier<'_> {
    fn problem(&mut self, s: String) {
        self.report.problems.push(s);
    }

    fn blob_name(&self, d: &Digest) -> String {
        self.layout.name(&Layout::blob_name(d))
    }

    fn visit(&mut self, d: &Descriptor, depth: usize) {
        if depth > 4 {
            self.problem(format!(
                "{}: indexes nested more than 4 deep",
                self.blob_name(&d.digest)
            ));
            return;
        }
        if !self.seen.insert(d.digest) {
            return;
        }
        if is_index(&d.media_type) {
            self.report.blobs_checked += 1;
            match self.layout.read_index(d) {
                Ok(idx) => {
                    for m in &idx.manifests {
                        if m.digest == d.digest {
                            self.problem(format!(
                                "{}: index lists itself",
                                self.blob_name(&d.digest)
                            ));
                            continue;
                        }
                        self.visit(m, depth + 1);
                    }
                }
                Err(e) => self.problem(e.to_string()),
            }
        } else if is_manifest(&d.media_type) {
            self.report.blobs_checked += 1;
            match self.layout.image_at(d) {
                Ok(img) => {
                    self.report.blobs_checked += 1;
                    self.seen.insert(img.manifest.config.digest);
                    let ids = match img.diff_ids() {
                        Ok(ids) => ids,
                        Err(e) => {
                            self.problem(format!(
                                "{}: {e}",
                                self.blob_name(&img.manifest.config.digest)
                            ));
                            return;
                        }
                    };
                    if ids.len() != img.manifest.layers.len() {
                        self.problem(format!(
                            "{}: config lists {} diff_ids but the manifest has {} layers",
                            self.blob_name(&d.digest),
                            ids.len(),
                            img.manifest.layers.len()
                        ));
                    }
                    for (i, l) in img.manifest.layers.iter().enumerate() {
                        self.layer(i, l, ids.get(i).copied());
                    }
                }
                Err(e) => self.problem(e.to_string()),
            }
        } else {
            self.problem(format!(
                "{}: unknown media type {:?} in index",
                self.blob_name(&d.digest),
                d.media_type
            ));
        }
    }

    /// An attachment (referrer or cosign `.sig` manifest): its manifest and
    /// every blob it names, by size and digest (they are not layers).
    fn attachment(&mut self, d: &Descriptor) {
        if !self.seen.insert(d.digest) {
            return;
        }
        self.report.blobs_checked += 1;
        let name = self.blob_name(&d.digest);
        let m = match self
            .layout
            .read_json_blob(d)
            .and_then(|b| crate::json::parse::<crate::descriptor::Manifest>(&b, &name))
        {
            Ok(m) => m,
            Err(e) => return self.problem(e.to_string()),
        };
        for b in std::iter::once(&m.config).chain(m.layers.iter()) {
            if !self.seen.insert(b.digest) {
                continue;
            }
            let bname = self.blob_name(&b.digest);
            let Some(src) = self.layout.blob(&b.digest) else {
                self.problem(format!(
                    "{bname}: blob of attachment {} is missing",
                    d.digest
                ));
                continue;
            };
            self.report.blobs_checked += 1;
            let got = src.open().and_then(|r| {
                crate::digest::digest_reader(r.take(b.size.saturating_add(1)))
                    .map_err(|e| crate::error::Error::io(format!("reading {bname}"), &e))
            });
            match got {
                Ok((_, n)) if n != b.size => self.problem(format!(
                    "{bname}: size mismatch: descriptor says {} bytes, blob has {}{n}",
                    b.size,
                    if n > b.size { "more than " } else { "" }
                )),
                Ok((dg, _)) if dg != b.digest => {
                    self.problem(format!("{bname}: digest mismatch: content is {dg}"))
                }
                Ok(_) => {}
                Err(e) => self.problem(e.to_string()),
            }
        }
    }

    fn layer(&mut self, index: usize, l: &Descriptor, diff_id: Option<Digest>) {
        let name = self.blob_name(&l.digest);
        let Some(src) = self.layout.blob(&l.digest) else {
            self.problem(format!("{name}: layer blob is missing"));
            return;
        };
        if let BlobSource::Remote { at, .. } = &src {
            if at.size != l.size {
                self.problem(format!(
                    "{name}: size mismatch: descriptor says {} bytes, the remote record {}",
                    l.size, at.size
                ));
            }
            self.report
                .remote
                .push(format!("{} at {}/{}", l.digest, at.registry, at.repository));
            return;
        }
        self.report.blobs_checked += 1;
        let Some(want) = Compression::from_media_type(&l.media_type) else {
            self.problem(format!(
                "{name}: unknown layer media type {:?}",
                l.media_type
            ));
            return;
        };
        let r = match src.open() {
            Ok(r) => r,
            Err(e) => return self.problem(e.to_string()),
        };
        // Entry problems name the image, the layer's position and digest (in
        // the blob's name) and the entry.
        let label = format!("{name} (layer {index})");
        let mut reader = match LayerReader::new(r.take(l.size.saturating_add(1)), &label) {
            Ok(r) => r,
            Err(e) => return self.problem(e.to_string()),
        };
        let found = reader.compression();
        if std::mem::discriminant(&found) != std::mem::discriminant(&want) {
            self.problem(format!(
                "{label}: media type {:?} says {}, the blob is {}",
                l.media_type,
                compression_name(want),
                compression_name(found)
            ));
        }
        // The hardened reader with the extraction checks (layer::check):
        // hostile or malformed entries are problems, legitimate oddities
        // (devices, xattrs, setuid, whiteouts) are not.
        let (summary, blob) = match check_entries(&mut reader, &label) {
            Ok(()) => match reader.finish() {
                Ok(s) => (Some(s.diff_id), Ok((s.digest, s.size))),
                Err(e) => (None, Err(e)),
            },
            Err(e) => {
                self.problem(e.to_string());
                (None, reader.drain_blob())
            }
        };
        let (digest, size) = match blob {
            Ok(b) => b,
            Err(e) => return self.problem(e.to_string()),
        };
        if size != l.size {
            self.problem(format!(
                "{name}: size mismatch: descriptor says {} bytes, blob has {size}",
                l.size
            ));
        } else if digest != l.digest {
            self.problem(format!("{name}: digest mismatch: content is {digest}"));
        }
        if let Some(got) = summary {
            self.report.layers_checked += 1;
            if let Some(want) = diff_id {
                if got != want {
                    self.problem(format!(
                        "{name}: diff_id mismatch: config says {want}, uncompressed content is {got}"
                    ));
                }
            }
        }
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "a plain tar",
        Compression::Gzip { .. } => "gzip",
        Compression::Zstd { .. } => "zstd",
    }
}
