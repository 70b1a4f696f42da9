//! The inventory of an image: its layers, the packages its final filesystem
//! holds, and (optionally) every regular file of every layer with digests.
//!
//! Every layer blob is read once, bottom first, with the hardened reader
//! ([`crate::layer::read::LayerReader`]); its digest and diff_id are checked
//! against the manifest and config. Whiteouts are applied in layer order as
//! the OCI spec says (`.wh.NAME` deletes NAME and everything below it from
//! lower layers, `.wh..wh..opq` empties its directory of lower-layer
//! content, a non-directory replaces a lower directory), so a package an
//! upper layer deletes is not listed.
//!
//! What is listed, and from where:
//! - Debian packages from the final `var/lib/dpkg/status` and
//!   `var/lib/dpkg/status.d/*` files (see [`super::dpkg`]); a package is
//!   attributed to the lowest layer from which every later rewrite of the
//!   status file still lists it at the same version and architecture (the
//!   layer that installed it, not the last one that touched the database);
//! - Nix store paths: the top-level entries of `nix/store/` (see
//!   [`super::store_path`]), attributed to the lowest layer holding them;
//! - with [`InventoryOptions::files`], each layer's regular files (hard
//!   links resolved to their target's content; whiteout markers left out)
//!   with size, sha256 and sha1 (SPDX 2.3 requires sha1 for files).
//!
//! Invariants: the result depends on the blob bytes alone; packages are
//! sorted by [`Package::key`], files by path; memory is bounded (database
//! files are capped at [`super::dpkg::MAX_STATUS_BYTES`] in total, file
//! contents are streamed).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use sha1::{Digest as _, Sha1};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::read::{check_path, EntryType, LayerReader};
use crate::layout::{Image, Layout};

use super::dpkg::{parse_status, MAX_STATUS_BYTES};
use super::package::{Package, PackageKind};
use super::store_path::parse_store_name;

/// The main dpkg database file.
const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// The per-package database directory distroless images use.
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d/";
const NIX_STORE: &str = "nix/store/";

/// What to collect besides packages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InventoryOptions {
    /// List every regular file of every layer with its digests.
    pub files: bool,
}

/// One regular file of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Path in the layer (no leading `./` or `/`).
    pub path: String,
    /// Content size.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: Digest,
    /// sha1 of the content, lowercase hex.
    pub sha1: String,
}

/// One layer of the image.
#[derive(Debug, Clone)]
pub struct LayerRecord {
    /// The layer's descriptor from the manifest.
    pub descriptor: Descriptor,
    /// The digest of its uncompressed tar.
    pub diff_id: Digest,
    /// Its regular files, sorted by path (empty unless asked for).
    pub files: Vec<FileRecord>,
}

/// Everything an SBOM of one image lists.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Packages of the final filesystem, sorted by [`Package::key`].
    pub packages: Vec<Package>,
}

/// Read every layer of `image` (from `layout`) and take stock.
pub fn take_inventory(layout: &Layout, image: &Image, opts: InventoryOptions) -> Result<Inventory> {
    let diff_ids = image.diff_ids()?;
    let mut state = State::default();
    let mut layers = Vec::new();
    for (i, desc) in image.manifest.layers.iter().enumerate() {
        let name = layout.name(&Layout::blob_name(&desc.digest));
        let (files, diff_id) = state.read_layer(layout, i, desc, &name, opts)?;
        if let Some(want) = diff_ids.get(i) {
            if *want != diff_id {
                return Err(Error::corrupt(format!(
                    "{name}: diff_id mismatch: the config says {want}, the layer's tar is {diff_id}"
                )));
            }
        }
        layers.push(LayerRecord {
            descriptor: desc.clone(),
            diff_id,
            files,
        });
    }
    let packages = state.packages(layout, image)?;
    Ok(Inventory { layers, packages })
}

/// A Debian package as the status file identifies it: (name, version, arch).
type DebId = (String, String, String);

#[derive(Default)]
struct State {
    /// Database files present now: path → (layer, content).
    dpkg: BTreeMap<String, (usize, Vec<u8>)>,
    /// Versions of the main status file since it last appeared: (layer,
    /// the (name, version, arch) it listed).
    history: Vec<(usize, BTreeSet<DebId>)>,
    /// Store paths present now: entry name → the layer that brought it.
    store: BTreeMap<String, usize>,
}

/// A sink computing sha1 and optionally keeping the bytes.
struct Capture<'a> {
    sha1: Sha1,
    keep: Option<&'a mut Vec<u8>>,
}

