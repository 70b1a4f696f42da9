//! The images run: every scenario is built by strata and then run by four
//! real engines — `docker load` + `docker run` of the docker-archive, `podman
//! load` + `podman run` of the same file, `podman run oci:<layout>`, and
//! `umoci unpack` + `runc run` of the layout — and every engine must print the
//! same output, which must be what the config says.
//!
//! The engines are started by `tests/run/engines.sh test` (a private dockerd
//! on a unix socket, podman with vfs storage), which sets `STRATA_ENGINES=1`;
//! without it these tests skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{ok_in, tempdir, write};

fn enabled() -> bool {
    let on = std::env::var("STRATA_ENGINES").as_deref() == Ok("1");
    if !on {
        eprintln!("skipping: engines not started (run tests/run/engines.sh test)");
    }
    on
}

/// Run a command; on failure panic with the engine's own message.
fn sh(dir: &Path, prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{prog} {args:?} failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An image strata built: its layout (at a lowercase path, as
/// `podman run oci:` needs) and its docker-archive.
struct Built {
    dir: PathBuf,
    layout: PathBuf,
    archive: PathBuf,
    name: String,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.layout);
    }
}

/// `strata image` with `args` into both formats, tagged `strata-NAME:1`.
fn build(d: &Path, name: &str, args: &[&str]) -> Built {
    let tag = format!("strata-{name}:1");
    let layout = std::env::temp_dir().join(format!("strata-engines-oci-{name}"));
    let _ = fs::remove_dir_all(&layout);
    let layout_s = layout.to_str().unwrap().to_string();
    let mut a: Vec<&str> = vec!["image", "--out", &layout_s, "--tag", &tag];
    a.extend_from_slice(args);
    let d1 = ok_in(d, &a);
    let archive = d.join(format!("{name}.tar"));
    let archive_s = archive.to_str().unwrap().to_string();
    let mut b: Vec<&str> = vec![
        "image",
        "--out",
        &archive_s,
        "--format",
        "docker-archive",
        "--tag",
        &tag,
    ];
    b.extend_from_slice(args);
    assert_eq!(ok_in(d, &b), d1, "archive and layout hold the same image");
    Built {
        dir: d.to_path_buf(),
        layout,
        archive,
        name: tag,
    }
}

fn docker(b: &Built) -> String {
    let loaded = sh(
        &b.dir,
        "docker",
        &["load", "-i", b.archive.to_str().unwrap()],
    );
    assert!(loaded.contains(&b.name), "docker load: {loaded}");
    // Docker's image ID is strata's config digest.
    let j: Value = serde_json::from_str(&ok_in(
        &b.dir,
        &["digest", "--json", b.layout.to_str().unwrap()],
    ))
    .unwrap();
    let id = sh(
        &b.dir,
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &b.name],
    );
    assert_eq!(id.trim(), j["config"].as_str().unwrap());
    sh(
        &b.dir,
        "docker",
        &["run", "--rm", "--network", "none", &b.name],
    )
}

fn podman_load(b: &Built) -> String {
    let loaded = sh(
        &b.dir,
        "podman",
        &["load", "-i", b.archive.to_str().unwrap()],
    );
    assert!(loaded.contains(&b.name), "podman load: {loaded}");
    let full = format!("docker.io/library/{}", b.name);
    sh(
        &b.dir,
        "podman",
        &["run", "--rm", "--network", "none", &full],
    )
}

fn podman_oci(b: &Built) -> String {
    let r = format!("oci:{}:1", b.layout.display());
    sh(&b.dir, "podman", &["run", "--rm", "--network", "none", &r])
}

fn runc(b: &Built) -> String {
    let bundle = b
        .dir
        .join(format!("bundle-{}", b.name.replace([':', '/'], "-")));
    let _ = fs::remove_dir_all(&bundle);
    let image = format!("{}:1", b.layout.display());
    sh(
        &b.dir,
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = Value::Bool(false);
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let root = std::env::var("STRATA_RUNC_ROOT").unwrap_or_else(|_| "/tmp/strata-runc".into());
    let id = format!("strata-{}", std::process::id());
    let out = sh(
        &b.dir,
        "runc",
        &["--root", &root, "run", "-b", bundle.to_str().unwrap(), &id],
    );
    let _ = Command::new("runc")
        .args(["--root", &root, "delete", "-f", &id])
        .output();
    out
}

/// Run `b` in every engine; all outputs must be equal. Returns the output.
fn run_everywhere(b: &Built) -> String {
    let want = docker(b);
    for (engine, got) in [
        ("podman load", podman_load(b)),
        ("podman oci:", podman_oci(b)),
        ("umoci+runc", runc(b)),
    ] {
        assert_eq!(got, want, "{engine} printed something else than docker");
    }
    want
}

/// A spec file with a static busybox at /bin/busybox plus `extra` entries.
fn busybox_spec(d: &Path, name: &str, extra: &str) -> String {
    let spec = format!(
        r#"{{"version":1,"entries":[
          {{"type":"file","path":"bin/busybox","src":"/bin/busybox","mode":"0755"}},
          {{"type":"symlink","path":"bin/sh","target":"busybox"}},
          {{"type":"symlink","path":"bin/ls","target":"busybox"}}{extra}]}}"#
    );
    let p = format!("{name}.spec.json");
    fs::write(d.join(&p), spec).unwrap();
    p
}

