//! A signed image with attachments (issue #24) still runs: the layout holds
//! the image plus an SBOM referrer, a signature referrer, the cosign `.sig`
//! manifest and a DSSE attestation, and `strata load` (docker and podman),
//! `podman run oci:LAYOUT:REF`, `umoci unpack` + `runc run` and a
//! docker-archive composed on it all run the image, never an attachment.

use std::fs;

use super::{
    build, busybox_entries, docker_run, engines, expect_all, layer, podman_run, same, umoci_runc,
    REF,
};
use crate::util::ok_in;

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

#[test]
fn a_signed_image_with_attachments_loads_and_runs() {
    let Some(e) = engines() else { return };
    let work = e.work("attached");
    let w = &work.0;
    let bb = layer(
        w,
        "att",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries()),
    );
    let cmd = r#"["/bin/sh","-c","echo signed and attached"]"#;
    let img = build(
        w,
        "att",
        &["--layer", &bb, "--cmd", cmd, "--env", "PATH=/bin"],
    );
    let layout = img.layout.to_str().unwrap();
    let digest = ok_in(w, &["digest", layout]);
    e.ok(
        w,
        "sh",
        &[
            "-c",
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem && echo '{}' > sbom.json",
        ],
    );
    let sbom = ["attach", layout, "sbom.json", "--artifact-type"];
    ok_in(w, &[&sbom[..], &["application/spdx+json"]].concat());
    ok_in(w, &["sign", layout, "--key", "k.pem"]);
    let hex = digest.trim().trim_start_matches("sha256:");
    let st = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"att","digest":{{"sha256":"{hex}"}}}}],"predicateType":"https://example.com/p","predicate":{{}}}}"#
    );
    fs::write(w.join("st.json"), st).unwrap();
    ok_in(
        w,
        &["attest", layout, "--statement", "st.json", "--key", "k.pem"],
    );
    assert!(ok_in(w, &["inspect", layout]).contains("attachments 4"));

    // strata load picks the image and its tag.
    for engine in ["docker", "podman"] {
        let r = e.run(w, STRATA, &["load", layout, "--engine", engine]);
        if let Some(m) = r.failure() {
            panic!("{m}");
        }
    }
    // A docker-archive composed on it holds the image only.
    let archive = ["image", "--base", layout, "--format", "docker-archive"];
    let tag = "strata-att-derived:1";
    ok_in(
        w,
        &[&archive[..], &["--out", "derived.tar", "--tag", tag]].concat(),
    );
    e.ok(w, "docker", &["load", "-i", "derived.tar"]);
    let oci = format!("oci:{layout}:{REF}");
    let runs = [
        ("strata load + docker run", docker_run(&e, w, &img.tag, &[])),
        (
            "strata load + podman run",
            podman_run(&e, w, &format!("docker.io/library/{}", img.tag), &[]),
        ),
        ("podman run oci:", podman_run(&e, w, &oci, &[])),
        (
            "umoci unpack + runc run",
            umoci_runc(&e, w, &img.layout, REF, "attached"),
        ),
        (
            "docker load derived + docker run",
            docker_run(&e, w, tag, &[]),
        ),
    ];
    expect_all(&runs, 0, "signed and attached\n", same);
}
