//! `strata image`, `index`, `digest`, `inspect`, `verify` on good input.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use crate::util::{ok_in, tempdir, walk_files, write};

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Value {
    json_file(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

/// A docker-archive's entry names, in order, and its parsed `manifest.json`.
fn tar_names_and_manifest(archive: &Path) -> (Vec<String>, Value) {
    let mut ar = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut manifest = None;
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest = Some(serde_json::from_str(&s).unwrap());
        }
        names.push(name);
    }
    (names, manifest.expect("manifest.json"))
}

fn layer(d: &Path, name: &str, file: &str, content: &str) {
    write(
        &d.join(format!("{name}-tree/{file}")),
        content.as_bytes(),
        0o644,
    );
    ok_in(
        d,
        &[
            "layer",
            "--out",
            &format!("{name}.tgz"),
            "--descriptor",
            &format!("{name}.json"),
            &format!("{name}-tree"),
        ],
    );
}

#[test]
fn config_manifest_and_index_say_what_was_asked() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let digest = ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "a.tgz:a.json",
            "--entrypoint",
            r#"["/bin/sh","-c"]"#,
            "--cmd",
            "echo",
            "--cmd",
            "hi",
            "--env",
            "PATH=/bin",
            "--env",
            "A=b=c",
            "--workdir",
            "/work",
            "--user",
            "1000:1000",
            "--label",
            "org.example=1",
            "--annotation",
            "note=x",
            "--exposed-port",
            "8080/tcp",
            "--exposed-port",
            "53/udp",
            "--volume",
            "/data",
            "--stop-signal",
            "SIGINT",
            "--platform",
            "linux/arm64/v8",
            "--created",
            "2024-01-02T03:04:05Z",
            "--tag",
            "demo:1",
        ],
    );
    let digest = digest.trim();
    let img = d.join("img");
    assert_eq!(
        fs::read_to_string(img.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = json_file(&img.join("index.json"));
    let top = &index["manifests"][0];
    assert_eq!(top["digest"], digest);
    assert_eq!(top["annotations"]["org.opencontainers.image.ref.name"], "1");
    assert_eq!(
        top["annotations"]["io.containerd.image.name"],
        "docker.io/library/demo:1"
    );
    assert_eq!(top["platform"]["architecture"], "arm64");
    let manifest = blob(&img, digest);
    assert_eq!(manifest["annotations"]["note"], "x");
    let cfg = blob(&img, manifest["config"]["digest"].as_str().unwrap());
    let c = &cfg["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["echo", "hi"]));
    assert_eq!(c["Env"], serde_json::json!(["PATH=/bin", "A=b=c"]));
    assert_eq!(c["WorkingDir"], "/work");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Labels"]["org.example"], "1");
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(
        (
            cfg["os"].as_str(),
            cfg["architecture"].as_str(),
            cfg["variant"].as_str()
        ),
        (Some("linux"), Some("arm64"), Some("v8"))
    );
    assert_eq!(cfg["created"], "2024-01-02T03:04:05Z");
    let a = json_file(&d.join("a.json"));
    assert_eq!(cfg["rootfs"]["diff_ids"][0], a["diffId"]);
    assert_eq!(manifest["layers"][0]["digest"], a["digest"]);
    // Canonical JSON: what is stored is what to_canonical would write.
    let raw = fs::read(
        img.join("blobs/sha256").join(
            manifest["config"]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap();
    assert_eq!(raw, strata::json::to_canonical(&cfg));
    ok_in(d, &["verify", "img"]);
}

#[test]
fn blobs_are_hard_linked_not_copied() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    ok_in(d, &["image", "--out", "img", "--layer", "a.tgz:a.json"]);
    let a = json_file(&d.join("a.json"));
    let linked = d
        .join("img/blobs/sha256")
        .join(a["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    assert_eq!(
        fs::metadata(d.join("a.tgz")).unwrap().ino(),
        fs::metadata(linked).unwrap().ino()
    );
}

#[test]
fn layer_without_descriptor_is_described_the_same() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let with = ok_in(d, &["image", "--out", "one", "--layer", "a.tgz:a.json"]);
    let without = ok_in(d, &["image", "--out", "two", "--layer", "a.tgz"]);
    assert_eq!(with, without);
}

#[test]
fn base_image_is_extended() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    layer(d, "b", "b.txt", "b");
    ok_in(
        d,
        &[
            "image",
            "--out",
            "base",
            "--layer",
            "a.tgz:a.json",
            "--env",
            "PATH=/bin",
            "--env",
            "X=1",
            "--cmd",
            "sh",
            "--tag",
            "base:1",
        ],
    );
    let top = ok_in(
        d,
        &[
            "image",
            "--out",
            "top",
            "--base",
            "base",
            "--layer",
            "b.tgz:b.json",
            "--env",
            "PATH=/usr/bin",
            "--entrypoint",
            "/app",
        ],
    );
    let img = d.join("top");
    let manifest = blob(&img, top.trim());
    let cfg = blob(&img, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        manifest["layers"][0]["digest"],
        json_file(&d.join("a.json"))["digest"]
    );
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["PATH=/usr/bin", "X=1"])
    );
    assert!(
        cfg["config"].get("Cmd").is_none(),
        "a new entrypoint clears the base's Cmd"
    );
    assert_eq!(cfg["history"].as_array().unwrap().len(), 2);
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    ok_in(d, &["verify", "top"]);
    // The same from an archive base.
    ok_in(
        d,
        &[
            "image",
            "--out",
            "base.tar",
            "--format",
            "oci-archive",
            "--layer",
            "a.tgz:a.json",
            "--env",
            "PATH=/bin",
            "--env",
            "X=1",
            "--cmd",
            "sh",
            "--tag",
            "base:1",
        ],
    );
    let top2 = ok_in(
        d,
        &[
            "image",
            "--out",
            "top2",
            "--base",
            "base.tar",
            "--layer",
            "b.tgz:b.json",
            "--env",
            "PATH=/usr/bin",
            "--entrypoint",
            "/app",
        ],
    );
    assert_eq!(top, top2);
    ok_in(d, &["verify", "top2"]);
}

