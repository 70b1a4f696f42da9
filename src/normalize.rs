//! `strata normalize`: rewrite a layer (or a whole image) written by another
//! tool into strata's canonical form, so its bytes stop depending on the tool
//! and the host that made it.
//!
//! A layer is read with the hostile-input reader ([`crate::layer::read`]),
//! turned into strata's layer model ([`crate::layer::entry::Entry`]) and
//! written by the same code as `strata layer` ([`crate::layer::write_layer`]):
//! sorted entries, one mtime, canonical ustar/PAX headers, no atime/ctime,
//! pinned compression. Hence the invariant: **normalizing a layer strata wrote
//! is the identity** (same digest), given the same mtime, compression and
//! level, because the model round-trips every field strata writes. What the
//! model cannot hold is refused with the entry named, never silently dropped:
//! xattrs outside the allow-list of `strata layer --xattrs`
//! ([`crate::layer::dir_options::XATTR_ALLOW`]) unless `drop_xattrs` (which
//! drops all of them). Devices and FIFOs are kept (as `strata layer
//! --devices` writes them); allow-listed xattrs are kept unless `drop_xattrs`.
//!
//! Policies (each a choice a user makes, defaults keep behaviour unchanged):
//! - mtime: every entry gets `mtime` (replace, not clamp), as `strata layer`;
//! - owners: kept (numeric ids and names), or `Root` (0:0, no names);
//! - modes: kept (`& 0o7777`), or `Default` (what `strata layer DIR` gives:
//!   0755/0644 by the executable bit, dirs 0755, symlinks 0777);
//! - parents: missing parent directories are not synthesized unless asked
//!   (a synthesized `lib/` would hide a base image's `lib -> usr/lib`);
//! - hard links: kept as the input has them; `dedupe` links identical files
//!   as `strata layer` does;
//! - the root entry (`./`) some tools write is dropped (strata never writes
//!   one: it would overwrite `/`'s attributes).
//!
//! Contents are staged (small files in memory within a fixed budget, the
//! rest in files of a staging directory beside the output), because the
//! canonical order may differ from the input's; memory stays bounded.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::{Map, Value};

use crate::descriptor::{Descriptor, Index, Manifest, Platform};
use crate::error::{Error, IoContext, Result};
use crate::image::rfc3339;
use crate::json::to_canonical;
use crate::layer::compress::Compression;
use crate::layer::dedupe::link_identical;
use crate::layer::dir_options::XATTR_ALLOW;
use crate::layer::entry::{
    default_file_mode, normalize as normalize_entries, Content, Entry, EntryKind,
    NormalizeOptions as EntryOptions, Xattrs, DIR_MODE, SYMLINK_MODE,
};
use crate::layer::path::LayerPath;
use crate::layer::read::{EntryType, LayerReader, LayerSummary, TarEntry};
use crate::layer::{write_layer, LayerDescriptor, LayerOptions};
use crate::layout::{BlobSource, Layout, LayoutPlan};
use crate::media_type::{OCI_CONFIG, OCI_MANIFEST};
use crate::output::{AtomicDir, AtomicFile};

// Moved to `layer::policy`; the old paths stay for callers.
pub use crate::layer::policy::{Modes, Owners};

/// How to normalize.
#[derive(Debug, Clone, Copy)]
pub struct NormalizeOptions {
    /// Output compression; `None`: the input's, at strata's default level.
    pub compression: Option<Compression>,
    /// The mtime of every entry.
    pub mtime: u64,
    /// Compression threads (the bytes never depend on it).
    pub threads: usize,
    /// Ownership policy.
    pub owners: Owners,
    /// Permission policy.
    pub modes: Modes,
    /// Synthesize missing parent directories.
    pub parents: bool,
    /// Link identical files as `strata layer` does.
    pub dedupe: bool,
    /// Drop xattrs instead of refusing entries that carry them.
    pub drop_xattrs: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            compression: None,
            mtime: 0,
            threads: 1,
            owners: Owners::Keep,
            modes: Modes::Keep,
            parents: false,
            dedupe: false,
            drop_xattrs: false,
        }
    }
}

/// Files up to this size are staged in memory …
const INLINE_MAX: u64 = 64 * 1024;
/// … until this many bytes are held; the rest go to staging files.
const INLINE_BUDGET: u64 = 64 << 20;

struct Stage<'a> {
    dir: &'a Utf8Path,
    files: usize,
    inline: u64,
}

