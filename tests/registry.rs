//! `strata push` / `strata pull` against Debian's real `docker-registry`
//! (2.8), started by each test on a free loopback port with filesystem
//! storage in a temp dir, and stopped by pid. Faults are injected by a
//! loopback HTTP proxy in front of it (`tests/proxy.rs`: dropped connections
//! mid-upload or mid-download, 503s, 429s with `Retry-After`), which also
//! records every request's headers, or by corrupting the registry's stored
//! blob (it then serves bytes that do not match their digest). The
//! registry's access log and the proxy's record show what strata really sent.
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proxy::{summary, Action, Proxy, Rule, Seen};
use crate::util::*;

/// A running docker-registry.
pub struct Registry {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
    log: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Start one; `htpasswd`: (user, password) to require Basic auth.
    pub fn start(root: &Path, name: &str, htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(root, name, htpasswd, "")
    }

    /// Start one with `auth_yaml` (an `auth:` section) when no htpasswd is given.
    pub fn start_with(
        root: &Path,
        name: &str,
        htpasswd: Option<(&str, &str)>,
        auth_yaml: &str,
    ) -> Option<Registry> {
        if !have_tool("docker-registry") || (htpasswd.is_some() && !have_tool("htpasswd")) {
            return None;
        }
        let dir = root.join(name);
        fs::create_dir_all(dir.join("storage")).unwrap();
        let auth = match htpasswd {
            Some((u, p)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                )
            }
            None => auth_yaml.to_string(),
        };
        for _ in 0..5 {
            let port = free_port();
            let cfg = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.join("storage").display()
            );
            fs::write(dir.join("config.yml"), cfg).unwrap();
            // The access log goes to stdout, the rest to stderr.
            let log = dir.join("access.log");
            let child = Command::new("docker-registry")
                .args(["serve", dir.join("config.yml").to_str().unwrap()])
                .stdin(Stdio::null())
                .stdout(fs::File::create(&log).unwrap())
                .stderr(fs::File::create(dir.join("registry.log")).unwrap())
                .spawn()
                .expect("start docker-registry");
            let mut reg = Registry {
                port,
                dir: dir.clone(),
                child,
                log,
            };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break; // died (port taken?): try another port
                }
                // Why the log too: a port picked free can be taken by another
                // test's registry meanwhile; only our own "listening on" line
                // says this process is the one answering.
                let ours = fs::read_to_string(dir.join("registry.log"))
                    .unwrap_or_default()
                    .contains(&format!("listening on 127.0.0.1:{port}"));
                if ours && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(reg);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = reg.child.kill();
        }
        panic!("docker-registry did not start; see {}", dir.display());
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The access log lines so far (`"METHOD URI HTTP/1.1" STATUS`).
    pub fn requests(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let start = l.find("\"")?;
                let rest = &l[start + 1..];
                let end = rest.find('"')?;
                let req = &rest[..end];
                let status: String = rest[end + 1..]
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if !req.contains(" /v2/") {
                    return None;
                }
                Some(format!("{req} {status}"))
            })
            .collect()
    }

    pub fn count(&self, method: &str, contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(&format!("{method} ")) && r.contains(contains))
            .count()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A layer holding `files` (name → bytes) as FILE:DESC for `strata image`.
