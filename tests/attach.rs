//! Attachments: `strata attach`, `sign`, `attest`, `verify --key`, and
//! push/pull of attachments against Debian's real `docker-registry` (2.8,
//! no referrers API: the referrers tag schema), with the faults and hostile
//! answers of `tests/proxy.rs` in front of it. Signatures and envelopes are
//! checked by independent implementations in Python (`cryptography` for the
//! cosign-style ECDSA signature, `securesystemslib` for the DSSE envelope);
//! keys come from `openssl genpkey`.
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::proxy::{summary, Action, Proxy, Rule};
use crate::registry::{layer_of, raw_digest, run_env, text, tree_bytes, Registry};
use crate::util::*;

const SPDX: &str = "application/spdx+json";
const SIG_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const DSSE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A P-256 key pair: `NAME.pem` (PKCS#8) and `NAME.pub.pem`.
fn keypair(d: &Path, name: &str) {
    sh(
        d,
        &format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}.pem && openssl pkey -in {name}.pem -pubout -out {name}.pub.pem"
        ),
    );
}

/// An in-toto statement about `digest`, at `statement.json`.
fn statement(d: &Path, digest: &str) {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let st = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"app","digest":{{"sha256":"{hex}"}}}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{{"buildDefinition":{{"buildType":"https://example.com/strata-test"}}}}}}"#
    );
    fs::write(d.join("statement.json"), st).unwrap();
}

