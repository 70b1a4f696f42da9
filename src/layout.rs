//! OCI image layouts: reading (a directory, or a tar holding one: oci-archive
//! and strata's docker-archive, plain or gzip/zstd-compressed; a legacy
//! docker-archive is read as one through `docker_archive`) and
//! writing (a directory).
//!
//! Reading never extracts: a tar is scanned once for entry offsets and blobs
//! are read in place. Every JSON blob read is checked against its descriptor
//! (size first, then digest) before it is parsed. Writing links blobs from
//! their source files where the filesystem allows (composing gigabytes of
//! layers costs no gigabytes of writes) and copies otherwise; the directory is
//! assembled under a temporary name and renamed into place.
//!
//! A layout may be *shallow*: some blobs absent, each recorded in
//! [`REMOTE_FILE`] with the registry and repository that hold it (written by
//! `strata pull --shallow`, carried into every layout composed on it). A
//! remote blob's bytes are never needed to compose; commands that need them
//! (archives, push to another registry) fetch them by digest and verify them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

use crate::descriptor::{Descriptor, Index, Manifest, Platform};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::json;
use crate::layer::compress::Compression;
use crate::media_type::{is_index, is_manifest};
use crate::output::AtomicDir;
use crate::tar_members::Members;

// Moved to their own modules; the old paths stay for callers.
pub use crate::blob_source::{remote_error, BlobSource, RemoteBlob};
pub use crate::layout_names::OCI_LAYOUT_FILE;

/// The file of a shallow layout recording where its absent blobs live.
/// Other tools ignore it (and cannot read a shallow layout).
pub const REMOTE_FILE: &str = "strata-remote.json";

/// The contents of [`REMOTE_FILE`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRecord {
    /// Format version (1).
    pub version: u32,
    /// Absent blobs by digest.
    pub blobs: BTreeMap<Digest, RemoteBlob>,
}

// The limit moved to `limits`; the old path stays for callers.
pub use crate::limits::MAX_ARCHIVE_ENTRIES;

enum Root {
    Dir(Utf8PathBuf),
    Tar {
        path: Utf8PathBuf,
        entries: BTreeMap<String, (u64, u64)>,
    },
    /// A compressed archive, or a legacy docker-archive read as a layout.
    Files {
        path: Utf8PathBuf,
        /// Layout file name → where its bytes are.
        files: BTreeMap<String, BlobSource>,
        /// Layout file name → the archive member it is (for messages).
        members: BTreeMap<String, String>,
    },
}

/// An OCI layout opened for reading.
pub struct Layout {
    root: Root,
    /// The parsed `index.json`.
    pub index: Index,
    /// Blobs absent here that live in a registry (a shallow layout).
    pub remote: BTreeMap<Digest, RemoteBlob>,
    /// The RepoTags of each index.json entry (legacy docker-archives): each
    /// selects its image like a ref name does.
    tags: Vec<Vec<String>>,
    /// Remote blobs whose bytes were fetched (verified) into a local file.
    fetched: BTreeMap<Digest, Utf8PathBuf>,
}

/// One image resolved from a layout, its JSON blobs verified.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor (from index.json or the index blob).
    pub manifest_desc: Descriptor,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The config blob, byte for byte.
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: serde_json::Value,
}

impl Image {
    /// The platform the config declares.
    pub fn platform(&self) -> Platform {
        Platform::of_config(&self.config)
    }

    /// The config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        let ids = self
            .config
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        ids.iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| Error::corrupt("config: rootfs.diff_ids holds a non-string"))
                    .and_then(Digest::parse)
            })
            .collect()
    }
}

