//! OCI JSON: manifests, indexes and arbitrary values parse or fail cleanly,
//! and canonical JSON is a fixed point (canonical(parse(canonical(v))) ==
//! canonical(v)).
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::descriptor::{Index, Manifest};
use strata::json::{parse, to_canonical};

fuzz_target!(|data: &[u8]| {
    let _ = parse::<Manifest>(data, "manifest");
    let _ = parse::<Index>(data, "index");
    if let Ok(v) = parse::<serde_json::Value>(data, "value") {
        let c = to_canonical(&v);
        let again: serde_json::Value = serde_json::from_slice(&c).expect("canonical JSON parses");
        assert_eq!(to_canonical(&again), c);
    }
});
