//! Nix store path names (`<32-char hash>-<name>[-<version>]`) as packages.
//!
//! A top-level entry of `nix/store/` in an image is one store path: the
//! output of one derivation. Its name is split into name and version by the
//! rule of Nix's own `builtins.parseDrvName`: the version starts after the
//! first `-` that is followed by a character that is not a letter
//! (`hello-2.12.1` → `hello` + `2.12.1`; `python3.11-requests-2.31.0` →
//! `python3.11-requests` + `2.31.0`; `glibc-2.37-8-bin` → `glibc` +
//! `2.37-8-bin`; `etc-os-release` has no version). The purl is
//! `pkg:nix/NAME@VERSION` (the form sbomnix uses; the purl specification has
//! no registered `nix` type yet), and the store hash and full path are kept
//! beside it, since name and version alone do not identify a store path.
//!
//! Invariant: only names that Nix itself could have produced are accepted
//! (a 32-character hash in Nix's base-32 alphabet, then `-`, then a name of
//! the characters Nix allows in store path names); anything else under
//! `nix/store/` is not a store path and is not listed.

/// Nix's base-32 alphabet (no `e`, `o`, `t`, `u`).
const NIX_BASE32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// A parsed store path name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePathName {
    /// The 32-character hash part.
    pub hash: String,
    /// The name part (before the version).
    pub name: String,
    /// The version part, if the name has one.
    pub version: Option<String>,
}

/// Parse a top-level store entry name (`<hash>-<name>`), or `None` when it
/// is not a store path name.
pub fn parse_store_name(entry: &str) -> Option<StorePathName> {
    let b = entry.as_bytes();
    if b.len() < 34 || b[32] != b'-' || entry.len() > 211 {
        return None;
    }
    if !b[..32].iter().all(|c| NIX_BASE32.contains(c)) {
        return None;
    }
    let full = &entry[33..];
    // The characters Nix allows in a store path name.
    let allowed = |c: u8| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c);
    if full.is_empty() || full.starts_with('.') || !full.bytes().all(allowed) {
        return None;
    }
    let (name, version) = split_name_version(full);
    Some(StorePathName {
        hash: entry[..32].to_string(),
        name: name.to_string(),
        version: version.map(str::to_string),
    })
}

/// `builtins.parseDrvName`: split at the first `-` not followed by a letter.
pub fn split_name_version(full: &str) -> (&str, Option<&str>) {
    let b = full.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'-' && b.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (&full[..i], Some(&full[i + 1..]).filter(|v| !v.is_empty()));
        }
    }
    (full, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_like_parse_drv_name() {
        for (full, name, version) in [
            ("hello-2.12.1", "hello", Some("2.12.1")),
            (
                "python3.11-requests-2.31.0",
                "python3.11-requests",
                Some("2.31.0"),
            ),
            ("glibc-2.37-8-bin", "glibc", Some("2.37-8-bin")),
            ("etc-os-release", "etc-os-release", None),
            ("strata-layer-0", "strata-layer", Some("0")),
        ] {
            assert_eq!(split_name_version(full), (name, version), "{full}");
        }
    }

    #[test]
    fn only_real_store_names_are_accepted() {
        let h = "0123456789abcdfghijklmnpqrsvwxyz";
        let p = parse_store_name(&format!("{h}-hello-2.12.1")).unwrap();
        assert_eq!((p.hash.as_str(), p.name.as_str()), (h, "hello"));
        assert_eq!(p.version.as_deref(), Some("2.12.1"));
        for bad in [
            "short-name".to_string(),
            format!("{}-x", "e".repeat(32)),
            format!("{h}-"),
            format!("{h}_x"),
            format!("{h}-.hidden"),
            format!("{h}-sp ace"),
            ".links".to_string(),
        ] {
            assert_eq!(parse_store_name(&bad), None, "{bad}");
        }
    }
}
