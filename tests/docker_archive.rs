//! Legacy docker-archives (`docker save` before Docker 25, `podman save`,
//! skopeo's `docker-archive:`), plain and compressed, crafted here from an
//! image strata built, so no engine is needed: they read as the image they
//! hold (same digest as its OCI twin), serve as a base, and hostile ones are
//! refused with one line. `tests/engines.rs` does the same with archives the
//! real producers wrote.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::errors::rejects;
use crate::util::{fixture_tree, have_tool, ok_in, sh, tempdir};

/// A member of a crafted archive.
#[derive(Clone)]
pub enum M {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
}

fn file(name: &str, bytes: impl Into<Vec<u8>>) -> M {
    M::File(name.to_string(), bytes.into())
}

/// Write a tar of `members`, in order (0:0, mtime 0).
pub fn write_tar(path: &Path, members: &[M]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match m {
            M::File(name, bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, name, bytes.as_slice()).unwrap();
            }
            M::Dir(name) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
            M::Symlink(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// An image strata built with an uncompressed layer: its OCI layout, digest,
/// config bytes and layer bytes.
pub struct Built {
    pub digest: String,
    pub config_hex: String,
    pub config: Vec<u8>,
    pub layer_hex: String,
    pub layer: Vec<u8>,
}

/// `strata image` of the fixture tree as an uncompressed layer, with Env and
/// Cmd, as `NAME.oci`.
pub fn built(d: &Path, name: &str, env: &str) -> Built {
    built_with(d, name, env, "none")
}

/// [`built`] with the layer compressed by `compression`.
pub fn built_with(d: &Path, name: &str, env: &str, compression: &str) -> Built {
    let tree = d.join(format!("{name}-tree"));
    fixture_tree(&tree, false);
    fs::write(tree.join("etc/name"), name).unwrap();
    let tree = tree.to_str().unwrap();
    let (tar, desc) = (format!("{name}.tar.layer"), format!("{name}.json"));
    ok_in(
        d,
        &[
            "layer",
            "--compression",
            compression,
            "--out",
            &tar,
            "--descriptor",
            &desc,
            tree,
        ],
    );
    let out = format!("{name}.oci");
    let layer = format!("{tar}:{desc}");
    let digest = ok_in(
        d,
        &[
            "image",
            "--out",
            &out,
            "--layer",
            &layer,
            "--env",
            env,
            "--cmd",
            "/bin/app",
            "--tag",
            &format!("{name}:1"),
        ],
    )
    .trim()
    .to_string();
    let j: Value = serde_json::from_str(&ok_in(d, &["digest", "--json", &out])).unwrap();
    let hex = |v: &Value| {
        v.as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let (config_hex, layer_hex) = (hex(&j["config"]), hex(&j["layers"][0]));
    let blob = |h: &str| fs::read(d.join(&out).join("blobs/sha256").join(h)).unwrap();
    Built {
        digest,
        config: blob(&config_hex),
        layer: blob(&layer_hex),
        config_hex,
        layer_hex,
    }
}

/// The members `docker save` (20.10) writes for one image: `<id>/` with
/// VERSION, json, layer.tar; `<config>.json`; manifest.json; repositories.
pub fn docker_members(b: &Built, id: &str, tag: &str) -> Vec<M> {
    vec![
        file(&format!("{}.json", b.config_hex), b.config.clone()),
        M::Dir(format!("{id}/")),
        file(&format!("{id}/VERSION"), "1.0"),
        file(&format!("{id}/json"), r#"{"id":"x"}"#),
        file(&format!("{id}/layer.tar"), b.layer.clone()),
        file(
            "manifest.json",
            format!(
                r#"[{{"Config":"{}.json","RepoTags":["{tag}"],"Layers":["{id}/layer.tar"]}}]"#,
                b.config_hex
            ),
        ),
        file("repositories", r#"{"demo":{"1":"x"}}"#),
    ]
}

/// Replace manifest.json in `members`.
fn with_manifest(mut members: Vec<M>, manifest: &str) -> Vec<M> {
    for m in &mut members {
        if let M::File(name, bytes) = m {
            if name == "manifest.json" {
                *bytes = manifest.as_bytes().to_vec();
            }
        }
    }
    members
}

/// docker save, podman save and gzip/zstd-compressed archives of one image
/// all read as that image: `digest` is its OCI twin's (strata's manifest for
/// an uncompressed layer is what the archive's synthesized manifest is),
/// `verify` passes, `inspect` shows its config, `image --base` composes on it
/// (base layer referenced byte for byte), and `diff` finds nothing.
#[test]
fn legacy_archives_read_as_the_image_they_hold() {
    let t = tempdir();
    let d = t.path();
    let b = built(d, "base", "FOO=bar");
    let id = "e5bd07d01d9ab3c95e04c53a6c686799210cd2c2b3ff138b51d088e1652c3431";
    write_tar(&d.join("docker.tar"), &docker_members(&b, id, "demo:1"));
    // podman/skopeo: the layer at the top as <diff_id>.tar, <id>/layer.tar a symlink to it.
    let top = format!("{}.tar", b.layer_hex);
    let cfg = format!("{}.json", b.config_hex);
    let podman = vec![
        file(&top, b.layer.clone()),
        file(&cfg, b.config.clone()),
        M::Symlink("6a61/layer.tar".into(), format!("../{top}")),
        file("6a61/VERSION", "1.0"),
        file(
            "manifest.json",
            format!(
                r#"[{{"Config":"{cfg}","RepoTags":["docker.io/library/demo:1"],"Layers":["6a61/layer.tar"]}}]"#
            ),
        ),
    ];
    write_tar(&d.join("podman.tar"), &podman);
    sh(d, "gzip -c docker.tar > docker.tar.gz");
    let zst = zstd::encode_all(fs::read(d.join("podman.tar")).unwrap().as_slice(), 3).unwrap();
    fs::write(d.join("podman.tar.zst"), zst).unwrap();
    let layer_digest = format!("sha256:{}", b.layer_hex);
    for f in [
        "docker.tar",
        "podman.tar",
        "docker.tar.gz",
        "podman.tar.zst",
    ] {
        assert_eq!(ok_in(d, &["digest", f]).trim(), b.digest, "digest {f}");
        let j: Value = serde_json::from_str(&ok_in(d, &["digest", "--json", f])).unwrap();
        assert_eq!(j["config"], format!("sha256:{}", b.config_hex), "{f}");
        // A plain layer is referenced as it is: its digest is its diff_id.
        assert_eq!(j["layers"][0], layer_digest, "{f}");
        assert_eq!(j["diffIds"][0], layer_digest, "{f}");
        let v = ok_in(d, &["verify", f]);
        assert!(
            v.starts_with(&format!("ok: {}", b.digest)),
            "verify {f}: {v}"
        );
        let i: Value = serde_json::from_str(&ok_in(d, &["inspect", "--json", f])).unwrap();
        assert_eq!(
            i["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        assert!(i.to_string().contains("FOO=bar"), "inspect {f}: {i}");
        let diff = ok_in(d, &["diff", "--semantic", f, "base.oci"]);
        assert!(diff.contains("identical"), "diff {f} base.oci: {diff}");
    }
    // --ref picks by RepoTag, with or without Docker Hub's implied parts.
    for r in ["demo:1", "docker.io/library/demo:1"] {
        assert_eq!(
            ok_in(d, &["digest", "--ref", r, "podman.tar"]).trim(),
            b.digest
        );
        assert_eq!(
            ok_in(d, &["digest", "--ref", r, "docker.tar"]).trim(),
            b.digest
        );
    }
    // As a base: the same image whichever archive it came from.
    fs::create_dir_all(d.join("add/etc")).unwrap();
    fs::write(d.join("add/etc/motd"), "added\n").unwrap();
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "add.tgz",
            "--descriptor",
            "add.json",
            "add",
        ],
    );
    let mut composed = Vec::new();
    for (i, f) in ["base.oci", "docker.tar", "podman.tar.zst", "docker.tar.gz"]
        .iter()
        .enumerate()
    {
        let out = format!("on-{i}.tar");
        let dg = ok_in(
            d,
            &[
                "image",
                "--base",
                f,
                "--layer",
                "add.tgz:add.json",
                "--cmd",
                "/bin/sh",
                "--format",
                "docker-archive",
                "--out",
                &out,
            ],
        );
        let j: Value = serde_json::from_str(&ok_in(d, &["digest", "--json", &out])).unwrap();
        assert_eq!(
            j["layers"][0], layer_digest,
            "base layer kept byte for byte"
        );
        ok_in(d, &["verify", &out]);
        composed.push(dg);
    }
    // The archives name the base (docker.io/library/demo:1, the manifest's
    // base.name annotation); base.oci is untagged: named, it gives the same.
    assert!(
        composed[1..].windows(2).all(|w| w[0] == w[1]),
        "{composed:?}"
    );
    let named = ok_in(
        d,
        &[
            "image",
            "--base",
            "base.oci",
            "--layer",
            "add.tgz:add.json",
            "--cmd",
            "/bin/sh",
            "--annotation",
            "org.opencontainers.image.base.name=docker.io/library/demo:1",
            "--format",
            "docker-archive",
            "--out",
            "on-named.tar",
        ],
    );
    assert_eq!(named, composed[1]);
    // normalize of a legacy archive: strata's own layer is already canonical.
    ok_in(d, &["normalize", "docker.tar.gz", "norm.oci"]);
    assert_eq!(ok_in(d, &["digest", "norm.oci"]).trim(), b.digest);
}

/// A layer member that is already gzip (as `docker load` accepts) keeps its
/// media type and bytes: the archive reads as the image strata built with
/// that gzip layer. bzip2 and xz members have no OCI media type: refused.
#[test]
fn compressed_layer_members_keep_their_compression() {
    let t = tempdir();
    let d = t.path();
    let b = built_with(d, "gz", "FOO=bar", "gzip");
    write_tar(&d.join("gz.tar"), &docker_members(&b, "abcd", "gz:1"));
    assert_eq!(ok_in(d, &["digest", "gz.tar"]).trim(), b.digest);
    let i: Value = serde_json::from_str(&ok_in(d, &["inspect", "--json", "gz.tar"])).unwrap();
    assert_eq!(
        i["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    ok_in(d, &["verify", "gz.tar"]);
    let mut bz = docker_members(&b, "abcd", "gz:1");
    for m in &mut bz {
        if let M::File(n, bytes) = m {
            if n.ends_with("layer.tar") {
                *bytes = b"BZh91AY&SY".to_vec();
            }
        }
    }
    write_tar(&d.join("bz.tar"), &bz);
    rejects(
        d,
        &["digest", "bz.tar"],
        1,
        &["strata: bz.tar:abcd/layer.tar: a bzip2 or xz-compressed layer"],
    );
}

/// `docker save a:1 b:1`: one entry per image; without a tag the choice is
/// refused, naming the tags; with one, that image.
#[test]
fn a_multi_image_archive_needs_a_tag() {
    let t = tempdir();
    let d = t.path();
    let a = built(d, "a", "WHO=a");
    let b = built(d, "b", "WHO=b");
    let (ida, idb) = ("1111", "2222");
    let mut members = docker_members(&a, ida, "a:1");
    members.retain(|m| !matches!(m, M::File(n, _) if n == "manifest.json" || n == "repositories"));
    members.extend(
        docker_members(&b, idb, "b:1")
            .into_iter()
            .filter(|m| !matches!(m, M::File(n, _) if n == "manifest.json" || n == "repositories")),
    );
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["a:1","a:latest"],"Layers":["{ida}/layer.tar"]}},{{"Config":"{}.json","RepoTags":["b:1"],"Layers":["{idb}/layer.tar"]}}]"#,
        a.config_hex, b.config_hex
    );
    members.push(file("manifest.json", manifest));
    write_tar(&d.join("two.tar"), &members);
    let untagged_manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["a:1"],"Layers":["{ida}/layer.tar"]}},{{"Config":"{}.json","RepoTags":null,"Layers":["{idb}/layer.tar"]}}]"#,
        a.config_hex, b.config_hex
    );
    write_tar(
        &d.join("untagged.tar"),
        &with_manifest(members.clone(), &untagged_manifest),
    );
    sh(d, "gzip -c two.tar > two.tar.gz");
    for f in ["two.tar", "two.tar.gz"] {
        for cmd in ["digest", "inspect"] {
            rejects(
                d,
                &[cmd, f],
                1,
                &[&format!(
                    "strata: {f}: holds 2 images; name one by tag (have: a:1, a:latest, b:1)"
                )],
            );
        }
        rejects(
            d,
            &["image", "--base", f, "--layer", "x:y", "--out", "o.oci"],
            1,
            &["holds 2 images", "(have: a:1, a:latest, b:1)"],
        );
        assert_eq!(
            ok_in(d, &["digest", "--ref", "a:latest", f]).trim(),
            a.digest
        );
        assert_eq!(ok_in(d, &["digest", "--ref", "a", f]).trim(), a.digest);
        assert_eq!(ok_in(d, &["digest", "--ref", "b:1", f]).trim(), b.digest);
        rejects(
            d,
            &["digest", "--ref", "c:1", f],
            1,
            &["no image tagged \"c:1\" (have: a:1, a:latest, b:1)"],
        );
        // An image without RepoTags is chosen by its image ID.
        let untagged = format!("sha256:{}", b.config_hex);
        assert_eq!(
            ok_in(d, &["digest", "--ref", &untagged, "untagged.tar"]).trim(),
            b.digest
        );
        // verify checks every image the archive holds.
        let v = ok_in(d, &["verify", f]);
        assert!(v.contains(&a.digest) && v.contains(&b.digest), "{v}");
    }
}