/// A one-layer image at `out` tagged `tag`; returns its digest.
fn image(d: &Path, out: &str, tag: &str) -> String {
    let l = layer_of(d, "base", &[("etc/os-release", b"ID=strata\n".to_vec())]);
    let digest = ok_in(d, &["image", "--out", out, "--layer", &l, "--tag", tag]);
    fs::write(d.join("sbom.spdx.json"), br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    digest.trim().to_string()
}

/// Attach the SBOM to `img`.
fn attach_sbom(d: &Path, img: &str) {
    let annotation = "org.example.kind=sbom";
    let args = ["attach", img, "sbom.spdx.json", "--artifact-type", SPDX];
    ok_in(d, &[&args[..], &["--annotation", annotation]].concat());
}

/// Sign `img` with `k.pem`.
fn sign(d: &Path, img: &str) {
    ok_in(
        d,
        &["sign", img, "--key", "k.pem", "--identity", "example/app"],
    );
}

/// Attest `statement.json` about `img` with `k.pem`.
fn attest(d: &Path, img: &str) {
    let args = ["attest", img, "--statement", "statement.json"];
    ok_in(d, &[&args[..], &["--key", "k.pem"]].concat());
}

/// `img` with an SBOM attached, signed with `k.pem`, and attested.
fn attach_all(d: &Path, img: &str, digest: &str) {
    statement(d, digest);
    attach_sbom(d, img);
    sign(d, img);
    attest(d, img);
}

fn inspect_json(d: &Path, img: &str) -> Value {
    serde_json::from_str(&ok_in(d, &["inspect", img, "--json"])).unwrap()
}

/// The layout's index.json entries that are attachments, by artifact type.
fn entries(d: &Path, img: &str) -> Vec<Value> {
    let idx: Value =
        serde_json::from_slice(&fs::read(d.join(img).join("index.json")).unwrap()).unwrap();
    idx["manifests"].as_array().unwrap().clone()
}

fn blob(d: &Path, img: &str, digest: &str) -> Vec<u8> {
    fs::read(
        d.join(img)
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
}

fn manifest_of(d: &Path, img: &str, digest: &str) -> Value {
    serde_json::from_slice(&blob(d, img, digest)).unwrap()
}

fn one_line(s: &str) {
    assert_eq!(s.trim_end().lines().count(), 1, "not one line: {s}");
    assert!(s.starts_with("strata: "), "{s}");
}

/// strata `args` fails with `code` and one line saying `says`; returns it.
fn fails(d: &Path, args: &[&str], code: i32, says: &str) -> String {
    let e = fail_in(d, args, code);
    one_line(&e);
    assert!(e.contains(says), "{args:?}: expected {says:?} in: {e}");
    e
}

#[test]
fn every_command_still_works_on_a_layout_with_attachments() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") {
        return;
    }
    keypair(d, "k");
    let digest = image(d, "img", "app:1");
    attach_all(d, "img", &digest);
    assert_eq!(entries(d, "img").len(), 5);

    // The image is still "the image".
    assert_eq!(ok_in(d, &["digest", "img"]).trim(), digest);
    let j: Value = serde_json::from_str(&ok_in(d, &["digest", "img", "--json"])).unwrap();
    assert_eq!(j["manifest"], digest.as_str());
    let out = ok_in(d, &["verify", "img"]);
    assert!(out.starts_with(&format!("ok: {digest}")), "{out}");
    let out = ok_in(d, &["verify", "img", "--key", "k.pub.pem"]);
    assert!(
        out.contains("signed: 2 signature(s), 1 attestation(s) verified"),
        "{out}"
    );

    // inspect lists them: type, digest, size.
    let out = ok_in(d, &["inspect", "img"]);
    assert!(out.contains("attachments 4"), "{out}");
    for ty in [SPDX, SIG_TYPE, DSSE_TYPE, "cosign-signature-tag"] {
        assert!(out.contains(ty), "{ty}: {out}");
    }
    let j = inspect_json(d, "img");
    assert_eq!(j["digest"], digest.as_str());
    let att = j["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 4);
    let sbom = att.iter().find(|a| a["artifactType"] == SPDX).unwrap();
    assert_eq!(sbom["size"], 26);
    assert_eq!(sbom["annotations"]["org.example.kind"], "sbom");

    // Composing on it, indexing it, archiving, diffing: the image is used.
    let l2 = layer_of(d, "app", &[("app/x", b"x\n".to_vec())]);
    ok_in(
        d,
        &["image", "--base", "img", "--layer", &l2, "--out", "derived"],
    );
    assert_eq!(
        inspect_json(d, "derived")["layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let idx = ok_in(d, &["index", "--out", "idx", "img"]);
    // An index takes attachments too.
    attach_sbom(d, "idx");
    assert_eq!(ok_in(d, &["digest", "idx"]), idx);
    assert!(ok_in(d, &["inspect", "idx"]).contains("attachments 1"));
    ok_in(d, &["verify", "idx"]);
    ok_in(
        d,
        &[
            "image",
            "--base",
            "img",
            "--format",
            "oci-archive",
            "--out",
            "img.tar",
        ],
    );
    ok_in(d, &["verify", "img.tar"]);
    let attach_to = |img| ["attach", img, "sbom.spdx.json", "--artifact-type", SPDX];
    fails(d, &attach_to("img.tar"), 1, "not an archive");
    let bad_type = [&attach_to("img")[..4], &["no-type"]].concat();
    fails(d, &bad_type, 2, "expected a media type");
    ok_in(d, &["diff", "img", "img"]);
    ok_in(d, &["normalize", "img", "norm"]);
    assert_eq!(ok_in(d, &["digest", "norm"]).trim(), digest);
    if have_tool("skopeo") {
        // Other tools pick the image by its ref name.
        sh(d, "skopeo copy oci:img:1 oci:copied:x");
        assert_eq!(ok_in(d, &["digest", "copied"]).trim(), digest);
    }

    // Deterministic: the same attachments in another order, twice, give the
    // same bytes everywhere; attaching again changes nothing.
    image(d, "again", "app:1");
    attest(d, "again");
    sign(d, "again");
    attach_sbom(d, "again");
    sign(d, "again");
    assert_eq!(tree_bytes(&d.join("again")), tree_bytes(&d.join("img")));

    // Referrers another tool listed without `artifactType` are still
    // attachments (they have a `subject`), not images.
    let index = d.join("img/index.json");
    let mut idx: Value = serde_json::from_slice(&fs::read(&index).unwrap()).unwrap();
    for m in idx["manifests"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("artifactType");
    }
    fs::write(&index, serde_json::to_vec(&idx).unwrap()).unwrap();
    assert_eq!(ok_in(d, &["digest", "img"]).trim(), digest);
    ok_in(d, &["verify", "img", "--key", "k.pub.pem"]);
    assert!(ok_in(d, &["inspect", "img"]).contains("attachments 4"));
}

#[test]
fn signing_failures_are_one_line_and_never_show_a_key() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") {
        return;
    }
    keypair(d, "k");
    keypair(d, "other");
    let digest = image(d, "img", "app:1");
    statement(d, &digest);
    let key_body: String = fs::read_to_string(d.join("k.pem"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();

    // No signature yet; a public key is no signing key; a missing key file;
    // both --key and --signer, or neither.
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["verify", "img", "--key", "k.pub.pem"],
            1,
            "has no signature attached",
        ),
        (
            &["sign", "img", "--key", "k.pub.pem"],
            1,
            "k.pub.pem: no PEM private key",
        ),
        (&["sign", "img", "--key", "nope.pem"], 1, "nope.pem"),
        (
            &["sign", "img", "--key", "k.pem", "--signer", "false"],
            2,
            "cannot be used with",
        ),
        (&["sign", "img"], 2, "--key"),
    ];
    for (args, code, says) in cases {
        fails(d, args, code, says);
    }
    let e = fails(
        d,
        &["verify", "img", "--key", "k.pem"],
        1,
        "no PEM public key",
    );
    assert!(!e.contains(&key_body), "{e}");

    // A statement about another image is refused.
    statement(d, &format!("sha256:{}", "0".repeat(64)));
    let attest = ["attest", "img", "--statement", "statement.json"];
    fails(
        d,
        &[&attest[..], &["--key", "k.pem"]].concat(),
        1,
        "no subject of the statement",
    );
    statement(d, &digest);

    // External signers: DER and base64 answers; a failing or babbling one.
    let der = r#"["openssl","dgst","-sha256","-sign","k.pem"]"#;
    ok_in(d, &["sign", "img", "--signer", der]);
    let out = ok_in(d, &["verify", "img", "--key", "k.pub.pem"]);
    assert!(out.contains("signed: 2 signature(s)"), "{out}");
    let b64 = r#"["sh","-c","openssl dgst -sha256 -sign k.pem | base64 -w0"]"#;
    ok_in(d, &[&attest[..], &["--signer", b64]].concat());
    let out = ok_in(d, &["verify", "img", "--key", "k.pub.pem"]);
    assert!(out.contains("1 attestation(s)"), "{out}");
    let signers: [(&str, &str); 2] = [
        ("false", "signer false: failed"),
        ("echo hello", "not an ASN.1 DER"),
    ];
    for (signer, says) in signers {
        fails(d, &["sign", "img", "--signer", signer], 1, says);
    }

    // The wrong key.
    fails(d, &["verify", "img", "--key", "other.pub.pem"], 1, "verif");

    // A tampered payload: one byte of the simple signing blob.
    let sig = entries(d, "img")
        .into_iter()
        .find(|e| e["artifactType"] == SIG_TYPE)
        .unwrap();
    let m = manifest_of(d, "img", sig["digest"].as_str().unwrap());
    let payload = m["layers"][0]["digest"].as_str().unwrap();
    tamper(d, "img", payload, 20);
    let hex = payload.strip_prefix("sha256:").unwrap();
    let e = fails(d, &["verify", "img", "--key", "k.pub.pem"], 1, hex);
    // Nothing above ever printed the key.
    assert!(!e.contains(&key_body));
}

/// The Python side: `cryptography` checks the cosign signature (referrer
/// and `.sig` tag form) over the payload and the payload's digest against
/// the manifest's; `securesystemslib` checks the DSSE envelope. With
/// `expect_ok` false every check must fail.
const PY_VERIFY: &str = r#"
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.exceptions import InvalidSignature
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from securesystemslib.exceptions import VerificationError

img, pub_path, expect_ok = sys.argv[1], sys.argv[2], sys.argv[3] == "ok"
def blob(d):
    return open(os.path.join(img, "blobs/sha256", d.split(":")[1]), "rb").read()
pem = open(pub_path, "rb").read()
pub = serialization.load_pem_public_key(pem)
index = json.load(open(os.path.join(img, "index.json")))
entries = index["manifests"]
image = [e for e in entries if "artifactType" not in e
         and not e.get("annotations", {}).get("org.opencontainers.image.ref.name", "").endswith(".sig")][0]
manifest_ok = hashlib.sha256(blob(image["digest"])).hexdigest() == image["digest"].split(":")[1]
sigs = [e for e in entries if e.get("artifactType") == "application/vnd.dev.cosign.artifact.sig.v1+json"
        or e.get("annotations", {}).get("org.opencontainers.image.ref.name", "").endswith(".sig")]
assert len(sigs) == 2, sigs
results = []
for e in sigs:
    m = json.loads(blob(e["digest"]))
    layer = m["layers"][0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = blob(layer["digest"])
    sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    try:
        pub.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
        ok = True
    except InvalidSignature:
        ok = False
    claimed = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    results.append(ok and manifest_ok and claimed == image["digest"])
envs = [e for e in entries if e.get("artifactType") == "application/vnd.dsse.envelope.v1+json"]
assert len(envs) == 1, envs
m = json.loads(blob(envs[0]["digest"]))
env = Envelope.from_dict(json.loads(blob(m["layers"][0]["digest"])))
key = SSlibKey("", "ecdsa", "ecdsa-sha2-nistp256", {"public": pem.decode()})
try:
    env.verify([key], 1)
    statement = json.loads(env.payload)
    results.append(manifest_ok and any(s["digest"]["sha256"] == image["digest"].split(":")[1]
                                       for s in statement["subject"]))
except VerificationError:
    results.append(False)
if expect_ok:
    assert all(results), results
else:
    assert not any(results), results
print("python:", results)
"#;

/// Flip one byte of the blob `digest` of `img` in place (as an attacker
/// would, leaving its name).
fn tamper(d: &Path, img: &str, digest: &str, at: usize) {
    let path = d
        .join(img)
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut bytes = fs::read(&path).unwrap();
    bytes[at] ^= 1;
    fs::remove_file(&path).unwrap();
    fs::write(&path, &bytes).unwrap();
}

fn have_python_verifiers() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography, securesystemslib"])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        ok,
        "python3 with cryptography and securesystemslib is not installed (.ci/run installs them)",
    )
}

