//! The library front end (issue #21): a Rust caller gets the CLI's bytes.
//!
//! The cross-tool golden (`tests/golden/hello.json`, which the CLI, Bazel
//! and Nix must print) built through the crate's root re-exports, and the
//! library's docker-archive compared byte for byte with `strata image`'s.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use camino::{Utf8Path, Utf8PathBuf};
use strata::{
    compose, write_image, Composed, DirOptions, Format, ImageOptions, LayerBuilder, LayerOptions,
    Layout, NewLayer,
};

use crate::golden::HELLO_CONFIG;
use crate::util::{ok_in, tempdir};

/// `tests/golden/hello.json`'s image: `examples/hello` at the root, with
/// the golden's config ([`HELLO_CONFIG`] as library values).
fn hello_image(layer: NewLayer, tag: Option<&str>) -> Composed {
    let mut opts = ImageOptions::created_at(0);
    opts.changes.env = vec![("GREETING".into(), "hello".into())];
    opts.changes.workdir = Some("/www".into());
    opts.changes.cmd = Some(vec!["cat".into(), "/www/index.html".into()]);
    opts.tag = tag.map(str::to_string);
    compose(None, vec![layer], &opts).unwrap()
}

fn hello_dir() -> Utf8PathBuf {
    Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello")
}

#[test]
fn the_library_builds_the_hello_golden() {
    let mut b = LayerBuilder::new();
    b.tree(&hello_dir(), None, &DirOptions::default()).unwrap();
    let (blob, desc) = b.write(Vec::new(), &LayerOptions::default()).unwrap();
    let image = hello_image(NewLayer::from_blob(desc.clone(), blob), None);
    let mut got = BTreeMap::new();
    got.insert("layer".to_string(), desc.digest.to_string());
    got.insert("diff_id".to_string(), desc.diff_id.to_string());
    got.insert("manifest".to_string(), image.manifest.digest.to_string());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hello.json");
    let want: BTreeMap<String, String> = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    assert_eq!(got, want, "the library differs from the CLI's golden");
}

#[test]
fn the_library_writes_the_clis_archive_and_reads_it_back() {
    let t = tempdir();
    let d = t.path();
    let root = Utf8Path::from_path(d).unwrap();
    let hello = hello_dir();
    ok_in(d, &["layer", "-q", "--out", "l.tgz", hello.as_str()]);
    let mut cli = vec![
        "image",
        "-q",
        "--out",
        "cli.tar",
        "--format",
        "docker-archive",
    ];
    cli.extend_from_slice(&["--layer", "l.tgz", "--tag", "hello:1"]);
    cli.extend_from_slice(HELLO_CONFIG);
    ok_in(d, &cli);
    // The CLI's layer file, described through the layer checks.
    let layer = NewLayer::from_file(&root.join("l.tgz")).unwrap();
    let image = hello_image(layer, Some("hello:1"));
    write_image(&image, Format::DockerArchive, &root.join("lib.tar"), 0).unwrap();
    assert!(
        fs::read(d.join("lib.tar")).unwrap() == fs::read(d.join("cli.tar")).unwrap(),
        "the library's docker-archive differs from strata image's"
    );
    let read = Layout::open(&root.join("cli.tar"))
        .unwrap()
        .image(Some("1"), None)
        .unwrap();
    assert_eq!(read.manifest_desc.digest, image.manifest.digest);
    assert_eq!(read.config["config"]["WorkingDir"], "/www");
}