fn layer(d: &Path, name: &str, spec: &str) -> String {
    ok_in(
        d,
        &[
            "layer",
            "--out",
            &format!("{name}.tgz"),
            "--descriptor",
            &format!("{name}.json"),
            "--spec",
            spec,
        ],
    );
    format!("{name}.tgz:{name}.json")
}

#[test]
fn static_binary_sees_exactly_its_config() {
    if !enabled() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let spec = busybox_spec(
        d,
        "s1",
        r#",{"type":"dir","path":"work","uid":1000,"gid":1000}"#,
    );
    let l = layer(d, "s1", &spec);
    let script = r#"["/bin/sh","-c","echo ARGS:$0 $@; echo CWD:$(pwd); echo ID:$(busybox id -u):$(busybox id -g); echo FOO:$FOO; echo PATH:$PATH"]"#;
    let b = build(
        d,
        "s1",
        &[
            "--layer",
            &l,
            "--entrypoint",
            script,
            "--cmd",
            r#"["first","second","third"]"#,
            "--env",
            "FOO=bar baz",
            "--env",
            "PATH=/bin",
            "--workdir",
            "/work",
            "--user",
            "1000:1000",
        ],
    );
    let out = run_everywhere(&b);
    assert_eq!(
        out,
        "ARGS:first second third\nCWD:/work\nID:1000:1000\nFOO:bar baz\nPATH:/bin\n"
    );
    let env = sh(
        d,
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Env}} {{.Config.WorkingDir}} {{.Config.User}}",
            &b.name,
        ],
    );
    assert_eq!(env.trim(), r#"["FOO=bar baz","PATH=/bin"] /work 1000:1000"#);
}

/// The libraries `ldd` lists for `bin`, as (path in the image, host path).
fn ldd(bin: &str) -> Vec<(String, String)> {
    let out = sh(Path::new("/"), "ldd", &[bin]);
    let mut v = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.trim().split(' ').next().unwrap_or("").to_string(),
            None => line.split(' ').next().unwrap_or("").to_string(),
        };
        if path.starts_with('/') {
            v.push((path.trim_start_matches('/').to_string(), path));
        }
    }
    v
}

#[test]
fn dynamic_binary_with_its_libraries() {
    if !enabled() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let mut entries = vec![
        r#"{"type":"file","path":"bin/bash","src":"/bin/bash"}"#.to_string(),
        r#"{"type":"file","path":"bin/id","src":"/usr/bin/id"}"#.to_string(),
        r#"{"type":"file","path":"etc/passwd","content":"root:x:0:0:root:/root:/bin/bash\n"}"#
            .to_string(),
        r#"{"type":"file","path":"etc/group","content":"root:x:0:\n"}"#.to_string(),
    ];
    let mut libs: Vec<(String, String)> = ldd("/bin/bash");
    libs.extend(ldd("/usr/bin/id"));
    libs.sort();
    libs.dedup();
    for (p, src) in libs {
        entries.push(format!(r#"{{"type":"file","path":"{p}","src":"{src}"}}"#));
    }
    fs::write(
        d.join("s2.json"),
        format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")),
    )
    .unwrap();
    let l = layer(d, "s2", "s2.json");
    let b = build(
        d,
        "s2",
        &[
            "--layer",
            &l,
            "--env",
            "PATH=/bin",
            "--cmd",
            r#"["bash","-c","echo ok; id -un"]"#,
        ],
    );
    assert_eq!(run_everywhere(&b), "ok\nroot\n");
}

#[test]
fn a_layer_added_to_an_image_another_tool_wrote() {
    if !enabled() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let spec = busybox_spec(
        d,
        "base",
        r#",{"type":"file","path":"etc/old","content":"old"},{"type":"file","path":"etc/keep","content":"k"},
           {"type":"file","path":"opt/dir/a","content":"a"},{"type":"file","path":"opt/dir/b","content":"b"}"#,
    );
    let l = layer(d, "base", &spec);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "base",
            "--layer",
            &l,
            "--tag",
            "base:1",
            "--env",
            "PATH=/bin",
        ],
    );
    // The base as another tool writes it: skopeo's own layout and index.json.
    sh(
        d,
        "skopeo",
        &["--insecure-policy", "copy", "oci:base:1", "oci:skbase:b"],
    );
    fs::write(
        d.join("top.json"),
        r#"{"version":1,"entries":[
          {"type":"file","path":"some-file","content":"new"},
          {"type":"whiteout","path":"etc/old"},
          {"type":"opaque","path":"opt/dir"},
          {"type":"file","path":"opt/dir/c","content":"c"}]}"#,
    )
    .unwrap();
    let top = layer(d, "top", "top.json");
    // Engines add their own /dev, /proc, /sys, /run and /etc/{hostname,hosts,
    // mtab,resolv.conf}; the comparison is about what the image holds.
    let cmd = r#"["/bin/sh","-c","/bin/ls / | busybox grep -vxE 'dev|proc|sys|run'; echo ---; for f in /etc/keep /etc/old /opt/dir/a /opt/dir/b /opt/dir/c /some-file; do if [ -e $f ]; then echo yes $f; else echo no $f; fi; done"]"#;
    let b = build(
        d,
        "s3",
        &["--base", "skbase", "--layer", &top, "--cmd", cmd],
    );
    assert_eq!(
        run_everywhere(&b),
        "bin\netc\nopt\nsome-file\n---\nyes /etc/keep\nno /etc/old\nno /opt/dir/a\nno /opt/dir/b\nyes /opt/dir/c\nyes /some-file\n"
    );
}

