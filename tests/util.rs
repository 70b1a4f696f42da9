//! Shared test helpers: temp dirs, running the binary, fixture trees.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The strata binary under test.
pub fn strata() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Run strata with `args` in `dir`; returns the output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    strata()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run strata")
}

/// Run strata and assert success; returns stdout as a string.
pub fn ok_in(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "strata {args:?} failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run strata expecting failure with `code`; returns stderr.
pub fn fail_in(dir: &Path, args: &[&str], code: i32) -> String {
    let out = run_in(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "strata {args:?}: expected exit {code}\n--- stdout\n{}\n--- stderr\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A fresh temporary directory (removed on drop).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-test-")
        .tempdir()
        .unwrap()
}

/// Whether an external tool is on PATH; with STRATA_REQUIRE_TOOLS=1 a missing
/// tool panics instead of skipping.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    require(found, &format!("{name} is not installed"))
}

/// Whether a test's prerequisite holds. The one skip path of the suite:
/// with STRATA_REQUIRE_TOOLS=1 (as CI sets) an unmet prerequisite panics
/// with `why`; otherwise it prints `skipping: why` and returns false.
pub fn require(cond: bool, why: &str) -> bool {
    if !cond && std::env::var("STRATA_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{why} (required: STRATA_REQUIRE_TOOLS=1)");
    }
    if !cond {
        eprintln!("skipping: {why}");
    }
    cond
}

/// Write a file, creating parents, with `mode`.
pub fn write(path: &Path, content: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The fixture tree of the golden tests: files, executables, empty dirs,
/// symlinks, a >100-byte path, non-ASCII names. `reverse` creates entries in
/// the opposite order (to show creation order does not matter).
pub fn fixture_tree(root: &Path, reverse: bool) {
    let long_dir = format!("deep/{}", "d".repeat(60));
    let long_file = format!("{long_dir}/{}.txt", "f".repeat(60));
    let mut steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| write(&root.join("etc/motd"), b"hello from strata\n", 0o600)),
        Box::new(|| write(&root.join("bin/app"), b"#!/bin/sh\necho app\n", 0o700)),
        Box::new(|| write(&root.join("usr/share/doc/README"), b"docs\n", 0o664)),
        Box::new(|| fs::create_dir_all(root.join("var/empty")).unwrap()),
        Box::new(|| {
            fs::create_dir_all(root.join("bin")).unwrap();
            let _ = fs::remove_file(root.join("bin/sh"));
            symlink("app", root.join("bin/sh")).unwrap();
        }),
        Box::new(|| {
            fs::create_dir_all(root.join("etc")).unwrap();
            let _ = fs::remove_file(root.join("etc/localtime"));
            symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
        }),
        Box::new(move || write(&root.join(&long_file), b"long path\n", 0o644)),
        Box::new(|| {
            write(
                &root.join("data/caf\u{e9}/\u{65e5}\u{672c}.txt"),
                "unicode\n".as_bytes(),
                0o644,
            )
        }),
    ];
    if reverse {
        steps.reverse();
    }
    for s in steps {
        s();
    }
}

/// The path of a fixture file shipped in tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Deterministic incompressible bytes (xorshift).
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Run `sh -c script` in `dir`; it must succeed.
pub fn sh(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run `python3 -c code` in `dir` (crafting tars with `tarfile`); it must succeed.
pub fn python(dir: &Path, code: &str) {
    let o = Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Every file (not directory) under `root`, recursively, in no set order.
pub fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