/// Normalize one layer read from `input` into `out`; returns the writer, the
/// new descriptor and the input blob's summary. `stage` is an empty
/// directory the caller removes afterwards.
pub fn normalize_layer<W: Write + Send + 'static>(
    input: impl Read,
    in_name: &str,
    stage: &Utf8Path,
    out: W,
    out_name: &str,
    opts: &NormalizeOptions,
) -> Result<(W, LayerDescriptor, LayerSummary)> {
    let mut r = LayerReader::new(input, in_name)?;
    let compression = opts.compression.unwrap_or(match r.compression() {
        Compression::None => Compression::None,
        Compression::Gzip { .. } => Compression::gzip(),
        Compression::Zstd { .. } => Compression::zstd(),
    });
    let mut st = Stage {
        dir: stage,
        files: 0,
        inline: 0,
    };
    let mut entries = Vec::new();
    while let Some(e) = r.next_entry()? {
        if let Some(entry) = to_entry(&mut r, &e, in_name, &mut st, opts)? {
            entries.push(entry);
        }
    }
    let summary = r.finish()?;
    let mut entries = normalize_entries(
        entries,
        EntryOptions {
            parents: opts.parents,
        },
    )
    .map_err(|e| e.context(in_name))?;
    if opts.dedupe {
        link_identical(&mut entries, opts.threads)?;
    }
    let lopts = LayerOptions {
        compression,
        mtime: opts.mtime,
        threads: opts.threads,
    };
    let (w, desc) = write_layer(&entries, out, &lopts, out_name)?;
    Ok((w, desc, summary))
}

/// One tar entry → one model entry (`None` for the root entry).
fn to_entry<R: Read>(
    r: &mut LayerReader<'_, R>,
    e: &TarEntry,
    in_name: &str,
    st: &mut Stage<'_>,
    opts: &NormalizeOptions,
) -> Result<Option<Entry>> {
    let at = || format!("{in_name}: entry {} ({})", e.index, e.path);
    if e.path == "." {
        return Ok(None);
    }
    let foreign: Vec<&str> = e
        .xattrs
        .keys()
        .map(String::as_str)
        .filter(|k| !XATTR_ALLOW.contains(k))
        .collect();
    if !foreign.is_empty() && !opts.drop_xattrs {
        return Err(Error::unsupported(format!(
            "{}: carries xattrs ({}), which strata layers do not hold; drop xattrs to normalize it",
            at(),
            foreign.join(", ")
        )));
    }
    // Why only without drop_xattrs: that flag has always meant "no xattrs".
    let xattrs: Xattrs = if opts.drop_xattrs {
        Xattrs::new()
    } else {
        e.xattrs.clone()
    };
    let path = LayerPath::parse(&e.path).map_err(|err| err.context(at()))?;
    // Why: a ustar name field holds 32 bytes and strata writes no PAX uname.
    for (what, name) in [("uname", &e.uname), ("gname", &e.gname)] {
        if name.len() > 32 && opts.owners == Owners::Keep {
            return Err(Error::unsupported(format!(
                "{}: {what} {name:?} is longer than 32 bytes; root owners drop it",
                at()
            )));
        }
    }
    let kind = match e.kind {
        EntryType::File => EntryKind::File(stage_content(r, e, st)?),
        EntryType::Dir => EntryKind::Dir,
        EntryType::Symlink => {
            crate::layer::path::check_link_target(&path, &e.linkname)
                .map_err(|err| err.context(in_name))?;
            EntryKind::Symlink(e.linkname.clone())
        }
        EntryType::Hardlink => EntryKind::Hardlink(
            LayerPath::parse(&e.linkname)
                .map_err(|err| err.context(format!("{}: hard link target", at())))?,
        ),
        EntryType::CharDevice | EntryType::BlockDevice => {
            let num = |n: u64, what: &str| {
                u32::try_from(n).map_err(|_| {
                    Error::invalid(format!("{}: device {what} number {n} is too large", at()))
                })
            };
            EntryKind::Device {
                block: e.kind == EntryType::BlockDevice,
                major: num(e.devmajor, "major")?,
                minor: num(e.devminor, "minor")?,
            }
        }
        EntryType::Fifo => EntryKind::Fifo,
    };
    let mode = match (opts.modes, &kind) {
        (Modes::Keep, _) => e.mode & 0o7777,
        (Modes::Default, EntryKind::Dir) => DIR_MODE,
        (Modes::Default, EntryKind::Symlink(_)) => SYMLINK_MODE,
        (Modes::Default, _) => default_file_mode(e.mode),
    };
    let (uid, gid, uname, gname) = match opts.owners {
        Owners::Keep => (e.uid, e.gid, e.uname.clone(), e.gname.clone()),
        Owners::Root => (0, 0, String::new(), String::new()),
    };
    Ok(Some(Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        uname,
        gname,
        xattrs: (!xattrs.is_empty()).then(|| Box::new(xattrs)),
        origin: Arc::from(format!("{in_name} entry {}", e.index)),
    }))
}