fn py_verify(d: &Path, img: &str, expect: &str) {
    fs::write(d.join("verify.py"), PY_VERIFY).unwrap();
    sh(d, &format!("python3 verify.py {img} k.pub.pem {expect}"));
}

#[test]
fn python_verifies_what_strata_signs_and_tampering_fails_both() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") || !have_python_verifiers() {
        return;
    }
    keypair(d, "k");
    let digest = image(d, "img", "app:1");
    attach_all(d, "img", &digest);
    py_verify(d, "img", "ok");
    ok_in(d, &["verify", "img", "--key", "k.pub.pem"]);

    // Two runs, same signature manifests (RFC 6979: no random nonce).
    image(d, "twice", "app:1");
    attach_all(d, "twice", &digest);
    assert_eq!(entries(d, "img"), entries(d, "twice"));

    // One byte of the payloads: both signatures' payload (one blob, shared)
    // and the envelope's statement.
    fs::create_dir(d.join("p")).unwrap();
    sh(d, "cp -r img p/img");
    for e in entries(d, "p/img") {
        let is_sig = e["artifactType"] == SIG_TYPE || e["artifactType"] == DSSE_TYPE;
        if is_sig {
            let m = manifest_of(d, "p/img", e["digest"].as_str().unwrap());
            let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
            let at = if e["artifactType"] == DSSE_TYPE {
                14
            } else {
                40
            };
            tamper(d, "p/img", &layer, at);
        }
    }
    py_verify(d, "p/img", "fail");
    fails(d, &["verify", "p/img", "--key", "k.pub.pem"], 1, "");

    // One byte of the image (its manifest): no signature names it any more.
    fs::create_dir(d.join("i")).unwrap();
    sh(d, "cp -r img i/img");
    tamper(d, "i/img", &digest, 30);
    py_verify(d, "i/img", "fail");
    fails(d, &["verify", "i/img", "--key", "k.pub.pem"], 1, "");
}

