//! [`LayerBuilder`]: one layer's entries gathered from directories, layer
//! specs and memory, then normalized and written, to a file or any writer.
//!
//! The library's verb for "make a layer": what `strata layer` does with its
//! inputs, for a Rust caller. Entries added in memory need no file on disk.
//! Invariants are [`normalize`]'s and [`write_layer`]'s: the bytes depend on
//! the entries and [`LayerOptions`] only, never on the order things were
//! added, the number of threads or the host (in-memory files get mode, owner
//! and mtime from here, not from any file).

use std::io::Write;

use camino::Utf8Path;

use super::dedupe::link_identical;
use super::dir::walk_tree;
use super::dir_options::DirOptions;
use super::entry::{normalize, Content, Entry, EntryKind, NormalizeOptions, SYMLINK_MODE};
use super::path::LayerPath;
use super::{write_layer, write_layer_file, LayerDescriptor, LayerOptions};
use crate::error::Result;
use crate::layer::compress::Compression;
use crate::spec::{check_link_target, LayerSpec};

impl Default for LayerOptions {
    /// gzip at the default level, every mtime 0 (the epoch), one thread.
    ///
    /// Why mtime 0 and not the clock: the same entries must give the same
    /// digest on any day; set `mtime` from `SOURCE_DATE_EPOCH` if wanted.
    fn default() -> Self {
        LayerOptions {
            compression: Compression::gzip(),
            mtime: 0,
            threads: 1,
        }
    }
}