fn stage_content<R: Read>(
    r: &mut LayerReader<'_, R>,
    e: &TarEntry,
    st: &mut Stage<'_>,
) -> Result<Content> {
    if e.size <= INLINE_MAX && st.inline + e.size <= INLINE_BUDGET {
        let mut v = Vec::with_capacity(e.size as usize);
        r.content(&mut v)?;
        st.inline += e.size;
        return Ok(Content::Inline(v));
    }
    let p: Utf8PathBuf = st.dir.join(format!("{}", st.files));
    st.files += 1;
    let f = File::create(&p).io_context(|| format!("writing {p}"))?;
    let mut w = BufWriter::with_capacity(1 << 16, f);
    r.content(&mut w)?;
    w.flush().io_context(|| format!("writing {p}"))?;
    Ok(Content::Path(p, e.size))
}

/// Normalize the layer blob `input` into the file `out` (atomically).
pub fn normalize_layer_file(
    input: &Utf8Path,
    out: &Utf8Path,
    opts: &NormalizeOptions,
) -> Result<LayerDescriptor> {
    let stage = AtomicDir::create(out)?;
    let f = File::open(input).io_context(|| format!("reading {input}"))?;
    let (file, atomic) = AtomicFile::create(out)?;
    let (file, desc, _) = normalize_layer(
        io::BufReader::with_capacity(1 << 16, f),
        input.as_str(),
        stage.path(),
        file,
        out.as_str(),
        opts,
    )?;
    atomic.commit(file)?;
    Ok(desc)
}

