//! Loading into podman, which has no daemon: through its binary.
//!
//! `podman load` refuses an archive that leaves out layer blobs (podman 4.3:
//! "Some layer tarfiles are missing in the tarball"), but `podman pull
//! oci:DIR` of an OCI layout without the blobs of layers podman's storage
//! already holds works: containers/image reuses the stored layer and never
//! opens the blob. So strata writes such a layout into a private directory
//! (blobs hard-linked from the image where the filesystem allows, else
//! copied), pulls it, gives the image its tags, removes the name podman gave
//! it after the directory, and removes the directory. The layout must be on
//! the machine where podman runs (podman is always local).
//!
//! Invariants: the directory's name is lowercase (podman names the image
//! after the path, and names must be lowercase); it is removed on every path
//! out, and by the CLI's signal handler; podman's output is bounded by
//! [`crate::json`]'s limits before it is parsed.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;

use crate::descriptor::{Index, ANNOTATION_REF_NAME};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::json;
use crate::layout::{place_blob, BlobSource, OCI_LAYOUT_FILE};
use crate::output;

use super::{held_prefix, load_with_retry, LoadImage, LoadReport};

/// The reference the temporary layout names its one image by.
const REF: &str = "strata-load";

/// podman, run as `program`.
pub struct Podman {
    program: Utf8PathBuf,
}

/// The temporary layout directory; removed on drop.
struct TempLayout(Utf8PathBuf);

impl Drop for TempLayout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
        output::forget(&self.0);
    }
}

impl Podman {
    /// podman run as `program` (e.g. `podman`, found on PATH).
    pub fn new(program: &Utf8Path) -> Podman {
        Podman {
            program: program.to_path_buf(),
        }
    }

