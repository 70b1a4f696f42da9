//! `strata image --link-under DIR`: blobs from files inside DIR become
//! symlinks to them (absolute, canonical), and every reader still reads them.

use std::fs;
use std::path::Path;

use crate::util::{fail_in, ok_in, tempdir, write};

/// A layer `store/NAME.tgz` (+ descriptor) holding one file.
fn layer(d: &Path, dir: &str, name: &str, content: &str) -> String {
    write(&d.join(format!("{name}-tree/f")), content.as_bytes(), 0o644);
    ok_in(
        d,
        &[
            "layer",
            "--out",
            &format!("{dir}/{name}.tgz"),
            "--descriptor",
            &format!("{dir}/{name}.json"),
            &format!("{name}-tree"),
        ],
    );
    format!("{dir}/{name}.tgz:{dir}/{name}.json")
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim().trim_start_matches("sha256:"))
}

fn layer_digests(d: &Path, image: &str) -> Vec<String> {
    let out = ok_in(d, &["inspect", "--json", image]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let layers = v["layers"]
        .as_array()
        .or_else(|| v["manifest"]["layers"].as_array());
    layers
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn blobs_inside_the_directory_are_links_and_every_reader_follows_them() {
    let t = tempdir();
    let d = t.path();
    fs::create_dir_all(d.join("store")).unwrap();
    fs::create_dir_all(d.join("elsewhere")).unwrap();
    let inside = layer(d, "store", "base", "the base layer\n");
    let outside = layer(d, "elsewhere", "top", "a top layer\n");
    let store = fs::canonicalize(d.join("store")).unwrap();
    // Through a symlinked path too: the target is canonical.
    std::os::unix::fs::symlink(&store, d.join("via")).unwrap();
    ok_in(
        d,
        &[
            "image",
            "--out",
            "base",
            "--layer",
            &inside,
            "--link-under",
            "via",
        ],
    );
    let base_layer = layer_digests(d, "base").remove(0);
    let link = blob(&d.join("base"), &base_layer);
    assert_eq!(fs::read_link(&link).unwrap(), store.join("base.tgz"));
    // The same image without links: same manifest digest.
    ok_in(d, &["image", "--out", "copied", "--layer", &inside]);
    assert_eq!(
        ok_in(d, &["digest", "base"]),
        ok_in(d, &["digest", "copied"])
    );
    ok_in(d, &["verify", "base"]);
    // On the linked base: its linked blob is linked again (to the file, not
    // to the link); a layer outside the directory is a plain file.
    ok_in(
        d,
        &[
            "image",
            "--out",
            "app",
            "--base",
            "base",
            "--layer",
            &outside,
            "--link-under",
            "store",
        ],
    );
    let app_layers = layer_digests(d, "app");
    assert_eq!(
        fs::read_link(blob(&d.join("app"), &app_layers[0])).unwrap(),
        store.join("base.tgz")
    );
    let top = blob(&d.join("app"), &app_layers[1]);
    assert!(fs::symlink_metadata(&top).unwrap().file_type().is_file());
    ok_in(d, &["verify", "app"]);
    // A docker-archive and an oci-archive of it hold the bytes.
    for format in ["docker-archive", "oci-archive"] {
        let out = format!("app.{format}.tar");
        ok_in(
            d,
            &["image", "--out", &out, "--format", format, "--base", "app"],
        );
        ok_in(d, &["verify", &out]);
        assert_eq!(layer_digests(d, &out), app_layers);
    }
    // verify follows a link and checks the bytes it finds (same size, other bytes).
    let real = store.join("base.tgz");
    let mut bytes = fs::read(&real).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&real, &bytes).unwrap();
    let err = fail_in(d, &["verify", "app"], 1);
    let hex = base_layer.trim().trim_start_matches("sha256:");
    assert!(err.contains(&format!("{hex}: digest mismatch")), "{err}");
    // Only a directory layout holds links.
    let err = fail_in(
        d,
        &[
            "image",
            "--out",
            "x.tar",
            "--format",
            "oci-archive",
            "--layer",
            &inside,
            "--link-under",
            "store",
        ],
        2,
    );
    assert!(err.starts_with("strata: --link-under: "), "{err}");
    assert!(!d.join("x.tar").exists());
    // A directory that is not there: one line naming it, nothing written.
    let err = fail_in(
        d,
        &[
            "image",
            "--out",
            "y",
            "--layer",
            &inside,
            "--link-under",
            "nowhere",
        ],
        1,
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!d.join("y").exists());
}