impl Layout {
    /// Open a layout directory or a tar archive holding one.
    pub fn open(path: &Utf8Path) -> Result<Layout> {
        let meta = fs::metadata(path).io_context(|| format!("opening {path}"))?;
        let (root, tags) = if meta.is_dir() {
            (Root::Dir(path.to_path_buf()), Vec::new())
        } else {
            open_archive(path)?
        };
        let mut layout = Layout {
            root,
            index: Index::new(Vec::new()),
            remote: BTreeMap::new(),
            tags,
            fetched: BTreeMap::new(),
        };
        let oci_layout = layout
            .read_file("oci-layout", 4096)?
            .ok_or_else(|| layout.missing("oci-layout"))?;
        let v: serde_json::Value = json::parse(&oci_layout, &layout.name("oci-layout"))?;
        if v.get("imageLayoutVersion").and_then(|x| x.as_str()) != Some("1.0.0") {
            return Err(Error::unsupported(format!(
                "{}: unsupported imageLayoutVersion (expected \"1.0.0\")",
                layout.name("oci-layout")
            )));
        }
        let idx = layout
            .read_file("index.json", json::MAX_JSON_BYTES)?
            .ok_or_else(|| layout.missing("index.json"))?;
        layout.index = json::parse(&idx, &layout.name("index.json"))?;
        if let Some(r) = layout.read_file(REMOTE_FILE, json::MAX_JSON_BYTES)? {
            let rec: RemoteRecord = json::parse(&r, &layout.name(REMOTE_FILE))?;
            if rec.version != 1 {
                return Err(Error::unsupported(format!(
                    "{}: version {} (expected 1)",
                    layout.name(REMOTE_FILE),
                    rec.version
                )));
            }
            layout.remote = rec.blobs;
        }
        Ok(layout)
    }

    fn missing(&self, file: &str) -> Error {
        let hint = if file == "oci-layout" && !matches!(self.root, Root::Dir(_)) {
            " (neither an OCI layout nor a docker-archive: no manifest.json either)"
        } else {
            ""
        };
        Error::corrupt(format!("{}: missing{hint}", self.name(file)))
    }

    /// A display name for a file inside the layout.
    pub fn name(&self, file: &str) -> String {
        match &self.root {
            Root::Dir(d) => format!("{d}/{file}"),
            Root::Tar { path, .. } => format!("{path}:{file}"),
            Root::Files { path, members, .. } => match members.get(file) {
                Some(m) => format!("{path}:{m}"),
                None => format!("{path}:{file}"),
            },
        }
    }

    /// Where the layout is.
    pub fn path(&self) -> &Utf8Path {
        match &self.root {
            Root::Dir(d) => d,
            Root::Tar { path, .. } | Root::Files { path, .. } => path,
        }
    }

    fn source(&self, file: &str) -> Option<BlobSource> {
        match &self.root {
            Root::Dir(d) => {
                let p = d.join(file);
                // Symlinks are read through: Bazel's sandbox presents every
                // input file as one. Safe, as every blob read is checked
                // against its digest and nothing is written through them.
                match fs::metadata(&p) {
                    Ok(m) if m.is_file() => Some(BlobSource::File(p)),
                    _ => None,
                }
            }
            Root::Tar { path, entries } => {
                entries.get(file).map(|&(offset, size)| BlobSource::Slice {
                    archive: path.clone(),
                    offset,
                    size,
                })
            }
            Root::Files { files, .. } => files.get(file).cloned(),
        }
    }

    fn read_file(&self, file: &str, limit: usize) -> Result<Option<Vec<u8>>> {
        let Some(src) = self.source(file) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        src.open()?
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .io_context(|| format!("reading {}", self.name(file)))?;
        if bytes.len() > limit {
            return Err(Error::corrupt(format!(
                "{}: larger than the {limit} byte limit",
                self.name(file)
            )));
        }
        Ok(Some(bytes))
    }

    /// The blob's path inside the layout.
    pub fn blob_name(d: &Digest) -> String {
        crate::layout_names::blob_name(d)
    }

    /// Where blob `d` is (a file here, or a registry for a shallow layout),
    /// or `None` when the layout lacks it.
    pub fn blob(&self, d: &Digest) -> Option<BlobSource> {
        self.source(&Layout::blob_name(d)).or_else(|| {
            self.remote.get(d).map(|at| BlobSource::Remote {
                digest: *d,
                at: at.clone(),
            })
        })
    }

