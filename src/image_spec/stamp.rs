//! Stamp files: Bazel-style build status (`KEY VALUE` lines, e.g.
//! `bazel-out/stable-status.txt`) whose values replace `{KEY}` in an image
//! spec's `source`, `revision`, `image_version`, tags, annotations and
//! labels. Read only when the spec names them, so an unstamped build never
//! depends on the status (which carries the clock and the host).
//!
//! Invariants: at most 1 MiB per file, UTF-8, a key given twice is refused;
//! braces around anything but a known key shape stay as written.

use std::collections::BTreeMap;

use camino::Utf8Path;

use crate::error::{Error, Result};
use crate::layer::read_small_file;

/// Each status key's value, with the index of the stamp file that gave it.
pub(super) type Status = BTreeMap<String, (String, usize)>;

/// Largest stamp (build status) file read.
const MAX_STAMP_BYTES: usize = 1 << 20;

/// The KEY VALUE lines of the stamp files, each key with its value and the
/// index of the file that gave it. A key given twice is an error: which file
/// wins would be a guess. Errors name `stamp[i]` and the file.
pub(super) fn read_status(files: &[String]) -> Result<Status> {
    let mut status = Status::new();
    for (i, f) in files.iter().enumerate() {
        let at = |e: Error| e.context(format!("stamp[{i}]"));
        let bytes = read_small_file(Utf8Path::new(f), MAX_STAMP_BYTES).map_err(at)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| at(Error::invalid(format!("{f}: not UTF-8"))))?;
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            if !is_key(k) {
                return Err(at(Error::invalid(format!(
                    "{f}: line {}: expected KEY VALUE (KEY of letters, digits and _)",
                    n + 1
                ))));
            }
            if let Some((_, j)) = status.insert(k.to_string(), (v.to_string(), i)) {
                return Err(at(Error::invalid(format!(
                    "{f}: {k} is given twice (also by {})",
                    files[j]
                ))));
            }
        }
    }
    Ok(status)
}

/// A status key: letters, digits and `_`, not empty.
fn is_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `s` with each `{KEY}` replaced by `status`'s value; `Err(KEY)` for a KEY
/// it lacks. Braces around anything else stay as written.
pub(super) fn substitute(s: &str, status: &Status) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .map(|close| &after[..close])
            .filter(|k| is_key(k))
        {
            Some(k) => {
                let (v, _) = status.get(k).ok_or_else(|| k.to_string())?;
                out.push_str(v);
                rest = &after[k.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_replaces_known_keys_only() {
        let status: BTreeMap<String, (String, usize)> = [
            ("A".to_string(), ("1".to_string(), 0)),
            ("B_2".to_string(), ("x y".to_string(), 0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(substitute("v{A}-{B_2}", &status).unwrap(), "v1-x y");
        assert_eq!(
            substitute("{ not a key } {} {A", &status).unwrap(),
            "{ not a key } {} {A"
        );
        assert_eq!(substitute("{C}", &status).unwrap_err(), "C");
    }
}