impl Write for Capture<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sha1.update(buf);
        if let Some(k) = self.keep.as_mut() {
            k.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn is_dpkg_db(path: &str) -> bool {
    path == DPKG_STATUS
        || path.strip_prefix(DPKG_STATUS_D).is_some_and(|n| {
            !n.is_empty() && !n.contains('/') && !n.ends_with(".md5sums") && !n.starts_with(".wh.")
        })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl State {
    /// Delete what lower layers (below `layer`) put at `path` (when `itself`)
    /// and below it; `path` "" is the root.
    fn remove(&mut self, layer: usize, path: &str, itself: bool) {
        let hit = |p: &str| {
            (itself && p == path)
                || path.is_empty()
                || p.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
        };
        self.dpkg.retain(|p, (l, _)| *l >= layer || !hit(p));
        if !self.dpkg.contains_key(DPKG_STATUS) {
            self.history.clear();
        }
        self.store
            .retain(|n, l| *l >= layer || !hit(&format!("{NIX_STORE}{n}")));
    }

    fn held_bytes(&self) -> u64 {
        self.dpkg.values().map(|(_, b)| b.len() as u64).sum()
    }

    fn read_layer(
        &mut self,
        layout: &Layout,
        layer: usize,
        desc: &Descriptor,
        name: &str,
        opts: InventoryOptions,
    ) -> Result<(Vec<FileRecord>, Digest)> {
        let src = layout
            .readable_blob(&desc.digest)
            .ok_or_else(|| Error::corrupt(format!("{name}: blob {} is missing", desc.digest)))?;
        let mut r = LayerReader::new(src.open()?, name)?;
        let mut files: BTreeMap<String, FileRecord> = BTreeMap::new();
        // Database paths that are hard links in this layer: path → target.
        let mut links: BTreeMap<String, String> = BTreeMap::new();
        while let Some(e) = r.next_entry()? {
            let path = e.path.as_str();
            if path == "." {
                continue;
            }
            let (parent, base) = path.rsplit_once('/').unwrap_or(("", path));
            if base == ".wh..wh..opq" {
                self.remove(layer, parent, false);
                continue;
            }
            if let Some(t) = base.strip_prefix(".wh.") {
                let target = if parent.is_empty() {
                    t.to_string()
                } else {
                    format!("{parent}/{t}")
                };
                self.remove(layer, &target, true);
                continue;
            }
            if e.kind != EntryType::Dir {
                // A non-directory replaces a lower directory and all below it.
                self.remove(layer, path, false);
            }
            if let Some(rest) = path.strip_prefix(NIX_STORE) {
                let top = rest.split('/').next().unwrap_or(rest);
                if parse_store_name(top).is_some() {
                    self.store.entry(top.to_string()).or_insert(layer);
                }
            }
            let db = is_dpkg_db(path);
            match e.kind {
                EntryType::File if db || opts.files => {
                    let mut keep = Vec::new();
                    if db {
                        let held = self.held_bytes();
                        if held.saturating_add(e.size) > MAX_STATUS_BYTES {
                            return Err(Error::corrupt(format!(
                                "{name}: {path}: {} bytes of dpkg database exceeds the {MAX_STATUS_BYTES} byte limit",
                                held.saturating_add(e.size)
                            )));
                        }
                    }
                    let mut sink = Capture {
                        sha1: Sha1::new(),
                        keep: db.then_some(&mut keep),
                    };
                    let sha256 = r.content(&mut sink)?;
                    let sha1 = hex(&sink.sha1.finalize());
                    if db {
                        self.dpkg.insert(path.to_string(), (layer, keep));
                        links.remove(path);
                    }
                    if opts.files {
                        files.insert(
                            path.to_string(),
                            FileRecord {
                                path: path.to_string(),
                                size: e.size,
                                sha256,
                                sha1,
                            },
                        );
                    }
                }
                EntryType::Hardlink => {
                    let target = check_path(&e.linkname).map_err(|m| {
                        Error::corrupt(format!("{name}: entry {} ({path}): hard link {m}", e.index))
                    })?;
                    if opts.files {
                        if let Some(f) = files.get(&target).cloned() {
                            files.insert(
                                path.to_string(),
                                FileRecord {
                                    path: path.to_string(),
                                    ..f
                                },
                            );
                        }
                    }
                    if db {
                        links.insert(path.to_string(), target);
                    }
                }
                _ if db => {
                    // A symlink, device or the like replaces the database file.
                    self.remove(layer + 1, path, true);
                }
                _ => {}
            }
        }
        let summary = r.finish()?;
        if summary.digest != desc.digest {
            return Err(Error::corrupt(format!(
                "{name}: digest mismatch: the manifest says {}, the blob is {}",
                desc.digest, summary.digest
            )));
        }
        if !links.is_empty() {
            self.resolve_links(layout, layer, desc, name, &links)?;
        }
        if let Some((l, bytes)) = self.dpkg.get(DPKG_STATUS) {
            if *l == layer {
                let what = format!("{name}: {DPKG_STATUS}");
                let set = parse_status(bytes, &what)?
                    .into_iter()
                    .filter(|e| e.is_present())
                    .map(|e| (e.package, e.version, e.architecture))
                    .collect();
                self.history.push((layer, set));
            }
        }
        Ok((files.into_values().collect(), summary.diff_id))
    }

    /// Read the targets of database files that are hard links (strata's own
    /// dedupe makes them of identical files) in a second pass over the layer.
    fn resolve_links(
        &mut self,
        layout: &Layout,
        layer: usize,
        desc: &Descriptor,
        name: &str,
        links: &BTreeMap<String, String>,
    ) -> Result<()> {
        let src = layout
            .readable_blob(&desc.digest)
            .ok_or_else(|| Error::corrupt(format!("{name}: blob {} is missing", desc.digest)))?;
        let mut r = LayerReader::new(src.open()?, name)?;
        let wanted: BTreeSet<&str> = links.values().map(String::as_str).collect();
        let mut got: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        while let Some(e) = r.next_entry()? {
            if e.kind == EntryType::File && wanted.contains(e.path.as_str()) {
                let held = self.held_bytes();
                if held.saturating_add(e.size) > MAX_STATUS_BYTES {
                    return Err(Error::corrupt(format!(
                        "{name}: {}: dpkg database exceeds the {MAX_STATUS_BYTES} byte limit",
                        e.path
                    )));
                }
                let mut keep = Vec::new();
                r.content(&mut keep)?;
                got.insert(e.path.clone(), keep);
            }
        }
        for (path, target) in links {
            let bytes = got.get(target).cloned().ok_or_else(|| {
                Error::corrupt(format!(
                    "{name}: {path}: hard link to {target}, which is no earlier regular file of the layer"
                ))
            })?;
            self.dpkg.insert(path.clone(), (layer, bytes));
        }
        Ok(())
    }

    /// The packages of the final filesystem.
    fn packages(&self, layout: &Layout, image: &Image) -> Result<Vec<Package>> {
        let mut out: BTreeMap<String, Package> = BTreeMap::new();
        for (path, (layer, bytes)) in &self.dpkg {
            let blob = &image.manifest.layers[*layer].digest;
            let what = format!("{}: {path}", layout.name(&Layout::blob_name(blob)));
            for e in parse_status(bytes, &what)? {
                if !e.is_present() {
                    continue;
                }
                let id = (e.package.clone(), e.version.clone(), e.architecture.clone());
                let introduced = if path == DPKG_STATUS {
                    self.introduced(&id, *layer)
                } else {
                    *layer
                };
                let p = Package {
                    kind: PackageKind::Deb,
                    name: e.package,
                    version: Some(e.version),
                    arch: Some(e.architecture),
                    source: e.source,
                    license: e.license,
                    store_path: None,
                    store_hash: None,
                    purl: None,
                    layer: introduced,
                    evidence: path.clone(),
                };
                out.entry(p.key()).or_insert(p);
            }
        }
        for (entry, layer) in &self.store {
            let Some(n) = parse_store_name(entry) else {
                continue;
            };
            let p = Package {
                kind: PackageKind::Nix,
                name: n.name,
                version: n.version,
                arch: None,
                source: None,
                license: None,
                store_path: Some(format!("/{NIX_STORE}{entry}")),
                store_hash: Some(n.hash),
                purl: None,
                layer: *layer,
                evidence: format!("{NIX_STORE}{entry}"),
            };
            out.insert(p.key(), p);
        }
        Ok(out.into_values().collect())
    }

    /// The lowest layer from which every rewrite of the status file up to
    /// `last` lists `id`.
    fn introduced(&self, id: &DebId, last: usize) -> usize {
        let mut at = last;
        for (layer, set) in self.history.iter().rev() {
            if *layer > last {
                continue;
            }
            if !set.contains(id) {
                break;
            }
            at = *layer;
        }
        at
    }
}
