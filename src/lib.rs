//! strata: deterministic OCI layers and images.
//!
//! The library holds the whole model; the CLI (`src/main.rs`, `src/cli.rs`)
//! only parses flags and environment and calls in here. Invariants kept by
//! every module:
//! - no output byte depends on the clock, the host's uid/gid/umask/locale/TZ/
//!   hostname, readdir order, inode numbers, hash-map order, thread count or
//!   CPU features;
//! - the library never prints and never reads the clock or the environment;
//! - every output is written to a temporary file beside its destination and
//!   renamed into place, so a failure leaves nothing half-written.
#![deny(missing_docs)]

pub mod digest;
pub mod error;
pub mod glob;
pub mod json;
pub mod layer;
pub mod output;
pub(crate) mod parallel;
pub mod spec;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub mod archive;
pub mod descriptor;
pub mod image;
pub mod image_spec;
pub mod layout;
pub mod nix;
pub mod registry;
pub mod verify;
// Reproducibility audits (issue #6).
pub mod diff;
pub mod normalize;
// Legacy docker-archives and compressed archives (issue #19).
pub mod docker_archive;
pub mod tar_members;
// Incremental loads into container engines (issue #22).
pub mod engine;
