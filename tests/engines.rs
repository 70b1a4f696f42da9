//! The images run: every scenario is built by strata and then run by four
//! real engines, which must all give the exit code and output the config
//! implies:
//!
//! - `docker load -i IMAGE.tar` + `docker run --rm --network none TAG`
//! - `podman load -i IMAGE.tar` + `podman run --rm --network none docker.io/library/TAG`
//! - `podman run --rm --network none oci:LAYOUT:REF`
//! - `umoci unpack --image LAYOUT:REF BUNDLE` + `runc run -b BUNDLE ID`
//!
//! (`IMAGE.tar` is strata's `--format docker-archive`, `LAYOUT` its `--format
//! oci` of the same image.) After `docker load`, `docker image inspect` must
//! show the config strata wrote, with the image ID = strata's config digest.
//!
//! The engines are started once per run by `tests/run/engines.sh start` (or
//! `test`, which also runs these tests and stops the engines), which exports
//! `STRATA_ENGINES_DIR`; its `env` file says where dockerd and podman's config
//! are. Without it these tests skip, or fail under `STRATA_REQUIRE_TOOLS=1`.
//! A failure prints each disagreeing engine's command, exit code, stdout and
//! stderr; an engine refusing an image fails the test with its own message.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{ok_in, require};

// `strata load` into these engines (issue #22).
mod load;
// Images with attachments and signatures (issue #24).
mod attach;

/// The engines `tests/run/engines.sh start` set up.
struct Engines {
    /// Its state directory (lowercase: layouts under it work with `podman run oci:`).
    dir: PathBuf,
    /// DOCKER_HOST, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, STRATA_RUNC_ROOT.
    env: Vec<(String, String)>,
}

fn engines() -> Option<Engines> {
    let Some(dir) = std::env::var_os("STRATA_ENGINES_DIR") else {
        let msg = "container engines not started: run `bash tests/run/engines.sh test`, or \
                   `eval \"$(bash tests/run/engines.sh start | tail -1)\"` before cargo test";
        require(false, msg);
        return None;
    };
    let dir = PathBuf::from(dir);
    let text = fs::read_to_string(dir.join("env")).unwrap_or_else(|e| {
        panic!(
            "{}/env: {e} (STRATA_ENGINES_DIR is set but tests/run/engines.sh start did not run)",
            dir.display()
        )
    });
    let env = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Engines { dir, env })
}

/// What a command did.
struct Ran {
    cmd: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The test failure for a command that had to succeed (None if it did).
    fn failure(&self) -> Option<String> {
        (self.code != Some(0)).then(|| format!("command failed:\n{}", self.report()))
    }