pub(crate) fn layer_of(d: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> String {
    let tree = d.join(format!("{name}.tree"));
    for (f, bytes) in files {
        write(&tree.join(f), bytes, 0o644);
    }
    let out = format!("{name}.tgz");
    let desc = format!("{name}.json");
    ok_in(
        d,
        &[
            "layer",
            "--out",
            &out,
            "--descriptor",
            &desc,
            tree.to_str().unwrap(),
        ],
    );
    format!("{out}:{desc}")
}

/// Every file under `dir` (relative path → bytes).
pub(crate) fn tree_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn dir_size(dir: &Path) -> u64 {
    tree_bytes(dir).values().map(|v| v.len() as u64).sum()
}

fn skopeo_digest(d: &Path, reference: &str) -> String {
    let out = Command::new("skopeo")
        .current_dir(d)
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            reference,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// The digest of the manifest at `reference` as the registry serves it.
pub(crate) fn raw_digest(d: &Path, reference: &str) -> String {
    let out = Command::new("skopeo")
        .current_dir(d)
        .args(["inspect", "--tls-verify=false", "--raw", reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = d.join("raw.json");
    fs::write(&tmp, &out.stdout).unwrap();
    let s = Command::new("sha256sum").arg(&tmp).output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8(s.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    )
}

pub(crate) fn run_env(
    d: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut c = strata();
    c.current_dir(d).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn push_then_skopeo_and_pull_back_byte_identical() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let host = reg.host();
    let l1 = layer_of(d, "base", &[("etc/os-release", b"ID=strata\n".to_vec())]);
    let l2 = layer_of(d, "app", &[("app/data.bin", noise(300_000, 7))]);
    let tag = format!("{host}/app:1");
    let digest = ok_in(
        d,
        &[
            "image", "--out", "img", "--layer", &l1, "--layer", &l2, "--cmd", "/app", "--tag", &tag,
        ],
    );
    let digest = digest.trim();
    let out = ok_in(d, &["push", "img", &format!("http://{tag}")]);
    assert_eq!(out.trim(), format!("{tag}@{digest}"));
    assert_eq!(skopeo_digest(d, &format!("docker://{tag}")), digest);
    assert_eq!(raw_digest(d, &format!("docker://{tag}")), digest);

    // skopeo copies it back into an OCI layout that strata verifies.
    let out = Command::new("skopeo")
        .current_dir(d)
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{tag}"),
            "oci:copied:x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok_in(d, &["verify", "copied"]);

    // Pulled back by tag and by digest: the very same layout, byte for byte.
    let printed = ok_in(d, &["pull", &format!("http://{tag}"), "--out", "bytag"]);
    assert_eq!(printed.trim(), format!("{host}/app@{digest}"));
    assert_eq!(tree_bytes(&d.join("bytag")), tree_bytes(&d.join("img")));
    ok_in(
        d,
        &[
            "pull",
            &format!("http://{host}/app@{digest}"),
            "--tag",
            &tag,
            "--out",
            "bydigest",
        ],
    );
    assert_eq!(tree_bytes(&d.join("bydigest")), tree_bytes(&d.join("img")));
    ok_in(d, &["verify", "bydigest"]);

    // Pushing it again sends no blob: all present.
    let out = run_env(
        d,
        &["push", "img", &format!("http://{host}/app:2")],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("3 present"), "{err}");
    assert!(!err.contains("uploaded"), "{err}");
}

#[test]
fn a_second_image_on_the_same_base_uploads_only_what_is_new() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let host = reg.host();
    let base = layer_of(d, "base", &[("lib/big.bin", noise(2_000_000, 1))]);
    let a = layer_of(d, "a", &[("a.txt", b"a\n".to_vec())]);
    let b = layer_of(d, "b", &[("b.txt", b"b\n".to_vec())]);
    ok_in(
        d,
        &["image", "--out", "one", "--layer", &base, "--layer", &a],
    );
    ok_in(
        d,
        &[
            "image", "--out", "two", "--layer", &base, "--layer", &b, "--cmd", "/b",
        ],
    );
    let base_digest = fs::read_to_string(d.join("base.json")).unwrap();
    let base_digest: serde_json::Value = serde_json::from_str(&base_digest).unwrap();
    let base_digest = base_digest["digest"].as_str().unwrap().to_string();

    let out = run_env(
        d,
        &["push", "one", &format!("http://{host}/app:one")],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(
        d,
        &["push", "two", &format!("http://{host}/app:two")],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    // strata's own report: the base layer was present, the rest uploaded.
    let base_line = err
        .lines()
        .find(|l| l.starts_with(&base_digest[..19]))
        .unwrap_or_else(|| panic!("no line for the base layer:\n{err}"));
    assert!(base_line.contains("present"), "{err}");
    assert!(err.contains("1 present, 2 uploaded"), "{err}");
    // The registry's log: the base layer's bytes went up once.
    let puts = reg.count(
        "PUT",
        &format!("digest={}", base_digest.replace(':', "%3A")),
    );
    assert_eq!(puts, 1, "{:#?}", reg.requests());
}

#[test]
fn a_multi_platform_index_round_trips() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("hello", b"hi\n".to_vec())]);
    let amd = ok_in(
        d,
        &[
            "image",
            "--out",
            "amd",
            "--layer",
            &l,
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
            &l,
            "--platform",
            "linux/arm64/v8",
        ],
    );
    let tag = format!("{host}/multi:1");
    let idx = ok_in(d, &["index", "--out", "idx", "--tag", &tag, "amd", "arm"]);
    let idx = idx.trim();
    let out = ok_in(d, &["push", "idx", &format!("http://{tag}")]);
    assert_eq!(out.trim(), format!("{tag}@{idx}"));
    assert_eq!(raw_digest(d, &format!("docker://{tag}")), idx);
    ok_in(d, &["pull", &format!("http://{tag}"), "--out", "back"]);
    assert_eq!(tree_bytes(&d.join("back")), tree_bytes(&d.join("idx")));
    ok_in(d, &["verify", "back"]);
    // One platform out of the index: that image's manifest.
    let out = ok_in(
        d,
        &[
            "pull",
            &format!("http://{tag}"),
            "--platform",
            "linux/arm64",
            "--out",
            "armback",
        ],
    );
    assert_eq!(out.trim(), format!("{host}/multi@{}", arm.trim()));
    assert_eq!(ok_in(d, &["digest", "armback"]).trim(), arm.trim());
    assert_ne!(amd.trim(), arm.trim());
}

#[test]
fn htpasswd_auth_needs_credentials_and_never_prints_them() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", Some(("alice", "s3cret-pw"))) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", b"x\n".to_vec())]);
    ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let dest = format!("http://{host}/private:1");
    let empty = d.join("noconfig");
    fs::create_dir_all(&empty).unwrap();
    let no_cfg = [("DOCKER_CONFIG", empty.to_str().unwrap())];

    let out = run_env(d, &["push", "img", &dest], &no_cfg, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(err.contains("requires credentials"), "{err}");
    assert!(err.contains(&host) && err.contains("private"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = run_env(
        d,
        &[
            "push",
            "img",
            &dest,
            "--username",
            "alice",
            "--password-stdin",
        ],
        &no_cfg,
        Some("wrong-pw\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");

    let out = run_env(
        d,
        &[
            "push",
            "img",
            &dest,
            "--username",
            "alice",
            "--password-stdin",
        ],
        &no_cfg,
        Some("s3cret-pw\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("s3cret"));

    // Docker's config.json (auths, base64 USER:PASSWORD).
    let cfg = d.join("dockercfg");
    fs::create_dir_all(&cfg).unwrap();
    let auth = {
        use std::process::Command;
        let o = Command::new("sh")
            .arg("-c")
            .arg("printf %s alice:s3cret-pw | base64")
            .output()
            .unwrap();
        text(&o.stdout).trim().to_string()
    };
    fs::write(
        cfg.join("config.json"),
        format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"),
    )
    .unwrap();
    let with_cfg = [("DOCKER_CONFIG", cfg.to_str().unwrap())];
    let out = run_env(d, &["pull", &dest, "--out", "back"], &with_cfg, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok_in(d, &["verify", "back"]);
    let out = run_env(
        d,
        &["push", "img", &format!("http://{host}/private:2")],
        &with_cfg,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The digest in descriptor `{name}.json` that `layer_of` wrote.
fn digest_of(d: &Path, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join(format!("{name}.json"))).unwrap()).unwrap();
    v["digest"].as_str().unwrap().to_string()
}

/// A 5 MB incompressible one-layer image `img` (returns its digest and the
/// layer's digest and size).
fn big_image(d: &Path) -> (String, String, u64) {
    let l = layer_of(d, "big", &[("big.bin", noise(5_000_000, 3))]);
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let size = fs::metadata(d.join("big.tgz")).unwrap().len();
    (digest.trim().to_string(), digest_of(d, "big"), size)
}

fn uploads(seen: &[Seen], method: &str) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.method == method && s.target.contains("/blobs/uploads/"))
        .cloned()
        .collect()
}

/// A connection cut after a PATCH's head, before the registry stored any of
/// its bytes: strata asks the registry how much it holds (`GET` on the
/// upload: `Range: 0-1048575`) and sends only the rest, in the same upload
/// session — no new `POST`, a `PATCH` starting at that offset, and fewer
/// than twice the blob's bytes in all.
#[test]
fn a_dropped_upload_resumes_at_the_registry_s_offset() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let (digest, _, size) = big_image(d);
    let cut_second_patch = Rule {
        method: "PATCH",
        target_has: "/blobs/uploads/".into(),
        skip: 1,
        times: 1,
        action: Action::DropRequestAfter(0),
    };
    let proxy = Proxy::start(reg.port, vec![cut_second_patch]);
    let dest = format!("http://127.0.0.1:{}/flaky:1", proxy.port);
    let out = run_env(
        d,
        &["push", "img", &dest, "--chunk-size", "1048576"],
        &[],
        None,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(proxy.all_fired(), "the proxy never cut a PATCH");
    let seen = proxy.seen();
    // One upload session per blob (config, layer): resumed, not restarted.
    assert_eq!(uploads(&seen, "POST").len(), 2, "{}", summary(&seen));
    let cut = seen.iter().position(|s| s.faulted).unwrap();
    let asked = seen[cut..]
        .iter()
        .find(|s| s.method == "GET" && s.target.contains("/blobs/uploads/"))
        .expect("strata never asked the registry how much it holds");
    assert_eq!(asked.status, 204, "{}", summary(&seen));
    let resumed = seen[cut + 1..]
        .iter()
        .find(|s| s.method == "PATCH")
        .expect("no PATCH after the cut");
    assert_eq!(
        resumed.header("content-range"),
        Some("1048576-2097151"),
        "{}",
        summary(&seen)
    );
    let sent: u64 = seen
        .iter()
        .filter(|s| s.method == "PATCH" || s.method == "PUT")
        .map(|s| s.body_forwarded)
        .sum();
    assert!(sent < 2 * size, "{sent} bytes sent for a {size}-byte blob");
    assert!(err.contains("resuming at byte 1048576"), "{err}");
    assert_eq!(
        raw_digest(d, &format!("docker://{}/flaky:1", reg.host())),
        digest
    );
}

/// A connection cut inside a PATCH body: docker-registry 2.8 keeps the
/// partial bytes but not their offset, and cancels the upload when asked
/// (404 BLOB_UPLOAD_INVALID, to the status request or to the resumed PATCH),
/// so no client can resume it; strata then restarts the blob in a new
/// session and still completes.
#[test]
fn a_cut_inside_a_chunk_restarts_the_upload() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let (digest, _, _) = big_image(d);
    let cut_inside = Rule {
        method: "PATCH",
        target_has: "/blobs/uploads/".into(),
        skip: 1,
        times: 1,
        action: Action::DropRequestAfter(400_000),
    };
    let proxy = Proxy::start(reg.port, vec![cut_inside]);
    let dest = format!("http://127.0.0.1:{}/flaky:1", proxy.port);
    let out = run_env(
        d,
        &["push", "img", &dest, "--chunk-size", "1048576"],
        &[],
        None,
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(proxy.all_fired(), "the proxy never cut a PATCH");
    let seen = proxy.seen();
    let cut = seen.iter().position(|s| s.faulted).unwrap();
    assert_eq!(seen[cut].body_forwarded, 400_000);
    let asked = cut
        + seen[cut..]
            .iter()
            .position(|s| s.method == "GET" && s.target.contains("/blobs/uploads/"))
            .expect("strata never asked the registry how much it holds");
    // The registry cancels the session either when asked (404 to the GET)
    // or, when the partial bytes had not landed by then (204 with the old
    // offset), at the resumed PATCH (404): which one is timing. Either way
    // the session is gone and strata starts the blob again from byte 0.
    let gone = asked
        + seen[asked..]
            .iter()
            .position(|s| s.status == 404 && s.target.contains("/blobs/uploads/"))
            .unwrap_or_else(|| panic!("the session never ended:\n{}", summary(&seen)));
    assert!(
        seen[asked].status == 404 || seen[asked].status == 204,
        "{}",
        summary(&seen)
    );
    assert_eq!(uploads(&seen, "POST").len(), 3, "{}", summary(&seen));
    let again = seen[gone + 1..]
        .iter()
        .find(|s| s.method == "PATCH")
        .expect("no PATCH after the session ended");
    assert_eq!(
        again.header("content-range"),
        Some("0-1048575"),
        "{}",
        summary(&seen)
    );
    assert!(err.contains("retrying"), "{err}");
    assert_eq!(
        raw_digest(d, &format!("docker://{}/flaky:1", reg.host())),
        digest
    );
}

/// A download cut midway resumes with `Range: bytes=N-`, N the bytes that
/// arrived, and the registry answers 206 with the rest.
#[test]
fn a_dropped_download_resumes_with_a_range_request() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let (digest, layer, size) = big_image(d);
    ok_in(
        d,
        &[
            "push",
            "-q",
            "img",
            &format!("http://{}/flaky:1", reg.host()),
        ],
    );
    let cut_download = Rule {
        method: "GET",
        target_has: format!("/blobs/{layer}"),
        skip: 0,
        times: 1,
        action: Action::DropResponseAfter(1_000_000),
    };
    let proxy = Proxy::start(reg.port, vec![cut_download]);
    let out = run_env(
        d,
        &[
            "pull",
            &format!("http://127.0.0.1:{}/flaky:1", proxy.port),
            "--out",
            "back",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(proxy.all_fired(), "the proxy never cut a download");
    let gets: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.target.contains(&layer))
        .collect();
    assert_eq!(gets.len(), 2, "{}", summary(&gets));
    assert_eq!(gets[0].header("range"), None);
    assert_eq!(
        gets[1].header("range"),
        Some("bytes=1000000-"),
        "{}",
        summary(&gets)
    );
    assert_eq!(gets[1].status, 206, "{}", summary(&gets));
    assert!(size > 2_000_000);
    ok_in(d, &["verify", "back"]);
    assert_eq!(ok_in(d, &["digest", "back"]).trim(), digest);
}

/// The request after `faulted` with the same method and path.
fn retry_of<'a>(seen: &'a [Seen], faulted: &Seen) -> &'a Seen {
    let path = |s: &Seen| s.target.split('?').next().unwrap_or("").to_string();
    seen.iter()
        .find(|s| {
            s.at > faulted.at
                && !s.faulted
                && s.method == faulted.method
                && path(s) == path(faulted)
        })
        .unwrap_or_else(|| panic!("{} {} was never retried", faulted.method, faulted.target))
}

/// A registry answering 503 once, and 429 with `Retry-After: 1`: strata
/// retries, waits at least the announced second after the 429, and succeeds.
#[test]
fn busy_registries_503_and_429_are_retried() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let l = layer_of(d, "l", &[("f", noise(100_000, 4))]);
    let layer = digest_of(d, "l");
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let digest = digest.trim();
    let rule = |method, target_has: &str, action| Rule {
        method,
        target_has: target_has.into(),
        skip: 0,
        times: 1,
        action,
    };
    let busy = || Action::Answer(503, String::new());
    let slow_down = || Action::Answer(429, "Retry-After: 1\r\n".into());
    let proxy = Proxy::start(
        reg.port,
        vec![
            rule("POST", "/blobs/uploads/", busy()),
            rule("PUT", "/manifests/", slow_down()),
            rule("GET", "/manifests/", busy()),
            rule("GET", &format!("/blobs/{layer}"), slow_down()),
        ],
    );
    let at = format!("http://127.0.0.1:{}/busy:1", proxy.port);
    let out = run_env(d, &["push", "img", &at], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &["pull", &at, "--out", "back"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(proxy.all_fired(), "{}", summary(&proxy.seen()));
    assert_eq!(ok_in(d, &["digest", "back"]).trim(), digest);
    let seen = proxy.seen();
    for f in seen.iter().filter(|s| s.faulted) {
        let again = retry_of(&seen, f);
        assert!(
            (200..300).contains(&again.status),
            "{} {}: retried, got {}",
            f.method,
            f.target,
            again.status
        );
        if f.status == 429 {
            let waited = again.at - f.at;
            assert!(
                waited >= Duration::from_secs(1),
                "{} {}: retried after {waited:?}, before Retry-After's 1 s",
                f.method,
                f.target
            );
        }
    }
}

#[test]
fn bytes_that_do_not_match_their_digest_are_refused() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("data", noise(200_000, 9))]);
    ok_in(d, &["image", "--out", "img", "--layer", &l]);
    ok_in(d, &["push", "img", &format!("http://{host}/bad:1")]);
    let desc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("l.json")).unwrap()).unwrap();
    let hex = desc["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let data = reg
        .dir
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(&hex)
        .join("data");
    let mut bytes = fs::read(&data).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    fs::write(&data, bytes).unwrap();
    let err = fail_in(
        d,
        &[
            "pull",
            &format!("http://{host}/bad:1"),
            "--out",
            "back",
            "-q",
        ],
        1,
    );
    assert!(
        err.contains("digest mismatch") && err.contains(&hex),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    assert!(!d.join("back").exists());
    let leftovers: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_references_and_unreachable_registries_are_one_line_errors() {
    let t = tempdir();
    let d = t.path();
    let l = layer_of(d, "l", &[("f", b"x\n".to_vec())]);
    ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let err = fail_in(d, &["push", "img", "http://registry.example/app:1"], 2);
    assert!(err.contains("--insecure"), "{err}");
    let err = fail_in(d, &["push", "img", "127.0.0.1:5000/App"], 2);
    assert!(err.contains("invalid repository"), "{err}");
    // Credentials: both flags or neither; never an empty password.
    let err = fail_in(
        d,
        &["push", "img", "127.0.0.1:5000/app", "--password-stdin"],
        2,
    );
    assert!(err.contains("--password-stdin needs --username"), "{err}");
    let err = fail_in(
        d,
        &["push", "img", "127.0.0.1:5000/app", "--username", "u"],
        2,
    );
    assert!(err.contains("--username needs --password-stdin"), "{err}");
    let err = fail_in(
        d,
        &[
            "pull",
            "127.0.0.1:5000/app",
            "--out",
            "x",
            "--username",
            "u",
            "--password-stdin",
        ],
        2,
    );
    assert!(err.contains("standard input is empty"), "{err}");
    // A reference pinned to another digest than the image's (refused before any request).
    let zero = format!("sha256:{}", "0".repeat(64));
    let err = fail_in(d, &["push", "img", &format!("127.0.0.1:1/app@{zero}")], 1);
    assert!(
        err.contains(&format!(
            "the reference names {zero}, but the image is sha256:"
        )),
        "{err}"
    );
    assert!(!d.join("x").exists());
    let port = free_port();
    let err = fail_in(
        d,
        &[
            "pull",
            &format!("http://127.0.0.1:{port}/app:1"),
            "--out",
            "x",
            "--retries",
            "1",
        ],
        1,
    );
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("connection refused"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Run strata under GNU time; returns (output, peak RSS of strata in KiB).
/// Why not wait4 here: a child spawned from this (large) test process starts
/// with its memory map, and Linux keeps that high-water mark across exec.
fn run_measured(d: &Path, args: &[&str], env: &[(&str, &str)]) -> (std::process::Output, i64) {
    assert!(
        have_tool("/usr/bin/time"),
        "GNU time (Debian's time) is needed"
    );
    let rss_file = d.join(".rss");
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
    c.arg(env!("CARGO_BIN_EXE_strata")).args(args);
    c.current_dir(d)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let rss = fs::read_to_string(&rss_file).unwrap();
    let _ = fs::remove_file(rss_file);
    let rss = rss.lines().last().unwrap().trim().parse().unwrap();
    (out, rss)
}

fn files_over(dir: &Path, limit: u64, skip: &[&Path]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if skip.iter().any(|s| p.starts_with(s)) {
            continue;
        }
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.len() > limit {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn shallow_base_is_mounted_streamed_and_cached_never_downloaded_to_compose() {
    let t = tempdir();
    let d = t.path();
    let Some(mut a) = Registry::start(d, "rega", None) else {
        return;
    };
    let Some(mut b) = Registry::start(d, "regb", None) else {
        return;
    };
    let (ha, hb) = (a.host(), b.host());
    // A base of 100+ MB (two incompressible layers) in registry A.
    let l1 = layer_of(d, "b1", &[("opt/one.bin", noise(56 << 20, 11))]);
    let l2 = layer_of(d, "b2", &[("opt/two.bin", noise(50 << 20, 12))]);
    let base = ok_in(
        d,
        &[
            "image",
            "--out",
            "base",
            "--layer",
            &l1,
            "--layer",
            &l2,
            "--env",
            "PATH=/bin",
        ],
    );
    let base = base.trim();
    ok_in(d, &["push", "-q", "base", &format!("http://{ha}/base:1")]);
    fs::remove_dir_all(d.join("base")).unwrap();
    for n in ["b1.tgz", "b2.tgz", "b1.tree", "b2.tree"] {
        let p = d.join(n);
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }

    // Shallow pull: under 100 KB, records where the layers live.
    ok_in(
        d,
        &[
            "pull",
            "--shallow",
            &format!("http://{ha}/base@{base}"),
            "--out",
            "shallow",
        ],
    );
    let size = dir_size(&d.join("shallow"));
    assert!(size < 100_000, "shallow layout holds {size} bytes");
    let rec = fs::read_to_string(d.join("shallow/strata-remote.json")).unwrap();
    assert!(
        rec.contains(&ha) && rec.contains("\"repository\":\"base\""),
        "{rec}"
    );
    let out = run_env(d, &["verify", "shallow"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 layer(s) live in a registry"),
        "{}",
        text(&out.stderr)
    );
    let err = fail_in(d, &["verify", "--require-complete", "shallow"], 1);
    assert!(err.contains("only in a registry"), "{err}");

    // Compose on it: only config and manifest of the base are read.
    let new = layer_of(d, "new", &[("app/hello.txt", b"hello\n".to_vec())]);
    let app = ok_in(
        d,
        &[
            "image",
            "--base",
            "shallow",
            "--layer",
            &new,
            "--cmd",
            "/bin/true",
            "--out",
            "app",
        ],
    );
    let app = app.trim();
    assert!(dir_size(&d.join("app")) < 100_000);
    assert!(d.join("app/strata-remote.json").exists());

    // Push to another repository of A: base layers mounted, one layer uploaded.
    let out = run_env(
        d,
        &["push", "app", &format!("http://{ha}/app:1")],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("2 mounted"), "{err}");
    assert!(err.contains("2 uploaded"), "{err}"); // the new layer and the config
    assert_eq!(a.count("POST", "mount="), 2, "{:#?}", a.requests());
    assert_eq!(
        a.requests()
            .iter()
            .filter(|r| r.starts_with("POST ") && r.contains("mount=") && r.ends_with(" 201"))
            .count(),
        2
    );
    assert_eq!(raw_digest(d, &format!("docker://{ha}/app:1")), app);

    // Push to registry B: base layers streamed A -> B, small RSS, no big file written.
    let cache = d.join("cache");
    let (out, rss_kib) = run_measured(
        d,
        &["push", "app", &format!("http://{hb}/app:1")],
        &[("STRATA_CACHE_DIR", cache.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("2 streamed"), "{err}");
    assert!(rss_kib < 64 * 1024, "peak RSS {rss_kib} KiB");
    eprintln!("push A->B: peak RSS {} MiB; {err}", rss_kib / 1024);
    let big = files_over(d, 1 << 20, &[&a.dir, &b.dir]);
    assert!(big.is_empty(), "files of layer size written: {big:?}");
    assert_eq!(raw_digest(d, &format!("docker://{hb}/app:1")), app);

    // An archive needs the bytes: fetched once into the cache, then reused.
    let gets = |r: &Registry| r.count("GET", "/blobs/sha256:");
    let before = gets(&a);
    let args = [
        "image",
        "--base",
        "shallow",
        "--layer",
        &new,
        "--cmd",
        "/bin/true",
        "--format",
        "docker-archive",
        "--out",
        "app.tar",
        "--cache-dir",
        "cache",
    ];
    ok_in(d, &args);
    assert_eq!(gets(&a), before + 2, "{:#?}", a.requests());
    ok_in(d, &args);
    assert_eq!(gets(&a), before + 2, "the second build asked A again");
    ok_in(d, &["verify", "app.tar"]);
    assert_eq!(ok_in(d, &["digest", "app.tar"]).trim(), app);
    // No cache directory at all (no HOME, as in a Bazel action): a private
    // temporary one beside the output, gone afterwards.
    let out = strata()
        .current_dir(d)
        .args([
            "image",
            "-q",
            "--base",
            "shallow",
            "--layer",
            &new,
            "--cmd",
            "/bin/true",
        ])
        .args(["--format", "oci-archive", "--out", "nocache.tar"])
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("STRATA_CACHE_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(ok_in(d, &["digest", "nocache.tar"]).trim(), app);
    let left: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Offline: composing still works; an archive names the blob and where it lives.
    a.stop();
    b.stop();
    let again = ok_in(
        d,
        &[
            "image",
            "--base",
            "shallow",
            "--layer",
            &new,
            "--cmd",
            "/bin/true",
            "--out",
            "app2",
        ],
    );
    assert_eq!(again.trim(), app);
    let err = fail_in(
        d,
        &[
            "image",
            "--base",
            "shallow",
            "--layer",
            &new,
            "--format",
            "oci-archive",
            "--out",
            "x.tar",
            "--cache-dir",
            "empty-cache",
        ],
        1,
    );
    assert!(err.contains(&format!("lives at {ha}/base")), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(!d.join("x.tar").exists());
}

/// A token service (the Docker Hub flow): issues RS256 JWTs signed with a
/// throwaway key (openssl), carried in `x5c` with its self-signed
/// certificate, which the registry trusts (`rootcertbundle`). Alice with
/// the right password gets pull+push on what she asks for; anyone else
/// gets a token with no access.
struct TokenServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

/// The refresh token (Docker's `identitytoken`) the token service accepts for alice.
const REFRESH_TOKEN: &str = "R3fresh-t0ken";

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl TokenServer {
    fn start(dir: &Path) -> Option<TokenServer> {
        if !have_tool("openssl") {
            return None;
        }
        let st = Command::new("openssl")
            .current_dir(dir)
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
                "-days",
                "2",
                "-subj",
                "/CN=strata-test-token",
            ])
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", text(&st.stderr));
        let der = Command::new("openssl")
            .current_dir(dir)
            .args(["x509", "-in", "token.crt", "-outform", "der"])
            .output()
            .unwrap()
            .stdout;
        let x5c = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(der)
        };
        let key = dir.join("token.key");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = Arc::clone(&requests);
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match c.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let method = head.split_whitespace().next().unwrap_or("").to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body_len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; body_len];
                let _ = c.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                // Docker's identity-token flow: an OAuth2 refresh-token grant.
                let form: Vec<(String, String)> = body
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), pct_decode(v)))
                    .collect();
                let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                let refresh = method == "POST"
                    && field("grant_type") == Some("refresh_token")
                    && field("refresh_token") == Some(REFRESH_TOKEN);
                let alice = refresh
                    || head.lines().any(|l| {
                        let l = l.to_ascii_lowercase();
                        l.starts_with("authorization: basic ")
                            && l.ends_with(&{
                                use base64::Engine as _;
                                base64::engine::general_purpose::STANDARD
                                    .encode("alice:t0ken-pw")
                                    .to_ascii_lowercase()
                            })
                    });
                let query = target.split_once('?').map(|x| x.1).unwrap_or("");
                let mut scopes: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(pct_decode)
                    .collect();
                if let Some(s) = field("scope") {
                    scopes.extend(s.split(' ').map(str::to_string));
                }
                let mut access = Vec::new();
                for v in &scopes {
                    let parts: Vec<&str> = v.split(':').collect();
                    if parts.len() == 3 && alice {
                        access.push(serde_json::json!({
                            "type": parts[0], "name": parts[1],
                            "actions": parts[2].split(',').collect::<Vec<_>>()}));
                    }
                }
                reqs.lock().unwrap().push(format!(
                    "{} {method} {target} {}",
                    if alice { "alice" } else { "anonymous" },
                    form.iter()
                        .filter(|(k, _)| k != "refresh_token")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                ));
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": "strata-test-issuer", "sub": if alice { "alice" } else { "" },
                    "aud": "strata-test", "exp": now + 600, "nbf": now - 60, "iat": now,
                    "jti": format!("{now}-{}", access.len()), "access": access});
                let input = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let mut sign = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                sign.stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                let sig = sign.wait_with_output().unwrap().stdout;
                let token = format!("{input}.{}", b64url(&sig));
                // OAuth2 replies carry `access_token`; the GET flow, `token`.
                let body = if method == "POST" {
                    serde_json::json!({"access_token": token, "expires_in": 600})
                } else {
                    serde_json::json!({"token": token, "expires_in": 600})
                }
                .to_string();
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Some(TokenServer { port, requests })
    }
}

#[test]
fn bearer_tokens_from_the_www_authenticate_challenge() {
    let t = tempdir();
    let d = t.path();
    let Some((tokens, reg)) = token_registry(d) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", noise(10_000, 5))]);
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let empty = d.join("noconfig");
    fs::create_dir_all(&empty).unwrap();
    let no_cfg = [("DOCKER_CONFIG", empty.to_str().unwrap())];
    let dest = format!("http://{host}/team/app:1");

    // Anonymous: the token grants nothing, the registry says 401.
    let out = run_env(d, &["push", "img", &dest], &no_cfg, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("401 Unauthorized") && err.contains("team/app"),
        "{err}"
    );

    let out = run_env(
        d,
        &[
            "push",
            "img",
            &dest,
            "--username",
            "alice",
            "--password-stdin",
        ],
        &no_cfg,
        Some("t0ken-pw"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("t0ken-pw"));
    let seen = tokens.requests.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.starts_with("alice GET ")
            && r.contains("service=strata-test")
            && r.contains("team%2Fapp%3Apull%2Cpush")),
        "{seen:#?}"
    );
    let out = run_env(
        d,
        &[
            "pull",
            &dest,
            "--out",
            "back",
            "--username",
            "alice",
            "--password-stdin",
        ],
        &no_cfg,
        Some("t0ken-pw\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(ok_in(d, &["digest", "back"]).trim(), digest.trim());
}

/// The token service and a registry trusting it (`TokenServer`).
fn token_registry(d: &Path) -> Option<(TokenServer, Registry)> {
    let tokens = TokenServer::start(d)?;
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: strata-test\n    issuer: strata-test-issuer\n    rootcertbundle: {}\n",
        tokens.port,
        d.join("token.crt").display()
    );
    let reg = Registry::start_with(d, "reg", None, &auth)?;
    Some((tokens, reg))
}

/// Docker's `identitytoken` is an OAuth2 refresh token: strata POSTs it to
/// the token realm (`grant_type=refresh_token`, service, scope), as Docker
/// does, instead of sending it as a Basic password.
#[test]
fn identity_tokens_use_the_oauth2_refresh_grant() {
    let t = tempdir();
    let d = t.path();
    let Some((tokens, reg)) = token_registry(d) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", noise(10_000, 6))]);
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let cfg = d.join("dockercfg");
    fs::create_dir_all(&cfg).unwrap();
    let write_cfg = |token: &str| {
        fs::write(
            cfg.join("config.json"),
            format!("{{\"auths\":{{\"{host}\":{{\"identitytoken\":\"{token}\"}}}}}}"),
        )
        .unwrap()
    };
    let env = [("DOCKER_CONFIG", cfg.to_str().unwrap())];
    let dest = format!("http://{host}/team/app:1");

    write_cfg(REFRESH_TOKEN);
    let out = run_env(d, &["push", "img", &dest], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_env(d, &["pull", &dest, "--out", "back"], &env, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(ok_in(d, &["digest", "back"]).trim(), digest.trim());
    let seen = tokens.requests.lock().unwrap().clone();
    assert!(
        seen.iter().any(|r| r.starts_with("alice POST /token ")
            && r.contains("grant_type=refresh_token")
            && r.contains("service=strata-test")
            && r.contains("scope=repository:team/app:pull,push")),
        "{seen:#?}"
    );
    assert!(!seen.iter().any(|r| r.contains(" GET ")), "{seen:#?}");

    // A token the service does not know: refused, named as an identity token.
    write_cfg("not-the-token");
    let out = run_env(d, &["pull", &dest, "--out", "x"], &env, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");
}

#[test]
fn tls_is_verified_and_a_private_ca_can_be_trusted() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("openssl") {
        return;
    }
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=strata-test-ca");
    sh(
        d,
        "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1",
    );
    sh(d, "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf");
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        d.join("srv.pem").display(),
        d.join("srv.key").display()
    );
    let Some(reg) = Registry::start_with(d, "reg", None, &tls) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", b"over tls\n".to_vec())]);
    let dest = format!("{host}/secure:1");
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l, "--tag", &dest]);
    // Not trusted: refused, one line, naming the registry and the certificate problem.
    let err = fail_in(d, &["push", "img", &dest, "--retries", "0"], 1);
    assert!(
        err.contains(&host) && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Trusted with --ca-cert, or with SSL_CERT_FILE.
    let out = ok_in(d, &["push", "-q", "img", &dest, "--ca-cert", "ca.pem"]);
    assert_eq!(out.trim(), format!("{dest}@{}", digest.trim()));
    let ca = d.join("ca.pem");
    let out = run_env(
        d,
        &["pull", "-q", &dest, "--out", "back"],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(tree_bytes(&d.join("back")), tree_bytes(&d.join("img")));
    let err = fail_in(d, &["pull", &dest, "--out", "x", "--ca-cert", "l.json"], 2);
    assert!(err.contains("l.json") && err.contains("PEM"), "{err}");
}

/// A two-layer base pushed to `reg` and pulled shallow into `shallow`;
/// returns the layers' digests.
fn shallow_base(d: &Path, reg: &Registry, bytes: usize) -> Vec<String> {
    let l1 = layer_of(d, "b1", &[("opt/one.bin", noise(bytes, 21))]);
    let l2 = layer_of(d, "b2", &[("opt/two.bin", noise(bytes, 22))]);
    let base = ok_in(
        d,
        &["image", "--out", "base", "--layer", &l1, "--layer", &l2],
    );
    let at = format!("http://{}/base@{}", reg.host(), base.trim());
    ok_in(d, &["push", "-q", "base", &at]);
    ok_in(d, &["pull", "-q", "--shallow", &at, "--out", "shallow"]);
    vec![digest_of(d, "b1"), digest_of(d, "b2")]
}

/// `strata image --base shallow` as a docker-archive at `out` with `cache`.
fn archive_args<'a>(out: &'a str, cache: &'a str) -> Vec<&'a str> {
    vec![
        "image",
        "--base",
        "shallow",
        "--cmd",
        "/bin/true",
        "--format",
        "docker-archive",
        "--out",
        out,
        "--cache-dir",
        cache,
    ]
}

/// A cached blob is hashed each time it is used: one byte changed in the
/// cache is caught, the file removed and fetched again (the archive is
/// right); offline, the error names the cache file, and no archive is written.
#[test]
fn a_corrupted_cache_entry_is_fetched_again_never_used() {
    let t = tempdir();
    let d = t.path();
    let Some(mut reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let layers = shallow_base(d, &reg, 300_000);
    let want = ok_in(d, &archive_args("one.tar", "cache"));
    let hex = layers[1].strip_prefix("sha256:").unwrap();
    let cached = d.join("cache/blobs/sha256").join(hex);
    let corrupt = || {
        let mut b = fs::read(&cached).unwrap();
        b[1000] ^= 0x01;
        fs::write(&cached, b).unwrap();
    };
    let gets = |r: &Registry| r.count("GET", &format!("/blobs/{}", layers[1]));
    assert_eq!(gets(&reg), 1);

    corrupt();
    let out = run_env(d, &archive_args("two.tar", "cache"), &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cache/blobs/sha256/{hex}: digest mismatch")),
        "{err}"
    );
    assert_eq!(gets(&reg), 2, "the corrupted blob was not fetched again");
    assert_eq!(text(&out.stdout).trim(), want.trim());
    ok_in(d, &["verify", "two.tar"]);
    assert_eq!(
        fs::read(d.join("two.tar")).unwrap(),
        fs::read(d.join("one.tar")).unwrap()
    );
    assert_eq!(
        strata::digest::Digest::of(&fs::read(&cached).unwrap()).to_string(),
        layers[1],
        "the cache holds the right bytes again"
    );

    // Offline: nothing to fetch from; the error names the cache file.
    corrupt();
    reg.stop();
    let err = fail_in(d, &archive_args("three.tar", "cache"), 1);
    // Progress lines (retries) come first; the error is the one last line.
    let last = err.trim().lines().last().unwrap();
    let named = format!("cache file cache/blobs/sha256/{hex}: digest mismatch");
    assert!(
        last.starts_with("strata: ") && last.contains(&named),
        "{err}"
    );
    assert!(!d.join("three.tar").exists());
}

/// Two archive builds on one shallow base share a cache directory at the same
/// time: both succeed with the same, right bytes.
#[test]
fn concurrent_builds_share_the_blob_cache() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    shallow_base(d, &reg, 8_000_000);
    let spawn = |out: &str| {
        strata()
            .current_dir(d)
            .args(archive_args(out, "shared-cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a.tar"), spawn("b.tar"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(text(&a.stdout), text(&b.stdout));
    ok_in(d, &["verify", "a.tar"]);
    assert_eq!(
        fs::read(d.join("a.tar")).unwrap(),
        fs::read(d.join("b.tar")).unwrap()
    );
    let alone = ok_in(d, &archive_args("c.tar", "own-cache"));
    assert_eq!(alone, text(&a.stdout));
    assert_eq!(
        fs::read(d.join("a.tar")).unwrap(),
        fs::read(d.join("c.tar")).unwrap()
    );
}

/// A throwaway GnuPG home and `pass` store (the gpg-agent gpg starts is
/// stopped on drop).
struct PassStore {
    env: Vec<(String, String)>,
}

impl PassStore {
    fn new(d: &Path) -> PassStore {
        let gnupg = d.join("gnupg");
        fs::create_dir_all(&gnupg).unwrap();
        fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let env = vec![
            ("GNUPGHOME".to_string(), gnupg.display().to_string()),
            (
                "PASSWORD_STORE_DIR".to_string(),
                d.join("pass-store").display().to_string(),
            ),
        ];
        let store = PassStore { env };
        store.run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "strata-test@example.invalid",
                "default",
                "default",
                "never",
            ],
            "",
        );
        store.run("pass", &["init", "strata-test@example.invalid"], "");
        store
    }

    fn run(&self, prog: &str, args: &[&str], stdin: &str) {
        let mut c = Command::new(prog);
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{prog}: {}", text(&out.stderr));
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status();
    }
}

/// Credentials from a real credential helper (Debian's
/// `docker-credential-pass`, over `pass` and gpg with a throwaway key),
/// through `credsStore` and through `credHelpers`, against the htpasswd
/// registry; without the stored entry the registry says credentials are
/// missing, so they came from the helper.
#[test]
fn credential_helpers_docker_credential_pass() {
    let t = tempdir();
    let d = t.path();
    if !have_tool("docker-credential-pass") || !have_tool("pass") || !have_tool("gpg") {
        return;
    }
    let Some(reg) = Registry::start(d, "reg", Some(("alice", "s3cret-pw"))) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", b"helper\n".to_vec())]);
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let store = PassStore::new(d);
    let cfg = d.join("dockercfg");
    fs::create_dir_all(&cfg).unwrap();
    let mut env = store.env();
    env.push(("DOCKER_CONFIG", cfg.to_str().unwrap()));
    let dest = format!("http://{host}/private:1");

    for (i, config) in [
        r#"{"credsStore":"pass"}"#.to_string(),
        format!(r#"{{"credHelpers":{{"{host}":"pass"}}}}"#),
    ]
    .iter()
    .enumerate()
    {
        fs::write(cfg.join("config.json"), config).unwrap();
        // Nothing stored yet: anonymous, refused.
        let out = run_env(d, &["push", "img", &dest], &env, None);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{config}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("requires credentials"),
            "{config}: {}",
            text(&out.stderr)
        );
        store.run(
            "docker-credential-pass",
            &["store"],
            &format!(r#"{{"ServerURL":"{host}","Username":"alice","Secret":"s3cret-pw"}}"#),
        );
        let out = run_env(d, &["push", "img", &dest], &env, None);
        assert!(out.status.success(), "{config}: {}", text(&out.stderr));
        let back = format!("back{i}");
        let out = run_env(d, &["pull", &dest, "--out", &back], &env, None);
        assert!(out.status.success(), "{config}: {}", text(&out.stderr));
        assert_eq!(ok_in(d, &["digest", &back]).trim(), digest.trim());
        assert!(!text(&out.stderr).contains("s3cret"));
        store.run("docker-credential-pass", &["erase"], &host);
    }
}

/// README: plain HTTP only when asked. A reference without `http://` speaks
/// TLS (so a plain-HTTP registry fails, one line naming it); `--insecure`
/// makes the same reference work, for push and pull.
#[test]
fn insecure_allows_plain_http_for_a_reference_without_scheme() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let l = layer_of(d, "l", &[("f", b"plain\n".to_vec())]);
    let digest = ok_in(d, &["image", "--out", "img", "--layer", &l]);
    let dest = format!("{}/app:1", reg.host());
    let err = fail_in(d, &["push", "img", &dest, "--retries", "0"], 1);
    assert!(err.contains(&reg.host()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(reg.count("PUT", "/manifests/"), 0);
    let out = ok_in(d, &["push", "-q", "--insecure", "img", &dest]);
    assert_eq!(out.trim(), format!("{dest}@{}", digest.trim()));
    ok_in(d, &["pull", "-q", "--insecure", &dest, "--out", "back"]);
    assert_eq!(ok_in(d, &["digest", "back"]), digest);
}

/// README: push sends an oci-archive or a strata docker-archive as it sends
/// a layout: the registry serves the image under strata's digest.
#[test]
fn archives_are_pushed_like_layouts() {
    let t = tempdir();
    let d = t.path();
    let Some(reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let host = reg.host();
    let l = layer_of(d, "l", &[("f", noise(50_000, 8))]);
    for format in ["oci-archive", "docker-archive"] {
        let out = format!("{format}.tar");
        let tag = format!("{host}/{format}:1");
        let digest = ok_in(
            d,
            &[
                "image", "--format", format, "--out", &out, "--layer", &l, "--cmd", "/f", "--tag",
                &tag,
            ],
        );
        let pushed = ok_in(d, &["push", "-q", &out, &format!("http://{tag}")]);
        assert_eq!(
            pushed.trim(),
            format!("{tag}@{}", digest.trim()),
            "{format}"
        );
        assert_eq!(
            raw_digest(d, &format!("docker://{tag}")),
            digest.trim(),
            "{format}"
        );
        let back = format!("{format}.back");
        ok_in(d, &["pull", "-q", &format!("http://{tag}"), "--out", &back]);
        assert_eq!(ok_in(d, &["digest", &back]).trim(), digest.trim());
    }
}

/// An image on a shallow base: `strata sbom --cache-dir` fetches the base's
/// layers (digests verified) and writes the very bytes the SBOM of the same
/// image on the fully pulled base has; so does `strata attach --sbom`,
/// whose new layout stays shallow. Offline, one line names blob and registry.
#[test]
fn sboms_of_images_on_shallow_bases_fetch_the_base_layers() {
    let t = tempdir();
    let d = t.path();
    let Some(mut reg) = Registry::start(d, "reg", None) else {
        return;
    };
    let layers = shallow_base(d, &reg, 200_000);
    let base = ok_in(d, &["digest", "base"]);
    let at = format!("http://{}/base@{}", reg.host(), base.trim());
    ok_in(d, &["pull", "-q", &at, "--out", "full"]);
    let top = layer_of(d, "top", &[("etc/motd", b"hi\n".to_vec())]);
    for (from, out) in [("shallow", "on-shallow"), ("full", "on-full")] {
        ok_in(d, &["image", "--base", from, "--layer", &top, "--out", out]);
    }
    let sbom = |img: &str, cache: &str| {
        ok_in(
            d,
            &[
                "sbom",
                img,
                "--format",
                "spdx",
                "--files",
                "--cache-dir",
                cache,
            ],
        )
    };
    let want = sbom("on-full", "unused");
    assert!(want.contains("opt/one.bin"), "{want}");
    assert_eq!(sbom("on-shallow", "cache"), want);
    let hex = layers[0].strip_prefix("sha256:").unwrap();
    assert!(d.join("cache/blobs/sha256").join(hex).is_file());

    // attach --sbom: the same document; the new layout is still shallow.
    let attach = |img: &str, out: &str| {
        ok_in(
            d,
            &[
                "attach",
                img,
                "--sbom",
                "spdx",
                "--out",
                out,
                "--cache-dir",
                "cache",
            ],
        )
    };
    assert_eq!(attach("on-shallow", "att-s"), attach("on-full", "att-f"));
    assert!(d.join("att-s/strata-remote.json").is_file());
    assert!(!d.join("att-s/blobs/sha256").join(hex).exists());

    // No cache directory at all (a Bazel action): fetched beside --out, removed.
    let none = [
        ("HOME", ""),
        ("XDG_CACHE_HOME", ""),
        ("STRATA_CACHE_DIR", ""),
    ];
    let args = [
        "sbom",
        "on-shallow",
        "--format",
        "spdx",
        "--files",
        "--out",
        "s.json",
    ];
    let out = run_env(d, &args, &none, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(d.join("s.json")).unwrap().trim(),
        want.trim()
    );
    assert!(!d.join("s.json.fetch").exists());

    // Offline, nothing cached: one line naming the blob and the registry.
    reg.stop();
    let err = fail_in(
        d,
        &[
            "sbom",
            "on-shallow",
            "--format",
            "spdx",
            "--cache-dir",
            "empty",
        ],
        1,
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&layers[0]) && err.contains(&format!("{}/base", reg.host())),
        "{err}"
    );
}
