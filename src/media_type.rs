//! Media types: every OCI and Docker media-type string strata reads or
//! writes, and the small questions asked of them (a manifest or an index? a
//! layer? compressed how? Docker or OCI?).
//!
//! Invariants: this is the only module that spells a media type; every other
//! module names these constants or asks these predicates, so a type strata
//! accepts in one place it accepts everywhere. strata *writes* only the OCI
//! types; the Docker ones are *read* (base images, registries, legacy
//! docker-archives) and mapped onto their OCI equivalents.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, plain tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, plain tar.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker layer, gzip-compressed tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The manifest media types a pull accepts (an HTTP `Accept` value), most
/// specific first: OCI index, OCI manifest, Docker list, Docker manifest.
/// (A literal because `concat!` takes no constants; a test checks it
/// against them.)
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// True for the media types of a single-image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for the media types of an index / manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// True for the media types of an image config.
pub fn is_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// True for a plain (uncompressed) tar layer, OCI or Docker.
pub fn is_plain_layer(media_type: &str) -> bool {
    media_type == OCI_LAYER || media_type == DOCKER_LAYER
}

/// True for a gzip-compressed tar layer, OCI or Docker.
pub fn is_gzip_layer(media_type: &str) -> bool {
    media_type == OCI_LAYER_GZIP || media_type == DOCKER_LAYER_GZIP
}

/// True for a zstd-compressed tar layer (OCI only: Docker has none).
pub fn is_zstd_layer(media_type: &str) -> bool {
    media_type == OCI_LAYER_ZSTD
}

/// True for every layer media type strata can read.
pub fn is_layer(media_type: &str) -> bool {
    is_plain_layer(media_type) || is_gzip_layer(media_type) || is_zstd_layer(media_type)
}

/// True for a Docker (schema 2) media type, false for OCI and unknown ones.
pub fn is_docker(media_type: &str) -> bool {
    [
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_CONFIG,
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
    ]
    .contains(&media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists_the_four_manifest_types() {
        let want = [
            OCI_INDEX,
            OCI_MANIFEST,
            DOCKER_MANIFEST_LIST,
            DOCKER_MANIFEST,
        ]
        .join(", ");
        assert_eq!(MANIFEST_ACCEPT, want);
        for t in MANIFEST_ACCEPT.split(", ") {
            assert!(is_index(t) || is_manifest(t), "{t}");
        }
    }

    #[test]
    fn predicates() {
        for t in [OCI_LAYER, DOCKER_LAYER] {
            assert!(is_plain_layer(t) && is_layer(t) && !is_gzip_layer(t));
        }
        for t in [OCI_LAYER_GZIP, DOCKER_LAYER_GZIP] {
            assert!(is_gzip_layer(t) && is_layer(t) && !is_zstd_layer(t));
        }
        assert!(is_zstd_layer(OCI_LAYER_ZSTD) && is_layer(OCI_LAYER_ZSTD));
        for t in [OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, "text/plain"] {
            assert!(!is_layer(t) && !is_docker(t), "{t}");
        }
        assert!(is_config(OCI_CONFIG) && is_config(DOCKER_CONFIG));
        assert!(is_docker(DOCKER_LAYER_GZIP) && is_docker(DOCKER_MANIFEST_LIST));
    }
}
