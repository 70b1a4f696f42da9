//! What a layer is built from — host directories and layer specs — and the
//! verb that builds a layer from them: walk, read specs, normalize, link
//! identical files, write the blob.
//!
//! Invariants: the entries, and so the bytes, depend only on the inputs and
//! the options, never on the number of threads or the order directories are
//! listed in; a directory's entries come first, in input order, then every
//! spec's, in spec order, and [`super::entry::normalize`] sorts them all.

use std::io::Write;

use camino::{Utf8Path, Utf8PathBuf};

use super::dedupe::link_identical;
use super::dir::walk_tree;
use super::dir_options::DirOptions;
use super::entry::{normalize, Entry, NormalizeOptions};
use super::path::LayerPath;
use super::{write_layer, write_layer_file, LayerDescriptor, LayerOptions};
use crate::error::{Error, Result};
use crate::spec::LayerSpec;

/// A host directory whose contents go into a layer, at its root or under
/// `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInput {
    /// The host directory.
    pub dir: Utf8PathBuf,
    /// Where its contents go in the layer (`None`: the layer root).
    pub prefix: Option<LayerPath>,
}

impl DirInput {
    /// Parse `DIR` or `DIR=/prefix` (the prefix absolute, as in the image).
    /// A `=` not followed by `/` is part of the directory's name.
    pub fn parse(s: &str) -> Result<DirInput> {
        if let Some((dir, prefix)) = s.rsplit_once('=') {
            if prefix.starts_with('/') && !dir.is_empty() {
                let p = prefix.trim_start_matches('/');
                let prefix = if p.is_empty() {
                    None
                } else {
                    Some(LayerPath::parse(p).map_err(|e| e.context(format!("input {s}")))?)
                };
                return Ok(DirInput {
                    dir: Utf8PathBuf::from(dir),
                    prefix,
                });
            }
        }
        Ok(DirInput {
            dir: Utf8PathBuf::from(s),
            prefix: None,
        })
    }
}

/// Everything one layer is made of.
#[derive(Debug, Clone, Default)]
pub struct LayerInputs {
    /// Directories, walked with `dir_options`.
    pub dirs: Vec<DirInput>,
    /// Layer spec files (JSON, see [`crate::spec`]); each says its own
    /// attribute policy.
    pub specs: Vec<Utf8PathBuf>,
    /// How the directories' host metadata becomes entry attributes.
    pub dir_options: DirOptions,
}

/// How to build a layer from [`LayerInputs`].
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Compression, mtime and threads of the blob.
    pub layer: LayerOptions,
    /// Store identical files as hard links to the first (the default of
    /// `strata layer`).
    pub dedupe: bool,
}

impl LayerInputs {
    /// The layer's entries: walked, read from specs, normalized (sorted,
    /// checked, parents added unless a spec says `"parents": false`) and,
    /// with `dedupe`, identical files linked. `threads` bounds the walkers
    /// and hashers; the entries are the same for any number.
    pub fn entries(&self, threads: usize, dedupe: bool) -> Result<Vec<Entry>> {
        if self.dirs.is_empty() && self.specs.is_empty() {
            return Err(Error::invalid(
                "no inputs: a layer needs directories and/or layer specs",
            ));
        }
        let mut entries = Vec::new();
        let mut nopts = NormalizeOptions::default();
        for input in &self.dirs {
            let mut walked = walk_tree(
                &input.dir,
                input.prefix.as_ref(),
                threads,
                &self.dir_options,
            )?;
            // Why not extend: one tree of 100,000 files is ~15 MB of entries;
            // taking the vector keeps a single copy.
            if entries.is_empty() {
                entries = walked;
            } else {
                entries.append(&mut walked);
            }
        }
        for s in &self.specs {
            let spec = LayerSpec::read(s)?;
            nopts.parents &= spec.normalize_options().parents;
            entries.extend(spec.entries(s.as_str(), threads)?);
        }
        let mut entries = normalize(entries, nopts)?;
        if dedupe {
            link_identical(&mut entries, threads)?;
        }
        Ok(entries)
    }
}

/// Build the layer of `inputs` as a blob file at `dest` (written to a
/// temporary beside it and renamed) and return its descriptor.
pub fn build_layer_file(
    inputs: &LayerInputs,
    dest: &Utf8Path,
    opts: &BuildOptions,
) -> Result<LayerDescriptor> {
    let entries = inputs.entries(opts.layer.threads, opts.dedupe)?;
    write_layer_file(&entries, dest, &opts.layer)
}

/// Build the layer of `inputs` into any writer; `out_name` names it in
/// errors. Returns the writer (flushed) and the layer's descriptor.
pub fn build_layer<W: Write + Send + 'static>(
    inputs: &LayerInputs,
    out: W,
    out_name: &str,
    opts: &BuildOptions,
) -> Result<(W, LayerDescriptor)> {
    let entries = inputs.entries(opts.layer.threads, opts.dedupe)?;
    write_layer(&entries, out, &opts.layer, out_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::Compression;

    #[test]
    fn dir_input_prefix_only_after_an_equals_slash() {
        let d = DirInput::parse("out=/opt/app").unwrap();
        assert_eq!(d.dir, "out");
        assert_eq!(d.prefix.unwrap().as_str(), "opt/app");
        assert_eq!(DirInput::parse("a=b").unwrap().dir, "a=b");
        assert_eq!(DirInput::parse("root=/").unwrap().prefix, None);
        assert!(DirInput::parse("x=/../etc").is_err());
    }

    #[test]
    fn a_file_and_a_writer_get_the_same_layer() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        std::fs::create_dir(root.join("tree")).unwrap();
        std::fs::write(root.join("tree/a"), b"same\n").unwrap();
        std::fs::write(root.join("tree/b"), b"same\n").unwrap();
        let inputs = LayerInputs {
            dirs: vec![DirInput::parse(root.join("tree=/x").as_str()).unwrap()],
            ..LayerInputs::default()
        };
        let opts = BuildOptions {
            layer: LayerOptions {
                compression: Compression::gzip(),
                mtime: 0,
                threads: 2,
            },
            dedupe: true,
        };
        let from_file = build_layer_file(&inputs, &root.join("l.tgz"), &opts).unwrap();
        let (bytes, from_writer) = build_layer(&inputs, Vec::new(), "memory", &opts).unwrap();
        assert_eq!(from_file, from_writer);
        assert_eq!(std::fs::read(root.join("l.tgz")).unwrap(), bytes);
        let none = LayerInputs::default().entries(1, true).unwrap_err();
        assert!(none.to_string().starts_with("no inputs"), "{none}");
    }
}