    /// Record that the bytes of remote blob `d` are in the file `path`
    /// (fetched and verified by the caller): [`Layout::readable_blob`] reads
    /// them there, while [`Layout::blob`] still says where the blob lives
    /// (so a layout written from this one stays as shallow as it was).
    pub fn set_fetched(&mut self, d: Digest, path: Utf8PathBuf) {
        self.fetched.insert(d, path);
    }

    /// Where to read blob `d`'s bytes: as [`Layout::blob`], but a remote blob
    /// fetched into a local file (see [`Layout::set_fetched`]) is that file.
    pub fn readable_blob(&self, d: &Digest) -> Option<BlobSource> {
        match self.blob(d)? {
            BlobSource::Remote { .. } if self.fetched.contains_key(d) => {
                self.fetched.get(d).cloned().map(BlobSource::File)
            }
            src => Some(src),
        }
    }

    /// The size of blob `d` as stored, if present.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        match self.blob(d)? {
            BlobSource::File(p) => fs::metadata(p).ok().map(|m| m.len()),
            BlobSource::Slice { size, .. } | BlobSource::Compressed { size, .. } => Some(size),
            BlobSource::Bytes(b) => Some(b.len() as u64),
            BlobSource::Remote { at, .. } => Some(at.size),
        }
    }

    /// Read a JSON blob named by `desc`, checking its size and digest.
    pub fn read_json_blob(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let name = self.name(&Layout::blob_name(&desc.digest));
        if desc.size > json::MAX_JSON_BYTES as u64 {
            return Err(Error::corrupt(format!(
                "{name}: descriptor size {} exceeds the {} byte limit for JSON blobs",
                desc.size,
                json::MAX_JSON_BYTES
            )));
        }
        let src = self
            .source(&Layout::blob_name(&desc.digest))
            .ok_or_else(|| Error::corrupt(format!("{name}: blob {} is missing", desc.digest)))?;
        let mut r = HashingReader::new(src.open()?.take(desc.size + 1));
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)
            .io_context(|| format!("reading {name}"))?;
        let (digest, n) = r.finish();
        if n != desc.size {
            return Err(Error::corrupt(format!(
                "{name}: size mismatch: descriptor says {} bytes, blob has {}{}",
                desc.size,
                if n > desc.size { "more" } else { "" },
                if n > desc.size {
                    String::new()
                } else {
                    n.to_string()
                }
            )));
        }
        if digest != desc.digest {
            return Err(Error::corrupt(format!(
                "{name}: digest mismatch: descriptor says {}, content is {digest}",
                desc.digest
            )));
        }
        Ok(bytes)
    }

    /// The single top-level descriptor, or the one whose ref name is `reference`.
    pub fn top(&self, reference: Option<&str>) -> Result<Descriptor> {
        let ms = &self.index.manifests;
        if let Some(r) = reference {
            let tagged = |i: usize| {
                self.tags
                    .get(i)
                    .is_some_and(|ts| ts.iter().any(|t| crate::docker_archive::tag_matches(t, r)))
            };
            return ms
                .iter()
                .enumerate()
                .find(|(i, d)| d.ref_name() == Some(r) || tagged(*i))
                .map(|(_, d)| d.clone())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: no image tagged {r:?}{}",
                        self.name("index.json"),
                        self.have_tags()
                    ))
                });
        }
        // Attachments (referrers, cosign `.sig` manifests) are never "the image".
        let ms = &self.images();
        match ms.len() {
            1 => Ok(ms[0].clone()),
            0 => Err(Error::corrupt(format!(
                "{}: lists no manifests",
                self.name("index.json")
            ))),
            n if !self.tags.is_empty() => Err(Error::invalid(format!(
                "{}: holds {n} images; name one by tag{}",
                self.path(),
                self.have_tags()
            ))),
            n => {
                let refs: Vec<&str> = ms.iter().filter_map(|d| d.ref_name()).collect();
                Err(Error::invalid(format!(
                    "{}: lists {n} manifests; name one by tag (have: {})",
                    self.name("index.json"),
                    refs.join(", ")
                )))
            }
        }
    }

    /// The top-level entries of `index.json` that are images or indexes, not
    /// attachments: entries marked as attachments are skipped, and when
    /// several remain, so are manifests that have a `subject` (a referrer
    /// another tool listed without its `artifactType`).
    pub fn images(&self) -> Vec<Descriptor> {
        let ms: Vec<Descriptor> = self
            .index
            .manifests
            .iter()
            .filter(|d| !crate::attachment::is_attachment(d))
            .cloned()
            .collect();
        // Legacy docker-archives hold no referrers (and their blobs may sit
        // in a compressed stream): nothing more to read.
        if ms.len() <= 1 || !self.tags.is_empty() {
            return ms;
        }
        ms.into_iter()
            .filter(|d| {
                !is_manifest(&d.media_type)
                    || self
                        .read_json_blob(d)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
                        .and_then(|m| crate::attachment::subject_of(&m))
                        .is_none()
            })
            .collect()
    }

    /// ` (have: a:1, b:1)` for a legacy archive's RepoTags, else nothing.
    fn have_tags(&self) -> String {
        let all: Vec<&str> = self.tags.iter().flatten().map(String::as_str).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" (have: {})", all.join(", "))
        }
    }

    /// Parse an index blob.
    pub fn read_index(&self, desc: &Descriptor) -> Result<Index> {
        let bytes = self.read_json_blob(desc)?;
        json::parse(&bytes, &self.name(&Layout::blob_name(&desc.digest)))
    }

    /// Resolve one image: the top descriptor (or `reference`), through an index
    /// if needed (choosing `platform`, or the only entry).
    pub fn image(&self, reference: Option<&str>, platform: Option<&Platform>) -> Result<Image> {
        let mut desc = self.top(reference)?;
        let mut depth = 0;
        while is_index(&desc.media_type) {
            depth += 1;
            if depth > 4 {
                return Err(Error::corrupt(format!(
                    "{}: indexes nested more than 4 deep",
                    self.name("index.json")
                )));
            }
            let idx = self.read_index(&desc)?;
            desc = choose_platform(&idx, platform)
                .map_err(|e| e.context(self.name(&Layout::blob_name(&desc.digest))))?;
        }
        if !is_manifest(&desc.media_type) {
            return Err(Error::unsupported(format!(
                "{}: {} is a {:?}, not an image manifest",
                self.name("index.json"),
                desc.digest,
                desc.media_type
            )));
        }
        self.image_at(&desc)
    }

    /// Read the image whose manifest `desc` names.
    pub fn image_at(&self, desc: &Descriptor) -> Result<Image> {
        let mname = self.name(&Layout::blob_name(&desc.digest));
        let mbytes = self.read_json_blob(desc)?;
        let manifest: Manifest = json::parse(&mbytes, &mname)?;
        if manifest.schema_version != 2 {
            return Err(Error::unsupported(format!(
                "{mname}: schemaVersion {} (expected 2)",
                manifest.schema_version
            )));
        }
        if manifest.layers.len() > crate::limits::MAX_LAYERS {
            return Err(Error::corrupt(format!(
                "{mname}: {} layers exceeds the limit of {}",
                manifest.layers.len(),
                crate::limits::MAX_LAYERS
            )));
        }
        if manifest.config.digest == desc.digest {
            return Err(Error::corrupt(format!(
                "{mname}: manifest names itself as its config"
            )));
        }
        let config_bytes = self.read_json_blob(&manifest.config)?;
        let config = json::parse(
            &config_bytes,
            &self.name(&Layout::blob_name(&manifest.config.digest)),
        )?;
        Ok(Image {
            manifest_desc: desc.clone(),
            manifest,
            config_bytes,
            config,
        })
    }
}

