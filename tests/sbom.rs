//! `strata sbom` and `strata provenance` (issue #24): the documents pass the
//! reference validators (pyspdxtools; cyclonedx-python-lib's strict JSON
//! schema validator, 1.6), list what the layers hold after whiteouts, are
//! byte-identical under another TZ/umask/locale, and hostile dpkg databases
//! give one-line errors, never a panic. The Debian ground truth (dpkg-query
//! on a debootstrap tree) is in tests/engines.rs, which builds that tree;
//! the Nix ground truth (nix path-info -r) in tests/nix/run.sh.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{fail_in, ok_in, require, run_in, tempdir, write};

/// 32 characters of Nix's base-32 alphabet: a store hash.
const H1: &str = "0123456789abcdfghijklmnpqrsvwxyz";
const H2: &str = "1123456789abcdfghijklmnpqrsvwxyz";
const H3: &str = "2123456789abcdfghijklmnpqrsvwxyz";

const STATUS: &str = "Package: base-files\nStatus: install ok installed\nPriority: required\n\
Architecture: amd64\nVersion: 12.4+deb12u5\nDescription: Debian base system\n more lines\n .\n\n\
Package: libstdc++6\nStatus: install ok installed\nArchitecture: amd64\n\
Source: gcc-12 (12.2.0-14)\nVersion: 12.2.0-14\n\n\
Package: oldconf\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1.0\n";

/// The Python that has the validators: $STRATA_SBOM_PYTHON (the venv
/// `.ci/run` makes), else python3; None (a skip) when they are missing and
/// STRATA_REQUIRE_TOOLS is not set.
pub fn validator_python() -> Option<String> {
    let py = std::env::var("STRATA_SBOM_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args([
            "-c",
            "import spdx_tools.spdx.clitools.pyspdxtools, cyclonedx.validation.json",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        ok,
        &format!("{py}: spdx-tools and cyclonedx-python-lib[json-validation] are not installed"),
    )
    .then_some(py)
}

/// Validate an SPDX (`pyspdxtools -i`) or CycloneDX (JsonStrictValidator,
/// schema 1.6) document; panics with the validator's words.
pub fn validate(py: &str, format: &str, file: &Path) {
    let out = match format {
        "spdx" => Command::new(py)
            .args(["-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i"])
            .arg(file)
            .output(),
        _ => Command::new(py)
            .args([
                "-c",
                "import sys\n\
from cyclonedx.schema import SchemaVersion\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
sys.exit(f'invalid: {e}' if e else 0)",
            ])
            .arg(file)
            .output(),
    }
    .expect("run the validator");
    assert!(
        out.status.success(),
        "{format} validator rejects {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A two-layer image: layer 0 has a dpkg database (whose `status` is a hard
/// link, as strata's dedupe makes of identical files) and three store
/// paths; layer 1 rewrites the database (one package more) and whites out
/// one store path; an opaque marker inside another store path empties it
/// but keeps the path.
fn fixture_image(w: &Path) -> String {
    let a = w.join("a");
    write(&a.join("var/lib/dpkg/a-copy"), STATUS.as_bytes(), 0o644);
    write(&a.join("var/lib/dpkg/status"), STATUS.as_bytes(), 0o644);
    write(
        &a.join(format!("nix/store/{H1}-hello-2.12.1/bin/hello")),
        b"hi\n",
        0o755,
    );
    write(
        &a.join(format!("nix/store/{H2}-glibc-2.37-8/lib/x")),
        b"x\n",
        0o644,
    );
    write(&a.join(format!("opt/{H3}-not-a-store-path")), b"x\n", 0o644);
    write(
        &a.join(format!("nix/store/{H3}-etc-os-release")),
        b"ID=x\n",
        0o644,
    );
    let b = w.join("b");
    let status2 = format!(
        "{STATUS}\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10\n"
    );
    write(&b.join("var/lib/dpkg/status"), status2.as_bytes(), 0o644);
    write(&b.join("nix/store/.keep"), b"", 0o644);
    let spec = format!(
        r#"{{"version":1,"entries":[{{"type":"whiteout","path":"nix/store/{H2}-glibc-2.37-8"}},
            {{"type":"opaque","path":"nix/store/{H1}-hello-2.12.1"}}]}}"#
    );
    write(&w.join("wh.json"), spec.as_bytes(), 0o644);
    ok_in(
        w,
        &[
            "layer",
            "-q",
            "--out",
            "a.tgz",
            "--descriptor",
            "a.json",
            "a",
        ],
    );
    ok_in(
        w,
        &[
            "layer",
            "-q",
            "--out",
            "b.tgz",
            "--descriptor",
            "b.json",
            "--spec",
            "wh.json",
            "b",
        ],
    );
    let base = format!("sha256:{}", "ab".repeat(32));
    let base_annotation = format!("org.opencontainers.image.base.digest={base}");
    let mut digest = String::new();
    // The same image as a layout, an oci-archive and a docker-archive.
    for (out, format) in [
        ("img.oci", "oci"),
        ("img.otar", "oci-archive"),
        ("img.tar", "docker-archive"),
    ] {
        #[rustfmt::skip]
        let args = [
            "image", "--out", out, "--format", format, "--tag", "demo:1",
            "--layer", "a.tgz:a.json", "--layer", "b.tgz:b.json",
            "--created", "2023-11-15T00:13:20.5+02:00",
            "--annotation", &base_annotation,
            "--annotation", "org.opencontainers.image.base.name=registry.example/base:12",
        ];
        digest = ok_in(w, &args).trim().to_string();
    }
    digest
}

