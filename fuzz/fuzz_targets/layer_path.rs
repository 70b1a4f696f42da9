//! Path rules: parsing is idempotent, the entry order is a total order that
//! puts ancestors first, link resolution never panics, and digests parse or
//! fail cleanly. Input: two strings separated by a newline.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::layer::path::LayerPath;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_once('\n').unwrap_or((s, "x"));
    let _ = strata::Digest::parse(a);
    let (Ok(pa), Ok(pb)) = (LayerPath::parse(a), LayerPath::parse(b)) else { return };
    assert_eq!(pa.cmp(&pb), pb.cmp(&pa).reverse());
    assert_eq!(LayerPath::parse(pa.as_str()).expect("reparse"), pa);
    for anc in pa.ancestors() {
        assert!(anc < pa, "{anc} !< {pa}");
    }
    if let Some(r) = pa.resolve_link(b) {
        assert!(!r.starts_with('/'), "{r}");
        assert!(!r.split('/').any(|c| c == ".."), "{r}");
    }
});
