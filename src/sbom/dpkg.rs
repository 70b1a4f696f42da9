//! The dpkg status database (`var/lib/dpkg/status`, and distroless-style
//! `var/lib/dpkg/status.d/*`): an untrusted-input parser.
//!
//! The file is RFC 822-like stanzas separated by blank lines; a line
//! starting with a space or tab continues the previous field. Only
//! `Package`, `Version`, `Architecture`, `Status`, `Source` and `License`
//! are kept; every other field (long `Description`s, `Conffiles`) is skipped
//! without being decoded, so its size and encoding do not matter.
//!
//! Invariants (the bytes come from an image anyone may have built):
//! - never panics; memory is bounded by the input, which the caller caps at
//!   [`MAX_STATUS_BYTES`];
//! - a kept field must be UTF-8, at most [`MAX_FIELD_BYTES`] long, and a
//!   `Package`/`Version`/`Architecture` value must use the characters Debian
//!   policy allows; otherwise the whole file is refused with one error
//!   naming the line and the problem (an SBOM that silently drops a package
//!   is worse than none);
//! - a stanza without `Package` is an error; a last stanza without a
//!   trailing blank line is normal and accepted;
//! - listed: every stanza whose `Status` says the package's files are on
//!   disk (`installed`, `unpacked`, `half-installed`, `half-configured`,
//!   `triggers-awaited`, `triggers-pending`); `config-files` and
//!   `not-installed` stanzas are left out (their files are gone). A stanza
//!   without `Status` (status.d files) counts as installed.

use crate::error::{Error, Result};

/// Largest status file strata reads (Debian's full archive installed would
/// be ~60 MB; a minbase system's is ~100 KB).
pub const MAX_STATUS_BYTES: u64 = 64 << 20;

/// Longest value of a kept field.
pub const MAX_FIELD_BYTES: usize = 4096;

/// One stanza's kept fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DpkgEntry {
    /// `Package`.
    pub package: String,
    /// `Version` (empty only for stanzas that are not installed).
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// `Source`, when present.
    pub source: Option<String>,
    /// `License`, when present (not a dpkg field; some image builders add it).
    pub license: Option<String>,
    /// `Status` (`install ok installed`), when present.
    pub status: Option<String>,
}

impl DpkgEntry {
    /// Whether the package's files are on disk (see the module docs).
    pub fn is_present(&self) -> bool {
        match &self.status {
            None => true,
            Some(s) => !matches!(
                s.split_whitespace().last(),
                Some("config-files" | "not-installed") | None
            ),
        }
    }
}

/// Parse a status file; `what` names it in errors.
pub fn parse_status(bytes: &[u8], what: &str) -> Result<Vec<DpkgEntry>> {
    if bytes.len() as u64 > MAX_STATUS_BYTES {
        return Err(Error::corrupt(format!(
            "{what}: {} bytes exceeds the {MAX_STATUS_BYTES} byte limit for a dpkg database",
            bytes.len()
        )));
    }
    let mut out = Vec::new();
    let mut cur = Stanza::default();
    // The field a continuation line belongs to: Some(kept field index) or
    // None for a skipped field.
    let mut in_kept: Option<usize> = None;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let err = |m: &str| Error::corrupt(format!("{what}: line {line_no}: {m}"));
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.iter().all(|b| *b == b' ' || *b == b'\t') {
            // A blank line (or whitespace only) ends the stanza.
            if let Some(e) = cur.finish(what)? {
                out.push(e);
            }
            in_kept = None;
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match in_kept {
                Some(k) => {
                    let v = field_text(&line[1..]).map_err(|m| err(&m))?;
                    let slot = &mut cur.fields[k];
                    let s = slot.get_or_insert_with(|| (line_no, String::new()));
                    s.1.push('\n');
                    s.1.push_str(v.trim());
                    if s.1.len() > MAX_FIELD_BYTES {
                        return Err(err(&format!(
                            "field {} longer than {MAX_FIELD_BYTES} bytes",
                            KEPT[k]
                        )));
                    }
                }
                None if cur.started => {}
                None => return Err(err("a continuation line outside any field")),
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(err("expected \"Field: value\""));
        };
        cur.started = true;
        let name = &line[..colon];
        in_kept = KEPT
            .iter()
            .position(|k| k.as_bytes().eq_ignore_ascii_case(name));
        if let Some(k) = in_kept {
            let value = &line[colon + 1..];
            if value.len() > MAX_FIELD_BYTES {
                return Err(err(&format!(
                    "field {} longer than {MAX_FIELD_BYTES} bytes",
                    KEPT[k]
                )));
            }
            let v = field_text(value).map_err(|m| err(&format!("field {}: {m}", KEPT[k])))?;
            if cur.fields[k].is_some() {
                return Err(err(&format!("field {} given twice in one stanza", KEPT[k])));
            }
            cur.fields[k] = Some((line_no, v.trim().to_string()));
        }
    }
    if let Some(e) = cur.finish(what)? {
        out.push(e);
    }
    Ok(out)
}

const KEPT: [&str; 6] = [
    "Package",
    "Version",
    "Architecture",
    "Source",
    "License",
    "Status",
];

#[derive(Default)]
struct Stanza {
    started: bool,
    /// (line, value) of each kept field, in [`KEPT`] order.
    fields: [Option<(usize, String)>; 6],
}