#[test]
fn later_layers_win_and_metadata_survives() {
    if !enabled() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let spec = busybox_spec(
        d,
        "one",
        r#",{"type":"file","path":"data/f","content":"one\n"}"#,
    );
    let one = layer(d, "one", &spec);
    fs::write(
        d.join("two.json"),
        r##"{"version":1,"entries":[
          {"type":"file","path":"data/f","content":"two\n"},
          {"type":"symlink","path":"data/l","target":"f"},
          {"type":"hardlink","path":"data/h","target":"data/f"},
          {"type":"file","path":"bin/x","content":"#!/bin/sh\necho x-ran\n","mode":"0750"},
          {"type":"file","path":"bin/su","content":"not really su\n","mode":"4755"}]}"##,
    )
    .unwrap();
    let two = layer(d, "two", "two.json");
    let cmd = r#"["/bin/sh","-c","cat /data/f /data/h; busybox readlink /data/l; busybox stat -c %a /bin/x /bin/su; /bin/x"]"#;
    let b = build(
        d,
        "s4",
        &[
            "--layer",
            &one,
            "--layer",
            &two,
            "--env",
            "PATH=/bin",
            "--cmd",
            cmd,
        ],
    );
    assert_eq!(run_everywhere(&b), "two\ntwo\nf\n750\n4755\nx-ran\n");
}

#[test]
fn the_amd64_entry_of_an_index_runs() {
    if !enabled() {
        return;
    }
    let t = tempdir();
    let d = t.path();
    let spec = busybox_spec(d, "s5", "");
    let l = layer(d, "s5", &spec);
    let cmd = r#"["/bin/sh","-c","echo amd64-ok"]"#;
    ok_in(
        d,
        &[
            "image",
            "--out",
            "amd",
            "--layer",
            &l,
            "--platform",
            "linux/amd64",
            "--cmd",
            cmd,
        ],
    );
    ok_in(
        d,
        &[
            "image",
            "--out",
            "arm",
            "--layer",
            &l,
            "--platform",
            "linux/arm64",
            "--cmd",
            r#"["/bin/false"]"#,
        ],
    );
    let idx = std::env::temp_dir().join("strata-engines-oci-index");
    let _ = fs::remove_dir_all(&idx);
    ok_in(
        d,
        &[
            "index",
            "--out",
            idx.to_str().unwrap(),
            "--tag",
            "multi:1",
            "amd",
            "arm",
        ],
    );
    let r = format!("oci:{}:1", idx.display());
    let podman = sh(
        d,
        "podman",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            "linux/amd64",
            &r,
        ],
    );
    assert_eq!(podman, "amd64-ok\n");
    // docker 20.10 loads single images: let skopeo pick the amd64 entry.
    let out = d.join("amd64.tar");
    sh(
        d,
        "skopeo",
        &[
            "--insecure-policy",
            "--override-arch",
            "amd64",
            "copy",
            &r,
            &format!("docker-archive:{}:multi:1", out.display()),
        ],
    );
    sh(d, "docker", &["load", "-i", out.to_str().unwrap()]);
    assert_eq!(
        sh(
            d,
            "docker",
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--platform",
                "linux/amd64",
                "multi:1"
            ]
        ),
        "amd64-ok\n"
    );
    let _ = fs::remove_dir_all(&idx);
    write(&d.join("done"), b"", 0o644);
}
