//! strata: deterministic OCI layers and images — same inputs, same digest,
//! on any machine, any day.
//!
//! strata makes container images without a container runtime or a
//! Dockerfile: it writes **layers** (tar blobs, gzip/zstd/plain) from host
//! directories, declarative layer specs or entries in memory, **composes**
//! pre-built layers (optionally on a base image) into an OCI image, and
//! writes it as an OCI layout directory, an `oci-archive` or a
//! `docker-archive` that `docker load` takes. The `strata` binary is a thin
//! command line over this library; build systems (Bazel rules, a Nix
//! wrapper) call the binary, Rust programs call the library.
//!
//! # Determinism
//!
//! Every output is a function of its inputs only. The library keeps these
//! invariants in every module:
//! - no output byte depends on the clock, the host's uid/gid/umask/locale/
//!   TZ/hostname, readdir order, inode numbers, hash-map order, thread count
//!   or CPU features: entries are sorted in one canonical order, owners are
//!   0:0 unless declared, modes are 0644/0755 unless declared, every mtime is
//!   the caller's (`SOURCE_DATE_EPOCH`, or 0), JSON is canonical (sorted
//!   keys, compact);
//! - the library never prints and never reads the clock or the environment:
//!   times, thread counts and credentials are the caller's to pass;
//! - every output is written to a temporary file beside its destination and
//!   renamed into place, so a failure leaves nothing half-written;
//! - untrusted bytes (tars, JSON, archives) are read through hardened,
//!   bounded readers; errors name the file, blob, layer or entry and the
//!   problem ([`Error`]).
//!
//! # The verbs
//!
//! | To… | use |
//! |---|---|
//! | build a layer from directories, specs or in-memory entries | [`LayerBuilder`] ([`tree`](LayerBuilder::tree), [`spec`](LayerBuilder::spec), [`file`](LayerBuilder::file), [`symlink`](LayerBuilder::symlink), [`entry`](LayerBuilder::entry)) |
//! | … into any writer, or into a file | [`LayerBuilder::write`], [`LayerBuilder::write_file`]; for ready entries [`write_layer`], [`write_layer_file`] |
//! | build a layer from what `strata layer` takes (`DIR[=/prefix]` inputs, spec files, directory options) | [`build_layer_file`], [`build_layer`] with [`LayerInputs`] and [`BuildOptions`] |
//! | describe (and check) a layer file someone else wrote | [`describe_layer_file`], [`NewLayer::from_file`] |
//! | compose an image: base + layers + config changes | [`compose`] with [`NewLayer`]s and [`ImageOptions`] |
//! | write it as an OCI layout, oci-archive or docker-archive | [`write_image`] with a [`Format`] |
//! | compose an index of images (multi-platform) and write it | [`compose_index`] with [`IndexOptions`], then [`ComposedIndex::write`] |
//! | read any image: layout directory, oci-archive, docker-archive (also legacy and compressed) | [`Layout::open`], then [`Layout::image`] |
//! | summarize an image or index (what `strata inspect` prints) | [`summary::summarize`], [`summary::digests`] |
//! | verify an image from `index.json` down | [`verify::verify`], [`verify::verify_with`] |
//! | explain why two images differ; rewrite another tool's layers canonically | [`diff`], [`normalize`] |
//! | describe what an image holds: SBOM (SPDX 2.3, CycloneDX 1.6), SLSA provenance | [`sbom::describe`] then [`sbom::spdx::write`] / [`sbom::cyclonedx::write`]; [`provenance::statement`] |
//! | attach files (OCI 1.1 referrers), sign, attest, check signatures | [`referrer::artifact`], [`referrer::add_to_layout`]; [`signature::sign`], [`envelope::attest`] with a [`signing_key::SigningKey`]; [`signature::verify_attached`] |
//! | push to and pull from a registry, attachments included (feature `registry`) | `registry::push::push`, `registry::pull::pull`, `registry::referrers` |
//! | load into docker or podman, sending only missing layers (feature `engine`) | `engine` |
//! | split a Nix closure into layers | [`nix`], [`nix::layering::write_layering`] |
//!
//! # Example
//!
//! A layer built in memory, composed into an image, written as an OCI
//! layout; the digest is the same on every run and every machine:
//!
//! ```
//! use strata::{compose, write_image, Format, ImageOptions, LayerBuilder, LayerOptions, NewLayer};
//!
//! # fn main() -> strata::Result<()> {
//! // A layer from bytes in memory: no file on disk.
//! let mut layer = LayerBuilder::new();
//! layer
//!     .file("app/hello.txt", "hello from strata\n", 0o644)?
//!     .symlink("app/latest", "hello.txt")?;
//! let (blob, desc) = layer.write(Vec::new(), &LayerOptions::default())?;
//!
//! // An image of it: created at the epoch (or SOURCE_DATE_EPOCH), with a cmd.
//! let mut opts = ImageOptions::created_at(0);
//! opts.changes.cmd = Some(vec!["cat".into(), "/app/hello.txt".into()]);
//! opts.tag = Some("hello:1".into());
//! let image = compose(None, vec![NewLayer::from_blob(desc, blob)], &opts)?;
//!
//! // Written as an OCI layout directory.
//! let tmp = tempfile::tempdir().expect("a temporary directory");
//! let dest = camino::Utf8PathBuf::from_path_buf(tmp.path().join("hello.oci")).expect("UTF-8");
//! write_image(&image, Format::Oci, &dest, 0)?;
//!
//! assert_eq!(
//!     image.manifest.digest.to_string(),
//!     "sha256:ae0744ec10017d39dd48bc53ee8fedc397353feaf7ffbde6a6813dc6932afe7e"
//! );
//! // Reading it back gives the same image.
//! let read = strata::Layout::open(&dest)?.image(Some("1"), None)?;
//! assert_eq!(read.manifest_desc.digest, image.manifest.digest);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/package_layers.rs` does more: several layers built in
//! parallel from memory plus one from a directory, on an optional base image,
//! written as an OCI layout and a docker-archive
//! (`cargo run --example package_layers -- OUT_DIR`).
//!
//! # Features
//!
//! - `cli` (default): the `strata` binary (clap, signal handling); implies
//!   `registry` and `engine`.
//! - `registry`: the `registry` module, push and pull over HTTP(S) (ureq,
//!   rustls).
//! - `engine`: the `engine` module, loading images into docker and podman.
//!
//! A library user who only builds images depends on
//! `strata = { version = "0.1", default-features = false }` and compiles
//! neither clap nor an HTTP client.
//!
//! # The face and the internals
//!
//! The re-exports at the crate root are the face: the types and verbs above,
//! stable names to depend on. The modules hold them and the rest:
//! - the model a caller may use directly: [`layer`] (entries, paths,
//!   compression, the layer writer and reader), [`spec`] (the versioned layer
//!   spec JSON), [`image`], [`layout`], [`archive`], [`descriptor`],
//!   [`digest`], [`error`], [`index`], [`summary`], [`verify`], [`diff`],
//!   [`input`], [`normalize`], [`nix`], [`sbom`], [`provenance`],
//!   [`referrer`], [`signature`], [`envelope`], [`signing_key`],
//!   `registry`, `engine`;
//! - building blocks the `strata` binary uses, public for it and not meant
//!   as API: [`json`] (bounded parsing, canonical output), [`output`]
//!   (atomic files and signal cleanup), [`glob`] (`--exclude` patterns);
//!   [`media_type`] (every media type and its predicates) and [`limits`]
//!   (the bounds every reader enforces) are public for callers who need the
//!   same constants;
//! - internals, crate-private: the parallel map, the docker-archive reader
//!   and the compressed-archive member index (reached through
//!   [`Layout::open`]), blob sources and layout names (re-exported by
//!   [`layout`]), what marks an attachment (re-exported by [`referrer`]).
#![deny(missing_docs)]

