//! Canonical JSON: the only way strata serializes a blob.
//!
//! Keys are sorted (serde_json's `Map` is a `BTreeMap` as long as the
//! `preserve_order` feature is off: a unit test below fails if a dependency
//! ever turns it on), output is compact, strings use serde_json's fixed
//! escaping, and there is no trailing newline; numbers are parsed correctly
//! rounded (`float_roundtrip`), so parse → canonical → parse is a fixed point
//! (the fuzzer found that it was not). Same value → same bytes, on any
//! machine, so config and manifest digests are stable.
//!
//! Parsing is bounded: documents larger than [`MAX_JSON_BYTES`] or nested
//! deeper than [`MAX_DEPTH`] are refused before serde sees them.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Largest JSON document strata reads (specs, manifests, configs, indexes).
pub const MAX_JSON_BYTES: usize = 64 << 20;

/// Deepest nesting strata accepts (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 64;

/// Serialize `value` canonically: sorted keys, compact.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Going through Value sorts struct fields too (struct order is declaration order).
    let v = serde_json::to_value(value).expect("strata values always serialize");
    serde_json::to_vec(&v).expect("a Value always serializes")
}

/// Parse JSON from `bytes`, naming `what` (a file or blob) in errors.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    check_bounds(bytes, what)?;
    serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(format!("{what}: malformed JSON: {e}")))
}

/// Refuse oversized or too deeply nested documents.
pub fn check_bounds(bytes: &[u8], what: &str) -> Result<()> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(Error::corrupt(format!(
            "{what}: JSON document of {} bytes exceeds the {} byte limit",
            bytes.len(),
            MAX_JSON_BYTES
        )));
    }
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Error::corrupt(format!(
                        "{what}: JSON nested deeper than {MAX_DEPTH} levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct S {
        zeta: u32,
        alpha: &'static str,
    }

    #[test]
    fn keys_are_sorted_and_compact() {
        assert_eq!(
            to_canonical(&S {
                zeta: 1,
                alpha: "a"
            }),
            br#"{"alpha":"a","zeta":1}"#
        );
        let v = json!({"b": {"y": 1, "x": [2, {"d": 0, "c": 1}]}, "a": "é\n"});
        assert_eq!(
            String::from_utf8(to_canonical(&v)).unwrap(),
            "{\"a\":\"é\\n\",\"b\":{\"x\":[2,{\"c\":1,\"d\":0}],\"y\":1}}"
        );
    }

    /// Found by `fuzz/` (oci_json): without serde_json's `float_roundtrip`,
    /// huge numbers were not a fixed point of parse → canonical → parse.
    #[test]
    fn canonical_is_a_fixed_point_for_huge_numbers() {
        let input = format!("{}2{}", "8".repeat(63), "8".repeat(7));
        let v: serde_json::Value = parse(input.as_bytes(), "n").unwrap();
        let c = to_canonical(&v);
        let again: serde_json::Value = parse(&c, "n").unwrap();
        assert_eq!(to_canonical(&again), c);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let err = parse::<serde_json::Value>(deep.as_bytes(), "x.json").unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        let ok = "[".repeat(10) + &"]".repeat(10);
        parse::<serde_json::Value>(ok.as_bytes(), "x.json").unwrap();
        // Brackets inside strings do not count.
        let s = format!("\"{}\"", "[".repeat(200));
        parse::<serde_json::Value>(s.as_bytes(), "x.json").unwrap();
    }
}