#[test]
fn archives_hold_the_same_image() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let args = ["--layer", "a.tgz:a.json", "--tag", "demo:1"];
    let dir = ok_in(d, &[&["image", "--out", "img"][..], &args].concat());
    let oci = ok_in(
        d,
        &[
            &["image", "--out", "img.oci.tar", "--format", "oci-archive"][..],
            &args,
        ]
        .concat(),
    );
    let dock = ok_in(
        d,
        &[
            &[
                "image",
                "--out",
                "img.docker.tar",
                "--format",
                "docker-archive",
            ][..],
            &args,
        ]
        .concat(),
    );
    assert_eq!(dir, oci);
    assert_eq!(dir, dock);
    for p in ["img", "img.oci.tar", "img.docker.tar"] {
        assert_eq!(ok_in(d, &["digest", p]), dir);
        ok_in(d, &["verify", p]);
    }
    let (names, m) = tar_names_and_manifest(&d.join("img.docker.tar"));
    assert_eq!(names.first().map(String::as_str), Some("blobs/"));
    assert_eq!(
        &names[names.len() - 3..],
        ["index.json", "manifest.json", "oci-layout"]
    );
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["demo:1"]));
    let a = json_file(&d.join("a.json"));
    assert_eq!(
        m[0]["Layers"][0],
        format!(
            "blobs/sha256/{}",
            a["digest"].as_str().unwrap().trim_start_matches("sha256:")
        )
    );
}

#[test]
fn index_of_two_platforms() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let amd = ok_in(
        d,
        &[
            "image",
            "--out",
            "amd",
            "--layer",
            "a.tgz:a.json",
            "--platform",
            "linux/amd64",
        ],
    );
    let arm = ok_in(
        d,
        &[
            "image",
            "--out",
            "arm",
            "--layer",
            "a.tgz:a.json",
            "--platform",
            "linux/arm64/v8",
        ],
    );
    let idx = ok_in(
        d,
        &["index", "--out", "idx", "--tag", "multi:1", "amd", "arm"],
    );
    assert_eq!(ok_in(d, &["digest", "idx"]), idx);
    let index = blob(&d.join("idx"), idx.trim());
    assert_eq!(index["manifests"][0]["digest"], amd.trim());
    assert_eq!(index["manifests"][1]["digest"], arm.trim());
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
    let j: Value = serde_json::from_str(&ok_in(d, &["digest", "--json", "idx"])).unwrap();
    assert_eq!(j["index"], idx.trim());
    let arm_inspect: Value = serde_json::from_str(&ok_in(
        d,
        &["inspect", "--json", "--platform", "linux/arm64", "idx"],
    ))
    .unwrap();
    assert_eq!(arm_inspect["digest"], arm.trim());
    ok_in(d, &["verify", "idx"]);
    let text = ok_in(d, &["inspect", "idx"]);
    assert!(text.contains("linux/arm64/v8"), "{text}");
}

