//! The compression choice: none, gzip or zstd with a level, the OCI media
//! type each is written as, and which media types (OCI or Docker) name it.
//!
//! Invariants: levels are checked here, once, so every backend may assume a
//! valid level; a blob's media type is a function of the choice only (never
//! of the level), so a level change never changes a manifest's media types.

use crate::error::{Error, Result};
use crate::media_type::{
    is_gzip_layer, is_plain_layer, is_zstd_layer, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// Block-parallel gzip (libdeflate), level 1–12.
    Gzip {
        /// libdeflate level.
        level: u32,
    },
    /// Multi-threaded zstd, level 1–19.
    Zstd {
        /// zstd level.
        level: i32,
    },
}

impl Compression {
    /// Default gzip level. Why 5: on /usr/lib/x86_64-linux-gnu (690 MB) with
    /// 2 cores it writes 0.993x the bytes of `gzip -6` at 7.1x the speed of
    /// `tar | gzip -n` and 3.1x `tar | pigz -n`; level 6 is 1.3% smaller but
    /// 16% slower (BENCHMARKS.md).
    pub const DEFAULT_GZIP_LEVEL: u32 = 5;
    /// Default zstd level. Why 3: zstd's own default; smaller than `gzip -6`
    /// and an order of magnitude faster.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

    /// gzip at the default level.
    pub fn gzip() -> Self {
        Compression::Gzip {
            level: Self::DEFAULT_GZIP_LEVEL,
        }
    }

    /// zstd at the default level.
    pub fn zstd() -> Self {
        Compression::Zstd {
            level: Self::DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The OCI layer media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER,
            Compression::Gzip { .. } => OCI_LAYER_GZIP,
            Compression::Zstd { .. } => OCI_LAYER_ZSTD,
        }
    }

    /// The compression a layer media type names (OCI or Docker), default level.
    pub fn from_media_type(mt: &str) -> Option<Self> {
        if is_plain_layer(mt) {
            Some(Compression::None)
        } else if is_gzip_layer(mt) {
            Some(Self::gzip())
        } else if is_zstd_layer(mt) {
            Some(Self::zstd())
        } else {
            None
        }
    }

    /// The compression named `name` (`gzip`, `zstd` or `none`) at `level`
    /// (the default level when `None`).
    pub fn parse(name: &str, level: Option<i32>) -> Result<Self> {
        match (name, level) {
            ("none", None) => Ok(Compression::None),
            ("none", Some(l)) => Err(Error::invalid(format!(
                "compression none takes no level ({l} given)"
            ))),
            ("gzip", None) => Ok(Self::gzip()),
            ("gzip", Some(l)) if (1..=12).contains(&l) => Ok(Compression::Gzip { level: l as u32 }),
            ("gzip", Some(l)) => Err(Error::invalid(format!(
                "gzip level {l} out of range 1..=12"
            ))),
            ("zstd", None) => Ok(Self::zstd()),
            ("zstd", Some(l)) if (1..=19).contains(&l) => Ok(Compression::Zstd { level: l }),
            ("zstd", Some(l)) => Err(Error::invalid(format!(
                "zstd level {l} out of range 1..=19"
            ))),
            (other, _) => Err(Error::invalid(format!(
                "compression {other:?} unknown: expected gzip, zstd or none"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::{DOCKER_LAYER, DOCKER_LAYER_GZIP};

    #[test]
    fn parse_levels() {
        assert_eq!(
            Compression::parse("gzip", Some(9)).unwrap(),
            Compression::Gzip { level: 9 }
        );
        assert!(Compression::parse("gzip", Some(13)).is_err());
        assert!(Compression::parse("zstd", Some(0)).is_err());
        assert!(Compression::parse("none", Some(1)).is_err());
        assert!(Compression::parse("lz4", None).is_err());
    }

    /// Errors speak of the data, never of a command-line flag.
    #[test]
    fn errors_name_the_value_not_a_flag() {
        for (name, level, want) in [
            ("zstd", Some(30), "zstd level 30 out of range 1..=19"),
            ("gzip", Some(0), "gzip level 0 out of range 1..=12"),
            ("none", Some(3), "compression none takes no level (3 given)"),
            (
                "lz4",
                None,
                r#"compression "lz4" unknown: expected gzip, zstd or none"#,
            ),
        ] {
            let e = Compression::parse(name, level).unwrap_err().to_string();
            assert_eq!(e, want);
            assert!(!e.contains("--"), "{e}");
        }
    }

    #[test]
    fn media_types_round_trip() {
        for c in [Compression::None, Compression::gzip(), Compression::zstd()] {
            assert_eq!(Compression::from_media_type(c.media_type()), Some(c));
        }
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::gzip())
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
    }
}
