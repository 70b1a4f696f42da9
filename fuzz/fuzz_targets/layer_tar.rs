//! The layer tar reader behind `strata diff` and `strata normalize`, on
//! arbitrary bytes (plain, gzip or zstd by magic): reading never panics or
//! hangs; the extraction checks of `image`/`verify` (layer::check) accept
//! only what the reader accepts, with the same summary; and whatever
//! normalizes is a fixed point (normalizing the output again gives the same
//! bytes), which also checks that every accepted entry round-trips through
//! strata's writer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::diff::read_layer;
use strata::normalize::{normalize_layer, NormalizeOptions};

fuzz_target!(|data: &[u8]| {
    let read = read_layer(data, "fuzz", None);
    if let Ok(summary) = strata::layer::check::check_layer(data, "fuzz") {
        let read = read.expect("a checked layer reads");
        assert_eq!(read.summary, summary, "check and read disagree");
    }
    let stage = tempfile::tempdir().expect("temp dir");
    let dir = camino::Utf8Path::from_path(stage.path()).expect("utf-8 temp path");
    let opts = NormalizeOptions { drop_xattrs: true, ..NormalizeOptions::default() };
    if let Ok((out, _, _)) = normalize_layer(data, "fuzz", dir, Vec::new(), "out", &opts) {
        let (again, _, _) = normalize_layer(&out[..], "again", dir, Vec::new(), "out", &opts)
            .expect("a normalized layer normalizes");
        assert_eq!(again, out, "normalize is not a fixed point");
    }
});