/// Gathers a layer's entries, then writes the layer (see the module docs).
///
/// ```
/// use strata::{LayerBuilder, LayerOptions};
///
/// let mut b = LayerBuilder::new();
/// b.file("app/hello.txt", "hello\n", 0o644)?
///     .file("app/run", "#!/bin/sh\ncat /app/hello.txt\n", 0o755)?
///     .symlink("app/greeting", "hello.txt")?;
/// let (blob, desc) = b.write(Vec::new(), &LayerOptions::default())?;
/// assert_eq!(desc.size, blob.len() as u64);
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
    normalize: NormalizeOptions,
    dedupe: bool,
    threads: usize,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    /// An empty layer: parents synthesized, identical files (16 KiB and up)
    /// stored once as hard links, as `strata layer` does.
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            entries: Vec::new(),
            normalize: NormalizeOptions::default(),
            dedupe: true,
            threads: 1,
        }
    }

    /// Threads for walking directories and finding identical files (the
    /// entries do not depend on it). Default 1.
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads.max(1);
        self
    }

    /// Whether identical files become hard links (default true; false keeps
    /// every copy, as `strata layer --no-dedupe`).
    pub fn dedupe(&mut self, on: bool) -> &mut Self {
        self.dedupe = on;
        self
    }

    /// Whether missing parent directories are added (0755, root-owned;
    /// default true).
    pub fn parents(&mut self, on: bool) -> &mut Self {
        self.normalize.parents = on;
        self
    }

    /// Add a regular file holding `bytes`, owned by 0:0, with permission bits
    /// `mode` (e.g. `0o644`, `0o755`).
    pub fn file(&mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> Result<&mut Self> {
        let path = LayerPath::parse(path)?;
        let origin = format!("in-memory file {path}");
        self.entries.push(Entry {
            kind: EntryKind::File(Content::Inline(bytes.into())),
            mode: mode & 0o7777,
            ..Entry::dir(path, origin)
        });
        Ok(self)
    }

    /// Add a directory (0755, 0:0).
    pub fn dir(&mut self, path: &str) -> Result<&mut Self> {
        let path = LayerPath::parse(path)?;
        let origin = format!("in-memory directory {path}");
        self.entries.push(Entry::dir(path, origin));
        Ok(self)
    }

    /// Add a symbolic link to `target`; a relative target climbing above the
    /// layer root is refused.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let path = LayerPath::parse(path)?;
        check_link_target(&path, target)?;
        let origin = format!("in-memory symlink {path}");
        self.entries.push(Entry {
            kind: EntryKind::Symlink(target.to_string()),
            mode: SYMLINK_MODE,
            ..Entry::dir(path, origin)
        });
        Ok(self)
    }

    /// Add one fully specified entry (any kind, owner, mode, xattrs).
    pub fn entry(&mut self, entry: Entry) -> &mut Self {
        self.entries.push(entry);
        self
    }

    /// Add the tree below the host directory `dir` (not `dir` itself), at
    /// `prefix` inside the layer (`srv/www` or `/srv/www`; `None` or `/`: the
    /// layer root), with the attribute policy of `opts`
    /// ([`DirOptions::default`]: modes 0644/0755, root-owned). File bytes are
    /// read when the layer is written.
    pub fn tree(
        &mut self,
        dir: &Utf8Path,
        prefix: Option<&str>,
        opts: &DirOptions,
    ) -> Result<&mut Self> {
        // Why trim: the prefix names a container path, as `strata layer DIR=/prefix`.
        let prefix = match prefix.map(|p| p.trim_start_matches('/')) {
            None | Some("") => None,
            Some(p) => Some(LayerPath::parse(p)?),
        };
        let mut walked = walk_tree(dir, prefix.as_ref(), self.threads, opts)?;
        self.entries.append(&mut walked);
        Ok(self)
    }

    /// Add a layer spec's entries; `what` names the spec in errors. A spec
    /// saying `"parents": false` turns parent synthesis off for the layer.
    pub fn spec(&mut self, spec: &LayerSpec, what: &str) -> Result<&mut Self> {
        self.normalize.parents &= spec.normalize_options().parents;
        let mut entries = spec.entries(what, self.threads)?;
        self.entries.append(&mut entries);
        Ok(self)
    }

    /// The layer's entries, normalized (sorted, parents added, duplicates
    /// refused) and, unless turned off, with identical files linked.
    pub fn entries(self) -> Result<Vec<Entry>> {
        let mut entries = normalize(self.entries, self.normalize)?;
        if self.dedupe {
            link_identical(&mut entries, self.threads)?;
        }
        Ok(entries)
    }

    /// Write the layer blob to `out` (a `Vec<u8>`, a file, a socket…);
    /// returns `out` and the blob's descriptor.
    pub fn write<W: Write + Send + 'static>(
        self,
        out: W,
        opts: &LayerOptions,
    ) -> Result<(W, LayerDescriptor)> {
        let entries = self.entries()?;
        write_layer(&entries, out, opts, "layer")
    }

    /// Write the layer blob at `dest`, atomically (a temporary file beside
    /// it, renamed when complete).
    pub fn write_file(self, dest: &Utf8Path, opts: &LayerOptions) -> Result<LayerDescriptor> {
        let entries = self.entries()?;
        write_layer_file(&entries, dest, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    fn blob(b: LayerBuilder) -> (Vec<u8>, LayerDescriptor) {
        b.write(Vec::new(), &LayerOptions::default()).unwrap()
    }

    #[test]
    fn the_order_of_additions_does_not_matter() {
        let mut a = LayerBuilder::new();
        a.file("a/x", "x", 0o644).unwrap();
        a.symlink("a/l", "x").unwrap();
        a.dir("b").unwrap();
        let mut b = LayerBuilder::new();
        b.dir("b").unwrap();
        b.symlink("a/l", "x").unwrap();
        b.file("a/x", "x", 0o644).unwrap();
        assert_eq!(blob(a), blob(b));
    }

    #[test]
    fn memory_and_directory_give_one_layer() {
        let d = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(d.path().to_path_buf()).unwrap();
        std::fs::create_dir(root.join("www")).unwrap();
        std::fs::write(root.join("www/index.html"), "<p>hi</p>\n").unwrap();
        let mut in_memory = LayerBuilder::new();
        in_memory
            .file("srv/www/index.html", "<p>hi</p>\n", 0o644)
            .unwrap();
        let want = blob(in_memory);
        for prefix in ["srv", "/srv"] {
            let mut from_dir = LayerBuilder::new();
            from_dir
                .tree(&root, Some(prefix), &DirOptions::default())
                .unwrap();
            assert_eq!(blob(from_dir), want, "prefix {prefix}");
        }
        let mut at_root = LayerBuilder::new();
        at_root
            .tree(&root.join("www"), Some("/"), &DirOptions::default())
            .unwrap();
        let mut plain = LayerBuilder::new();
        plain.file("index.html", "<p>hi</p>\n", 0o644).unwrap();
        assert_eq!(blob(at_root), blob(plain));
    }

    #[test]
    fn bad_input_is_named() {
        let mut b = LayerBuilder::new();
        let e = b.file("/abs", "", 0o644).unwrap_err().to_string();
        assert!(
            e.contains("\"/abs\": absolute paths are not allowed"),
            "{e}"
        );
        let e = b.symlink("a/l", "../../etc").unwrap_err().to_string();
        assert!(e.contains("symlink a/l -> ../../etc: escapes"), "{e}");
        b.file("f", "1", 0o644)
            .unwrap()
            .file("f", "2", 0o644)
            .unwrap();
        let e = b.entries().unwrap_err().to_string();
        assert!(
            e.contains("f: duplicate path (from in-memory file f and in-memory file f)"),
            "{e}"
        );
    }

    #[test]
    fn write_file_matches_write() {
        let d = tempfile::tempdir().unwrap();
        let dest = Utf8PathBuf::from_path_buf(d.path().join("l.tgz")).unwrap();
        let mut b = LayerBuilder::new();
        b.file("etc/motd", "hi\n", 0o644).unwrap();
        let (bytes, desc) = blob(b.clone());
        assert_eq!(b.write_file(&dest, &LayerOptions::default()).unwrap(), desc);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    }
}