impl Stanza {
    fn finish(&mut self, what: &str) -> Result<Option<DpkgEntry>> {
        let s = std::mem::take(self);
        if !s.started {
            return Ok(None);
        }
        let [package, version, arch, source, license, status] = s.fields;
        let Some((pline, package)) = package else {
            let at = [&version, &arch, &status]
                .iter()
                .find_map(|f| f.as_ref().map(|(l, _)| *l));
            return Err(Error::corrupt(format!(
                "{what}: {}a stanza without a Package field",
                at.map(|l| format!("line {l}: ")).unwrap_or_default()
            )));
        };
        let check = |field: &str, line: usize, v: &str, ok: fn(u8) -> bool| -> Result<()> {
            if v.is_empty() || !v.bytes().all(ok) {
                return Err(Error::corrupt(format!(
                    "{what}: line {line}: {field} {v:?} is not a valid Debian {}",
                    field.to_lowercase()
                )));
            }
            Ok(())
        };
        check("Package", pline, &package, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })?;
        let entry = DpkgEntry {
            package,
            version: version.as_ref().map(|v| v.1.clone()).unwrap_or_default(),
            architecture: arch.as_ref().map(|v| v.1.clone()).unwrap_or_default(),
            source: source.map(|v| v.1),
            license: license.map(|v| v.1),
            status: status.map(|v| v.1),
        };
        if entry.is_present() {
            let (vl, v) = version.unwrap_or((pline, String::new()));
            check("Version", vl, &v, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':')
            })?;
            let (al, a) = arch.unwrap_or((pline, String::new()));
            check("Architecture", al, &a, |b| {
                b.is_ascii_alphanumeric() || b == b'-'
            })?;
        }
        Ok(Some(entry))
    }
}

/// A kept field's bytes as text.
fn field_text(b: &[u8]) -> std::result::Result<&str, String> {
    std::str::from_utf8(b).map_err(|_| "not valid UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"Package: base-files\nEssential: yes\nStatus: install ok installed\n\
Priority: required\nArchitecture: amd64\nVersion: 12.4+deb12u5\nDescription: Debian base system\n \
 miscellaneous files\n .\n more\n\nPackage: libstdc++6\nStatus: install ok installed\n\
Architecture: amd64\nSource: gcc-12 (12.2.0-14)\nVersion: 12.2.0-14\n\n\
Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n\
Package: purged\nStatus: purge ok not-installed\nArchitecture: amd64\n";

    #[test]
    fn parses_kept_fields_and_skips_removed_packages() {
        let e = parse_status(STATUS, "status").unwrap();
        let present: Vec<(&str, &str)> = e
            .iter()
            .filter(|e| e.is_present())
            .map(|e| (e.package.as_str(), e.version.as_str()))
            .collect();
        assert_eq!(
            present,
            [("base-files", "12.4+deb12u5"), ("libstdc++6", "12.2.0-14")]
        );
        assert_eq!(e[1].source.as_deref(), Some("gcc-12 (12.2.0-14)"));
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn hostile_inputs_are_clean_errors() {
        let huge_desc = [
            b"Package: a\nVersion: 1\nArchitecture: all\nDescription: ".as_slice(),
            &vec![b'x'; 10 << 20],
            b"\n \xff\xfe invalid utf-8 in a skipped field\n",
        ]
        .concat();
        // A huge or undecodable skipped field is fine; no final blank line either.
        assert_eq!(parse_status(&huge_desc, "s").unwrap().len(), 1);
        let cases: [(&[u8], &str); 7] = [
            (
                b"Package: a\xff\nVersion: 1\nArchitecture: all\n",
                "s: line 1: field Package: not valid UTF-8",
            ),
            (
                b"Version: 1\nArchitecture: all\n",
                "s: line 1: a stanza without a Package field",
            ),
            (
                b"Package: ../../x\nVersion: 1\nArchitecture: all\n",
                "s: line 1: Package \"../../x\" is not a valid Debian package",
            ),
            (
                b"Package: a\nVersion: 1 2\nArchitecture: all\n",
                "s: line 2: Version \"1 2\" is not a valid Debian version",
            ),
            (
                b"Package: a\nPackage: b\n",
                "s: line 2: field Package given twice in one stanza",
            ),
            (b"garbage\n", "s: line 1: expected \"Field: value\""),
            (
                b" continuation\n",
                "s: line 1: a continuation line outside any field",
            ),
        ];
        for (input, want) in cases {
            let e = parse_status(input, "s").unwrap_err().to_string();
            assert_eq!(e, want);
        }
        let long = [b"Package: a\nSource: ".as_slice(), &vec![b'y'; 5000], b"\n"].concat();
        let e = parse_status(&long, "s").unwrap_err().to_string();
        assert!(
            e.contains("line 2: field Source longer than 4096 bytes"),
            "{e}"
        );
        let e = parse_status(&vec![b'\n'; (MAX_STATUS_BYTES + 1) as usize], "s").unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }

    #[test]
    fn empty_and_blank_only_files_hold_no_packages() {
        assert!(parse_status(b"", "s").unwrap().is_empty());
        assert!(parse_status(b"\n\n \n\t\n", "s").unwrap().is_empty());
    }
}