/// A registry, and `img` tagged `HOST/app:1` with every kind of
/// attachment: (registry, host, tag, image digest).
fn signed_image_and_registry(d: &Path) -> Option<(Registry, String, String, String)> {
    let reg = Registry::start(d, "reg", None)?;
    let host = reg.host();
    keypair(d, "k");
    let tag = format!("{host}/app:1");
    let digest = image(d, "img", &tag);
    attach_all(d, "img", &digest);
    Some((reg, host, tag, digest))
}

#[test]
fn attachments_go_up_by_the_tag_schema_and_come_back_with_referrers() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") || !have_tool("skopeo") {
        return;
    }
    let Some((_reg, host, tag, digest)) = signed_image_and_registry(d) else {
        return;
    };

    let out = run_env(d, &["push", "img", &format!("http://{tag}")], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("attached 4 (referrers tag schema)"), "{err}");
    assert_eq!(text(&out.stdout).trim(), format!("{tag}@{digest}"));

    // The registry's digests are strata's: the image, each referrer, the
    // `.sig` tag, and the tag schema index lists the three referrers.
    assert_eq!(raw_digest(d, &format!("docker://{tag}")), digest);
    let hex = digest.strip_prefix("sha256:").unwrap();
    for e in entries(d, "img").iter().skip(1) {
        let ed = e["digest"].as_str().unwrap();
        assert_eq!(raw_digest(d, &format!("docker://{host}/app@{ed}")), ed);
        if e["artifactType"].is_null() {
            let sig_tag = format!("docker://{host}/app:sha256-{hex}.sig");
            assert_eq!(raw_digest(d, &sig_tag), ed);
        }
    }
    let schema = format!("docker://{host}/app:sha256-{hex}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", &schema])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    let idx: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let listed: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{idx}");
    for ty in [SPDX, SIG_TYPE, DSSE_TYPE] {
        assert!(listed.contains(&ty), "{ty}: {idx}");
    }
    let schema_digest = raw_digest(d, &schema);

    // Pulled back with --referrers: the same layout, byte for byte.
    let out = ok_in(
        d,
        &[
            "pull",
            &format!("http://{tag}"),
            "--out",
            "back",
            "--referrers",
        ],
    );
    assert_eq!(out.trim(), format!("{host}/app@{digest}"));
    assert_eq!(tree_bytes(&d.join("back")), tree_bytes(&d.join("img")));
    let listing = ok_in(d, &["inspect", "back"]);
    assert!(listing.contains("attachments 4"), "{listing}");
    ok_in(d, &["verify", "back", "--key", "k.pub.pem"]);
    // Without --referrers: the image only.
    ok_in(d, &["pull", &format!("http://{tag}"), "--out", "plain"]);
    assert_eq!(entries(d, "plain").len(), 1);

    // Pushing again keeps the tag schema index as it was (deterministic).
    ok_in(d, &["push", "back", &format!("http://{tag}")]);
    assert_eq!(raw_digest(d, &schema), schema_digest);

    // skopeo still copies the image.
    sh(
        d,
        &format!("skopeo copy --src-tls-verify=false docker://{tag} oci:copied:x"),
    );
    assert_eq!(ok_in(d, &["digest", "copied"]).trim(), digest);
}

