//! The layer spec parser, normalization and the tar writer: any spec either
//! fails with an error or yields a layer the `tar` crate reads back with the
//! same number of entries. Entries that read host files are skipped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::layer::compress::Compression;
use strata::layer::entry::normalize;
use strata::layer::{write_layer, LayerOptions};
use strata::spec::{LayerSpec, SpecEntry};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = LayerSpec::parse(data, "fuzz.json") else { return };
    let touches_host = spec
        .entries
        .iter()
        .any(|e| matches!(e, SpecEntry::File { src: Some(_), .. } | SpecEntry::Tree { .. }));
    if touches_host {
        return;
    }
    let Ok(entries) = spec.entries("fuzz.json", 1) else { return };
    let Ok(entries) = normalize(entries, spec.normalize_options()) else { return };
    let opts = LayerOptions { compression: Compression::None, mtime: 0, threads: 1 };
    let (bytes, desc) = write_layer(&entries, Vec::new(), &opts, "fuzz").expect("in-memory layer");
    assert_eq!(desc.size, bytes.len() as u64);
    let mut ar = tar::Archive::new(&bytes[..]);
    let n = ar.entries().expect("tar").map(|e| e.expect("entry")).count();
    assert_eq!(n, entries.len());
});
