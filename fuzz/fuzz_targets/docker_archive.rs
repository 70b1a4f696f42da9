//! Reading untrusted legacy docker-archives (`docker save` before Docker 25,
//! `podman save`, compressed or not): `Layout::open` on arbitrary bytes
//! (first byte even), and on a well-formed tar holding a config, a layer, a
//! layer behind a symlink and links pointing out, whose `manifest.json` is
//! the fuzzer's input (first byte odd); then resolving every image and
//! verifying. Nothing may panic or hang.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use strata::layout::Layout;
use strata::Digest;

/// An empty tar: two zero blocks.
const LAYER: [u8; 1024] = [0; 1024];

fn tar_with(manifest: &[u8]) -> Vec<u8> {
    let diff_id = Digest::of(&LAYER);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}","{diff_id}"]}}}}"#
    );
    let mut b = tar::Builder::new(Vec::new());
    let files: [(&str, &[u8]); 4] = [
        ("c.json", config.as_bytes()),
        ("a/layer.tar", &LAYER),
        ("top.tar", &LAYER),
        ("manifest.json", manifest),
    ];
    for (name, body) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).expect("tar in memory");
    }
    for (name, target) in [("b/layer.tar", "../top.tar"), ("up", "../../etc/passwd"), ("loop", "loop")] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, name, target).expect("tar in memory");
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
        for d in &layout.index.manifests {
            let _ = layout.image_at(d);
        }
        let _ = layout.image(None, None);
        let _ = layout.image(Some("a:1"), None);
        let _ = strata::verify::verify(&layout);
    }
});