#[test]
fn hostile_referrer_answers_are_refused_and_an_oci_subject_skips_the_tag_schema() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") {
        return;
    }
    let Some((reg, _host, tag, digest)) = signed_image_and_registry(d) else {
        return;
    };
    ok_in(d, &["push", "img", &format!("http://{tag}")]);
    let sbom = entries(d, "img")
        .into_iter()
        .find(|e| e["artifactType"] == SPDX)
        .unwrap();
    let rule = |method, target_has: &str, action| Rule {
        method,
        target_has: target_has.into(),
        skip: 0,
        times: 1,
        action,
    };
    let index_type = "Content-Type: application/vnd.oci.image.index.v1+json\r\n".to_string();
    let listing = |manifests: Vec<Value>| {
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap()
    };
    let pull = |port: u16, out: &str| {
        run_env(
            d,
            &[
                "pull",
                &format!("http://127.0.0.1:{port}/app:1"),
                "--out",
                out,
                "--referrers",
            ],
            &[],
            None,
        )
    };

    // Too many referrers; not JSON; nested too deep.
    let many: Vec<Value> = (0..1001)
        .map(|i| serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{i:064x}"), "size": 1}))
        .collect();
    let hostile: Vec<(Vec<u8>, &str)> = vec![
        (listing(many), "more than the limit"),
        (b"<html>not json</html>".to_vec(), "malformed JSON"),
        ("[".repeat(200).into_bytes(), "nested deeper"),
    ];
    for (i, (body, says)) in hostile.into_iter().enumerate() {
        let proxy = Proxy::start(
            reg.port,
            vec![rule(
                "GET",
                "/referrers/",
                Action::Reply(200, index_type.clone(), body),
            )],
        );
        let out = pull(proxy.port, &format!("h{i}"));
        assert_eq!(out.status.code(), Some(1), "{}", summary(&proxy.seen()));
        let e = text(&out.stderr);
        let last = e.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("strata: ") && last.contains(says),
            "{says}: {e}"
        );
    }

    // A list naming a manifest that is not the image's referrer (the image
    // itself) and the real SBOM: only the SBOM (and the .sig tag) come.
    let proxy = Proxy::start(
        reg.port,
        vec![rule(
            "GET",
            "/referrers/",
            Action::Reply(
                200,
                index_type.clone(),
                listing(vec![
                    serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": blob(d, "img", &digest).len()}),
                    sbom.clone(),
                ]),
            ),
        )],
    );
    let out = pull(proxy.port, "api");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<Value> = entries(d, "api");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().any(|e| e["digest"] == sbom["digest"]));
    let schema_gets = proxy
        .seen()
        .iter()
        .filter(|s| {
            s.method == "GET"
                && s.target
                    .ends_with(&format!("/manifests/sha256-{}", &digest[7..]))
        })
        .count();
    assert_eq!(schema_gets, 0, "the API answered: no tag schema");

    // A registry that answers the referrer's PUT with OCI-Subject lists it
    // itself: no tag schema index is written.
    let subject = format!("OCI-Subject: {digest}\r\n");
    let mut r = rule("PUT", "/manifests/sha256:", Action::Answer(201, subject));
    r.times = 10;
    let proxy = Proxy::start(reg.port, vec![r]);
    let out = run_env(
        d,
        &[
            "push",
            "img",
            &format!("http://127.0.0.1:{}/api:1", proxy.port),
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("(referrers API)"),
        "{}",
        text(&out.stderr)
    );
    let seen = proxy.seen();
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "PUT" && s.target.ends_with(&format!("sha256-{}", &digest[7..]))),
        "{}",
        summary(&seen)
    );
}