/// The one manifest of `idx` for `platform` (or its only entry).
pub fn choose_platform(idx: &Index, platform: Option<&Platform>) -> Result<Descriptor> {
    let candidates: Vec<&Descriptor> = idx
        .manifests
        .iter()
        .filter(|d| match (platform, &d.platform) {
            (Some(want), Some(have)) => want.matches(have),
            (Some(_), None) => false,
            (None, _) => true,
        })
        .collect();
    match (candidates.as_slice(), platform) {
        ([one], _) => Ok((*one).clone()),
        ([], Some(p)) => Err(Error::invalid(format!("no manifest for platform {p}"))),
        ([], None) => Err(Error::corrupt("index lists no manifests")),
        (_, _) => {
            let have: Vec<String> = idx
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect();
            Err(Error::invalid(format!(
                "index has several manifests ({}); choose one by platform",
                have.join(", ")
            )))
        }
    }
}

/// Open an archive: a plain tar holding an OCI layout is read in place; a
/// compressed one, or a legacy docker-archive, through its members.
fn open_archive(path: &Utf8Path) -> Result<(Root, Vec<Vec<String>>)> {
    let members = if crate::blob_source::compression_of(path)? != Compression::None {
        Members::scan_compressed(path)?
    } else {
        let (entries, links) = crate::tar_members::scan_tar(path)?;
        let m = Members::plain(path, &entries, links);
        if !crate::docker_archive::is_legacy(&m) {
            let root = Root::Tar {
                path: path.to_path_buf(),
                entries,
            };
            return Ok((root, Vec::new()));
        }
        m
    };
    let (files, names, tags) = if crate::docker_archive::is_legacy(&members) {
        let l = crate::docker_archive::read(&members)?;
        (l.files, l.names, l.tags)
    } else {
        let files = members
            .files
            .into_iter()
            .map(|(name, m)| (name, m.source))
            .collect();
        (files, BTreeMap::new(), Vec::new())
    };
    let root = Root::Files {
        path: path.to_path_buf(),
        files,
        members: names,
    };
    Ok((root, tags))
}

