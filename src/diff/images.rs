//! Comparing two images top down: `index.json`, the index, then for each
//! image (keyed by platform, else ref name, else position) its manifest,
//! its config field by field and its layers by position.
//!
//! Invariants: every JSON blob is read through the layout, which checks it
//! against its descriptor first; a blob whose digest does not match is an
//! error, not a finding; layers are streamed, never held.

use std::collections::BTreeSet;
use std::io::Read;

use serde_json::{json, Value};

use super::config::{classify_config, classify_descriptor_list, classify_manifest, compare_json};
use super::layers::{diff_layers, read_layer};
use super::report::{Class, Sink};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media_type::is_index;

/// The images a layout holds, keyed by platform (else ref name, else position).
type ImageRef = (String, Descriptor, Option<(Descriptor, Value)>);

fn images_of(l: &Layout) -> Result<Vec<ImageRef>> {
    let mut out = Vec::new();
    // Attachments (signatures, SBOMs) are not images: index.json's own
    // comparison shows them; pairing them with images would not mean anything.
    for (i, top) in l.images().iter().enumerate() {
        if is_index(&top.media_type) {
            let idx = l.read_index(top)?;
            let v = serde_json::to_value(&idx).unwrap_or(Value::Null);
            for (j, m) in idx.manifests.iter().enumerate() {
                let key = m
                    .platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| format!("image {i}.{j}"));
                out.push((key, m.clone(), Some((top.clone(), v.clone()))));
            }
        } else {
            let key = top
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .or_else(|| top.ref_name().map(str::to_string))
                .unwrap_or_else(|| format!("image {i}"));
            out.push((key, top.clone(), None));
        }
    }
    Ok(out)
}

pub(super) fn diff_images(la: &Layout, lb: &Layout, sink: &mut Sink) -> Result<()> {
    let va = serde_json::to_value(&la.index).unwrap_or(Value::Null);
    let vb = serde_json::to_value(&lb.index).unwrap_or(Value::Null);
    compare_json(
        "index.json",
        "",
        Some(&va),
        Some(&vb),
        &classify_descriptor_list,
        sink,
    );
    let ia = images_of(la)?;
    let ib = images_of(lb)?;
    // Nested indexes (multi-platform): compare each distinct pair once.
    let idx_a: Vec<&(Descriptor, Value)> = ia.iter().filter_map(|x| x.2.as_ref()).collect();
    let idx_b: Vec<&(Descriptor, Value)> = ib.iter().filter_map(|x| x.2.as_ref()).collect();
    if let (Some(x), Some(y)) = (idx_a.first(), idx_b.first()) {
        compare_json(
            "index",
            "",
            Some(&x.1),
            Some(&y.1),
            &classify_descriptor_list,
            sink,
        );
    }
    let pairs: Vec<(String, Option<&Descriptor>, Option<&Descriptor>)> =
        if ia.len() == 1 && ib.len() == 1 {
            vec![(String::new(), Some(&ia[0].1), Some(&ib[0].1))]
        } else {
            let keys: BTreeSet<&String> = ia.iter().chain(ib.iter()).map(|x| &x.0).collect();
            keys.into_iter()
                .map(|k| {
                    let find = |v: &[ImageRef]| v.iter().position(|x| &x.0 == k);
                    (
                        format!("{k} "),
                        find(&ia).map(|i| &ia[i].1),
                        find(&ib).map(|i| &ib[i].1),
                    )
                })
                .collect()
        };
    for (prefix, da, db) in pairs {
        match (da, db) {
            (Some(da), Some(db)) => diff_image(&prefix, la, da, lb, db, sink)?,
            (Some(d), None) => sink.add(
                prefix.trim_end(),
                None,
                "only in A",
                json!(d.digest.to_string()),
                Value::Null,
                Class::Meaningful,
            ),
            (None, Some(d)) => sink.add(
                prefix.trim_end(),
                None,
                "only in B",
                Value::Null,
                json!(d.digest.to_string()),
                Class::Meaningful,
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

fn diff_image(
    prefix: &str,
    la: &Layout,
    da: &Descriptor,
    lb: &Layout,
    db: &Descriptor,
    sink: &mut Sink,
) -> Result<()> {
    let a = la.image_at(da)?;
    let b = lb.image_at(db)?;
    let ma = serde_json::to_value(&a.manifest).unwrap_or(Value::Null);
    let mb = serde_json::to_value(&b.manifest).unwrap_or(Value::Null);
    compare_json(
        &format!("{prefix}manifest"),
        "",
        Some(&ma),
        Some(&mb),
        &classify_manifest,
        sink,
    );
    compare_json(
        &format!("{prefix}config"),
        "",
        Some(&a.config),
        Some(&b.config),
        &classify_config,
        sink,
    );
    let (xa, xb) = (&a.manifest.layers, &b.manifest.layers);
    let digests = |v: &[Descriptor]| v.iter().map(|d| d.digest).collect::<Vec<Digest>>();
    let (sa, sb) = (digests(xa), digests(xb));
    if sa != sb {
        let (mut ta, mut tb) = (sa.clone(), sb.clone());
        ta.sort();
        tb.sort();
        if ta == tb {
            // The same blobs in another order: one finding, nothing deeper differs.
            let show = |v: &[Digest]| json!(v.iter().map(|d| d.to_string()).collect::<Vec<_>>());
            sink.add(
                &format!("{prefix}layers"),
                None,
                "layer order (the same layers in another order)",
                show(&sa),
                show(&sb),
                Class::Meaningful,
            );
            return Ok(());
        }
    }
    for i in 0..xa.len().max(xb.len()) {
        let place = format!("{prefix}layer {i}");
        match (xa.get(i), xb.get(i)) {
            (Some(x), Some(y)) if x.digest == y.digest => {}
            (Some(x), Some(y)) => {
                let ra = read_layer(open_blob(la, x)?, &blob_name(la, x), Some(x))?;
                let rb = read_layer(open_blob(lb, y)?, &blob_name(lb, y), Some(y))?;
                diff_layers(&place, &ra, &rb, sink);
            }
            (Some(x), None) => sink.add(
                &place,
                None,
                "only in A",
                json!(x.digest.to_string()),
                Value::Null,
                Class::Meaningful,
            ),
            (None, Some(y)) => sink.add(
                &place,
                None,
                "only in B",
                Value::Null,
                json!(y.digest.to_string()),
                Class::Meaningful,
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

fn blob_name(l: &Layout, d: &Descriptor) -> String {
    l.name(&Layout::blob_name(&d.digest))
}

fn open_blob(l: &Layout, d: &Descriptor) -> Result<Box<dyn Read + Send>> {
    l.blob(&d.digest)
        .ok_or_else(|| Error::corrupt(format!("{}: blob is missing", blob_name(l, d))))?
        .open()
}
