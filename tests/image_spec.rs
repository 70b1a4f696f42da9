//! `strata image --spec`: every field gives the image its flag gives; flags
//! given with a spec follow the documented rule; bad specs fail on one line
//! naming the spec file and the field.

use std::fs;
use std::path::Path;

use crate::util::{fail_in, ok_in, tempdir, walk_files, write};

/// Layers `a` and `b` (blob + descriptor) and a base layout `base` tagged
/// `example.com/base:1` (one layer, an Env and a Cmd to inherit).
fn fixtures(d: &Path) {
    for (name, content) in [("a", "a"), ("b", "bb")] {
        write(
            &d.join(format!("{name}-tree/{name}.txt")),
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
                "-q",
                &format!("{name}-tree"),
            ],
        );
    }
    ok_in(
        d,
        &[
            "image",
            "--out",
            "base",
            "-q",
            "--layer",
            "a.tgz:a.json",
            "--env",
            "PATH=/bin",
            "--cmd",
            "sh",
            "--platform",
            "linux/arm64/v8",
            "--tag",
            "example.com/base:1",
        ],
    );
}

/// Build with `flags`, and with a spec holding `fields` (a JSON fragment
/// after `"version":1`); the two outputs must be byte-identical (index.json,
/// every blob), so the manifest digests are equal too.
fn same(d: &Path, case: &str, flags: &[&str], fields: &str, format: &str) {
    let spec = d.join(format!("{case}.json"));
    fs::write(&spec, format!(r#"{{"version":1{fields}}}"#)).unwrap();
    let by_flags = format!("{case}-flags");
    let by_spec = format!("{case}-spec");
    let mut args = vec!["image", "--format", format, "--out", &by_flags];
    args.extend_from_slice(flags);
    let d1 = ok_in(d, &args);
    let spec_name = spec.file_name().unwrap().to_str().unwrap();
    let d2 = ok_in(
        d,
        &[
            "image", "--format", format, "--out", &by_spec, "--spec", spec_name,
        ],
    );
    assert_eq!(d1, d2, "{case}: manifest digests differ");
    assert!(d1.starts_with("sha256:"), "{case}: {d1}");
    assert_eq!(
        tree(&d.join(&by_flags)),
        tree(&d.join(&by_spec)),
        "{case}: outputs differ"
    );
}

/// Every file under `p` (or `p` itself), path and bytes, in sorted order.
fn tree(p: &Path) -> Vec<(String, Vec<u8>)> {
    if p.is_file() {
        return vec![(String::new(), fs::read(p).unwrap())];
    }
    let mut out = Vec::new();
    for e in walk_files(p) {
        out.push((
            e.strip_prefix(p).unwrap().display().to_string(),
            fs::read(&e).unwrap(),
        ));
    }
    out.sort();
    out
}

#[test]
fn every_field_gives_the_digest_of_its_flag() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    let l = ["--layer", "a.tgz:a.json"];
    let sl = r#","layers":[{"blob":"a.tgz","descriptor":"a.json"}]"#;
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["--layer", "a.tgz:a.json"];
        v.extend_from_slice(extra);
        v
    };
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        ("layers", l.to_vec(), sl.to_string()),
        (
            "layers-no-descriptor",
            vec!["--layer", "a.tgz", "--layer", "b.tgz:b.json"],
            r#","layers":[{"blob":"a.tgz"},{"blob":"b.tgz","descriptor":"b.json"}]"#.into(),
        ),
        (
            "base",
            vec!["--base", "base", "--layer", "b.tgz:b.json"],
            r#","base":{"path":"base"},"layers":[{"blob":"b.tgz","descriptor":"b.json"}]"#.into(),
        ),
        (
            "base-ref",
            vec!["--base", "base", "--base-ref", "1"],
            r#","base":{"path":"base","ref":"1"}"#.into(),
        ),
        (
            "platform",
            with(&["--platform", "linux/arm64/v8"]),
            format!(r#"{sl},"platform":"linux/arm64/v8""#),
        ),
        (
            "entrypoint",
            with(&["--entrypoint", "/bin/app", "--entrypoint", "-v"]),
            format!(r#"{sl},"config":{{"Entrypoint":["/bin/app","-v"]}}"#),
        ),
        (
            "entrypoint-on-base",
            vec!["--base", "base", "--entrypoint", r#"["/app"]"#],
            r#","base":{"path":"base"},"config":{"Entrypoint":["/app"]}"#.into(),
        ),
        (
            "cmd",
            with(&["--cmd", r#"["echo","hi"]"#]),
            format!(r#"{sl},"config":{{"Cmd":["echo","hi"]}}"#),
        ),
        (
            "env",
            vec![
                "--base",
                "base",
                "--env",
                "A=1",
                "--env",
                "PATH=/usr/bin",
                "--env",
                "B=x=y",
            ],
            r#","base":{"path":"base"},"config":{"Env":["A=1","PATH=/usr/bin","B=x=y"]}"#.into(),
        ),
        (
            "workdir",
            with(&["--workdir", "/srv"]),
            format!(r#"{sl},"config":{{"WorkingDir":"/srv"}}"#),
        ),
        (
            "user",
            with(&["--user", "65534:65534"]),
            format!(r#"{sl},"config":{{"User":"65534:65534"}}"#),
        ),
        (
            "labels",
            with(&["--label", "b=2", "--label", "a=1"]),
            format!(r#"{sl},"config":{{"Labels":{{"a":"1","b":"2"}}}}"#),
        ),
        (
            "exposed-ports",
            with(&["--exposed-port", "8080", "--exposed-port", "53/udp"]),
            format!(r#"{sl},"config":{{"ExposedPorts":{{"53/udp":{{}},"8080":{{}}}}}}"#),
        ),
        (
            "volumes",
            with(&["--volume", "/data", "--volume", "/cache"]),
            format!(r#"{sl},"config":{{"Volumes":{{"/data":{{}},"/cache":{{}}}}}}"#),
        ),
        (
            "stop-signal",
            with(&["--stop-signal", "SIGINT"]),
            format!(r#"{sl},"config":{{"StopSignal":"SIGINT"}}"#),
        ),
        (
            "annotations",
            with(&["--annotation", "org.example.a=1", "--annotation", "z=2"]),
            format!(r#"{sl},"annotations":{{"z":"2","org.example.a":"1"}}"#),
        ),
        (
            "created",
            with(&["--created", "2024-01-02T03:04:05Z"]),
            format!(r#"{sl},"created":"2024-01-02T03:04:05Z""#),
        ),
        (
            "source-revision-version",
            with(&[
                "--source",
                "https://example.com/a.git",
                "--revision",
                "abc",
                "--image-version",
                "2",
            ]),
            format!(
                r#"{sl},"source":"https://example.com/a.git","revision":"abc","image_version":"2""#
            ),
        ),
        (
            "tag",
            with(&["--tag", "example.com/app:1"]),
            format!(r#"{sl},"tags":["example.com/app:1"]"#),
        ),
    ];
    for (case, flags, fields) in &cases {
        same(d, case, flags, fields, "oci");
    }
    // Several tags: a docker-archive records them all (RepoTags).
    same(
        d,
        "tags",
        &with(&[
            "--tag",
            "example.com/app:1",
            "--tag",
            "example.com/app:latest",
        ]),
        &format!(r#"{sl},"tags":["example.com/app:1","example.com/app:latest"]"#),
        "docker-archive",
    );
    // Everything at once, as an archive.
    same(
        d,
        "all",
        &[
            "--base",
            "base",
            "--base-ref",
            "1",
            "--platform",
            "linux/arm64/v8",
            "--layer",
            "b.tgz:b.json",
            "--entrypoint",
            "/app",
            "--cmd",
            "serve",
            "--env",
            "A=1",
            "--workdir",
            "/srv",
            "--user",
            "1:2",
            "--label",
            "l=v",
            "--annotation",
            "a=v",
            "--exposed-port",
            "80/tcp",
            "--volume",
            "/data",
            "--stop-signal",
            "SIGTERM",
            "--created",
            "2024-01-02T03:04:05Z",
            "--tag",
            "example.com/app:2",
        ],
        r#","base":{"path":"base","ref":"1"},"platform":"linux/arm64/v8",
           "layers":[{"blob":"b.tgz","descriptor":"b.json"}],
           "config":{"Entrypoint":["/app"],"Cmd":["serve"],"Env":["A=1"],"WorkingDir":"/srv",
             "User":"1:2","Labels":{"l":"v"},"ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},
             "StopSignal":"SIGTERM"},
           "annotations":{"a":"v"},"created":"2024-01-02T03:04:05Z","tags":["example.com/app:2"]"#,
        "oci-archive",
    );
}

#[test]
fn a_layer_directory_gives_its_numbered_layers_in_order() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    // 2.layer before 10.layer (by number, not by name); 0001.json is ignored;
    // 10.layer has no descriptor (read and described).
    let dir = d.join("closure");
    fs::create_dir(&dir).unwrap();
    fs::copy(d.join("a.tgz"), dir.join("2.layer")).unwrap();
    fs::copy(d.join("a.json"), dir.join("2.desc")).unwrap();
    fs::copy(d.join("b.tgz"), dir.join("10.layer")).unwrap();
    fs::write(dir.join("0001.json"), "not a layer").unwrap();
    let fields =
        r#","layers":[{"blob":"b.tgz","descriptor":"b.json"},{"dir":"closure"},{"blob":"a.tgz"}]"#;
    same(
        d,
        "dir",
        &[
            "--layer",
            "b.tgz:b.json",
            "--layer",
            "a.tgz",
            "--layer",
            "b.tgz",
            "--layer",
            "a.tgz",
        ],
        fields,
        "oci",
    );
    // An empty directory adds no layer.
    fs::create_dir(d.join("empty")).unwrap();
    same(
        d,
        "empty-dir",
        &["--layer", "a.tgz:a.json"],
        r#","layers":[{"dir":"empty"},{"blob":"a.tgz","descriptor":"a.json"}]"#,
        "oci",
    );
    // Two names for one number have no order: refused.
    fs::copy(d.join("a.tgz"), dir.join("02.layer")).unwrap();
    fs::write(
        d.join("dup.json"),
        r#"{"version":1,"layers":[{"dir":"closure"}]}"#,
    )
    .unwrap();
    let err = fail_in(d, &["image", "--out", "o", "--spec", "dup.json"], 1);
    assert!(
        err.contains("dup.json: layers[0]: closure: ") && err.contains("same number"),
        "{err}"
    );
}

#[test]
fn flags_with_a_spec_append_or_must_agree() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    fs::write(
        d.join("s.json"),
        r#"{"version":1,"base":{"path":"base"},"layers":[{"blob":"a.tgz","descriptor":"a.json"}],
            "config":{"Env":["A=1"],"User":"1","Labels":{"k":"v"}},"annotations":{"x":"1"}}"#,
    )
    .unwrap();
    // Lists append (layers on top, Env after the spec's), new keys add, equal values agree.
    let merged = ok_in(
        d,
        &[
            "image",
            "--out",
            "m1",
            "--spec",
            "s.json",
            "--layer",
            "b.tgz:b.json",
            "--env",
            "A=2",
            "--label",
            "k=v",
            "--label",
            "k2=v2",
            "--user",
            "1",
            "--annotation",
            "y=2",
        ],
    );
    let flags = ok_in(
        d,
        &[
            "image",
            "--out",
            "m2",
            "--base",
            "base",
            "--layer",
            "a.tgz:a.json",
            "--layer",
            "b.tgz:b.json",
            "--env",
            "A=1",
            "--env",
            "A=2",
            "--label",
            "k=v",
            "--label",
            "k2=v2",
            "--user",
            "1",
            "--annotation",
            "x=1",
            "--annotation",
            "y=2",
        ],
    );
    assert_eq!(merged, flags);
    // A scalar or a key the spec sets differently: a usage error naming both.
    for (args, needle) in [
        (
            &["--user", "2"][..],
            r#"--user "2" conflicts with s.json's config.User "1""#,
        ),
        (
            &["--base", "other"][..],
            r#"--base "other" conflicts with s.json's base.path "base""#,
        ),
        (
            &["--label", "k=w"][..],
            "--label k=\"w\" conflicts with s.json's config.Labels[\"k\"]",
        ),
        (
            &["--annotation", "x=2"][..],
            "conflicts with s.json's annotations[\"x\"]",
        ),
    ] {
        let mut a = vec!["image", "--out", "bad", "--spec", "s.json"];
        a.extend_from_slice(args);
        let err = fail_in(d, &a, 2);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!d.join("bad").exists());
    }
    // SOURCE_DATE_EPOCH fills `created` only when the spec leaves it unset.
    fs::write(
        d.join("c.json"),
        r#"{"version":1,"created":"2024-01-02T03:04:05Z","layers":[{"blob":"a.tgz"}]}"#,
    )
    .unwrap();
    let run = |out: &str, args: &[&str]| {
        let o = crate::util::strata()
            .current_dir(d)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["image", "--out", out])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        run("c1", &["--spec", "c.json"]),
        ok_in(
            d,
            &[
                "image",
                "--out",
                "c2",
                "--layer",
                "a.tgz",
                "--created",
                "2024-01-02T03:04:05Z"
            ]
        )
    );
}

#[test]
fn bad_specs_fail_on_one_line_naming_file_and_field() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    let cases: &[(&str, &str)] = &[
        (
            r#"{"version":1,"layer":[]}"#,
            r#"bad.json: unknown field "layer""#,
        ),
        (
            r#"{"version":2}"#,
            "bad.json: version: unsupported image spec version 2",
        ),
        (
            r#"{"version":"1"}"#,
            "bad.json: version: unsupported image spec version \"1\"",
        ),
        (r#"{"layers":[]}"#, "bad.json: missing \"version\""),
        (
            r#"{"version":1,"config":{"Env":"A=1"}}"#,
            "bad.json: config.Env: invalid type: string",
        ),
        (
            r#"{"version":1,"config":{"Env":["A"]}}"#,
            "bad.json: config.Env[0]: \"A\": expected KEY=VALUE",
        ),
        (
            r#"{"version":1,"config":{"Entrypoint":"/app"}}"#,
            "bad.json: config.Entrypoint: invalid type",
        ),
        (
            r#"{"version":1,"config":{"Healthcheck":{}}}"#,
            "bad.json: config: unknown field \"Healthcheck\"",
        ),
        (
            r#"{"version":1,"config":{"ExposedPorts":["80"]}}"#,
            "bad.json: config.ExposedPorts: invalid type",
        ),
        (
            r#"{"version":1,"layers":{"blob":"a.tgz"}}"#,
            "bad.json: layers: invalid type: map",
        ),
        (
            r#"{"version":1,"layers":[{"blob":"a.tgz","mode":1}]}"#,
            "bad.json: layers[0]: unknown field `mode`",
        ),
        (
            r#"{"version":1,"layers":[{"blob":"a.tgz","dir":"x"}]}"#,
            "bad.json: layers[0]: expected",
        ),
        (
            r#"{"version":1,"layers":[{"blob":"missing.tgz"}]}"#,
            "bad.json: layers[0]: layer missing.tgz: ",
        ),
        (
            r#"{"version":1,"layers":[{"blob":"a.tgz","descriptor":"b.json"}]}"#,
            "bad.json: layers[0]: layer a.tgz: size mismatch",
        ),
        (
            r#"{"version":1,"layers":[{"dir":"nodir"}]}"#,
            "bad.json: layers[0]: reading layer directory nodir",
        ),
        (
            r#"{"version":1,"base":{"path":"nobase"}}"#,
            "bad.json: base: ",
        ),
        (
            r#"{"version":1,"base":"base"}"#,
            "bad.json: base: invalid type: string",
        ),
        (
            r#"{"version":1,"platform":"linux"}"#,
            "bad.json: platform: ",
        ),
        (
            r#"{"version":1,"created":1700000000}"#,
            "bad.json: created: invalid type: integer",
        ),
        (
            r#"{"version":1,"created":"yesterday"}"#,
            "bad.json: created: ",
        ),
        (
            r#"{"version":1,"tags":"a:b"}"#,
            "bad.json: tags: invalid type",
        ),
        (
            r#"{"version":1,"annotations":{"a":1}}"#,
            "bad.json: annotations: invalid type: integer",
        ),
        (
            r#"{"version":1,"config":{"Volumes":{"data":{}}}}"#,
            "bad.json: ",
        ),
        (r#"{"version":1,"#, "bad.json: malformed JSON"),
        ("[1,2]", "bad.json: expected a JSON object"),
    ];
    for (doc, needle) in cases {
        fs::write(d.join("bad.json"), doc).unwrap();
        let err = fail_in(d, &["image", "--out", "out", "--spec", "bad.json"], 1);
        assert!(
            err.starts_with("strata: ") && err.contains(needle),
            "{doc}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{doc}: {err}");
        assert!(!d.join("out").exists(), "{doc}: output left behind");
    }
    // Hostile: deep nesting, a document beyond the JSON limit, a missing file.
    let deep = format!(
        r#"{{"version":1,"annotations":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    fs::write(d.join("bad.json"), deep).unwrap();
    let err = fail_in(d, &["image", "--out", "out", "--spec", "bad.json"], 1);
    assert!(err.contains("bad.json: JSON nested deeper"), "{err}");
    let f = fs::File::create(d.join("huge.json")).unwrap();
    f.set_len(65 << 20).unwrap();
    let err = fail_in(d, &["image", "--out", "out", "--spec", "huge.json"], 1);
    assert!(err.contains("huge.json: larger than the"), "{err}");
    let err = fail_in(d, &["image", "--out", "out", "--spec", "none.json"], 1);
    assert!(err.contains("none.json"), "{err}");
    assert!(!d.join("out").exists());
}

#[test]
fn an_image_on_a_base_names_its_base() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    let annotations = |img: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&ok_in(d, &["inspect", "--json", img])).unwrap();
        v["annotations"].clone()
    };
    let base_digest = ok_in(d, &["digest", "base"]).trim().to_string();
    ok_in(
        d,
        &[
            "image",
            "-q",
            "--out",
            "on",
            "--base",
            "base",
            "--layer",
            "b.tgz:b.json",
        ],
    );
    let a = annotations("on");
    assert_eq!(
        a["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    assert_eq!(
        a["org.opencontainers.image.base.name"],
        "example.com/base:1"
    );
    // No layer added: the base re-described (oci_load's re-packaging), its
    // annotations kept and no base of its own, so the same digest.
    let on = ok_in(d, &["digest", "on"]);
    let repacked = ok_in(
        d,
        &[
            "image",
            "--out",
            "on.tar",
            "--format",
            "docker-archive",
            "--base",
            "on",
        ],
    );
    assert_eq!(repacked, on);
    // A base whose index.json names nothing: the digest alone.
    ok_in(
        d,
        &["image", "-q", "--out", "anon", "--layer", "a.tgz:a.json"],
    );
    ok_in(
        d,
        &[
            "image", "-q", "--out", "on-anon", "--base", "anon", "--layer", "b.tgz",
        ],
    );
    let a = annotations("on-anon");
    assert!(a["org.opencontainers.image.base.digest"].is_string(), "{a}");
    assert!(a.get("org.opencontainers.image.base.name").is_none(), "{a}");
    // No base: neither.
    assert!(annotations("anon")
        .get("org.opencontainers.image.base.digest")
        .is_none());
    // Set explicitly, an annotation stays as given.
    ok_in(
        d,
        &[
            "image",
            "-q",
            "--out",
            "mine",
            "--base",
            "base",
            "--annotation",
            "org.opencontainers.image.base.name=registry.example/base:1",
        ],
    );
    assert_eq!(
        annotations("mine")["org.opencontainers.image.base.name"],
        "registry.example/base:1"
    );
    // source, revision, image_version: their annotations.
    ok_in(
        d,
        &[
            "image",
            "-q",
            "--out",
            "described",
            "--layer",
            "a.tgz",
            "--source",
            "https://example.com/app.git",
            "--revision",
            "0123abcd",
            "--image-version",
            "1.2.3",
        ],
    );
    let a = annotations("described");
    assert_eq!(
        a["org.opencontainers.image.source"],
        "https://example.com/app.git"
    );
    assert_eq!(a["org.opencontainers.image.revision"], "0123abcd");
    assert_eq!(a["org.opencontainers.image.version"], "1.2.3");
    // ... and one that contradicts an annotation is refused.
    let err = fail_in(
        d,
        &[
            "image",
            "--out",
            "x",
            "--layer",
            "a.tgz",
            "--revision",
            "1",
            "--annotation",
            "org.opencontainers.image.revision=2",
        ],
        2,
    );
    assert!(
        err.contains(r#"revision "1": annotations["org.opencontainers.image.revision"] says "2""#),
        "{err}"
    );
}

#[test]
fn stamp_files_fill_keys_only_when_asked() {
    let t = tempdir();
    let d = t.path();
    fixtures(d);
    fs::write(
        d.join("stable-status.txt"),
        "BUILD_HOST somewhere\nSTABLE_GIT_COMMIT 0123abcd\nSTABLE_VERSION 1.2.3\nSTABLE_EMPTY\n",
    )
    .unwrap();
    // `{KEY}` in source, revision, image_version, tags, annotations and labels.
    same(
        d,
        "stamped",
        &[
            "--layer",
            "a.tgz:a.json",
            "--revision",
            "0123abcd",
            "--image-version",
            "1.2.3",
            "--source",
            "https://example.com/1.2.3",
            "--tag",
            "example.com/app:1.2.3",
            "--annotation",
            "a=v1.2.3-",
            "--label",
            "l={-}0123abcd",
        ],
        r#","layers":[{"blob":"a.tgz","descriptor":"a.json"}],"stamp":["stable-status.txt"],
           "revision":"{STABLE_GIT_COMMIT}","image_version":"{STABLE_VERSION}",
           "source":"https://example.com/{STABLE_VERSION}","tags":["example.com/app:{STABLE_VERSION}"],
           "annotations":{"a":"v{STABLE_VERSION}-{STABLE_EMPTY}"},
           "config":{"Labels":{"l":"{-}{STABLE_GIT_COMMIT}"}}"#,
        "oci",
    );
    // The flags stamp the same way.
    let by_flags = ok_in(
        d,
        &[
            "image",
            "--out",
            "f",
            "--layer",
            "a.tgz:a.json",
            "--stamp",
            "stable-status.txt",
            "--revision",
            "{STABLE_GIT_COMMIT}",
            "--image-version",
            "{STABLE_VERSION}",
            "--source",
            "https://example.com/{STABLE_VERSION}",
            "--tag",
            "example.com/app:{STABLE_VERSION}",
            "--annotation",
            "a=v{STABLE_VERSION}-{STABLE_EMPTY}",
            "--label",
            "l={-}{STABLE_GIT_COMMIT}",
        ],
    );
    assert_eq!(by_flags, ok_in(d, &["digest", "stamped-flags"]));
    // Without stamp files, braces are text.
    same(
        d,
        "unstamped",
        &[
            "--layer",
            "a.tgz:a.json",
            "--revision",
            "{STABLE_GIT_COMMIT}",
        ],
        r#","layers":[{"blob":"a.tgz","descriptor":"a.json"}],"revision":"{STABLE_GIT_COMMIT}""#,
        "oci",
    );
    // A key the files lack, a malformed or missing file: one line naming the field.
    fs::write(d.join("dup.txt"), "A 1\nA 2\n").unwrap();
    fs::write(d.join("bad.txt"), "A-B 1\n").unwrap();
    fs::write(d.join("latin1.txt"), b"A \xe9\n").unwrap();
    for (stamp, field, needle) in [
        (
            "stable-status.txt",
            r#""revision":"{NOPE}""#,
            "s.json: revision: {NOPE}: no NOPE in the stamp files (stable-status.txt)",
        ),
        (
            "stable-status.txt",
            r#""tags":["a:{NOPE}"]"#,
            "s.json: tags[0]: {NOPE}: no NOPE",
        ),
        (
            "stable-status.txt",
            r#""tags":["a:{BUILD_HOST} x"]"#,
            "s.json: tags[0]: ",
        ),
        (
            "dup.txt",
            r#""revision":"1""#,
            "s.json: stamp[0]: dup.txt: A is given twice",
        ),
        (
            "bad.txt",
            r#""revision":"1""#,
            "s.json: stamp[0]: bad.txt: line 1: expected KEY VALUE",
        ),
        (
            "latin1.txt",
            r#""revision":"1""#,
            "s.json: stamp[0]: latin1.txt: not UTF-8",
        ),
        (
            "none.txt",
            r#""revision":"1""#,
            "s.json: stamp[0]: reading none.txt: ",
        ),
    ] {
        fs::write(
            d.join("s.json"),
            format!(r#"{{"version":1,"layers":[{{"blob":"a.tgz"}}],"stamp":["{stamp}"],{field}}}"#),
        )
        .unwrap();
        let err = fail_in(d, &["image", "--out", "out", "--spec", "s.json"], 1);
        assert!(err.contains(needle), "{stamp} {field}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!d.join("out").exists());
    }
}