/// Everything a layout directory or archive holds: index.json plus blobs.
#[derive(Debug, Clone, Default)]
pub struct LayoutPlan {
    /// The bytes of `index.json`.
    pub index_json: Vec<u8>,
    /// Blobs by digest, with their size and source.
    pub blobs: BTreeMap<Digest, (u64, BlobSource)>,
    /// Extra top-level files (e.g. Docker's `manifest.json`).
    pub extra_files: BTreeMap<String, Vec<u8>>,
}

impl LayoutPlan {
    /// Add an in-memory blob; returns its digest and size.
    pub fn add_bytes(&mut self, bytes: Vec<u8>) -> (Digest, u64) {
        let d = Digest::of(&bytes);
        let n = bytes.len() as u64;
        self.blobs
            .insert(d, (n, BlobSource::Bytes(Arc::new(bytes))));
        (d, n)
    }

    /// The record of the plan's remote blobs, if it has any.
    pub fn remote_record(&self) -> Option<RemoteRecord> {
        let blobs: BTreeMap<Digest, RemoteBlob> = self
            .blobs
            .values()
            .filter_map(|(_, src)| match src {
                BlobSource::Remote { digest, at } => Some((*digest, at.clone())),
                _ => None,
            })
            .collect();
        (!blobs.is_empty()).then_some(RemoteRecord { version: 1, blobs })
    }

    /// The first blob whose bytes are only in a registry, if any.
    pub fn first_remote(&self) -> Option<Error> {
        self.blobs.values().find_map(|(_, src)| match src {
            BlobSource::Remote { digest, at } => Some(remote_error(digest, at)),
            _ => None,
        })
    }

    /// Write the plan as a layout directory at `dest` (atomically). Remote
    /// blobs stay remote: recorded in [`REMOTE_FILE`], not fetched.
    pub fn write_dir(&self, dest: &Utf8Path) -> Result<()> {
        self.write_dir_placing(dest, None)
    }

    /// Like [`LayoutPlan::write_dir`], but every blob that comes from a whole
    /// file (a layer file, a blob of a layout directory) whose canonical path
    /// is inside the directory `under` is written as a symlink to that
    /// canonical, absolute path instead of a hard link or a copy: the layout
    /// then refers to those files (a Nix store path's reference scan sees
    /// them) and holds no second copy of their bytes. The layout is only as
    /// lasting as the files it links to.
    pub fn write_dir_linking(&self, dest: &Utf8Path, under: &Utf8Path) -> Result<()> {
        let under = fs::canonicalize(under).io_context(|| format!("reading {under}"))?;
        self.write_dir_placing(dest, Some(&under))
    }