    fn report(&self) -> String {
        format!(
            "$ {}\nexit code: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

/// A fresh per-test directory under the engines' state dir (lowercase path);
/// kept when the test fails.
struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

impl Engines {
    fn work(&self, name: &str) -> Work {
        let w = self
            .dir
            .join("work")
            .join(format!("{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&w);
        fs::create_dir_all(&w).unwrap();
        Work(w)
    }

    fn run(&self, dir: &Path, prog: &str, args: &[&str]) -> Ran {
        let out = Command::new(prog)
            .current_dir(dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{prog}: {e}"));
        Ran {
            cmd: format!("{prog} {}", args.join(" ")),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run a command that must succeed (an engine refusing an image fails
    /// the test with the engine's message); returns stdout.
    fn ok(&self, dir: &Path, prog: &str, args: &[&str]) -> String {
        let r = self.run(dir, prog, args);
        if let Some(msg) = r.failure() {
            panic!("{msg}");
        }
        r.stdout
    }

    fn runc_root(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "STRATA_RUNC_ROOT")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.dir.join("runc").display().to_string())
    }
}

/// An image strata built twice: an OCI layout and a docker-archive.
struct Image {
    layout: PathBuf,
    archive: PathBuf,
    /// `strata-NAME:1`
    tag: String,
}

const REF: &str = "1";

/// `strata image ARGS --tag strata-NAME:1` as `--format oci` (`NAME.oci`)
/// and `--format docker-archive` (`NAME.tar`); both must have one digest.
fn build(w: &Path, name: &str, args: &[&str]) -> Image {
    let tag = format!("strata-{name}:{REF}");
    let layout = w.join(format!("{name}.oci"));
    let archive = w.join(format!("{name}.tar"));
    let (l, a) = (layout.to_str().unwrap(), archive.to_str().unwrap());
    let mut oci = vec!["image", "--out", l, "--tag", &tag];
    oci.extend_from_slice(args);
    let mut docker = vec![
        "image",
        "--out",
        a,
        "--format",
        "docker-archive",
        "--tag",
        &tag,
    ];
    docker.extend_from_slice(args);
    let d1 = ok_in(w, &oci);
    assert_eq!(
        ok_in(w, &docker),
        d1,
        "the archive and the layout hold one image"
    );
    Image {
        layout,
        archive,
        tag,
    }
}

/// `strata layer --spec NAME.spec.json` from `spec`; returns `NAME.tgz:NAME.json`.
fn layer(w: &Path, name: &str, spec: &str) -> String {
    fs::write(w.join(format!("{name}.spec.json")), spec).unwrap();
    ok_in(
        w,
        &[
            "layer",
            "--out",
            &format!("{name}.tgz"),
            "--descriptor",
            &format!("{name}.json"),
            "--spec",
            &format!("{name}.spec.json"),
        ],
    );
    format!("{name}.tgz:{name}.json")
}

/// Debian's static busybox (busybox-static); a dynamic one would not run in
/// an image without its libraries.
const BUSYBOX: &str = "/bin/busybox";

/// Spec entries: a static busybox at /bin/busybox with /bin/sh and /bin/ls.
fn busybox_entries() -> String {
    let ldd = Command::new("ldd").arg(BUSYBOX).output();
    assert!(
        matches!(&ldd, Ok(o) if !o.status.success()),
        "{BUSYBOX} must be static (apt-get install busybox-static): ldd {ldd:?}"
    );
    format!(
        r#"{{"type":"file","path":"bin/busybox","src":"{BUSYBOX}","mode":"0755"}},
           {{"type":"symlink","path":"bin/sh","target":"busybox"}},
           {{"type":"symlink","path":"bin/ls","target":"busybox"}}"#
    )
}

/// The config strata wrote for `img` and its digest.
fn strata_config(w: &Path, layout: &Path) -> (String, Value) {
    let j: Value =
        serde_json::from_str(&ok_in(w, &["digest", "--json", layout.to_str().unwrap()])).unwrap();
    let digest = j["config"].as_str().unwrap().to_string();
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    (
        digest,
        serde_json::from_slice(&fs::read(blob).unwrap()).unwrap(),
    )
}

/// null, "", [] and {} all mean "not set" (docker prints unset fields so).
fn unset_is_null(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

/// `docker image inspect` (after `docker load`) shows what strata wrote:
/// image ID = config digest, the config fields, platform, created, diff_ids.
/// Also podman's image ID. Returns docker's inspect object.
fn inspect_matches_config(e: &Engines, w: &Path, img: &Image, podman_name: &str) -> Value {
    let (digest, cfg) = strata_config(w, &img.layout);
    let arr: Value = serde_json::from_str(&e.ok(w, "docker", &["image", "inspect", &img.tag]))
        .expect("docker image inspect prints JSON");
    let d = &arr[0];
    assert_eq!(d["Id"], Value::String(digest.clone()), "docker image ID");
    let c = &cfg["config"];
    let mut diffs = String::new();
    for key in [
        "Entrypoint",
        "Cmd",
        "Env",
        "WorkingDir",
        "User",
        "Labels",
        "ExposedPorts",
        "Volumes",
        "StopSignal",
    ] {
        let (dv, sv) = (
            unset_is_null(d["Config"].get(key)),
            unset_is_null(c.get(key)),
        );
        if dv != sv {
            writeln!(diffs, "  {key}: docker {dv}, strata {sv}").unwrap();
        }
    }
    for (dk, sk) in [
        ("Os", "os"),
        ("Architecture", "architecture"),
        ("Created", "created"),
    ] {
        if d[dk] != cfg[sk] {
            writeln!(diffs, "  {dk}: docker {}, strata {}", d[dk], cfg[sk]).unwrap();
        }
    }
    if d["RootFS"]["Layers"] != cfg["rootfs"]["diff_ids"] {
        writeln!(
            diffs,
            "  RootFS.Layers: docker {}, strata {}",
            d["RootFS"]["Layers"], cfg["rootfs"]["diff_ids"]
        )
        .unwrap();
    }
    assert!(
        diffs.is_empty(),
        "docker image inspect {} differs from strata's config {digest}:\n{diffs}",
        img.tag
    );
    let pid = e.ok(
        w,
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", podman_name],
    );
    assert_eq!(
        format!("sha256:{}", pid.trim()),
        digest,
        "podman image ID of {podman_name}"
    );
    d.clone()
}

fn docker_run(e: &Engines, w: &Path, tag: &str, extra: &[&str]) -> Ran {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(extra);
    a.push(tag);
    e.run(w, "docker", &a)
}

fn podman_run(e: &Engines, w: &Path, image: &str, extra: &[&str]) -> Ran {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(extra);
    a.push(image);
    e.run(w, "podman", &a)
}

/// `umoci unpack` (as root: real owners and setuid bits) + `runc run`.
fn umoci_runc(e: &Engines, w: &Path, layout: &Path, reference: &str, id: &str) -> Ran {
    let bundle = w.join(format!("bundle-{id}"));
    let _ = fs::remove_dir_all(&bundle);
    let image = format!("{}:{reference}", layout.display());
    e.ok(
        w,
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    let cfg_path = bundle.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["terminal"] = Value::Bool(false);
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let root = e.runc_root();
    let id = format!("strata-{}-{id}", std::process::id());
    let r = e.run(
        w,
        "runc",
        &["--root", &root, "run", "-b", bundle.to_str().unwrap(), &id],
    );
    let _ = e.run(w, "runc", &["--root", &root, "delete", "-f", &id]);
    let _ = fs::remove_dir_all(&bundle);
    r
}

/// Every engine must have exited with `code` and printed `want` (after
/// `normalize`); otherwise fail showing each one that did not.
fn expect_all(runs: &[(&str, Ran)], code: i32, want: &str, normalize: fn(&str) -> String) {
    let mut bad = String::new();
    for (engine, r) in runs {
        let got = normalize(&r.stdout);
        if r.code != Some(code) || got != want {
            writeln!(
                bad,
                "=== {engine}: exit {:?} (want {code}), stdout (normalized) {got:?}\n{}",
                r.code,
                r.report()
            )
            .unwrap();
        }
    }
    assert!(
        bad.is_empty(),
        "want exit {code} and stdout {want:?} from every engine; these differ:\n{bad}"
    );
}

fn same(s: &str) -> String {
    s.to_string()
}

/// Load `img` into docker and podman, check the inspected config, run it in
/// all four engines, and require `code` and `want` from each. Returns
/// docker's inspect object.
fn run_everywhere(
    e: &Engines,
    w: &Path,
    img: &Image,
    code: i32,
    want: &str,
    normalize: fn(&str) -> String,
) -> Value {
    let archive = img.archive.to_str().unwrap();
    let loaded = e.ok(w, "docker", &["load", "-i", archive]);
    assert!(
        loaded.contains(&format!("Loaded image: {}", img.tag)),
        "docker load -i {archive}: {loaded}"
    );
    let loaded = e.ok(w, "podman", &["load", "-i", archive]);
    let podman_name = format!("docker.io/library/{}", img.tag);
    assert!(
        loaded.contains(&podman_name),
        "podman load -i {archive}: {loaded}"
    );
    let inspect = inspect_matches_config(e, w, img, &podman_name);
    let oci = format!("oci:{}:{REF}", img.layout.display());
    let id = img.tag.replace([':', '/'], "-");
    let runs = [
        ("docker load + docker run", docker_run(e, w, &img.tag, &[])),
        (
            "podman load + podman run",
            podman_run(e, w, &podman_name, &[]),
        ),
        ("podman run oci:", podman_run(e, w, &oci, &[])),
        (
            "umoci unpack + runc run",
            umoci_runc(e, w, &img.layout, REF, &id),
        ),
    ];
    expect_all(&runs, code, want, normalize);
    inspect
}

/// Scenario 1: a static binary sees exactly the argv, env, cwd and uid/gid of its config.
#[test]
fn static_binary_sees_exactly_its_config() {
    let Some(e) = engines() else { return };
    let work = e.work("s1");
    let w = &work.0;
    let l = layer(
        w,
        "s1",
        &format!(
            r#"{{"version":1,"entries":[{},
              {{"type":"dir","path":"work","mode":"0750","uid":1000,"gid":1000}}]}}"#,
            busybox_entries()
        ),
    );
    // Not `Groups:`: docker and podman add the primary gid as a supplementary
    // group, umoci's runtime config does not (an engine choice, not the image's).
    let script = r#"for a in "$0" "$@"; do echo "arg:[$a]"; done
echo "FOO:[$FOO]"; echo "PATH:[$PATH]"; echo "EMPTY:[${EMPTY-unset}]"
echo "cwd:[$(busybox pwd -P)]"
busybox grep -E '^(Uid|Gid):' /proc/self/status
exit 3"#;
    let entrypoint = serde_json::to_string(&["/bin/sh", "-c", script, "zero"]).unwrap();
    let img = build(
        w,
        "s1",
        &[
            "--layer",
            &l,
            "--entrypoint",
            &entrypoint,
            "--cmd",
            r#"["one","two  words",""]"#,
            "--env",
            "FOO=bar baz=qux",
            "--env",
            "PATH=/bin",
            "--env",
            "EMPTY=",
            "--workdir",
            "/work",
            "--user",
            "1000:1000",
            "--label",
            "org.example.scenario=static",
            "--exposed-port",
            "8080/tcp",
            "--volume",
            "/data",
            "--stop-signal",
            "SIGUSR1",
        ],
    );
    let inspect = run_everywhere(
        &e,
        w,
        &img,
        3,
        "arg:[zero]\narg:[one]\narg:[two  words]\narg:[]\n\
         FOO:[bar baz=qux]\nPATH:[/bin]\nEMPTY:[]\ncwd:[/work]\n\
         Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n",
        same,
    );
    // What inspect_matches_config compared, spelled out once.
    let c = &inspect["Config"];
    assert_eq!(
        c["Env"],
        serde_json::json!(["FOO=bar baz=qux", "PATH=/bin", "EMPTY="])
    );
    assert_eq!(c["Entrypoint"][2], script);
    assert_eq!(c["Cmd"], serde_json::json!(["one", "two  words", ""]));
    assert_eq!(
        (&c["WorkingDir"], &c["User"], &c["StopSignal"]),
        (&"/work".into(), &"1000:1000".into(), &"SIGUSR1".into())
    );
    assert_eq!(c["Labels"]["org.example.scenario"], "static");
    assert!(c["ExposedPorts"].get("8080/tcp").is_some(), "{c}");
    assert!(c["Volumes"].get("/data").is_some(), "{c}");
}

/// The files `ldd` says `bin` needs (the loader included), host paths.
fn ldd(bin: &str) -> Vec<String> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    assert!(out.status.success(), "ldd {bin}: {out:?}");
    let mut v = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next().unwrap_or(""),
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            v.push(path.to_string());
        }
    }
    assert!(!v.is_empty(), "ldd {bin} lists no library");
    v
}

/// Scenario 2: a dynamic binary runs with the libraries `ldd` lists, /etc/passwd and
/// /etc/group, and PATH=/bin.
#[test]
fn dynamic_binary_with_its_libraries() {
    let Some(e) = engines() else { return };
    let work = e.work("s2");
    let w = &work.0;
    let mut entries = vec![
        r#"{"type":"file","path":"bin/bash","src":"/bin/bash"}"#.to_string(),
        r#"{"type":"file","path":"bin/id","src":"/usr/bin/id"}"#.to_string(),
        r#"{"type":"file","path":"etc/passwd","content":"root:x:0:0:root:/root:/bin/bash\n"}"#
            .to_string(),
        r#"{"type":"file","path":"etc/group","content":"root:x:0:\n"}"#.to_string(),
    ];
    let mut libs = ldd("/bin/bash");
    libs.extend(ldd("/usr/bin/id"));
    libs.sort();
    libs.dedup();
    for lib in &libs {
        // Read through symlinks (/lib64/ld-linux-x86-64.so.2 is one on Debian).
        entries.push(format!(
            r#"{{"type":"file","path":"{}","src":"{lib}"}}"#,
            lib.trim_start_matches('/')
        ));
    }
    let l = layer(
        w,
        "s2",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")),
    );
    let img = build(
        w,
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
    run_everywhere(&e, w, &img, 0, "ok\nroot\n", same);
}

/// Mount points and files the engines add themselves (/dev, /proc, /sys,
/// /run, /etc/{hostname,hosts,resolv.conf}): not what the image holds.
fn without_engine_dirs(s: &str) -> String {
    s.lines()
        .filter(|l| !matches!(*l, "dev" | "etc" | "proc" | "run" | "sys"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Scenario 3: a layer added to a base image umoci wrote, with Cmd ["/bin/ls","/"];
/// then a whiteout layer deleting a base file and a base directory and making
/// a base directory opaque.
#[test]
fn a_layer_added_to_an_image_another_tool_wrote() {
    let Some(e) = engines() else { return };
    let work = e.work("s3");
    let w = &work.0;
    // The base: umoci's own layout, layer (its tar and gzip) and config.
    let rootfs = w.join("rootfs");
    for (p, content) in [
        ("data/old", "old\n"),
        ("data/keep", "keep\n"),
        ("opt/dir/a", "a\n"),
        ("opt/dir/b", "b\n"),
        ("opt/gone/x", "x\n"),
    ] {
        fs::create_dir_all(rootfs.join(p).parent().unwrap()).unwrap();
        fs::write(rootfs.join(p), content).unwrap();
    }
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/ls")).unwrap();
    let base = "base:b";
    e.ok(w, "umoci", &["init", "--layout", "base"]);
    e.ok(w, "umoci", &["new", "--image", base]);
    e.ok(w, "umoci", &["insert", "--image", base, "rootfs", "/"]);
    e.ok(
        w,
        "umoci",
        &[
            "config",
            "--image",
            base,
            "--config.env",
            "PATH=/bin",
            "--config.label",
            "from=umoci",
        ],
    );
    let top = layer(
        w,
        "top",
        r#"{"version":1,"entries":[{"type":"file","path":"some-file","content":"new\n"}]}"#,
    );
    let img = build(
        w,
        "s3",
        &[
            "--base",
            "base",
            "--base-ref",
            "b",
            "--layer",
            &top,
            "--cmd",
            r#"["/bin/ls","/"]"#,
        ],
    );
    let inspect = run_everywhere(
        &e,
        w,
        &img,
        0,
        "bin\ndata\nopt\nsome-file\n",
        without_engine_dirs,
    );
    assert_eq!(inspect["Config"]["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(inspect["Config"]["Labels"]["from"], "umoci");
    assert_eq!(inspect["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // The whiteout layer, on top of that image.
    let wh = layer(
        w,
        "wh",
        r#"{"version":1,"entries":[
          {"type":"whiteout","path":"data/old"},
          {"type":"whiteout","path":"opt/gone"},
          {"type":"opaque","path":"opt/dir"},
          {"type":"file","path":"opt/dir/c","content":"c\n"}]}"#,
    );
    let layout = img.layout.to_str().unwrap().to_string();
    let img = build(
        w,
        "s3w",
        &[
            "--base",
            &layout,
            "--base-ref",
            REF,
            "--layer",
            &wh,
            "--cmd",
            r#"["/bin/ls","-A","/data","/opt","/opt/dir"]"#,
        ],
    );
    run_everywhere(
        &e,
        w,
        &img,
        0,
        "/data:\nkeep\n\n/opt:\ndir\n\n/opt/dir:\nc\n",
        same,
    );
}

/// Scenario 4: several layers: a file overwritten, a symlink replaced by a file, a
/// symlink, a hard link, an executable 0750, a setuid file, owners and a
/// sticky directory from the spec: the container sees the final state.
#[test]
fn later_layers_win_and_metadata_survives() {
    let Some(e) = engines() else { return };
    let work = e.work("s4");
    let w = &work.0;
    let one = layer(
        w,
        "one",
        &format!(
            r##"{{"version":1,"entries":[{},
              {{"type":"file","path":"data/f","content":"one\n"}},
              {{"type":"symlink","path":"data/l2","target":"f"}},
              {{"type":"file","path":"bin/x","content":"#!/bin/sh\necho old\n","mode":"0755"}}]}}"##,
            busybox_entries()
        ),
    );
    // data/owned is world-readable: umoci's runtime config gives root no
    // CAP_DAC_OVERRIDE (docker's and podman's do).
    let two = layer(
        w,
        "two",
        r##"{"version":1,"entries":[
          {"type":"file","path":"data/f","content":"two\n"},
          {"type":"symlink","path":"data/l","target":"f"},
          {"type":"hardlink","path":"data/h","target":"data/f"},
          {"type":"file","path":"data/l2","content":"was a link\n"},
          {"type":"file","path":"data/owned","content":"mine\n","mode":"0604","uid":1000,"gid":1000},
          {"type":"dir","path":"data/sticky","mode":"1777"},
          {"type":"file","path":"bin/x","content":"#!/bin/sh\necho x-ran\n","mode":"0750"},
          {"type":"file","path":"bin/su","content":"not really su\n","mode":"4755"}]}"##,
    );
    let script = r#"cd /data && cat f h l l2 owned
busybox readlink l; busybox readlink l2 || echo l2-not-a-link
[ f -ef h ] && echo f-h-same-inode
busybox stat -c '%n %a %u:%g %h' /bin/x /bin/su /data/f /data/owned
busybox stat -c '%n %a %u:%g' /data/sticky
/bin/x"#;
    let cmd = serde_json::to_string(&["/bin/sh", "-c", script]).unwrap();
    let img = build(
        w,
        "s4",
        &[
            "--layer",
            &one,
            "--layer",
            &two,
            "--env",
            "PATH=/bin",
            "--cmd",
            &cmd,
        ],
    );
    run_everywhere(
        &e,
        w,
        &img,
        0,
        "two\ntwo\ntwo\nwas a link\nmine\nf\nl2-not-a-link\nf-h-same-inode\n\
         /bin/x 750 0:0 1\n/bin/su 4755 0:0 1\n/data/f 644 0:0 2\n/data/owned 604 1000:1000 1\n\
         /data/sticky 1777 0:0\nx-ran\n",
        same,
    );
}

/// Scenario 5: a multi-platform index (amd64 + arm64): engines pick the amd64 entry on
/// this host, and `--platform linux/arm64` the other one.
#[test]
fn the_amd64_entry_of_an_index_runs() {
    let Some(e) = engines() else { return };
    let work = e.work("s5");
    let w = &work.0;
    let l = layer(
        w,
        "s5",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries()),
    );
    // Both carry the amd64 busybox, so running the wrong entry would show.
    for arch in ["amd64", "arm64"] {
        ok_in(
            w,
            &[
                "image",
                "--out",
                arch,
                "--layer",
                &l,
                "--platform",
                &format!("linux/{arch}"),
                "--cmd",
                &format!(r#"["/bin/sh","-c","echo {arch}-entry"]"#),
            ],
        );
    }
    let tag = format!("strata-s5:{REF}");
    for (out, format) in [("idx.oci", "oci"), ("idx.tar", "oci-archive")] {
        ok_in(
            w,
            &[
                "index", "--out", out, "--format", format, "--tag", &tag, "amd64", "arm64",
            ],
        );
    }
    let (amd64_config, _) = strata_config(w, &w.join("amd64"));
    let idx = format!("oci:{}:{REF}", w.join("idx.oci").display());
    // docker 20.10 and umoci load single images: skopeo picks the amd64
    // entry, keeping its config (the image ID stays its config digest).
    let sel = format!("oci:{}:{REF}", w.join("sel").display());
    let docker_tar = format!("docker-archive:{}:{tag}", w.join("sel.tar").display());
    for dest in [&sel, &docker_tar] {
        e.ok(
            w,
            "skopeo",
            &[
                "--insecure-policy",
                "--override-os",
                "linux",
                "--override-arch",
                "amd64",
                "copy",
                &idx,
                dest,
            ],
        );
    }
    e.ok(
        w,
        "docker",
        &["load", "-i", w.join("sel.tar").to_str().unwrap()],
    );
    let id = e.ok(
        w,
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &tag],
    );
    assert_eq!(id.trim(), amd64_config, "docker loaded the amd64 entry");
    let loaded = e.ok(w, "podman", &["load", "-i", "idx.tar"]);
    assert!(loaded.contains(&tag), "podman load -i idx.tar: {loaded}");
    let podman_name = format!("docker.io/library/{tag}");
    let amd = ["--platform", "linux/amd64"];
    let runs = [
        ("docker run --platform", docker_run(&e, w, &tag, &amd)),
        (
            "podman load (oci-archive index) + podman run",
            podman_run(&e, w, &podman_name, &amd),
        ),
        ("podman run oci:INDEX", podman_run(&e, w, &idx, &amd)),
        (
            "skopeo copy + umoci unpack + runc run",
            umoci_runc(&e, w, &w.join("sel"), REF, "s5"),
        ),
    ];
    expect_all(&runs, 0, "amd64-entry\n", same);
    // The index's platforms are right both ways.
    let arm = podman_run(&e, w, &idx, &["--platform", "linux/arm64"]);
    expect_all(
        &[("podman run --platform linux/arm64 oci:INDEX", arm)],
        0,
        "arm64-entry\n",
        same,
    );
}

/// A bad image never reaches the engines silently: an archive docker and
/// podman refuse fails the test, and the failure carries the engine's own
/// message.
#[test]
fn an_engine_refusing_an_image_fails_with_its_message() {
    let Some(e) = engines() else { return };
    let work = e.work("s6");
    let w = &work.0;
    let l = layer(
        w,
        "s6",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries()),
    );
    let img = build(w, "s6", &["--layer", &l, "--cmd", r#"["/bin/true"]"#]);
    // Cut the archive in the middle of its (largest) layer blob.
    let bytes = fs::read(&img.archive).unwrap();
    fs::write(&img.archive, &bytes[..bytes.len() / 2]).unwrap();
    let archive = img.archive.to_str().unwrap();
    for prog in ["docker", "podman"] {
        let r = e.run(w, prog, &["load", "-i", archive]);
        let msg = r
            .failure()
            .unwrap_or_else(|| panic!("{prog} loaded a truncated archive:\n{}", r.report()));
        assert!(
            !r.stderr.trim().is_empty() && msg.contains(r.stderr.trim()),
            "{prog}: the failure must carry the engine's message; got:\n{msg}"
        );
        eprintln!("{prog} refused it as expected:\n{msg}");
    }
}

/// A shallow base (issue 13): the base is pushed to a real registry, pulled
/// back with `--shallow` (no layer bytes), built on, and written as a
/// docker-archive, which fetches the base layers into the cache; the image
/// runs in docker and podman.
#[test]
fn an_image_on_a_shallow_base_runs() {
    let Some(e) = engines() else { return };
    let work = e.work("shallow");
    let w = &work.0;
    let Some(reg) = crate::registry::Registry::start(w, "reg", None) else {
        return;
    };
    let host = reg.host();
    let bb = layer(
        w,
        "bb",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries()),
    );
    let base = ok_in(
        w,
        &[
            "image",
            "--out",
            "base.oci",
            "--layer",
            &bb,
            "--env",
            "PATH=/bin",
        ],
    );
    ok_in(
        w,
        &[
            "push",
            "-q",
            "base.oci",
            &format!("http://{host}/bb-base:1"),
        ],
    );
    ok_in(
        w,
        &[
            "pull",
            "-q",
            "--shallow",
            &format!("http://{host}/bb-base@{}", base.trim()),
            "--out",
            "shallow",
        ],
    );
    assert!(!w
        .join("shallow/blobs/sha256")
        .join(&bb_digest(w)[7..])
        .exists());
    fs::create_dir_all(w.join("app")).unwrap();
    fs::write(w.join("app/hello.txt"), "hi from a shallow base\n").unwrap();
    ok_in(
        w,
        &[
            "layer",
            "--out",
            "app.tgz",
            "--descriptor",
            "app.json",
            "app",
        ],
    );
    let tag = "strata-shallow:1";
    let cmd = r#"["/bin/sh","-c","cat /hello.txt; ls /bin/busybox"]"#;
    let common = [
        "--base",
        "shallow",
        "--layer",
        "app.tgz:app.json",
        "--cmd",
        cmd,
        "--tag",
        tag,
    ];
    let mut archive = vec![
        "image",
        "--out",
        "shallow.tar",
        "--format",
        "docker-archive",
        "--cache-dir",
        "cache",
    ];
    archive.extend_from_slice(&common);
    let mut layout = vec!["image", "--out", "shallow.oci"];
    layout.extend_from_slice(&common);
    let d1 = ok_in(w, &archive);
    assert_eq!(
        ok_in(w, &layout),
        d1,
        "layout (shallow) and archive hold one image"
    );
    e.ok(w, "docker", &["load", "-i", "shallow.tar"]);
    e.ok(w, "podman", &["load", "-i", "shallow.tar"]);
    let runs = [
        ("docker load + docker run", docker_run(&e, w, tag, &[])),
        (
            "podman load + podman run",
            podman_run(&e, w, &format!("docker.io/library/{tag}"), &[]),
        ),
    ];
    expect_all(&runs, 0, "hi from a shallow base\n/bin/busybox\n", same);
}

fn bb_digest(w: &Path) -> String {
    let v: Value = serde_json::from_slice(&fs::read(w.join("bb.json")).unwrap()).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// Issue #19: archives the real producers write from an image are read as
/// that image, and serve as a base: Docker 20.10's `docker save` (legacy
/// format, plain and piped through gzip), `podman save` and skopeo's
/// `docker-archive:`. The base's layer is uncompressed, so each archive's
/// `strata digest` is the digest strata gave the image before it went
/// through the engine (config and layer kept byte for byte). Each is
/// inspected, verified and used as `--base`; every result is the same image
/// and runs in docker and podman with the base's Env and the new Cmd. A
/// `docker save a b` archive needs a tag, and with one gives that image.
#[test]
fn images_docker_podman_and_skopeo_saved_are_bases() {
    let Some(e) = engines() else { return };
    let work = e.work("legacy");
    let w = &work.0;
    let spec = format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries());
    fs::write(w.join("bb.spec.json"), spec).unwrap();
    let bb = "bb.tar:bb.json";
    ok_in(
        w,
        &[
            "layer",
            "--compression",
            "none",
            "--out",
            "bb.tar",
            "--descriptor",
            "bb.json",
            "--spec",
            "bb.spec.json",
        ],
    );
    let base = |name: &str, env: &str| {
        build(
            w,
            name,
            &[
                "--layer",
                bb,
                "--env",
                env,
                "--cmd",
                r#"["/bin/sh","-c","echo base"]"#,
            ],
        )
    };
    let a = base("legacy-a", "FOO=from-a");
    let b = base("legacy-b", "FOO=from-b");
    let digest_of = |p: &Path| {
        ok_in(w, &["digest", p.to_str().unwrap()])
            .trim()
            .to_string()
    };
    let (da, db) = (digest_of(&a.layout), digest_of(&b.layout));
    for img in [&a, &b] {
        e.ok(w, "docker", &["load", "-i", img.archive.to_str().unwrap()]);
        e.ok(w, "podman", &["load", "-i", img.archive.to_str().unwrap()]);
    }
    e.ok(w, "docker", &["save", &a.tag, "-o", "docker.tar"]);
    e.ok(
        w,
        "sh",
        &[
            "-c",
            &format!("docker save {} | gzip >docker.tar.gz", a.tag),
        ],
    );
    e.ok(
        w,
        "podman",
        &[
            "save",
            "-o",
            "podman.tar",
            &format!("docker.io/library/{}", a.tag),
        ],
    );
    let oci = format!("oci:{}:{REF}", a.layout.display());
    let sk = format!("docker-archive:{}/skopeo.tar:{}", w.display(), a.tag);
    e.ok(w, "skopeo", &["copy", "-q", &oci, &sk]);
    e.ok(w, "docker", &["save", &a.tag, &b.tag, "-o", "multi.tar"]);
    // What Docker 20.10 wrote is the legacy format.
    let listing = e.ok(w, "tar", &["tf", "docker.tar"]);
    assert!(
        listing.contains("/layer.tar") && !listing.contains("oci-layout"),
        "docker save wrote: {listing}"
    );

    let top = layer(
        w,
        "motd",
        r#"{"version":1,"entries":[{"type":"file","path":"etc/motd","content":"added\n"}]}"#,
    );
    let cmd = r#"["/bin/sh","-c","echo $FOO; cat /etc/motd"]"#;
    let mut composed: Vec<(String, String)> = Vec::new();
    for f in ["docker.tar", "docker.tar.gz", "podman.tar", "skopeo.tar"] {
        assert_eq!(ok_in(w, &["digest", f]).trim(), da, "strata digest {f}");
        ok_in(w, &["verify", f]);
        let i = ok_in(w, &["inspect", f]);
        assert!(i.contains("FOO=from-a"), "strata inspect {f}: {i}");
        let name = format!("on-{}", f.replace('.', "-"));
        let img = build(w, &name, &["--base", f, "--layer", &top, "--cmd", cmd]);
        composed.push((f.to_string(), digest_of(&img.layout)));
        if f == "docker.tar" {
            // Once in all four engines (the other bases give the same image, below).
            run_everywhere(&e, w, &img, 0, "from-a\nadded\n", same);
        } else {
            e.ok(w, "docker", &["load", "-i", img.archive.to_str().unwrap()]);
            e.ok(w, "podman", &["load", "-i", img.archive.to_str().unwrap()]);
            let podman_name = format!("docker.io/library/{}", img.tag);
            let runs = [
                ("docker run", docker_run(&e, w, &img.tag, &[])),
                ("podman run", podman_run(&e, w, &podman_name, &[])),
            ];
            expect_all(&runs, 0, "from-a\nadded\n", same);
        }
    }
    assert!(
        composed.windows(2).all(|p| p[0].1 == p[1].1),
        "every base gives one image: {composed:?}"
    );

    // Two images in one archive: a tag is needed, and picks.
    let out = crate::util::run_in(w, &["digest", "multi.tar"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("strata: multi.tar: holds 2 images; name one by tag (have: ")
            && err.contains(&a.tag)
            && err.contains(&b.tag)
            && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        ok_in(w, &["digest", "--ref", &a.tag, "multi.tar"]).trim(),
        da
    );
    assert_eq!(
        ok_in(w, &["digest", "--ref", &b.tag, "multi.tar"]).trim(),
        db
    );
    let img = build(
        w,
        "on-multi",
        &[
            "--base",
            "multi.tar",
            "--base-ref",
            &b.tag,
            "--layer",
            &top,
            "--cmd",
            cmd,
        ],
    );
    e.ok(w, "docker", &["load", "-i", img.archive.to_str().unwrap()]);
    let runs = [("docker run", docker_run(&e, w, &img.tag, &[]))];
    expect_all(&runs, 0, "from-b\nadded\n", same);
}

/// A Dockerfile build audited against strata's image of the same files
/// (README, "Auditing a Dockerfile build"): Docker 20.10's legacy builder
/// builds `FROM scratch` + `COPY . /` of `examples/hello`; `docker save`
/// (legacy format) is converted by skopeo into an OCI layout. strata
/// verify's layer checks accept Docker's layer (no false positive), and
/// `diff --semantic` reports exactly what changes behaviour: Docker's
/// default `PATH`, the `root` owner names, skopeo's index without platform;
/// with those matched (`--env`, `normalize --owners root`) nothing is left.
#[test]
fn a_dockerfile_build_audited_with_diff() {
    let Some(e) = engines() else { return };
    let work = e.work("dockerfile");
    let w = &work.0;
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    crate::util::sh(w, &format!("cp -r '{}' ctx", hello.display()));
    fs::write(w.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let tag = "strata-dockerfile:1";
    // Debian's 20.10 client and its legacy builder (no BuildKit), as CI has them.
    let docker = "/usr/bin/docker";
    let mut env = e.env.clone();
    env.push(("DOCKER_BUILDKIT".into(), "0".into()));
    let built = Command::new(docker)
        .current_dir(w)
        .args(["build", "-q", "-f", "Dockerfile", "-t", tag, "ctx"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    // `docker save` of 20.10 writes the legacy format; strata reads it as is.
    e.ok(w, docker, &["save", tag, "-o", "docker.tar"]);
    e.ok(w, docker, &["rmi", tag]);
    ok_in(w, &["verify", "docker.tar"]);
    ok_in(
        w,
        &[
            "layer",
            "--out",
            "hello.tgz",
            "--descriptor",
            "hello.json",
            "ctx",
        ],
    );
    ok_in(
        w,
        &[
            "image",
            "--out",
            "strata.oci",
            "--layer",
            "hello.tgz:hello.json",
            "--tag",
            tag,
        ],
    );
    let out = crate::util::run_in(
        w,
        &["diff", "--semantic", "--json", "strata.oci", "docker.tar"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut fields: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"]
                .as_str()
                .map(|p| format!("{p}: "))
                .unwrap_or_default();
            format!(
                "{}: {path}{}",
                f["place"].as_str().unwrap(),
                f["field"].as_str().unwrap()
            )
        })
        .collect();
    fields.sort();
    let mut want = vec!["config: config.Env".to_string()];
    for p in ["etc", "etc/motd", "www", "www/index.html"] {
        for f in ["gname", "uname"] {
            want.push(format!("layer 0: {p}: {f}"));
        }
    }
    want.sort();
    assert_eq!(fields, want, "{}", String::from_utf8_lossy(&out.stdout));
    for class in [
        "timestamps",
        "history",
        "tar dialect",
        "digests and sizes",
        "empty vs absent values",
        "builder metadata",
    ] {
        assert!(v["ignored"][class].as_u64() > Some(0), "{class}: {v}");
    }
    // Match what differs and nothing is left.
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    ok_in(
        w,
        &[
            "image",
            "--out",
            "env.oci",
            "--layer",
            "hello.tgz:hello.json",
            "--env",
            path,
            "--tag",
            tag,
        ],
    );
    ok_in(
        w,
        &["normalize", "--owners", "root", "docker.tar", "norm.oci"],
    );
    let out = crate::util::run_in(w, &["diff", "--semantic", "env.oci", "norm.oci"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("identical (semantically); "), "{text}");
}

/// The Debian mirror this machine's apt uses (its first `URIs:` or `deb`
/// line), so debootstrap fetches from the package registry apt is set up
/// for; None leaves the choice to debootstrap's default.
fn debian_mirror() -> Option<String> {
    let sources = [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ];
    for f in sources {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let uri = if let Some(u) = line.strip_prefix("URIs:") {
                u.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.contains("://"))
            } else {
                None
            };
            if let Some(u) = uri.filter(|u| !u.contains("security")) {
                return Some(u.to_string());
            }
        }
    }
    None
}

/// `debootstrap --variant=minbase bookworm TREE` (nothing cached across
/// runs). None (a skip) only when the mirror cannot be reached and
/// `STRATA_REQUIRE_TOOLS=1` is not set.
fn debootstrap(w: &Path, tree: &Path) -> Option<()> {
    if !crate::util::have_tool("debootstrap") {
        return None;
    }
    let mirror = debian_mirror();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(tree)
        .args(mirror.as_deref())
        .current_dir(w)
        .output()
        .expect("run debootstrap");
    if out.status.success() {
        return Some(());
    }
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unreachable = ["Failed getting release file", "Temporary failure resolving"]
        .iter()
        .any(|m| log.contains(m));
    let required = std::env::var("STRATA_REQUIRE_TOOLS").as_deref() == Ok("1");
    if unreachable && !required {
        eprintln!("skipping: debootstrap cannot reach the Debian mirror ({mirror:?}):\n{log}");
        return None;
    }
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    panic!(
        "debootstrap --variant=minbase bookworm failed ({:?}); last lines:\n{}",
        out.status.code(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// (type, mode & 07777, uid, gid) by tar name, of an lstat walk of `tree`
/// with the children of `dev/` left out (as `--exclude 'dev/*'`).
fn lstat_walk(tree: &Path) -> std::collections::BTreeMap<String, (char, u32, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![(tree.to_path_buf(), String::new())];
    while let Some((dir, rel)) = todo.pop() {
        if rel == "dev/" {
            continue;
        }
        for ent in fs::read_dir(&dir).unwrap() {
            let ent = ent.unwrap();
            let name = format!("{rel}{}", ent.file_name().to_str().unwrap());
            let m = fs::symlink_metadata(ent.path()).unwrap();
            let kind = if m.is_dir() {
                '5'
            } else if m.file_type().is_symlink() {
                '2'
            } else if m.is_file() {
                '0'
            } else {
                panic!("{name}: unexpected file type in the tree")
            };
            let attrs = (
                kind,
                m.mode() & 0o7777,
                u64::from(m.uid()),
                u64::from(m.gid()),
            );
            if m.is_dir() {
                todo.push((ent.path(), format!("{name}/")));
                out.insert(format!("{name}/"), attrs);
            } else {
                out.insert(name, attrs);
            }
        }
    }
    out
}

/// The same of every entry of an uncompressed layer (hard links, which
/// dedupe makes of identical files, count as files).
fn tar_attrs(tar_path: &Path) -> std::collections::BTreeMap<String, (char, u32, u64, u64)> {
    let mut ar = tar::Archive::new(fs::File::open(tar_path).unwrap());
    let mut out = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let kind = match h.entry_type().as_byte() {
            b'1' => '0',
            k => k as char,
        };
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let attrs = (kind, h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap());
        assert!(out.insert(name.clone(), attrs).is_none(), "{name} twice");
    }
    out
}

/// Scenario: a real root filesystem (Debian bookworm, debootstrap minbase)
/// as one layer keeps the modes and owners that make it safe: as nobody,
/// `/etc/shadow` (0640 root:shadow) is unreadable and `/tmp` (1777) is
/// writable; setuid `su` and setgid `/var/mail` survive; apt and dpkg run.
#[test]
fn a_debootstrap_root_filesystem_keeps_its_modes_and_owners() {
    let Some(e) = engines() else { return };
    let work = e.work("rootfs");
    let w = &work.0;
    let tree = w.join("rootfs");
    if debootstrap(w, &tree).is_none() {
        return;
    }
    let flags = "--modes keep --owners keep --exclude 'dev/*'";
    let bin = env!("CARGO_BIN_EXE_strata");
    // Twice, under another umask, TZ and thread count: the same bytes (both
    // at once: the test's time is mostly debootstrap and gzip).
    crate::util::sh(
        w,
        &format!(
            "(umask 022 && TZ=UTC exec {bin} layer -q --out deb.tgz --descriptor deb.json \
               --threads 2 {flags} rootfs) & one=$!
             (umask 077 && TZ=Pacific/Kiritimati exec {bin} layer -q --out deb2.tgz \
               --descriptor deb2.json --threads 1 {flags} rootfs) & two=$!
             wait $one && wait $two && gzip -dc deb.tgz > deb.tar"
        ),
    );
    assert_eq!(
        fs::read(w.join("deb.json")).unwrap(),
        fs::read(w.join("deb2.json")).unwrap(),
        "another umask, TZ and thread count changed the layer"
    );
    let (want, got) = (lstat_walk(&tree), tar_attrs(&w.join("deb.tar")));
    for (name, attrs) in &want {
        assert_eq!(got.get(name), Some(attrs), "{name}: (type, mode, uid, gid)");
    }
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(extra.is_empty(), "entries not in the tree: {extra:?}");
    // The cases that matter, spelled out (Debian's shadow gid is 42, mail's 8).
    for (name, attrs) in [
        ("etc/shadow", ('0', 0o640, 0, 42)),
        ("tmp/", ('5', 0o1777, 0, 0)),
        ("usr/bin/su", ('0', 0o4755, 0, 0)),
        ("var/mail/", ('5', 0o2775, 0, 8)),
        ("dev/", ('5', 0o755, 0, 0)),
    ] {
        assert_eq!(got.get(name), Some(&attrs), "{name}");
    }
    // The SBOM's ground truth (issue #24), taken before the tree goes.
    let dpkg = crate::sbom::dpkg_query(&tree);
    fs::remove_dir_all(&tree).unwrap();
    fs::remove_file(w.join("deb.tar")).unwrap();
    let script = "cat /etc/shadow >/dev/null 2>&1 && echo shadow-readable || echo shadow-unreadable
echo probe > /tmp/probe && echo tmp-writable
stat -c '%a %U:%G %n' /etc/shadow /tmp /var/mail /usr/bin/su
apt-get --version | head -n 1 | cut -d' ' -f1
dpkg -l dpkg | grep -q '^ii' && echo dpkg-ok
id -u";
    let cmd = serde_json::to_string(&["/bin/sh", "-c", script]).unwrap();
    let img = build(
        w,
        "rootfs",
        &[
            "--layer",
            "deb.tgz:deb.json",
            "--user",
            "65534",
            "--cmd",
            &cmd,
        ],
    );
    crate::sbom::check_debian_sbom(w, &img.layout, &dpkg);
    run_everywhere(
        &e,
        w,
        &img,
        0,
        "shadow-unreadable\ntmp-writable\n640 root:shadow /etc/shadow\n1777 root:root /tmp\n\
         2775 root:mail /var/mail\n4755 root:root /usr/bin/su\napt\ndpkg-ok\n65534\n",
        same,
    );
}