/// (purl, layer index) of every package a CycloneDX document lists.
fn cyclonedx_packages(doc: &Value) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, layer) in doc["components"].as_array().unwrap().iter().enumerate() {
        for c in layer["components"].as_array().into_iter().flatten() {
            if c["type"] == "library" {
                out.push((c["purl"].as_str().unwrap().to_string(), i));
            }
        }
    }
    out
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// Scenario: the SBOMs of a layered image list the packages of its final
/// filesystem, each in the layer that introduced it, and pass the
/// reference validators, with and without files.
#[test]
fn sbom_lists_final_packages_and_passes_the_validators() {
    let Some(py) = validator_python() else { return };
    let t = tempdir();
    let w = t.path();
    let digest = fixture_image(w);
    for format in ["spdx", "cyclonedx"] {
        for files in [false, true] {
            let out = format!("{format}-{files}.json");
            let mut args = vec!["sbom", "img.oci", "--format", format, "--out", &out];
            if files {
                args.push("--files");
            }
            assert_eq!(ok_in(w, &args), "");
            validate(&py, format, &w.join(&out));
        }
    }
    let cdx = read_json(&w.join("cyclonedx-false.json"));
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert_eq!(
        cdx["metadata"]["component"]["purl"],
        format!("pkg:oci/demo@sha256%3A{hex}")
    );
    // The config's created, normalized to whole seconds, UTC.
    assert_eq!(cdx["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let want = [
        ("pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64", 0),
        ("pkg:deb/debian/curl@7.88.1-10?arch=amd64", 1),
        ("pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64", 0),
        ("pkg:nix/etc-os-release", 0),
        ("pkg:nix/hello@2.12.1", 0),
    ];
    let want: Vec<(String, usize)> = want.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    let mut got = cyclonedx_packages(&cdx);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(cdx["dependencies"][0]["dependsOn"][0], "base-image");
    assert_eq!(
        cdx["components"][2]["version"],
        format!("sha256:{}", "ab".repeat(32))
    );

    let spdx = read_json(&w.join("spdx-true.json"));
    let names: Vec<&str> = spdx["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"./var/lib/dpkg/status"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
    let store: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["packageFileName"].as_str())
        .collect();
    assert_eq!(
        store,
        [
            format!("/nix/store/{H1}-hello-2.12.1"),
            format!("/nix/store/{H3}-etc-os-release")
        ]
    );
    let rel = |t: &str| {
        spdx["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["relationshipType"] == t)
            .count()
    };
    assert_eq!((rel("DESCRIBES"), rel("DEPENDS_ON")), (1, 1));
    // image CONTAINS 2 layers; layers CONTAIN 5 packages and their files.
    assert_eq!(rel("CONTAINS"), 2 + 5 + names.len());
}

/// Scenario: SBOMs and provenance are the same bytes under another TZ,
/// umask and locale, run twice, and from the image as a layout, an
/// oci-archive and a docker-archive; provenance carries a time only from
/// SOURCE_DATE_EPOCH, and records the parameters given.
#[test]
fn sbom_and_provenance_are_deterministic() {
    let t = tempdir();
    let w = t.path();
    let digest = fixture_image(w);
    let bin = env!("CARGO_BIN_EXE_strata");
    let run = |env: &str, tag: &str| {
        crate::util::sh(
            w,
            &format!(
                "unset SOURCE_DATE_EPOCH; {env} && for f in spdx cyclonedx; do \
                 {bin} sbom img.oci --format $f --files --out $f-{tag}.json; done && \
                 {bin} provenance img.oci --param git=abc --param target=//app --out prov-{tag}.json"
            ),
        )
    };
    run("umask 022 && export TZ=UTC LC_ALL=C", "one");
    run(
        "umask 077 && export TZ=Pacific/Kiritimati LC_ALL=C.UTF-8",
        "two",
    );
    for f in ["spdx", "cyclonedx", "prov"] {
        let (a, b) = (
            fs::read(w.join(format!("{f}-one.json"))).unwrap(),
            fs::read(w.join(format!("{f}-two.json"))).unwrap(),
        );
        assert_eq!(a, b, "{f}: another TZ/umask/locale changed the bytes");
        let cmd = if f == "prov" { "provenance" } else { "sbom" };
        for archive in ["img.otar", "img.tar"] {
            let mut args = vec![cmd, archive, "--out", "x.json"];
            if f != "prov" {
                args.extend(["--format", f, "--files"]);
            } else {
                args.extend(["--param", "git=abc", "--param", "target=//app"]);
            }
            ok_in(w, &args);
            assert_eq!(fs::read(w.join("x.json")).unwrap(), a, "{f} of {archive}");
        }
    }
    let p = read_json(&w.join("prov-one.json"));
    assert_eq!(p["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(p["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(p["subject"][0]["name"], "docker.io/library/demo:1");
    assert_eq!(
        p["subject"][0]["digest"]["sha256"],
        digest.strip_prefix("sha256:").unwrap()
    );
    let bd = &p["predicate"]["buildDefinition"];
    assert_eq!(bd["externalParameters"]["parameters"]["target"], "//app");
    let deps: Vec<&str> = bd["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(deps, ["base image", "layer 0", "layer 1"]);
    assert!(p["predicate"]["runDetails"].get("metadata").is_none());
    let out = crate::util::strata()
        .current_dir(w)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["provenance", "img.oci"])
        .output()
        .unwrap();
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        p["predicate"]["runDetails"]["metadata"]["startedOn"],
        "2023-11-14T22:13:20Z"
    );
    // The SBOM's time is the image's, not SOURCE_DATE_EPOCH.
    let out = crate::util::strata()
        .current_dir(w)
        .env("SOURCE_DATE_EPOCH", "1")
        .args(["sbom", "img.oci", "--format", "spdx", "--files"])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        [fs::read(w.join("spdx-one.json")).unwrap(), b"\n".to_vec()].concat()
    );
}

/// Scenario: hostile dpkg databases (invalid UTF-8 in a kept field, an
/// over-long field, a stanza without Package) are one-line errors naming the
/// layer blob, the file and the line; huge or undecodable skipped fields and
/// a missing final blank line are fine. Never a panic.
#[test]
fn hostile_dpkg_status_is_a_clean_error() {
    let t = tempdir();
    let w = t.path();
    let cases: [(&str, Vec<u8>, Option<&str>); 5] = [
        (
            "bad-utf8",
            b"Package: a\xff\nVersion: 1\nArchitecture: all\n".to_vec(),
            Some("var/lib/dpkg/status: line 1: field Package: not valid UTF-8"),
        ),
        (
            "long-field",
            [
                b"Package: a\nVersion: ".as_slice(),
                &vec![b'1'; 5000],
                b"\n",
            ]
            .concat(),
            Some("var/lib/dpkg/status: line 2: field Version longer than 4096 bytes"),
        ),
        (
            "no-package",
            b"Version: 1\nArchitecture: all\n\n".to_vec(),
            Some("var/lib/dpkg/status: line 1: a stanza without a Package field"),
        ),
        (
            "huge-description",
            [
                b"Package: a\nVersion: 1\nArchitecture: all\nDescription: ".as_slice(),
                &vec![b'x'; 8 << 20],
                b"\n \xff\xfe\n",
            ]
            .concat(),
            None,
        ),
        (
            "no-blank-line",
            b"Package: a\nVersion: 1:2.0~rc1\nArchitecture: all".to_vec(),
            None,
        ),
    ];
    for (name, status, want) in cases {
        let root = w.join(name);
        write(&root.join("var/lib/dpkg/status"), &status, 0o644);
        let (blob, desc) = (format!("{name}.tgz"), format!("{name}.json"));
        ok_in(
            w,
            &["layer", "-q", "--out", &blob, "--descriptor", &desc, name],
        );
        let img = format!("{name}.oci");
        ok_in(
            w,
            &["image", "--out", &img, "--layer", &format!("{blob}:{desc}")],
        );
        match want {
            Some(msg) => {
                let err = fail_in(w, &["sbom", &img, "--format", "spdx"], 1);
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(err.starts_with("strata: "), "{err}");
                assert!(err.contains("/blobs/sha256/"), "names the layer: {err}");
                assert!(err.contains(msg), "{name}: {err}");
            }
            None => {
                let out = ok_in(w, &["sbom", &img, "--format", "cyclonedx"]);
                let doc: Value = serde_json::from_str(&out).unwrap();
                let purls = cyclonedx_packages(&doc);
                assert_eq!(purls.len(), 1, "{name}: {purls:?}");
            }
        }
    }
}

/// Scenario: flag mistakes are usage errors (exit 2), one line each.
#[test]
fn sbom_and_provenance_usage_errors() {
    let t = tempdir();
    let w = t.path();
    fixture_image(w);
    for (args, want) in [
        (
            vec!["sbom", "img.oci", "--format", "xml"],
            "--format \"xml\": expected spdx or cyclonedx",
        ),
        (
            vec!["provenance", "img.oci", "--param", "novalue"],
            "--param \"novalue\": expected K=V",
        ),
        (
            vec!["sbom", "img.oci", "--format", "spdx", "--base", "sha256:zz"],
            "--base \"sha256:zz\"",
        ),
    ] {
        let err = fail_in(w, &args, 2);
        assert!(err.contains(want) && err.lines().count() == 1, "{err}");
    }
    let out = run_in(w, &["sbom", "missing.oci", "--format", "spdx"]);
    assert_eq!(out.status.code(), Some(1));
}

/// `NAME VERSION ARCH` of every package dpkg itself lists for `tree`
/// (`dpkg-query --admindir=TREE/var/lib/dpkg -W`), sorted: the ground truth
/// tests/engines.rs takes from its debootstrap tree before removing it.
pub fn dpkg_query(tree: &Path) -> Vec<String> {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            tree.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package} ${Version} ${Architecture}\n"])
        .output()
        .expect("run dpkg-query");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The Debian packages of the SBOMs of `layout` (SPDX without files,
/// CycloneDX with files) are exactly `want` (from [`dpkg_query`]), and the
/// documents pass the validators. Prints the time each SBOM took.
pub fn check_debian_sbom(w: &Path, layout: &Path, want: &[String]) {
    let py = validator_python();
    let l = layout.to_str().unwrap();
    // Two of the four combinations: each format, and files once (a debug build reads
    // the ~200 MB tar in tens of seconds on a loaded 2-core machine).
    for (format, files) in [("spdx", false), ("cyclonedx", true)] {
        let out = w.join(format!("deb-{format}-{files}.json"));
        let mut args = vec![
            "sbom",
            l,
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ];
        if files {
            args.push("--files");
        }
        let t0 = std::time::Instant::now();
        ok_in(w, &args);
        let doc = read_json(&out);
        let mut got: Vec<String> = if format == "cyclonedx" {
            let mut v = Vec::new();
            for layer in doc["components"].as_array().unwrap() {
                for c in layer["components"].as_array().into_iter().flatten() {
                    let Some(arch) = c["properties"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["name"] == "strata:dpkg:architecture")
                    else {
                        continue;
                    };
                    v.push(format!(
                        "{} {} {}",
                        c["name"].as_str().unwrap(),
                        c["version"].as_str().unwrap(),
                        arch["value"].as_str().unwrap()
                    ));
                }
            }
            v
        } else {
            doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| {
                    let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
                    let arch = purl.strip_prefix("pkg:deb/")?.split("?arch=").nth(1)?;
                    Some(format!(
                        "{} {} {arch}",
                        p["name"].as_str()?,
                        p["versionInfo"].as_str()?
                    ))
                })
                .collect()
        };
        got.sort();
        let files_n = doc["files"].as_array().map_or(0, Vec::len)
            + doc["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|l| l["components"].as_array().into_iter().flatten())
                .filter(|c| c["type"] == "file")
                .count();
        eprintln!(
            "sbom of the debootstrap image: {format}{} in {:.2} s (debug build), {} Debian packages, {files_n} files, {} bytes",
            if files { " --files" } else { "" },
            t0.elapsed().as_secs_f64(),
            got.len(),
            fs::metadata(&out).unwrap().len()
        );
        assert_eq!(
            got, want,
            "{format}: the SBOM's Debian packages are not dpkg-query's"
        );
        if let Some(py) = &py {
            validate(py, format, &out);
        }
    }
}