/// Normalize one image of `layout` (the only one, or by `reference` and
/// `platform`) into an OCI layout directory at `out`: every layer rewritten,
/// `rootfs.diff_ids` updated, `created` and `history[].created` set to the
/// mtime, config and manifest written canonically. Returns the manifest's
/// descriptor (as written in `index.json`).
pub fn normalize_image(
    layout: &Layout,
    reference: Option<&str>,
    platform: Option<&Platform>,
    out: &Utf8Path,
    opts: &NormalizeOptions,
) -> Result<Descriptor> {
    let top = layout.top(reference)?;
    let img = layout.image(reference, platform)?;
    let stage = AtomicDir::create(out)?;
    let mut plan = LayoutPlan::default();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, l) in img.manifest.layers.iter().enumerate() {
        let name = layout.name(&Layout::blob_name(&l.digest));
        let src = layout
            .blob(&l.digest)
            .ok_or_else(|| Error::corrupt(format!("{name}: blob is missing")))?;
        let dir = stage.path().join(format!("stage-{i}"));
        std::fs::create_dir(&dir).io_context(|| format!("creating {dir}"))?;
        let blob = stage.path().join(format!("layer-{i}"));
        let f = File::create(&blob).io_context(|| format!("writing {blob}"))?;
        let (_, desc, summary) = normalize_layer(
            io::BufReader::with_capacity(1 << 16, src.open()?),
            &name,
            &dir,
            f,
            &format!("{out} (layer {i})"),
            opts,
        )?;
        if summary.digest != l.digest || summary.size != l.size {
            return Err(Error::corrupt(format!(
                "{name}: content is {} ({} bytes) but its descriptor says {} ({} bytes)",
                summary.digest, summary.size, l.digest, l.size
            )));
        }
        let _ = std::fs::remove_dir_all(&dir);
        let mut d = Descriptor::new(&desc.media_type, desc.digest, desc.size);
        d.annotations = l.annotations.clone();
        plan.blobs
            .insert(desc.digest, (desc.size, BlobSource::File(blob)));
        layers.push(d);
        diff_ids.push(Value::String(desc.diff_id.to_string()));
    }
    let mut config: Map<String, Value> =
        img.config.as_object().cloned().ok_or_else(|| {
            Error::corrupt(format!("{}: config is not a JSON object", layout.path()))
        })?;
    let mut rootfs = config
        .get("rootfs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    rootfs.insert("type".into(), Value::String("layers".into()));
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    config.insert("rootfs".into(), Value::Object(rootfs));
    // Why: creation times are the clock of the machine that built it.
    let created = Value::String(rfc3339(opts.mtime));
    if config.contains_key("created") {
        config.insert("created".into(), created.clone());
    }
    if let Some(Value::Array(h)) = config.get_mut("history") {
        for item in h.iter_mut() {
            if let Some(o) = item.as_object_mut() {
                if o.contains_key("created") {
                    o.insert("created".into(), created.clone());
                }
            }
        }
    }
    let (cd, cs) = plan.add_bytes(to_canonical(&Value::Object(config)));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::new(OCI_CONFIG, cd, cs),
        layers,
        annotations: img.manifest.annotations.clone(),
        extra: img.manifest.extra.clone(),
    };
    let (md, ms) = plan.add_bytes(to_canonical(&manifest));
    let mut desc = Descriptor::new(OCI_MANIFEST, md, ms);
    let p = img.platform();
    desc.platform = Some(Platform::new(&p.os, &p.architecture, p.variant.as_deref()));
    desc.annotations = top.annotations.clone();
    plan.index_json = to_canonical(&Index::new(vec![desc.clone()]));
    plan.write_dir(out)?;
    drop(stage);
    Ok(desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::entry::Entry;

    fn p(s: &str) -> LayerPath {
        LayerPath::parse(s).unwrap()
    }

    fn strata_layer(c: Compression) -> Vec<u8> {
        let mut v = vec![
            Entry {
                kind: EntryKind::File(Content::Inline(b"hello\n".to_vec())),
                mode: 0o4755,
                uid: 65534,
                uname: "nobody".into(),
                ..Entry::dir(p("bin/app"), "t")
            },
            Entry {
                kind: EntryKind::Symlink("app".into()),
                mode: 0o777,
                ..Entry::dir(p("bin/sh"), "t")
            },
            Entry {
                kind: EntryKind::Hardlink(p("bin/app")),
                ..Entry::dir(p("bin/z"), "t")
            },
            Entry {
                mode: 0o700,
                ..Entry::dir(p(&format!("{}/x", "d".repeat(120))), "t")
            },
            Entry {
                kind: EntryKind::Device {
                    block: false,
                    major: 5,
                    minor: 1,
                },
                mode: 0o620,
                gid: 5,
                ..Entry::dir(p("dev/console"), "t")
            },
            Entry {
                kind: EntryKind::Fifo,
                mode: 0o600,
                ..Entry::dir(p("run/fifo"), "t")
            },
            Entry {
                kind: EntryKind::File(Content::Inline(b"ping\n".to_vec())),
                mode: 0o755,
                xattrs: Some(Box::new(Xattrs::from([(
                    "security.capability".to_string(),
                    // 0x0a (`\n`, cap_dac_override|cap_fowner) inside a value.
                    b"\x01\x00\x00\x02\x0a\x20\x00\x00".to_vec(),
                )]))),
                ..Entry::dir(p("bin/ping"), "t")
            },
        ];
        v = normalize_entries(v, EntryOptions::default()).unwrap();
        let opts = LayerOptions {
            compression: c,
            mtime: 0,
            threads: 2,
        };
        write_layer(&v, Vec::new(), &opts, "mem").unwrap().0
    }

    #[test]
    fn strata_layers_are_fixed_points() {
        let dir = tempfile::tempdir().unwrap();
        let stage = Utf8Path::from_path(dir.path()).unwrap();
        for c in [Compression::gzip(), Compression::zstd(), Compression::None] {
            let blob = strata_layer(c);
            let (out, desc, sum) = normalize_layer(
                &blob[..],
                "in",
                stage,
                Vec::new(),
                "out",
                &NormalizeOptions::default(),
            )
            .unwrap();
            assert_eq!(out, blob, "{c:?}");
            assert_eq!(desc.digest, sum.digest);
        }
    }

    #[test]
    fn xattrs_outside_the_allow_list_are_refused_by_name() {
        let mut b = ::tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v"[..])])
            .unwrap();
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Char);
        h.set_size(0);
        h.set_mode(0o666);
        b.append_data(&mut h, "dev/null", io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stage = Utf8Path::from_path(dir.path()).unwrap();
        let err = normalize_layer(
            &data[..],
            "in.tar",
            stage,
            Vec::new(),
            "out",
            &NormalizeOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.tar: entry 0 (dev/null): carries xattrs (user.k), which strata layers \
             do not hold; drop xattrs to normalize it"
        );

        // A file with xattrs: refused by name, unless they are dropped.
        let mut b = ::tar::Builder::new(Vec::new());
        b.append_pax_extensions([("SCHILY.xattr.user.note", &b"v"[..])])
            .unwrap();
        let mut h = ::tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/motd", &b"hi"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let err = normalize_layer(
            &data[..],
            "in.tar",
            stage,
            Vec::new(),
            "out",
            &NormalizeOptions::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("in.tar: ") && msg.contains("etc/motd") && msg.contains("user.note"),
            "{msg}"
        );
        assert!(msg.contains("carries xattrs"), "{msg}");
        let opts = NormalizeOptions {
            drop_xattrs: true,
            ..NormalizeOptions::default()
        };
        normalize_layer(&data[..], "in.tar", stage, Vec::new(), "out", &opts)
            .expect("dropping xattrs normalizes it");
    }
}
