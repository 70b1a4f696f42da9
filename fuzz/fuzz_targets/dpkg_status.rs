//! The dpkg status parser (`strata sbom`): any bytes either fail with a
//! one-line error or parse into entries whose kept fields obey the limits,
//! and an installed entry has a package name, version and architecture.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::sbom::dpkg::{parse_status, MAX_FIELD_BYTES};

fuzz_target!(|data: &[u8]| {
    match parse_status(data, "status") {
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        Ok(entries) => {
            for e in entries {
                assert!(!e.package.is_empty());
                assert!(e.package.len() <= MAX_FIELD_BYTES);
                if e.is_present() {
                    assert!(!e.version.is_empty() && !e.architecture.is_empty());
                }
            }
        }
    }
});