#[test]
fn inspect_and_digest_json() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let dg = ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "a.tgz:a.json",
            "--entrypoint",
            "/a",
        ],
    );
    let j: Value = serde_json::from_str(&ok_in(d, &["digest", "--json", "img"])).unwrap();
    assert_eq!(j["manifest"], dg.trim());
    assert_eq!(j["layers"][0], json_file(&d.join("a.json"))["digest"]);
    let i: Value = serde_json::from_str(&ok_in(d, &["inspect", "--json", "img"])).unwrap();
    assert_eq!(i["platform"], "linux/amd64");
    assert_eq!(i["config"]["Entrypoint"][0], "/a");
    let text = ok_in(d, &["inspect", "img"]);
    assert!(
        text.contains("Entrypoint") && text.contains("tar+gzip"),
        "{text}"
    );
}

#[test]
fn digest_file_holds_what_stdout_says() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    let dg = ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--layer",
            "a.tgz:a.json",
            "--digest-file",
            "img.digest",
        ],
    );
    assert_eq!(fs::read_to_string(d.join("img.digest")).unwrap(), dg.trim());
    let ix = ok_in(
        d,
        &[
            "index",
            "--out",
            "idx",
            "--digest-file",
            "idx.digest",
            "img",
        ],
    );
    assert_eq!(fs::read_to_string(d.join("idx.digest")).unwrap(), ix.trim());
}

/// Bazel's sandbox presents a base layout as a tree of symlinks.
#[test]
fn base_layout_of_symlinks_is_read_through() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "a.txt", "a");
    ok_in(d, &["image", "--out", "real", "--layer", "a.tgz:a.json"]);
    let real = d.join("real");
    let linked = d.join("linked");
    for e in walk_files(&real) {
        let rel = e.strip_prefix(&real).unwrap();
        fs::create_dir_all(linked.join(rel).parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&e, linked.join(rel)).unwrap();
    }
    ok_in(d, &["verify", "linked"]);
    let a = ok_in(
        d,
        &[
            "image",
            "--out",
            "top1",
            "--base",
            "real",
            "--layer",
            "a.tgz:a.json",
        ],
    );
    let b = ok_in(
        d,
        &[
            "image",
            "--out",
            "top2",
            "--base",
            "linked",
            "--layer",
            "a.tgz:a.json",
        ],
    );
    assert_eq!(a, b);
    ok_in(d, &["verify", "top2"]);
}

#[test]
fn a_docker_archive_carries_every_tag() {
    let t = tempdir();
    let d = t.path();
    layer(d, "a", "f", "x\n");
    let digest = ok_in(
        d,
        &[
            "image",
            "--out",
            "multi.tar",
            "--format",
            "docker-archive",
            "--layer",
            "a.tgz:a.json",
            "--tag",
            "demo:1",
            "--tag",
            "registry.example/demo:latest",
            "--tag",
            "demo:1",
            "--tag",
            "other",
        ],
    );
    let (_, m) = tar_names_and_manifest(&d.join("multi.tar"));
    // In the order given, each once; index.json names the first.
    assert_eq!(
        m[0]["RepoTags"],
        serde_json::json!(["demo:1", "registry.example/demo:latest", "other:latest"])
    );
    assert_eq!(ok_in(d, &["digest", "multi.tar", "--ref", "1"]), digest);
    // An OCI layout names one image per index.json entry: a second tag is a usage error.
    let out = crate::util::run_in(
        d,
        &[
            "image",
            "--out",
            "x",
            "--layer",
            "a.tgz:a.json",
            "--tag",
            "a:1",
            "--tag",
            "a:2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only a docker-archive records several tags")
    );
    assert!(!d.join("x").exists());
}

#[test]
fn quiet_prints_nothing_and_writes_the_same() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/f"), b"q\n", 0o644);
    let loud = ok_in(
        d,
        &["layer", "--out", "a.tgz", "--descriptor", "a.json", "tree"],
    );
    assert_eq!(
        ok_in(
            d,
            &[
                "layer",
                "-q",
                "--out",
                "b.tgz",
                "--descriptor",
                "b.json",
                "tree"
            ]
        ),
        ""
    );
    assert_eq!(
        fs::read(d.join("a.tgz")).unwrap(),
        fs::read(d.join("b.tgz")).unwrap()
    );
    assert!(loud.starts_with("sha256:"));
    assert_eq!(
        ok_in(
            d,
            &[
                "image",
                "--quiet",
                "--out",
                "img",
                "--layer",
                "a.tgz:a.json",
                "--digest-file",
                "img.digest"
            ]
        ),
        ""
    );
    assert_eq!(
        ok_in(
            d,
            &[
                "index",
                "-q",
                "--out",
                "idx",
                "img",
                "--digest-file",
                "idx.digest"
            ]
        ),
        ""
    );
    assert!(fs::read_to_string(d.join("idx.digest"))
        .unwrap()
        .starts_with("sha256:"));
}