    /// How errors name this engine.
    pub fn name(&self) -> String {
        format!("podman ({})", self.program)
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Remote, format!("{}: {what}", self.name()))
    }

    /// Run podman with `args`; its stdout (at most the JSON limit).
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    self.err("not found (is podman installed and on PATH?)")
                } else {
                    self.err(format!("cannot run: {}", crate::error::describe_io(&e)))
                }
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            let msg: String = last
                .trim()
                .trim_start_matches("Error: ")
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(1000)
                .collect();
            return Err(self.err(format!("`podman {}` failed: {msg}", args[0])));
        }
        if out.stdout.len() > json::MAX_JSON_BYTES {
            return Err(self.err(format!("`podman {}`: output too large", args[0])));
        }
        Ok(out.stdout)
    }

    /// The chain IDs podman holds that matter for `img`: those of the images
    /// already named by its tags (a reload: the previous build) when they
    /// hold all but the top layer, else those of every image.
    pub fn held_chain_ids_for(&self, img: &LoadImage) -> Result<BTreeSet<Digest>> {
        if !img.tags.is_empty() {
            let names: Vec<String> = img.tags.iter().map(|t| docker_name(t)).collect();
            let mut args = vec!["image", "inspect"];
            args.extend(names.iter().map(String::as_str));
            // A name podman lacks fails the inspect: then ask about every image.
            if let Ok(out) = self.run(&args) {
                let held = self.chains_of(&out)?;
                if held_prefix(&img.layers, &held) + 1 >= img.layers.len() {
                    return Ok(held);
                }
            }
        }
        self.held_chain_ids()
    }

    /// The chain IDs of every image podman's storage holds.
    pub fn held_chain_ids(&self) -> Result<BTreeSet<Digest>> {
        let ids = self.run(&["images", "--all", "--quiet", "--no-trunc"])?;
        let ids = String::from_utf8_lossy(&ids);
        let ids: BTreeSet<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut args = vec!["image", "inspect"];
        args.extend(ids.iter());
        let out = self.run(&args)?;
        self.chains_of(&out)
    }

    /// The chain IDs of the images in `podman image inspect` output.
    fn chains_of(&self, out: &[u8]) -> Result<BTreeSet<Digest>> {
        let v: Value = json::parse(
            out,
            &format!("{}: `podman image inspect` output", self.name()),
        )?;
        let mut held = BTreeSet::new();
        for img in v.as_array().into_iter().flatten() {
            let diff_ids: Vec<Digest> = img
                .pointer("/RootFS/Layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().and_then(|s| Digest::parse(s).ok()))
                .collect();
            held.extend(super::chain_ids(&diff_ids));
        }
        Ok(held)
    }

    /// Load `img` through a layout under `tmp`, leaving out the layers podman
    /// holds; once more with every layer if podman lost one meanwhile.
    /// `prepare(img, skip)` runs before each attempt (e.g. to fetch the
    /// layers from `skip` up that are only in a registry).
    pub fn load(
        &self,
        img: &mut LoadImage,
        held: &BTreeSet<Digest>,
        tmp: &Utf8Path,
        prepare: &mut dyn FnMut(&mut LoadImage, usize) -> Result<()>,
    ) -> Result<LoadReport> {
        load_with_retry(img, held, prepare, &|img, skip| {
            self.load_once(img, skip, tmp)
        })
    }

    fn write_layout(&self, img: &LoadImage, skip: usize, dir: &Utf8Path) -> Result<u64> {
        let ctx = || format!("writing {dir}");
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).io_context(ctx)?;
        fs::write(dir.join("oci-layout"), OCI_LAYOUT_FILE).io_context(ctx)?;
        let mut desc = img.manifest_desc.clone();
        desc.annotations.clear();
        desc.annotations
            .insert(ANNOTATION_REF_NAME.into(), REF.into());
        fs::write(
            dir.join("index.json"),
            json::to_canonical(&Index::new(vec![desc])),
        )
        .io_context(ctx)?;
        fs::write(
            blobs.join(img.manifest_desc.digest.hex()),
            &img.manifest_bytes,
        )
        .io_context(ctx)?;
        fs::write(blobs.join(img.config_digest.hex()), &img.config_bytes).io_context(ctx)?;
        let mut placed = 0;
        for l in &img.layers[skip.min(img.layers.len())..] {
            let to = blobs.join(l.desc.digest.hex());
            if to.exists() {
                continue;
            }
            if let BlobSource::Remote { digest, at } = &l.source {
                return Err(crate::layout::remote_error(digest, at));
            }
            place_blob(&l.source, l.desc.size, &to)
                .map_err(|e| e.context(format!("layer {}", l.desc.digest)))?;
            placed += l.desc.size;
        }
        Ok(placed + (img.manifest_bytes.len() + img.config_bytes.len()) as u64)
    }

    fn load_once(&self, img: &LoadImage, skip: usize, tmp: &Utf8Path) -> Result<LoadReport> {
        // Why pid and config digest: lowercase, and unique among concurrent loads.
        let dir = tmp.join(format!(
            "strata-load-{}-{}",
            std::process::id(),
            &img.config_digest.hex()[..16]
        ));
        let _ = fs::remove_dir_all(&dir);
        output::remove_on_signal(&dir);
        let guard = TempLayout(dir.clone());
        let sent = self.write_layout(img, skip, &dir)?;
        let out = self.run(&["pull", "--quiet", &format!("oci:{dir}:{REF}")])?;
        let got = String::from_utf8_lossy(&out).trim().to_string();
        let id = img.config_digest;
        if got.trim_start_matches("sha256:") != id.hex() {
            return Err(self.err(format!(
                "pull gave image {:?}, expected {id}",
                got.chars().take(100).collect::<String>()
            )));
        }
        // Its tags, then off with the name podman gave it after the
        // directory. (The layers need no check: the image ID is the config
        // digest, and the config names every diff ID podman verified.)
        let hex = id.hex();
        if !img.tags.is_empty() {
            let names: Vec<String> = img.tags.iter().map(|t| docker_name(t)).collect();
            let mut args = vec!["tag", hex.as_str()];
            args.extend(names.iter().map(String::as_str));
            self.run(&args)?;
        }
        // Best effort: a podman that named it otherwise keeps that name.
        let _ = self.run(&["untag", &hex, &format!("localhost{dir}:latest")]);
        drop(guard);
        Ok(img.report(id, skip, sent))
    }
}

/// A tag as Docker (and `podman load` of a docker-archive) names it:
/// `app:1` is `docker.io/library/app:1`, `team/app:1` is
/// `docker.io/team/app:1`; a name with a registry stays as it is.
/// Why: `podman tag` would put a bare name under `localhost/` instead.
pub fn docker_name(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or("");
    let has_registry =
        tag.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        tag.to_string()
    } else if tag.contains('/') {
        format!("docker.io/{tag}")
    } else {
        format!("docker.io/library/{tag}")
    }
}

#[cfg(test)]
mod tests {
    use super::docker_name;

    #[test]
    fn names_as_docker_gives_them() {
        assert_eq!(docker_name("app:1"), "docker.io/library/app:1");
        assert_eq!(docker_name("team/app:1"), "docker.io/team/app:1");
        assert_eq!(docker_name("localhost/app:1"), "localhost/app:1");
        assert_eq!(docker_name("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app:1");
        assert_eq!(docker_name("quay.io/x/app:1"), "quay.io/x/app:1");
    }
}