    fn write_dir_placing(&self, dest: &Utf8Path, under: Option<&std::path::Path>) -> Result<()> {
        let tmp = AtomicDir::create(dest)?;
        let root = tmp.path().to_path_buf();
        let put = |name: &str, bytes: &[u8]| -> Result<()> {
            fs::write(root.join(name), bytes).io_context(|| format!("writing {dest}/{name}"))
        };
        put("oci-layout", OCI_LAYOUT_FILE)?;
        let blob_dir = root.join("blobs/sha256");
        fs::create_dir_all(&blob_dir).io_context(|| format!("writing {dest}/blobs/sha256"))?;
        for (d, (size, src)) in &self.blobs {
            if matches!(src, BlobSource::Remote { .. }) {
                continue;
            }
            let to = blob_dir.join(d.hex());
            match (src, under) {
                (BlobSource::File(p), Some(dir)) => link_blob(p, *size, &to, dir),
                _ => place_blob(src, *size, &to),
            }
            .map_err(|e| e.context(format!("writing blob {d} into {dest}")))?;
        }
        if let Some(rec) = self.remote_record() {
            put(REMOTE_FILE, &json::to_canonical(&rec))?;
        }
        for (name, bytes) in &self.extra_files {
            put(name, bytes)?;
        }
        put("index.json", &self.index_json)?;
        tmp.commit()
    }
}

/// Put at `to` a symlink to the file `p` if its canonical path (absolute,
/// every symlink resolved, so a link to a link is never made) is inside
/// `under`, else place it as [`place_blob`] does; size checked.
fn link_blob(p: &Utf8Path, size: u64, to: &Utf8Path, under: &std::path::Path) -> Result<()> {
    let real = fs::canonicalize(p).io_context(|| format!("reading {p}"))?;
    if !real.starts_with(under) {
        return place_blob(&BlobSource::File(p.to_path_buf()), size, to);
    }
    let meta = fs::metadata(&real).io_context(|| format!("reading {p}"))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("{p}: not a regular file")));
    }
    if meta.len() != size {
        return Err(Error::corrupt(format!(
            "{p}: size mismatch: descriptor says {size} bytes, file has {}",
            meta.len()
        )));
    }
    std::os::unix::fs::symlink(&real, to).io_context(|| format!("linking {p}"))
}

/// Put one blob at `to`: hard link when possible, else copy; sizes checked.
pub(crate) fn place_blob(src: &BlobSource, size: u64, to: &Utf8Path) -> Result<()> {
    match src {
        BlobSource::Bytes(b) => fs::write(to, b.as_slice()).io_context(|| "writing".to_string()),
        BlobSource::File(p) => {
            // Why canonicalize: link(2) does not follow symlinks, and Bazel
            // presents inputs as symlinks into its execroot.
            let real = fs::canonicalize(p).io_context(|| format!("reading {p}"))?;
            let have = fs::metadata(&real)
                .io_context(|| format!("reading {p}"))?
                .len();
            if have != size {
                return Err(Error::corrupt(format!(
                    "{p}: size mismatch: descriptor says {size} bytes, file has {have}"
                )));
            }
            if fs::hard_link(&real, to).is_ok() {
                return Ok(());
            }
            fs::copy(&real, to).io_context(|| format!("copying {p}"))?;
            Ok(())
        }
        BlobSource::Remote { digest, at } => Err(remote_error(digest, at)),
        BlobSource::Slice { .. } | BlobSource::Compressed { .. } => {
            let mut r = src.open()?;
            let mut f = File::create(to).io_context(|| "writing".to_string())?;
            let n = io::copy(&mut r, &mut f).io_context(|| "copying".to_string())?;
            if n != size {
                return Err(Error::corrupt(format!(
                    "source has {n} bytes, descriptor says {size}"
                )));
            }
            f.flush().io_context(|| "writing".to_string())
        }
    }
}