/// `verify --key --ref TAG`: in a layout holding two images, the named
/// image's signatures are checked; the other, unsigned, fails; without
/// `--ref` the choice is refused in one line; `--ref` needs `--key`.
#[test]
fn verify_key_checks_the_image_ref_names() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keypair(d, "k");
    image(d, "img", "app:one");
    let l = layer_of(d, "other", &[("etc/motd", b"two\n".to_vec())]);
    ok_in(
        d,
        &["image", "--out", "two", "--layer", &l, "--tag", "app:two"],
    );
    // One layout with both images: the second's blobs and index entry added.
    for e in fs::read_dir(d.join("two/blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let dest = d.join("img/blobs/sha256").join(e.file_name());
        if !dest.exists() {
            fs::copy(e.path(), dest).unwrap();
        }
    }
    let read = |p: &str| -> Value {
        serde_json::from_slice(&fs::read(d.join(p).join("index.json")).unwrap()).unwrap()
    };
    let mut idx = read("img");
    let other = read("two")["manifests"][0].clone();
    idx["manifests"].as_array_mut().unwrap().push(other);
    fs::write(d.join("img/index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();

    let args = ["sign", "img", "--key", "k.pem", "--ref", "one"];
    ok_in(d, &[&args[..], &["--identity", "example/app"]].concat());
    let out = ok_in(d, &["verify", "img", "--key", "k.pub.pem", "--ref", "one"]);
    assert!(out.contains("signed: 2 signature(s)"), "{out}");
    fails(
        d,
        &["verify", "img", "--key", "k.pub.pem", "--ref", "two"],
        1,
        "signature",
    );
    fails(d, &["verify", "img", "--key", "k.pub.pem"], 1, "img");
    fail_in(d, &["verify", "img", "--ref", "one"], 2);
}

/// `strata diff` of an image and the same image signed: only index.json's
/// attachment entries differ; the signature is never paired with an image.
#[test]
fn diff_of_a_signed_image_shows_only_the_attachments() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keypair(d, "k");
    image(d, "a", "app:1");
    image(d, "b", "app:1");
    sign(d, "b");
    let out = strata()
        .current_dir(d)
        .args(["diff", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(": ")).collect();
    assert!(!lines.is_empty(), "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("index.json: manifests[")),
        "{text}"
    );
    assert!(!text.contains("only in"), "{text}");
}
