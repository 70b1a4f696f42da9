//! A software package found in an image: what an SBOM lists.
//!
//! A [`Package`] is a value: where it came from (the dpkg database or a Nix
//! store path), the layer that introduced it, and its package URL (purl).
//! Invariants: every field is derived from the image bytes alone, and
//! [`Package::key`] is unique within one inventory, so sorting by it gives
//! one order on every machine.

/// Which package database a package was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PackageKind {
    /// A Debian package recorded in `var/lib/dpkg/status` (or `status.d/`).
    Deb,
    /// A top-level Nix store path (`nix/store/<hash>-<name>`).
    Nix,
    /// A purl the build declared for a layer (see [`super::declared`]).
    Declared,
}

impl PackageKind {
    /// `deb` or `nix`: the purl type.
    pub fn name(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Nix => "nix",
            PackageKind::Declared => "declared",
        }
    }
}

/// One package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The database it came from.
    pub kind: PackageKind,
    /// Package name (dpkg `Package`, or the name part of a store path).
    pub name: String,
    /// Version (dpkg `Version`, or the version part of a store path), if any.
    pub version: Option<String>,
    /// dpkg `Architecture`.
    pub arch: Option<String>,
    /// dpkg `Source` (the source package, possibly with its version).
    pub source: Option<String>,
    /// A `License` field, when the database records one (dpkg does not).
    pub license: Option<String>,
    /// The full store path (`/nix/store/<hash>-<name>`), Nix only.
    pub store_path: Option<String>,
    /// The 32-character store hash, Nix only.
    pub store_hash: Option<String>,
    /// The purl as declared (declared packages only; it is used verbatim).
    pub purl: Option<String>,
    /// Index of the layer that introduced the package (bottom layer is 0).
    pub layer: usize,
    /// The file in the image the package was read from.
    pub evidence: String,
}

impl Package {
    /// The package URL: `pkg:deb/debian/NAME@VERSION?arch=ARCH` or
    /// `pkg:nix/NAME@VERSION`.
    pub fn purl(&self) -> String {
        if let Some(p) = &self.purl {
            return p.clone();
        }
        let mut s = match self.kind {
            PackageKind::Deb => format!("pkg:deb/debian/{}", purl_encode(&self.name)),
            PackageKind::Nix | PackageKind::Declared => {
                format!("pkg:nix/{}", purl_encode(&self.name))
            }
        };
        if let Some(v) = &self.version {
            s.push('@');
            s.push_str(&purl_encode(v));
        }
        if let Some(a) = &self.arch {
            s.push_str("?arch=");
            s.push_str(&purl_encode(a));
        }
        s
    }

    /// A key unique within an inventory: the store path for Nix, the
    /// database, name and architecture for dpkg, the layer and purl for a
    /// declared package.
    pub fn key(&self) -> String {
        if let (PackageKind::Declared, Some(p)) = (self.kind, &self.purl) {
            // Why the layer, zero-padded: one purl may be declared for two layers; sorted order.
            return format!("declared:{:04}:{p}", self.layer);
        }
        match (&self.store_path, self.kind) {
            (Some(p), _) => format!("nix:{p}"),
            (None, k) => format!(
                "{}:{}:{}",
                k.name(),
                self.name,
                self.arch.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters, as the purl
/// specification asks of names, versions and qualifier values.
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> Package {
        Package {
            kind: PackageKind::Deb,
            name: name.into(),
            version: Some(version.into()),
            arch: Some("amd64".into()),
            source: None,
            license: None,
            store_path: None,
            store_hash: None,
            purl: None,
            layer: 0,
            evidence: "var/lib/dpkg/status".into(),
        }
    }

    #[test]
    fn purls_encode_plus_and_epoch_colons() {
        assert_eq!(
            deb("libstdc++6", "1:12.2.0-14").purl(),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14?arch=amd64"
        );
        assert_eq!(
            deb("bash", "5.2.15-2+b2").purl(),
            "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64"
        );
    }
}
