//! Reading untrusted archives: `Layout::open` on arbitrary bytes, and on a
//! well-formed tar whose `index.json` is the fuzzer's input (first byte odd),
//! then resolving the image and verifying. Nothing may panic or hang.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use strata::layout::Layout;

fn tar_with(index: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [("oci-layout", &br#"{"imageLayoutVersion":"1.0.0"}"#[..]), ("index.json", index)] {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).expect("tar in memory");
    }
    b.into_inner().expect("tar in memory")
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 1 { tar_with(rest) } else { rest.to_vec() };
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(&bytes).expect("write temp file");
    let path = camino::Utf8PathBuf::from_path_buf(f.path().to_path_buf()).expect("utf-8 temp path");
    if let Ok(layout) = Layout::open(&path) {
        let _ = layout.image(None, None);
        let _ = strata::verify::verify(&layout);
    }
});
