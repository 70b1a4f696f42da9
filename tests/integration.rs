//! Integration tests: they run the real `strata` binary.
//!
//! One test binary (`autotests = false`) with a module per topic; helpers in
//! `util.rs`. Tests that need external consumers (skopeo, umoci,
//! oci-image-tool) are installed by `.ci/run`; with `STRATA_REQUIRE_TOOLS=1`
//! (set by `.ci/run`) a missing tool is a failure, otherwise a skip.
mod util;

mod attach;
mod attested;
mod audit;
mod consumers;
mod docker_archive;
mod engines;
mod errors;
mod foreign;
mod golden;
mod image;
mod image_spec;
mod layer;
mod library;
mod linked_blobs;
mod nix_layers;
mod proxy;
mod registry;
mod rootfs;
mod sbom;
