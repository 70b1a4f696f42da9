//! The blob cache: remote blobs fetched on demand, by digest.
//!
//! Layout: `DIR/blobs/sha256/<hex>`, each file written under a temporary name
//! and renamed into place only after its size and digest were verified, and
//! concurrent runs fetching the same blob both succeed (rename is atomic; the
//! bytes are the same). Nothing is ever modified in place by strata. A cached
//! file is still hashed again each time it is used (a disk, a user or another
//! tool may have changed it): one that does not match its digest is removed
//! and fetched again, or, when it cannot be, the error names the cache file.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};

use crate::digest::{digest_reader, Digest};
use crate::error::{IoContext, Result};
use crate::layout::{BlobSource, Image, Layout, LayoutPlan, RemoteBlob};
use crate::output::AtomicFile;
use crate::registry::{download_blob, Outcome, Progress, Registries};

/// A content cache directory.
pub struct Cache {
    dir: Utf8PathBuf,
}

impl Cache {
    /// The cache at `dir` (created on first write).
    pub fn new(dir: &Utf8Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    /// Where blob `d` is (or would be) cached.
    pub fn path(&self, d: &Digest) -> Utf8PathBuf {
        self.dir.join("blobs").join(d.algorithm()).join(d.hex())
    }

    /// The cached file for `digest`, fetching it from where it lives first
    /// when it is not cached (or cached with the wrong size).
    pub fn get(
        &self,
        regs: &Registries,
        digest: &Digest,
        at: &RemoteBlob,
        progress: &dyn Progress,
    ) -> Result<(Utf8PathBuf, Outcome)> {
        let path = self.path(digest);
        let mut stale: Option<String> = None;
        if let Ok(m) = fs::metadata(&path) {
            if m.is_file() {
                let problem = if m.len() != at.size {
                    Some(format!("holds {} bytes, not {}", m.len(), at.size))
                } else {
                    let f = fs::File::open(&path).io_context(|| format!("reading {path}"))?;
                    let (got, _) = digest_reader(f).io_context(|| format!("reading {path}"))?;
                    (got != *digest).then(|| format!("digest mismatch: its bytes hash to {got}"))
                };
                let Some(problem) = problem else {
                    progress.done(digest, at.size, Outcome::Cached, 0);
                    return Ok((path, Outcome::Cached));
                };
                // Why remove it: a wrong file must never be used, nor kept
                // where the next run would find it again.
                fs::remove_file(&path).io_context(|| format!("removing {path}"))?;
                let problem = format!("cache file {path}: {problem} (removed)");
                progress.retry(digest, &format!("{problem}; fetching it again"));
                stale = Some(problem);
            }
        }
        let parent = path.parent().expect("has parent");
        fs::create_dir_all(parent).io_context(|| format!("creating cache {parent}"))?;
        let fetch = || -> Result<u64> {
            let client = regs.client(&at.registry, at.plain_http)?;
            let (mut f, tmp) = AtomicFile::create(&path)?;
            let n = download_blob(
                &client,
                &at.repository,
                digest,
                at.size,
                &mut f,
                &path,
                progress,
            )?;
            tmp.commit(f)?;
            Ok(n)
        };
        let n = fetch().map_err(|e| {
            let e = e.context(format!(
                "blob {digest} lives at {}/{} and could not be fetched",
                at.registry, at.repository
            ));
            match &stale {
                Some(problem) => e.context(problem),
                None => e,
            }
        })?;
        progress.done(digest, at.size, Outcome::Downloaded, n);
        Ok((path, Outcome::Downloaded))
    }

    /// Replace every remote blob of `plan` by its cached file, fetching what
    /// is missing.
    pub fn materialize(
        &self,
        plan: &mut LayoutPlan,
        regs: &Registries,
        progress: &dyn Progress,
    ) -> Result<()> {
        for (size, src) in plan.blobs.values_mut() {
            if let BlobSource::Remote { digest, at } = src {
                let (path, _) = self.get(regs, digest, at, progress)?;
                *size = at.size;
                *src = BlobSource::File(path);
            }
        }
        Ok(())
    }

    /// Fetch every remote layer of `image` into the cache and tell `layout`
    /// where their bytes are now (see [`Layout::readable_blob`]): what reads
    /// layers (an SBOM's inventory) then reads them from here.
    pub fn fetch_layers(
        &self,
        layout: &mut Layout,
        image: &Image,
        regs: &Registries,
        progress: &dyn Progress,
    ) -> Result<()> {
        for desc in &image.manifest.layers {
            if let Some(BlobSource::Remote { digest, at }) = layout.blob(&desc.digest) {
                let (path, _) = self.get(regs, &digest, &at, progress)?;
                layout.set_fetched(digest, path);
            }
        }
        Ok(())
    }
}
