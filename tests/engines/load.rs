//! `strata load` into the real engines (issue #22): a reload after a one-file
//! change sends only the changed layer, in docker and in podman; a base the
//! engine lost is sent again whole (between two loads, and during one: the
//! retry); a shallow image fetches only what the engine lacks; each error (no engine, permission
//! denied, an engine refusing the image, a layer the engine cannot take,
//! SIGINT mid-load) is one line naming the engine, and leaves the engine as
//! it was.
//!
//! The base is real files: at least 200 MiB of `/usr/lib/x86_64-linux-gnu`
//! (distinct inodes, by path) plus Debian's static busybox, as ONE
//! uncompressed layer built once per test run (`--compression none`: the
//! point is bytes sent, not compression). Each test puts a small "salt"
//! layer of its own under it, so its chain IDs are its own: tests never see
//! each other's layers in an engine. They run one at a time (the engines'
//! disks and the machine's two cores are shared).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{busybox_entries, engines, layer, Engines, Ran};

const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// At least this many bytes of real files in the base.
const BASE_BYTES: u64 = 200 << 20;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The base layer (`FILE:DESCRIPTOR`), built once per test run.
fn base_layer(e: &Engines) -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = e
            .dir
            .join("work")
            .join(format!("{}-load-base", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        let mut stack = vec![PathBuf::from("/usr/lib/x86_64-linux-gnu")];
        while let Some(d) = stack.pop() {
            for ent in fs::read_dir(&d).unwrap().flatten() {
                let t = ent.file_type().unwrap();
                if t.is_dir() {
                    stack.push(ent.path());
                } else if t.is_file() {
                    files.push(ent.path());
                }
            }
        }
        files.sort();
        let mut seen = std::collections::BTreeSet::new();
        let mut total = 0u64;
        let mut entries = vec![busybox_entries()];
        for f in files {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(&f).unwrap();
            // Hard links of one file (Mesa's drivers) count once.
            if !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total += m.len();
            let p = f.to_str().unwrap();
            entries.push(format!(
                r#"{{"type":"file","path":"{}","src":"{p}"}}"#,
                &p[1..]
            ));
            if total >= BASE_BYTES {
                break;
            }
        }
        assert!(
            total >= BASE_BYTES,
            "/usr/lib/x86_64-linux-gnu holds only {total} bytes"
        );
        fs::write(
            dir.join("base.spec.json"),
            format!(r#"{{"version":1,"entries":[{}]}}"#, entries.join(",")),
        )
        .unwrap();
        let t = Instant::now();
        let out = Command::new(STRATA)
            .current_dir(&dir)
            .args([
                "layer",
                "-q",
                "--compression",
                "none",
                "--out",
                "base.tar",
                "--descriptor",
                "base.json",
                "--spec",
                "base.spec.json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        eprintln!(
            "load tests: base layer of {total} bytes of files built in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        format!("{}/base.tar:{}/base.json", dir.display(), dir.display())
    })
    .clone()
}

/// An image: salt layer, the base, an app layer holding /app/msg = `msg`;
/// its cmd prints /app/msg. An OCI layout `NAME.oci`; returns its path.
fn app_image(w: &Path, salt: &str, base: &str, msg: &str, name: &str, extra: &[&str]) -> PathBuf {
    let salt_l = layer(
        w,
        &format!("salt-{name}"),
        &format!(
            r#"{{"version":1,"entries":[{{"type":"file","path":"etc/strata-salt","content":"{salt}"}}]}}"#
        ),
    );
    let app = layer(
        w,
        &format!("app-{name}"),
        &format!(
            r#"{{"version":1,"entries":[{{"type":"file","path":"app/msg","content":"{msg}\n"}}]}}"#
        ),
    );
    let out = w.join(format!("{name}.oci"));
    let mut args = vec![
        "image",
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--layer",
        &salt_l,
        "--layer",
        base,
        "--layer",
        &app,
        "--cmd",
        r#"["/bin/busybox","cat","/app/msg"]"#,
    ];
    args.extend_from_slice(extra);
    crate::util::ok_in(w, &args);
    out
}

/// What `strata load` said on stderr: layers and bytes sent and skipped.
#[derive(Debug, PartialEq)]
struct Sent {
    layers: u64,
    bytes: u64,
    skipped_layers: u64,
    skipped_bytes: u64,
}

fn parse_sent(stderr: &str) -> Sent {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_else(|| panic!("no `sent …` line in {stderr:?}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    Sent {
        bytes: nums[0],
        layers: nums[1],
        skipped_bytes: nums[2],
        skipped_layers: nums[3],
    }
}

fn strata_load(e: &Engines, w: &Path, args: &[&str]) -> Ran {
    let mut a = vec!["load"];
    a.extend_from_slice(args);
    e.run(w, STRATA, &a)
}

/// `strata load` that must succeed; checks stdout is the config digest.
fn load_ok(e: &Engines, w: &Path, img: &Path, args: &[&str]) -> Sent {
    let mut a = vec![img.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = strata_load(e, w, &a);
    if let Some(m) = r.failure() {
        panic!("{m}");
    }
    assert_eq!(r.stdout.trim(), config_digest(w, img), "{}", r.report());
    eprintln!("{}", r.stderr.trim());
    parse_sent(&r.stderr)
}

fn digest_json(w: &Path, img: &Path) -> Value {
    serde_json::from_str(&crate::util::ok_in(
        w,
        &["digest", "--json", img.to_str().unwrap()],
    ))
    .unwrap()
}

fn config_digest(w: &Path, img: &Path) -> String {
    digest_json(w, img)["config"].as_str().unwrap().to_string()
}

/// Manifest layer descriptors and config diff IDs of a layout.
fn layers_of(img: &Path) -> (Vec<Value>, Vec<String>) {
    let blob = |d: &str| -> Value {
        serde_json::from_slice(
            &fs::read(
                img.join("blobs/sha256")
                    .join(d.trim_start_matches("sha256:")),
            )
            .unwrap(),
        )
        .unwrap()
    };
    let idx: Value = serde_json::from_slice(&fs::read(img.join("index.json")).unwrap()).unwrap();
    let m = blob(idx["manifests"][0]["digest"].as_str().unwrap());
    let c = blob(m["config"]["digest"].as_str().unwrap());
    let diff_ids = c["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (m["layers"].as_array().unwrap().clone(), diff_ids)
}

fn image_bytes(img: &Path) -> u64 {
    layers_of(img)
        .0
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

/// The engine's RootFS.Layers of `name`, or None when it has no such image.
fn engine_layers(e: &Engines, w: &Path, engine: &str, name: &str) -> Option<Vec<String>> {
    let r = e.run(w, engine, &["image", "inspect", name]);
    if r.code != Some(0) {
        return None;
    }
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    Some(
        v[0]["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect(),
    )
}

fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(p) => {
                let mut h = Command::new("sha256sum")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                h.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{p} {d}").as_bytes())
                    .unwrap();
                let o = h.wait_with_output().unwrap();
                format!(
                    "sha256:{}",
                    String::from_utf8(o.stdout)
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                )
            }
        };
        out.push(next);
    }
    out
}

/// Docker's own record of a stored layer (its cache ID), by chain ID.
fn docker_layer_cache_id(e: &Engines, chain_id: &str) -> Option<String> {
    fs::read_to_string(
        e.dir
            .join("root/image/overlay2/layerdb/sha256")
            .join(chain_id.trim_start_matches("sha256:"))
            .join("cache-id"),
    )
    .ok()
}

/// How many layers podman's storage holds with diff ID `diff_id`.
fn podman_layers_with(e: &Engines, diff_id: &str) -> usize {
    let p = e.dir.join("podman/root/vfs-layers/layers.json");
    let v: Value =
        serde_json::from_slice(&fs::read(&p).unwrap_or_else(|_| b"[]".to_vec())).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["diff-digest"].as_str() == Some(diff_id))
        .count()
}

fn run_prints(e: &Engines, w: &Path, engine: &str, name: &str, want: &str) {
    let r = match engine {
        "docker" => super::docker_run(e, w, name, &[]),
        _ => super::podman_run(e, w, name, &[]),
    };
    assert!(
        r.code == Some(0) && r.stdout == want,
        "{engine} run {name} should print {want:?}:\n{}",
        r.report()
    );
}

/// The changed layer plus 1% of the image: what a reload may send.
fn reload_budget(v2: &Path) -> u64 {
    let (layers, _) = layers_of(v2);
    layers.last().unwrap()["size"].as_u64().unwrap() + image_bytes(v2) / 100
}

#[test]
fn docker_reload_sends_only_the_changed_layer() {
    let Some(e) = engines() else { return };
    let _g = serial();
    let w = e.work("load-docker");
    let w = w.0.as_path();
    let base = base_layer(&e);
    let tag = "strata-load-docker:1";
    let v1 = app_image(w, "docker", &base, "one", "v1", &[]);
    let v2 = app_image(w, "docker", &base, "two", "v2", &[]);
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);

    // First load: everything.
    let s1 = load_ok(&e, w, &v1, &["--tag", tag]);
    assert_eq!((s1.layers, s1.skipped_layers), (3, 0), "{s1:?}");
    assert!(s1.bytes >= image_bytes(&v1), "{s1:?}");
    run_prints(&e, w, "docker", tag, "one\n");
    let (_, d1) = layers_of(&v1);
    let chain1 = chain_ids(&d1);
    let base_cache = docker_layer_cache_id(&e, &chain1[1]).expect("docker stores the base");

    // After a one-file change: only the app layer.
    let s2 = load_ok(&e, w, &v2, &["--tag", tag]);
    assert_eq!((s2.layers, s2.skipped_layers), (1, 2), "{s2:?}");
    assert!(
        s2.bytes <= reload_budget(&v2),
        "sent {} bytes, more than the changed layer + 1% ({})",
        s2.bytes,
        reload_budget(&v2)
    );
    let (_, d2) = layers_of(&v2);
    assert_eq!(engine_layers(&e, w, "docker", tag).unwrap(), d2);
    assert_eq!(d2[..2], d1[..2]);
    assert_ne!(d2[2], d1[2]);
    // Docker's own view: the same stored base layer, the new app layer.
    assert_eq!(docker_layer_cache_id(&e, &chain1[1]), Some(base_cache));
    assert!(docker_layer_cache_id(&e, &chain_ids(&d2)[2]).is_some());
    let inspect = e.ok(
        w,
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", tag],
    );
    assert_eq!(inspect.trim(), config_digest(w, &v2));
    run_prints(&e, w, "docker", tag, "two\n");

    // The base deleted from the engine: loaded whole again, and it runs.
    let id1 = config_digest(w, &v1);
    e.ok(w, "docker", &["rmi", "-f", tag, &id1]);
    assert!(
        docker_layer_cache_id(&e, &chain1[1]).is_none(),
        "docker still holds the base"
    );
    let s3 = load_ok(&e, w, &v2, &["--tag", tag]);
    assert_eq!((s3.layers, s3.skipped_layers), (3, 0), "{s3:?}");
    run_prints(&e, w, "docker", tag, "two\n");
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
}

#[test]
fn podman_reload_sends_only_the_changed_layer() {
    let Some(e) = engines() else { return };
    let _g = serial();
    let w = e.work("load-podman");
    let w = w.0.as_path();
    let base = base_layer(&e);
    let tag = "localhost/strata-load-podman:1";
    let v1 = app_image(w, "podman", &base, "one", "v1", &[]);
    let v2 = app_image(w, "podman", &base, "two", "v2", &[]);
    let _ = e.run(w, "podman", &["rmi", "-f", tag]);
    let pm = ["--engine", "podman", "--tag", tag];

    let s1 = load_ok(&e, w, &v1, &pm);
    assert_eq!((s1.layers, s1.skipped_layers), (3, 0), "{s1:?}");
    run_prints(&e, w, "podman", tag, "one\n");
    let (_, d1) = layers_of(&v1);
    assert_eq!(podman_layers_with(&e, &d1[1]), 1);

    let s2 = load_ok(&e, w, &v2, &pm);
    assert_eq!((s2.layers, s2.skipped_layers), (1, 2), "{s2:?}");
    assert!(
        s2.bytes <= reload_budget(&v2),
        "sent {} bytes, more than the changed layer + 1% ({})",
        s2.bytes,
        reload_budget(&v2)
    );
    let (_, d2) = layers_of(&v2);
    assert_eq!(engine_layers(&e, w, "podman", tag).unwrap(), d2);
    // podman's storage: still one copy of the base; the new app layer beside it.
    assert_eq!(podman_layers_with(&e, &d1[1]), 1);
    assert_eq!(podman_layers_with(&e, &d2[2]), 1);
    // Only the tag asked for: no name after the temporary layout.
    let names = e.ok(
        w,
        "podman",
        &["image", "inspect", "--format", "{{.RepoTags}}", tag],
    );
    assert_eq!(names.trim(), format!("[{tag}]"));
    run_prints(&e, w, "podman", tag, "two\n");

    // The base deleted: loaded whole again, and it runs.
    let id1 = config_digest(w, &v1);
    e.ok(
        w,
        "podman",
        &["rmi", "-f", tag, id1.trim_start_matches("sha256:")],
    );
    assert_eq!(
        podman_layers_with(&e, &d1[1]),
        0,
        "podman still holds the base"
    );
    let s3 = load_ok(&e, w, &v2, &pm);
    assert_eq!((s3.layers, s3.skipped_layers), (3, 0), "{s3:?}");
    run_prints(&e, w, "podman", tag, "two\n");
    let _ = e.run(w, "podman", &["rmi", "-f", tag]);
}

/// The one stderr line of a failed `strata load`, after checking the exit code.
fn load_fails(e: &Engines, w: &Path, args: &[&str], code: i32) -> String {
    let r = strata_load(e, w, args);
    assert_eq!(r.code, Some(code), "{}", r.report());
    assert!(r.stdout.is_empty(), "{}", r.report());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.report());
    eprintln!("as expected: {}", r.stderr.trim_end());
    r.stderr.trim_end().to_string()
}

fn docker_sock(e: &Engines) -> String {
    e.env
        .iter()
        .find(|(k, _)| k == "DOCKER_HOST")
        .map(|(_, v)| v.clone())
        .unwrap()
}

#[test]
fn load_errors_name_the_engine_and_leave_it_as_it_was() {
    let Some(e) = engines() else { return };
    let _g = serial();
    let w = e.work("load-errors");
    let w = w.0.as_path();
    let bb = layer(
        w,
        "bb",
        &format!(r#"{{"version":1,"entries":[{}]}}"#, busybox_entries()),
    );
    let small = w.join("small.oci");
    crate::util::ok_in(
        w,
        &[
            "image",
            "-q",
            "--out",
            small.to_str().unwrap(),
            "--layer",
            &bb,
            "--tag",
            "strata-load-err:1",
        ],
    );
    let small_s = small.to_str().unwrap();
    let small_id = config_digest(w, &small);
    let _ = e.run(w, "docker", &["rmi", "-f", "strata-load-err:1", &small_id]);
    // Other engine tests may load images meanwhile: only this one is watched.
    let gone = |what: &str| {
        assert!(
            engine_layers(&e, w, "docker", &small_id).is_none()
                && engine_layers(&e, w, "docker", "strata-load-err:1").is_none(),
            "{what}: the image is in docker"
        );
    };

    // No engine at the socket.
    let none = w.join("none.sock");
    let host = format!("unix://{}", none.display());
    let msg = load_fails(&e, w, &[small_s, "--host", &host], 1);
    assert_eq!(
        msg,
        format!("strata: docker at {host}: no engine there (no such socket)")
    );
    // A host strata cannot use.
    let msg = load_fails(&e, w, &[small_s, "--host", "tcp://127.0.0.1:2375"], 2);
    assert!(msg.contains("unix:///PATH"), "{msg}");

    // Permission denied on the socket: strata as nobody.
    let open = crate::util::tempdir();
    fs::set_permissions(
        open.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    crate::util::sh(
        w,
        &format!(
            "cp -r {small_s} {0}/small.oci && chmod -R a+rX {0}",
            open.path().display()
        ),
    );
    let sock = docker_sock(&e);
    let r = e.run(
        w,
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            STRATA,
            "load",
            "--host",
            &sock,
            open.path().join("small.oci").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(1), "{}", r.report());
    assert_eq!(
        r.stderr.trim_end(),
        format!("strata: docker at {sock}: permission denied on the socket (not in the engine's group?)"),
    );
    gone("permission denied");

    // A layer docker 20.10 cannot take: refused before any connection (the
    // host has no engine, and the message is about the layer).
    let zl = w.join("z.tar.zst");
    crate::util::ok_in(
        w,
        &[
            "layer",
            "-q",
            "--compression",
            "zstd",
            "--out",
            zl.to_str().unwrap(),
            "--descriptor",
            "z.json",
            "--spec",
            "bb.spec.json",
        ],
    );
    let zimg = w.join("z.oci");
    crate::util::ok_in(
        w,
        &[
            "image",
            "-q",
            "--out",
            zimg.to_str().unwrap(),
            "--layer",
            &format!("{}:z.json", zl.display()),
        ],
    );
    let zdigest: Value = serde_json::from_slice(&fs::read(w.join("z.json")).unwrap()).unwrap();
    let msg = load_fails(&e, w, &[zimg.to_str().unwrap(), "--host", &host], 1);
    assert_eq!(
        msg,
        format!(
            "strata: layer {} is tar+zstd, which docker cannot load (Docker 20.10 takes gzip or uncompressed layers); nothing was sent",
            zdigest["digest"].as_str().unwrap()
        )
    );
    let msg = load_fails(&e, w, &[zimg.to_str().unwrap()], 1);
    assert!(msg.contains("is tar+zstd"), "{msg}");
    gone("zstd");

    // The engine answers with an error: a layer that is no tar.
    let junk = w.join("junk.tar");
    fs::write(&junk, crate::util::noise(4096, 7)).unwrap();
    let jd = {
        let o = Command::new("sha256sum").arg(&junk).output().unwrap();
        format!(
            "sha256:{}",
            String::from_utf8(o.stdout)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        )
    };
    fs::write(
        w.join("junk.json"),
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{jd}","size":4096,"diffId":"{jd}"}}"#
        ),
    )
    .unwrap();
    let jimg = w.join("junk.oci");
    crate::util::ok_in(
        w,
        &[
            "image",
            "-q",
            "--out",
            jimg.to_str().unwrap(),
            "--layer",
            &bb,
            "--layer",
            &format!("{}:junk.json", junk.display()),
            "--tag",
            "strata-load-junk:1",
        ],
    );
    let msg = load_fails(&e, w, &[jimg.to_str().unwrap()], 1);
    assert!(
        msg.starts_with(&format!("strata: docker at {sock}: load failed: ")),
        "{msg}"
    );
    assert!(
        engine_layers(&e, w, "docker", &config_digest(w, &jimg)).is_none()
            && engine_layers(&e, w, "docker", "strata-load-junk:1").is_none(),
        "a refused image is in docker"
    );

    // podman refusing it too: one line, and podman holds nothing of it.
    let msg = load_fails(&e, w, &[jimg.to_str().unwrap(), "--engine", "podman"], 1);
    assert!(
        msg.starts_with("strata: podman (podman): `podman pull` failed: "),
        "{msg}"
    );
    assert!(
        engine_layers(
            &e,
            w,
            "podman",
            config_digest(w, &jimg).trim_start_matches("sha256:")
        )
        .is_none(),
        "a refused image is in podman"
    );

    // podman not there.
    let msg = load_fails(
        &e,
        w,
        &[
            small_s,
            "--engine",
            "podman",
            "--podman",
            "/nonexistent/podman",
        ],
        1,
    );
    assert_eq!(
        msg,
        "strata: podman (/nonexistent/podman): not found (is podman installed and on PATH?)"
    );
}

#[test]
fn sigint_mid_load_leaves_docker_as_it_was() {
    let Some(e) = engines() else { return };
    let _g = serial();
    let w = e.work("load-sigint");
    let w = w.0.as_path();
    let base = base_layer(&e);
    let tag = "strata-load-sigint:1";
    let img = app_image(w, "sigint", &base, "one", "v1", &[]);
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
    let tmp = e.dir.join("root/tmp");
    // Other engine tests share this dockerd and load images too: their
    // `docker-import-*` directories come and go. Only directories that
    // appear after strata starts can be its load's.
    let imports = || -> BTreeSet<String> {
        fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .map(|x| x.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("docker-import-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = imports();
    let new_imports = || -> BTreeSet<String> { imports().difference(&before).cloned().collect() };
    let mut child = Command::new(STRATA)
        .args(["load", img.to_str().unwrap(), "--tag", tag])
        .envs(e.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once docker has begun receiving the archive.
    let t = Instant::now();
    while new_imports().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "docker never started the load"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "strata ended before SIGINT"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    crate::util::sh(w, &format!("kill -INT {}", child.id()));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "strata: loading into docker at {}: interrupted; the image was not loaded",
            docker_sock(&e)
        )
    );
    // Docker drops the partial archive (another test's load, started
    // meanwhile, ends too); no image, no tag.
    let t = Instant::now();
    while !new_imports().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "docker kept the partial archive"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        engine_layers(&e, w, "docker", &config_digest(w, &img)).is_none()
            && engine_layers(&e, w, "docker", tag).is_none(),
        "the interrupted image is in docker"
    );
}

/// An image on a shallow base (`strata pull --shallow`): the first load
/// fetches the base's layers the engine lacks into the cache; after a change
/// to the app layer, nothing is fetched (the engine holds the base) and only
/// the app layer is sent.
#[test]
fn a_shallow_image_fetches_only_what_the_engine_lacks() {
    let Some(e) = engines() else { return };
    let _g = serial();
    let work = e.work("load-shallow");
    let w = work.0.as_path();
    let Some(reg) = crate::registry::Registry::start(w, "reg", None) else {
        return;
    };
    let host = reg.host();
    let bb = layer(
        w,
        "bb",
        &format!(
            r#"{{"version":1,"entries":[{},{{"type":"file","path":"etc/strata-salt","content":"shallow"}}]}}"#,
            busybox_entries()
        ),
    );
    let base = crate::util::ok_in(w, &["image", "--out", "base.oci", "--layer", &bb]);
    crate::util::ok_in(
        w,
        &[
            "push",
            "-q",
            "base.oci",
            &format!("http://{host}/load-base:1"),
        ],
    );
    crate::util::ok_in(
        w,
        &[
            "pull",
            "-q",
            "--shallow",
            &format!("http://{host}/load-base@{}", base.trim()),
            "--out",
            "shallow",
        ],
    );
    let bb_hex = {
        let d: Value = serde_json::from_slice(&fs::read(w.join("bb.json")).unwrap()).unwrap();
        d["digest"].as_str().unwrap()[7..].to_string()
    };
    assert!(!w.join("shallow/blobs/sha256").join(&bb_hex).exists());
    let tag = "strata-load-shallow:1";
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
    let mut imgs = Vec::new();
    for msg in ["one", "two"] {
        let app = layer(
            w,
            &format!("app-{msg}"),
            &format!(
                r#"{{"version":1,"entries":[{{"type":"file","path":"app/msg","content":"{msg}\n"}}]}}"#
            ),
        );
        let out = format!("{msg}.oci");
        crate::util::ok_in(
            w,
            &[
                "image",
                "-q",
                "--out",
                &out,
                "--base",
                "shallow",
                "--layer",
                &app,
                "--cmd",
                r#"["/bin/busybox","cat","/app/msg"]"#,
            ],
        );
        imgs.push(w.join(out));
    }
    // First load: docker lacks the base; its layer comes through the cache.
    let s1 = load_ok(&e, w, &imgs[0], &["--tag", tag, "--cache-dir", "cache1"]);
    assert_eq!((s1.layers, s1.skipped_layers), (2, 0), "{s1:?}");
    assert!(w.join("cache1/blobs/sha256").join(&bb_hex).exists());
    run_prints(&e, w, "docker", tag, "one\n");
    // After a change: docker holds the base; nothing is fetched.
    let s2 = load_ok(&e, w, &imgs[1], &["--tag", tag, "--cache-dir", "cache2"]);
    assert_eq!((s2.layers, s2.skipped_layers), (1, 1), "{s2:?}");
    assert!(
        !w.join("cache2").exists(),
        "strata fetched a layer docker holds"
    );
    run_prints(&e, w, "docker", tag, "two\n");
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
}

/// The engine loses a layer between strata's question and the load (the
/// image holding it is removed meanwhile): the pruned load fails naming the
/// blob, strata loads again with every blob, and the image runs. A proxy on
/// a unix socket in front of the real dockerd removes the image the moment
/// strata's `POST /images/load` arrives, before forwarding it.
#[test]
fn a_layer_lost_meanwhile_is_sent_on_retry() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    let Some(e) = engines() else { return };
    let _g = serial();
    let work = e.work("load-retry");
    let w = work.0.as_path();
    let base = layer(
        w,
        "base",
        &format!(
            r#"{{"version":1,"entries":[{},{{"type":"file","path":"etc/strata-salt","content":"retry"}}]}}"#,
            busybox_entries()
        ),
    );
    let mut imgs = Vec::new();
    for msg in ["one", "two"] {
        let app = layer(
            w,
            &format!("app-{msg}"),
            &format!(
                r#"{{"version":1,"entries":[{{"type":"file","path":"app/msg","content":"{msg}\n"}}]}}"#
            ),
        );
        let out = w.join(format!("{msg}.oci"));
        crate::util::ok_in(
            w,
            &[
                "image",
                "-q",
                "--out",
                out.to_str().unwrap(),
                "--layer",
                &base,
                "--layer",
                &app,
                "--cmd",
                r#"["/bin/busybox","cat","/app/msg"]"#,
            ],
        );
        imgs.push(out);
    }
    let tag = "strata-load-retry:1";
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
    let s1 = load_ok(&e, w, &imgs[0], &["--tag", tag]);
    assert_eq!(s1.layers, 2, "{s1:?}");

    let upstream = docker_sock(&e);
    let upstream = upstream.trim_start_matches("unix://").to_string();
    let proxy = w.join("proxy.sock");
    let listener = UnixListener::bind(&proxy).unwrap();
    let id1 = config_digest(w, &imgs[0]);
    let env = e.env.clone();
    let dir = w.to_path_buf();
    let t = std::thread::spawn(move || {
        let mut removed = false;
        for _ in 0..64 {
            let Ok((client, _)) = listener.accept() else {
                return removed;
            };
            let mut r = BufReader::new(client.try_clone().unwrap());
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut line = Vec::new();
                if r.read_until(b'\n', &mut line).unwrap() == 0 {
                    break;
                }
                head.extend_from_slice(&line);
            }
            if head.is_empty() {
                return removed;
            }
            let is_load =
                head.starts_with(b"POST ") && head.windows(12).any(|x| x == b"/images/load");
            if is_load && !removed {
                removed = true;
                let o = Command::new("docker")
                    .args(["rmi", "-f", tag, &id1])
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(&dir)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{o:?}");
            }
            let mut up = UnixStream::connect(&upstream).unwrap();
            up.write_all(&head).unwrap();
            let mut up_r = up.try_clone().unwrap();
            let mut c_w = client.try_clone().unwrap();
            let back = std::thread::spawn(move || {
                let _ = std::io::copy(&mut up_r, &mut c_w);
                let _ = c_w.shutdown(std::net::Shutdown::Both);
            });
            // The rest of the request (buffered bytes first), then the answer.
            up.write_all(r.buffer()).unwrap();
            let mut inner = r.into_inner();
            let _ = std::io::copy(&mut inner, &mut up);
            let _ = back.join();
        }
        removed
    });
    let host = format!("unix://{}", proxy.display());
    let r = strata_load(
        &e,
        w,
        &[imgs[1].to_str().unwrap(), "--tag", tag, "--host", &host],
    );
    if let Some(m) = r.failure() {
        panic!("{m}");
    }
    eprintln!("{}", r.stderr.trim());
    assert_eq!(r.stdout.trim(), config_digest(w, &imgs[1]));
    assert!(
        r.stderr
            .contains("the engine had lost a layer it held: sent everything again"),
        "{}",
        r.report()
    );
    let s2 = parse_sent(&r.stderr);
    assert_eq!((s2.layers, s2.skipped_layers), (2, 0), "{s2:?}");
    // The proxy stops at a connection that sends nothing.
    drop(UnixStream::connect(&proxy));
    assert!(t.join().unwrap(), "the proxy never saw the load");
    run_prints(&e, w, "docker", tag, "two\n");
    let _ = e.run(w, "docker", &["rmi", "-f", tag]);
}