pub mod digest;
pub mod error;
pub mod glob;
pub mod json;
pub mod layer;
pub mod limits;
pub mod media_type;
pub mod output;
pub(crate) mod parallel;
pub mod spec;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub mod archive;
pub(crate) mod blob_source;
pub mod descriptor;
pub mod image;
pub mod image_spec;
pub mod layout;
pub(crate) mod layout_names;
pub mod nix;
#[cfg(feature = "registry")]
pub mod registry;
pub mod verify;
// Reproducibility audits (issue #6).
pub mod diff;
pub mod input;
pub mod normalize;
// Legacy docker-archives and compressed archives (issue #19): read only
// through `layout::Layout::open`.
pub(crate) mod docker_archive;
pub(crate) mod tar_members;
// Incremental loads into container engines (issue #22).
#[cfg(feature = "engine")]
pub mod engine;
// Attachments: OCI 1.1 referrers, signatures, attestations (issue #24).
pub(crate) mod attachment;
pub mod envelope;
pub mod referrer;
pub mod signature;
pub mod signing_key;
// Constructors for composition inputs (issue #21: the library's face).
mod compose_inputs;

// The public face (issue #21): what a caller needs, by short names.
pub use archive::{write_image, write_tar, Format};
pub use descriptor::{Descriptor, Index, Manifest, Platform};
pub use image::{compose, Composed, ConfigChanges, ImageOptions, NewLayer};
pub use index::{compose_index, ComposedIndex, IndexOptions};
pub use layer::builder::LayerBuilder;
pub use layer::compress::Compression;
pub use layer::dir_options::DirOptions;
pub use layer::entry::{Content, Entry, EntryKind};
pub use layer::file::describe_layer_file;
pub use layer::inputs::{build_layer, build_layer_file, BuildOptions, DirInput, LayerInputs};
pub use layer::path::LayerPath;
pub use layer::{write_layer, write_layer_file, LayerDescriptor, LayerOptions};
pub use layout::{BlobSource, Image, Layout, LayoutPlan};
pub use spec::LayerSpec;
// Library verbs the CLI calls (issue #21).
pub mod index;
pub mod summary;
// Supply chain: SBOMs and provenance (issue #24).
pub mod attestation;
pub mod provenance;
pub mod sbom;
