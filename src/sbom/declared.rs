//! Packages a build declares for a layer (Bazel's `oci_layer(packages =
//! [...])`, `strata sbom --packages`): purls strata cannot find in the
//! layer's bytes (a statically linked binary, a vendored library), listed in
//! the SBOM under the layer they were declared for.
//!
//! Declarations are keyed by the layer's diff_id, so they follow the layer
//! into whatever image holds it. Invariants: every purl is checked
//! (`pkg:TYPE/…NAME[@VERSION][?…][#…]`, printable ASCII, bounded), each is
//! listed once per layer, and the order is the sorted order of
//! [`Declared`]'s maps, never the order of the files or flags.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::Digest;
use crate::error::{Error, Result};

use super::package::{Package, PackageKind};

/// Longest purl accepted.
pub const MAX_PURL_BYTES: usize = 1024;
/// Most purls declared for one image.
pub const MAX_DECLARED: usize = 10_000;

/// Declared purls by layer diff_id.
pub type Declared = BTreeMap<Digest, BTreeSet<String>>;

/// Check a package URL's shape: `pkg:`, a type of letters, digits, `.+-`
/// starting with a letter, `/`, a non-empty name; printable ASCII only.
pub fn check_purl(purl: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("purl {purl:?}: {why}")));
    if purl.len() > MAX_PURL_BYTES {
        return bad(&format!("longer than {MAX_PURL_BYTES} bytes"));
    }
    if !purl.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("not printable ASCII (percent-encode it)");
    }
    let Some(rest) = purl.strip_prefix("pkg:") else {
        return bad("does not start with pkg:");
    };
    let Some((ty, path)) = rest.split_once('/') else {
        return bad("expected pkg:TYPE/NAME");
    };
    let ty_ok = ty.starts_with(|c: char| c.is_ascii_alphabetic())
        && ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    if !ty_ok {
        return bad("its type is not letters, digits, '.', '+', '-'");
    }
    if name_version(path).0.is_empty() {
        return bad("no name");
    }
    Ok(())
}

/// The name (last path segment) and version of a purl's path part.
fn name_version(path: &str) -> (&str, Option<&str>) {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let (path, version) = match path.rsplit_once('@') {
        Some((p, v)) if !v.is_empty() => (p, Some(v)),
        _ => (path, None),
    };
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    (name, version)
}

/// Parse a purl list: one per line; blank lines and `#` comments skipped.
/// `what` names the file in errors.
pub fn parse_list(text: &str, what: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_purl(line).map_err(|e| e.context(format!("{what}: line {}", i + 1)))?;
        out.insert(line.to_string());
        if out.len() > MAX_DECLARED {
            return Err(Error::invalid(format!(
                "{what}: more than {MAX_DECLARED} packages"
            )));
        }
    }
    Ok(out)
}

/// Merge declarations (the same layer may be declared by several files).
pub fn merge(parts: Vec<(Digest, BTreeSet<String>)>) -> Result<Declared> {
    let mut out = Declared::new();
    let mut n = 0;
    for (diff_id, purls) in parts {
        n += purls.len();
        if n > MAX_DECLARED {
            return Err(Error::invalid(format!(
                "more than {MAX_DECLARED} declared packages"
            )));
        }
        out.entry(diff_id).or_default().extend(purls);
    }
    Ok(out)
}

/// The packages `declared` lists for the layers whose diff_ids are
/// `diff_ids` (bottom first). A declaration for a layer the image lacks is
/// an error: it would otherwise vanish from the SBOM unseen.
pub fn packages(declared: &Declared, diff_ids: &[Digest], what: &str) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for (diff_id, purls) in declared {
        let Some(layer) = diff_ids.iter().position(|d| d == diff_id) else {
            return Err(Error::invalid(format!(
                "{what}: packages declared for layer {diff_id}, which the image does not hold"
            )));
        };
        for purl in purls {
            let path = purl.split_once('/').map(|(_, p)| p).unwrap_or("");
            let (name, version) = name_version(path);
            out.push(Package {
                kind: PackageKind::Declared,
                name: name.to_string(),
                version: version.map(str::to_string),
                arch: None,
                source: None,
                license: None,
                store_path: None,
                store_hash: None,
                purl: Some(purl.clone()),
                layer,
                evidence: format!("declared by the build for layer {diff_id}"),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_checked() {
        for ok in [
            "pkg:generic/openssl@3.0.13",
            "pkg:golang/github.com/x/y@v1.2.3?type=module",
            "pkg:cargo/serde@1.0.0#sub",
            "pkg:npm/%40scope/name",
        ] {
            check_purl(ok).unwrap();
        }
        for bad in [
            "",
            "generic/openssl",
            "pkg:openssl",
            "pkg:1x/a",
            "pkg:generic/",
            "pkg:generic/a b",
            "pkg:generic/caf\u{e9}",
        ] {
            assert!(check_purl(bad).is_err(), "{bad}");
        }
        assert!(check_purl(&format!("pkg:generic/{}", "a".repeat(MAX_PURL_BYTES))).is_err());
    }

    #[test]
    fn lists_skip_comments_and_name_the_line() {
        let l = parse_list(
            "# vendored\npkg:generic/zlib@1.3\n\npkg:generic/zlib@1.3\n",
            "p",
        )
        .unwrap();
        assert_eq!(l.len(), 1);
        let e = parse_list("pkg:generic/a\nnot-a-purl\n", "p.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.txt: line 2") && e.contains("not-a-purl"),
            "{e}"
        );
    }

    #[test]
    fn packages_land_on_their_layer_with_name_and_version() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let purls = BTreeSet::from(["pkg:golang/github.com/x/y@v1.2.3?type=module".to_string()]);
        let d = merge(vec![(b, purls)]).unwrap();
        let p = packages(&d, &[a, b], "img").unwrap();
        assert_eq!((p[0].layer, p[0].name.as_str()), (1, "y"));
        assert_eq!(p[0].version.as_deref(), Some("v1.2.3"));
        assert_eq!(p[0].purl(), "pkg:golang/github.com/x/y@v1.2.3?type=module");
        let e = packages(&d, &[a], "img").unwrap_err().to_string();
        assert!(e.contains("does not hold"), "{e}");
    }
}