/// Hostile or broken archives: one line naming the archive and the member.
#[test]
fn hostile_legacy_archives_are_refused_with_one_line() {
    let t = tempdir();
    let d = t.path();
    let b = built(d, "base", "FOO=bar");
    let id = "abcd";
    let cfg = format!("{}.json", b.config_hex);
    let good = docker_members(&b, id, "demo:1");
    let case = |name: &str, manifest: &str, needles: &[&str]| {
        let members = with_manifest(docker_members(&b, id, "demo:1"), manifest);
        write_tar(&d.join(name), &members);
        for cmd in ["digest", "verify", "inspect"] {
            rejects(d, &[cmd, name], 1, needles);
        }
    };
    case(
        "escape.tar",
        &format!(r#"[{{"Config":"{cfg}","RepoTags":[],"Layers":["../../etc/passwd"]}}]"#),
        &["strata: escape.tar:manifest.json: manifest.json[0]: Layers: path \"../../etc/passwd\": '..' components are refused"],
    );
    case(
        "absolute.tar",
        r#"[{"Config":"/etc/passwd","RepoTags":[],"Layers":["abcd/layer.tar"]}]"#,
        &["strata: absolute.tar:manifest.json: manifest.json[0]: Config: path \"/etc/passwd\": absolute paths are refused"],
    );
    case(
        "missing.tar",
        &format!(r#"[{{"Config":"{cfg}","RepoTags":[],"Layers":["ffff/layer.tar"]}}]"#),
        &["strata: missing.tar: manifest.json[0]: layer 0 \"ffff/layer.tar\" is not in the archive"],
    );
    case(
        "count.tar",
        &format!(
            r#"[{{"Config":"{cfg}","RepoTags":[],"Layers":["abcd/layer.tar","abcd/layer.tar"]}}]"#
        ),
        &[
            "count.tar:manifest.json: image 0 lists 2 layers, its config",
            "1 diff_ids",
        ],
    );
    case(
        "notjson.tar",
        "[{\"Config\": ",
        &["strata: notjson.tar:manifest.json: malformed JSON"],
    );
    case(
        "deep.tar",
        &("[".repeat(100) + &"]".repeat(100)),
        &["strata: deep.tar:manifest.json: JSON nested deeper than 64 levels"],
    );
    case(
        "none.tar",
        "[]",
        &["strata: none.tar:manifest.json: lists no images"],
    );
    // A layer whose content is not the diff_id its config names.
    let mut lying = docker_members(&b, id, "demo:1");
    for m in &mut lying {
        if let M::File(n, bytes) = m {
            if n.ends_with("layer.tar") {
                bytes[600] ^= 1;
            }
        }
    }
    write_tar(&d.join("lying.tar"), &lying);
    rejects(
        d,
        &["digest", "lying.tar"],
        1,
        &[
            "strata: lying.tar:abcd/layer.tar: layer 0 of image 0 is sha256:",
            "but its config says diff_id",
        ],
    );
    // A symlink out of the archive.
    let mut out = docker_members(&b, id, "demo:1");
    out.retain(|m| !matches!(m, M::File(n, _) if n.ends_with("layer.tar")));
    out.push(M::Symlink(
        "abcd/layer.tar".into(),
        "../../../etc/passwd".into(),
    ));
    write_tar(&d.join("symlink.tar"), &out);
    rejects(
        d,
        &["digest", "symlink.tar"],
        1,
        &["strata: symlink.tar: manifest.json[0]: layer 0 \"abcd/layer.tar\": symlink abcd/layer.tar -> \"../../../etc/passwd\" points outside the archive"],
    );
    // A config over the JSON limit (64 MiB of spaces: the size alone decides).
    let mut huge = with_manifest(
        docker_members(&b, id, "demo:1"),
        r#"[{"Config":"big.json","RepoTags":[],"Layers":["abcd/layer.tar"]}]"#,
    );
    huge.push(file("big.json", vec![b' '; (64 << 20) + 1]));
    write_tar(&d.join("huge.tar"), &huge);
    rejects(
        d,
        &["digest", "huge.tar"],
        1,
        &["strata: huge.tar:big.json: 67108865 bytes exceeds the 67108864 byte limit for JSON"],
    );
    // Truncated archives: plain (cut inside the layer) and gzip'd.
    write_tar(&d.join("good.tar"), &good);
    let bytes = fs::read(d.join("good.tar")).unwrap();
    fs::write(d.join("cut.tar"), &bytes[..bytes.len() / 2]).unwrap();
    rejects(d, &["digest", "cut.tar"], 1, &["strata: cut.tar: "]);
    sh(d, "gzip -c good.tar > good.tar.gz");
    let gz = fs::read(d.join("good.tar.gz")).unwrap();
    fs::write(d.join("cut.tar.gz"), &gz[..gz.len() / 2]).unwrap();
    rejects(d, &["digest", "cut.tar.gz"], 1, &["strata: cut.tar.gz: "]);
    rejects(d, &["verify", "cut.tar.gz"], 1, &["strata: cut.tar.gz: "]);
    // The intact archive reads; so this is what the cases above broke.
    assert_eq!(ok_in(d, &["digest", "good.tar"]).trim(), b.digest);
}

/// `strata digest` of a legacy archive is the digest a registry gives it
/// after `strata push` (Debian's docker-registry; `skopeo inspect --raw`
/// hashes the manifest the registry serves), and `skopeo copy
/// --preserve-digests` of the pushed image back into a layout keeps it.
/// skopeo's own copy of the archive to the registry keeps the config and
/// layer digests but not the manifest's.
#[test]
fn pushing_a_legacy_archive_gives_its_digest() {
    if !have_tool("docker-registry") || !have_tool("skopeo") {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let b = built(d, "base", "FOO=bar");
    write_tar(&d.join("docker.tar"), &docker_members(&b, "abcd", "demo:1"));
    sh(d, "gzip -c docker.tar > docker.tar.gz");
    let Some(reg) = crate::registry::Registry::start(d, "reg", None) else {
        return;
    };
    let dest = format!("http://{}/legacy:1", reg.host());
    let pushed = ok_in(d, &["push", "-q", "docker.tar.gz", &dest]);
    assert_eq!(
        pushed.trim(),
        format!("{}/legacy:1@{}", reg.host(), b.digest)
    );
    let raw = crate::registry::raw_digest(d, &format!("docker://{}/legacy:1", reg.host()));
    assert_eq!(raw, b.digest, "the registry's manifest digest");
    sh(
        d,
        &format!(
            "skopeo copy -q --preserve-digests --src-tls-verify=false docker://{}/legacy:1 oci:back:1",
            reg.host()
        ),
    );
    assert_eq!(ok_in(d, &["digest", "back"]).trim(), b.digest);
    // skopeo's own push of the archive keeps the config and layer bytes (the
    // same blob digests) but writes a Docker schema 2 manifest of its own
    // (another manifest digest).
    sh(
        d,
        &format!(
            "skopeo copy -q --dest-tls-verify=false docker-archive:docker.tar docker://{}/viaskopeo:1 \
             && skopeo inspect --raw --tls-verify=false docker://{}/viaskopeo:1 >viaskopeo.json",
            reg.host(),
            reg.host()
        ),
    );
    let m: Value = serde_json::from_slice(&fs::read(d.join("viaskopeo.json")).unwrap()).unwrap();
    assert_eq!(m["config"]["digest"], format!("sha256:{}", b.config_hex));
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{}", b.layer_hex));
    let theirs = crate::registry::raw_digest(d, &format!("docker://{}/viaskopeo:1", reg.host()));
    assert_ne!(theirs, b.digest, "skopeo's manifest is not strata's");
}
