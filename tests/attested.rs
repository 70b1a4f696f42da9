//! `strata attach --sbom/--provenance --out`: an image's SBOM and
//! provenance attached in one step as a new layout (the source untouched),
//! byte-identical on every run and equal to what `strata sbom` / `strata
//! provenance` write; the golden image's attachment digests
//! (`tests/golden/hello-attest.json`, shared with the Bazel and Nix suites);
//! packages a build declares for a layer (`--packages LAYER=FILE`) in the
//! SBOM, validated; hostile declarations refused with one line.
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::golden::HELLO_CONFIG;
use crate::sbom::{validate, validator_python};
use crate::util::*;

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The golden hello image at `d/img` (layer descriptor at `d/l.json`).
fn hello(d: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let src = src.to_str().unwrap();
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", src],
    );
    let mut image = vec!["image", "--out", "img", "--layer", "l.tgz:l.json"];
    image.extend_from_slice(HELLO_CONFIG);
    ok_in(d, &image).trim().to_string()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// The attachments `index.json` lists: artifactType -> manifest digest.
fn attachments(layout: &Path) -> BTreeMap<String, String> {
    let idx = read_json(&layout.join("index.json"));
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let t = m["artifactType"].as_str()?;
            Some((t.to_string(), m["digest"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// The attached document of the attachment manifest `digest` in `layout`.
fn document(layout: &Path, digest: &str) -> Vec<u8> {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m = read_json(&blob(digest));
    fs::read(blob(m["layers"][0]["digest"].as_str().unwrap())).unwrap()
}

const SPDX_TYPE: &str = "application/spdx+json";

const ALL: &[&str] = &[
    "attach",
    "img",
    "--sbom",
    "spdx",
    "--sbom",
    "cyclonedx",
    "--provenance",
];

#[test]
fn attached_layouts_are_deterministic_and_carry_the_clis_documents() {
    let t = tempdir();
    let d = t.path();
    let digest = hello(d);
    let before = tree(&d.join("img"));
    let a = ok_in(d, &[ALL, &["--out", "a"]].concat());
    ok_in(d, &[ALL, &["--out", "b"]].concat());
    assert_eq!(before, tree(&d.join("img")), "the source layout changed");
    assert_eq!(tree(&d.join("a")), tree(&d.join("b")), "two runs differ");
    assert_eq!(a.lines().count(), 3, "{a}");
    let q = ok_in(d, &[ALL, &["--out", "q", "--quiet"]].concat());
    assert_eq!((q.as_str(), tree(&d.join("q"))), ("", tree(&d.join("a"))));
    // The documents are strata sbom's and strata provenance's bytes.
    ok_in(d, &["sbom", "img", "--format", "spdx", "--out", "s.json"]);
    ok_in(
        d,
        &["sbom", "img", "--format", "cyclonedx", "--out", "c.json"],
    );
    ok_in(d, &["provenance", "img", "--out", "p.json"]);
    let att = attachments(&d.join("a"));
    let want = [
        ("application/spdx+json", "s.json"),
        ("application/vnd.cyclonedx+json", "c.json"),
        ("application/vnd.in-toto+json", "p.json"),
    ];
    for (ty, file) in want {
        let got = document(&d.join("a"), &att[ty]);
        assert_eq!(got, fs::read(d.join(file)).unwrap(), "{ty}");
    }
    // The image is unchanged and still first; verify and inspect see all.
    assert_eq!(ok_in(d, &["digest", "a"]).trim(), digest);
    ok_in(d, &["verify", "a"]);
    let inspect = ok_in(d, &["inspect", "a"]);
    assert!(inspect.contains("attachments 3"), "{inspect}");
    // In place (no --out), then the same documents again: the same index.json.
    ok_in(d, &["attach", "img", "--sbom", "spdx"]);
    ok_in(d, &["attach", "img", "--sbom", "cyclonedx", "--provenance"]);
    ok_in(d, &["attach", "img", "--sbom", "spdx"]);
    assert_eq!(
        fs::read(d.join("img/index.json")).unwrap(),
        fs::read(d.join("a/index.json")).unwrap()
    );
    // --link-under: the image's blobs are symlinks to the source's files,
    // the attachments' blobs files; the same bytes through the links.
    ok_in(d, &[ALL, &["--out", "l", "--link-under", "."]].concat());
    let layer = read_json(&d.join("l.json"))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = d
        .join("l/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let target = fs::read_link(&blob).expect("the layer blob is a symlink");
    assert!(target.is_absolute(), "{target:?}");
    let att = attachments(&d.join("l"));
    let m = d
        .join("l/blobs/sha256")
        .join(att[SPDX_TYPE].trim_start_matches("sha256:"));
    assert!(fs::symlink_metadata(&m).unwrap().is_file());
    assert_eq!(tree(&d.join("l")), tree(&d.join("a")));
    // A file attached into a new layout leaves the source as it was.
    fs::write(d.join("note.txt"), b"hello\n").unwrap();
    let before = tree(&d.join("img"));
    let n = ["--artifact-type", "text/plain", "--out", "n"];
    ok_in(d, &[&["attach", "img", "note.txt"][..], &n].concat());
    assert_eq!(before, tree(&d.join("img")));
    assert_eq!(attachments(&d.join("n")).len(), 4);
}

/// The golden image's SBOMs, provenance and attachment manifests: the same
/// digests from the CLI, Bazel (`oci_attest`) and Nix (`attest`). The SBOMs
/// and the provenance name strata's version, so a version bump is a
/// deliberate golden change (`UPDATE_GOLDEN=1`).
#[test]
fn hello_attest_golden_is_shared_with_bazel_and_nix() {
    let t = tempdir();
    let d = t.path();
    hello(d);
    ok_in(d, &[ALL, &["--out", "a"]].concat());
    let att = attachments(&d.join("a"));
    let mut got = BTreeMap::new();
    for (key, ty) in [
        ("spdx", "application/spdx+json"),
        ("cyclonedx", "application/vnd.cyclonedx+json"),
        ("provenance", "application/vnd.in-toto+json"),
    ] {
        let doc = document(&d.join("a"), &att[ty]);
        got.insert(
            format!("{key}_document"),
            format!("sha256:{}", sha256_hex(&doc)),
        );
        got.insert(format!("{key}_manifest"), att[ty].clone());
    }
    got.insert(
        "index_json".into(),
        format!(
            "sha256:{}",
            sha256_hex(&fs::read(d.join("a/index.json")).unwrap())
        ),
    );
    got.insert("strata_version".into(), env!("CARGO_PKG_VERSION").into());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hello-attest.json");
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: BTreeMap<String, String> =
        serde_json::from_slice(&fs::read(&path).expect("tests/golden/hello-attest.json")).unwrap();
    assert_eq!(
        got, want,
        "hello-attest golden changed (a version bump changes it: UPDATE_GOLDEN=1 if deliberate)"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn declared_packages_reach_the_sbom_and_validate() {
    let t = tempdir();
    let d = t.path();
    hello(d);
    let diff_id = read_json(&d.join("l.json"))["diffId"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(
        d.join("purls.txt"),
        "# vendored into the layer\npkg:generic/zlib@1.3.1\npkg:golang/github.com/x/y@v1.2.3?type=module\n",
    )
    .unwrap();
    // By descriptor file and by diff_id: the same document.
    let sbom = |fmt: &str, packages: &str, out: &str| {
        let args = [
            "sbom",
            "img",
            "--format",
            fmt,
            "--packages",
            packages,
            "--out",
            out,
        ];
        ok_in(d, &args);
    };
    sbom("spdx", "l.json=purls.txt", "s1.json");
    sbom("spdx", &format!("{diff_id}=purls.txt"), "s2.json");
    assert_eq!(
        fs::read(d.join("s1.json")).unwrap(),
        fs::read(d.join("s2.json")).unwrap()
    );
    sbom("cyclonedx", "l.json=purls.txt", "c.json");
    let spdx = read_json(&d.join("s1.json"));
    let pkgs = spdx["packages"].as_array().unwrap();
    let zlib = pkgs
        .iter()
        .find(|p| p["name"] == "zlib")
        .expect("zlib listed");
    assert_eq!(zlib["versionInfo"], "1.3.1");
    assert_eq!(
        zlib["externalRefs"][0]["referenceLocator"],
        "pkg:generic/zlib@1.3.1"
    );
    // Under the layer: the layer package CONTAINS it.
    let zid = zlib["SPDXID"].as_str().unwrap();
    let rel = spdx["relationships"].as_array().unwrap();
    assert!(
        rel.iter().any(|r| r["relatedSpdxElement"] == zid
            && r["relationshipType"] == "CONTAINS"
            && r["spdxElementId"].as_str().unwrap().contains("Layer")),
        "{rel:?}"
    );
    let cdx = fs::read_to_string(d.join("c.json")).unwrap();
    assert!(
        cdx.contains("pkg:golang/github.com/x/y@v1.2.3?type=module"),
        "{cdx}"
    );
    // attach --packages: the attached SBOM is the same document.
    ok_in(
        d,
        &[
            "attach",
            "img",
            "--sbom",
            "spdx",
            "--packages",
            "l.json=purls.txt",
            "--out",
            "a",
        ],
    );
    let att = attachments(&d.join("a"));
    assert_eq!(
        document(&d.join("a"), &att["application/spdx+json"]),
        fs::read(d.join("s1.json")).unwrap()
    );
    if let Some(py) = validator_python() {
        validate(&py, "spdx", &d.join("s1.json"));
        validate(&py, "cyclonedx", &d.join("c.json"));
    }
}

#[test]
fn hostile_declarations_and_attach_usage_are_one_line_errors() {
    let t = tempdir();
    let d = t.path();
    hello(d);
    fs::write(d.join("bad.txt"), "pkg:generic/ok\nnot a purl\n").unwrap();
    fs::write(d.join("ok.txt"), "pkg:generic/ok\n").unwrap();
    fs::write(d.join("huge.txt"), "pkg:generic/a\n".repeat(400_000)).unwrap();
    fs::write(d.join("nodesc.json"), "{\"digest\":\"x\"}").unwrap();
    fs::write(d.join("deep.json"), "[".repeat(10_000)).unwrap();
    let zero = format!("sha256:{}=ok.txt", "0".repeat(64));
    let cases: [(&[&str], i32, &str); 9] = [
        (&["--packages", "l.json=bad.txt"], 1, "bad.txt: line 2"),
        (
            &["--packages", "l.json=huge.txt"],
            1,
            "huge.txt: larger than",
        ),
        (
            &["--packages", "nodesc.json=ok.txt"],
            1,
            "nodesc.json: not a layer descriptor",
        ),
        (&["--packages", "deep.json=ok.txt"], 1, "deep.json"),
        (&["--packages", "missing.json=ok.txt"], 1, "missing.json"),
        (&["--packages", &zero], 1, "which the image does not hold"),
        (&["--packages", "noequals"], 2, "expected LAYER=FILE"),
        (&["--packages", "l.json=missing.txt"], 1, "missing.txt"),
        (&["--format", "xml"], 2, "xml"),
    ];
    for (extra, code, want) in cases {
        let mut args = vec!["sbom", "img"];
        if !extra.contains(&"--format") {
            args.extend(["--format", "spdx"]);
        }
        args.extend_from_slice(extra);
        let e = fail_in(d, &args, code);
        assert!(e.contains(want), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
    }
    for (args, want) in [
        (&["attach", "img"][..], "required"),
        (&["attach", "img", "--sbom", "xml"][..], "xml"),
        (
            &["attach", "img", "f.txt", "--sbom", "spdx"][..],
            "cannot be used",
        ),
        (
            &[
                "attach",
                "img",
                "--provenance",
                "--packages",
                "l.json=ok.txt",
            ][..],
            "--sbom",
        ),
    ] {
        let e = fail_in(d, args, 2);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Nothing was written by a failed attach.
    let e = fail_in(d, &["attach", "nowhere", "--sbom", "spdx", "--out", "x"], 1);
    assert!(e.contains("nowhere"), "{e}");
    assert!(!d.join("x").exists());
}
