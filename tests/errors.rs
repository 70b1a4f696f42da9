//! Bad input gets one clear line and loses nothing.
//!
//! Every case checks, through [`rejects`]: the exit code (2 for usage errors,
//! 1 otherwise); that stderr is exactly one line `strata: …` holding the
//! offending file, path or blob and a phrase naming the problem; that stdout
//! is empty; that no output and no `.strata-tmp-*` temporary exists
//! afterwards; and then, run again with a previous output in every output
//! place, that the same line comes out and the previous outputs are untouched,
//! byte for byte. The crash-safety tests at the end kill strata mid-write
//! (SIGTERM, SIGINT, SIGHUP), fill a tmpfs, and hit `ulimit -f`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{noise, ok_in, require, strata, tempdir, write};

/// What [`rejects`] plants where an output will go, to see it survive.
const PREVIOUS: &[u8] = b"a previous output\n";

// ---------------------------------------------------------------------------
// Helpers

/// Names in `dir` that are among `names` or are strata temporaries.
fn leftovers(dir: &Path, names: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata-tmp-") || names.contains(&n.as_str()))
        .collect()
}

/// Assert that `dir` holds none of `names` and no `.strata-tmp-*` temporary.
fn assert_no_output(dir: &Path, names: &[&str]) {
    let l = leftovers(dir, names);
    assert!(l.is_empty(), "left behind in {}: {l:?}", dir.display());
}

/// What a path holds, recursively: compared before and after a failed run.
#[derive(Debug, PartialEq, Eq)]
enum Snap {
    File(Vec<u8>),
    Dir(BTreeMap<String, Snap>),
    Link(PathBuf),
}

fn snapshot(p: &Path) -> Option<Snap> {
    let m = fs::symlink_metadata(p).ok()?;
    Some(if m.is_dir() {
        let mut kids = BTreeMap::new();
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let s = snapshot(&e.path()).expect("listed entry exists");
            kids.insert(e.file_name().to_string_lossy().into_owned(), s);
        }
        Snap::Dir(kids)
    } else if m.file_type().is_symlink() {
        Snap::Link(fs::read_link(p).unwrap())
    } else {
        Snap::File(fs::read(p).unwrap())
    })
}

/// The outputs a command line names: (path, whether it is a directory).
fn outputs(args: &[&str]) -> Vec<(String, bool)> {
    let format = args
        .windows(2)
        .find(|w| w[0] == "--format")
        .map_or("oci", |w| w[1]);
    let dir_out = matches!(args.first(), Some(&"image" | &"index")) && format == "oci";
    args.windows(2)
        .filter_map(|w| match w[0] {
            "--out" => Some((w[1].to_string(), dir_out)),
            "--descriptor" | "--digest-file" => Some((w[1].to_string(), false)),
            _ => None,
        })
        .collect()
}

/// Run once; check exit code, empty stdout, one stderr line with `needles`.
fn run_rejected(
    dir: &Path,
    args: &[&str],
    code: i32,
    needles: &[&str],
    cmd: &dyn Fn() -> Command,
) -> String {
    let out = cmd()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run strata");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "strata {args:?}: expected exit {code}, stderr:\n{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "strata {args:?} failed but printed to stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.ends_with('\n') && stderr.lines().count() == 1,
        "strata {args:?}: expected exactly one stderr line, got:\n{stderr}"
    );
    let line = stderr.trim_end_matches('\n').to_string();
    assert!(line.starts_with("strata: "), "{args:?}: {line}");
    for n in needles {
        assert!(line.contains(n), "strata {args:?}: {n:?} not in:\n{line}");
    }
    line
}

/// The outputs as they are, and no temporaries beside them.
fn check_outputs(dir: &Path, outs: &[(String, bool)], before: &[Option<Snap>], args: &[&str]) {
    assert_no_output(dir, &[]);
    for ((o, _), b) in outs.iter().zip(before) {
        let p = dir.join(o);
        assert!(
            snapshot(&p) == *b,
            "strata {args:?}: output {o} changed by a failed run (before: {})",
            if b.is_some() { "present" } else { "absent" }
        );
        let parent = p.parent().unwrap();
        if parent.is_dir() {
            let name = p.file_name().unwrap().to_str().unwrap();
            if b.is_none() {
                assert_no_output(parent, &[name]);
            } else {
                assert_no_output(parent, &[]);
            }
        }
    }
}

/// Run strata in `dir`, expecting failure `code` with one line holding every
/// needle, and nothing written (see the module docs). Returns the line.
pub(crate) fn rejects(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    rejects_with(dir, args, code, needles, &strata)
}

/// [`rejects`] with a custom command (environment, `ulimit`).
fn rejects_with(
    dir: &Path,
    args: &[&str],
    code: i32,
    needles: &[&str],
    cmd: &dyn Fn() -> Command,
) -> String {
    let outs = outputs(args);
    let before: Vec<Option<Snap>> = outs.iter().map(|(o, _)| snapshot(&dir.join(o))).collect();
    let line = run_rejected(dir, args, code, needles, cmd);
    check_outputs(dir, &outs, &before, args);
    // Again, with a previous output wherever one could be.
    let mut planted = Vec::new();
    for ((o, is_dir), b) in outs.iter().zip(&before) {
        let p = dir.join(o);
        if b.is_some() || !p.parent().unwrap().is_dir() {
            continue;
        }
        // Where nothing can be created (a read-only mount), nothing is planted.
        let ok = if *is_dir {
            fs::create_dir(&p).is_ok() && fs::write(p.join("index.json"), PREVIOUS).is_ok()
        } else {
            fs::write(&p, PREVIOUS).is_ok()
        };
        if ok {
            planted.push(p);
        }
    }
    if !planted.is_empty() {
        let before: Vec<Option<Snap>> = outs.iter().map(|(o, _)| snapshot(&dir.join(o))).collect();
        let again = run_rejected(dir, args, code, needles, cmd);
        assert_eq!(again, line, "{args:?}: another error with previous outputs");
        check_outputs(dir, &outs, &before, args);
        for p in planted {
            if p.is_dir() {
                fs::remove_dir_all(p).unwrap();
            } else {
                fs::remove_file(p).unwrap();
            }
        }
    }
    line
}

/// A layer spec with `entries` (a JSON fragment) as `name` in `d`.
fn spec_file(d: &Path, name: &str, entries: &str) {
    fs::write(
        d.join(name),
        format!(r#"{{"version":1,"entries":[{entries}]}}"#),
    )
    .unwrap();
}

/// `strata layer --spec spec.json` with `entries` must fail with `needles`.
fn spec_rejects(entries: &str, needles: &[&str]) -> String {
    let t = tempdir();
    let d = t.path();
    spec_file(d, "spec.json", entries);
    rejects(
        d,
        &[
            "layer",
            "--out",
            "out.tgz",
            "--descriptor",
            "out.json",
            "--spec",
            "spec.json",
        ],
        1,
        needles,
    )
}

/// A small layer `l.tgz` with its descriptor `l.json`, from the tree `t`.
fn one_layer(d: &Path) {
    write(&d.join("t/f"), b"content", 0o644);
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "t"],
    );
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn hex_of(digest: &serde_json::Value) -> String {
    digest
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

/// An image layout `good` of [`one_layer`]; returns the layer blob's hex digest.
fn image(d: &Path) -> String {
    one_layer(d);
    ok_in(d, &["image", "--out", "good", "--layer", "l.tgz:l.json"]);
    hex_of(&json_file(&d.join("l.json"))["digest"])
}

/// A copy of directory `from` at `to` (blobs copied, not hard-linked).
fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo {}", p.display());
}

// ---------------------------------------------------------------------------
// 1. Paths that leave the root, or are no path at all

#[test]
fn bad_paths_in_specs() {
    let file = |p: &str| format!(r#"{{"type":"file","path":{p},"content":"x"}}"#);
    for (path, phrase) in [
        (
            r#""a/../b""#,
            r#"path "a/../b": '..' components are not allowed"#,
        ),
        (r#""..""#, r#"path "..": '..' components"#),
        (r#""../etc/passwd""#, "'..' components are not allowed"),
        (
            r#""/etc/passwd""#,
            r#"path "/etc/passwd": absolute paths are not allowed"#,
        ),
        (r#""a//b""#, r#"path "a//b": empty component"#),
        (r#""a/./b""#, r#"path "a/./b": '.' component"#),
        // JSON can spell a NUL; no tar entry can hold one.
        (r#""a\u0000b""#, r#"path "a\0b": contains NUL"#),
        (r#""""#, r#"path "": empty path"#),
        (r#""./""#, r#"path "./": empty path"#),
        (r#"".""#, r#"path ".": empty path"#),
    ] {
        spec_rejects(&file(path), &["spec.json: entry 0: ", phrase]);
    }
    // Every path-bearing field is checked, not only a file's `path`.
    spec_rejects(
        r#"{"type":"dir","path":"/var"}"#,
        &["spec.json: entry 0: ", "absolute paths are not allowed"],
    );
    spec_rejects(
        r#"{"type":"symlink","path":"x/../y","target":"z"}"#,
        &["spec.json: entry 0: ", r#""x/../y""#, "'..'"],
    );
    spec_rejects(
        r#"{"type":"file","path":"f","content":"1"},{"type":"hardlink","path":"h","target":"../f"}"#,
        &["spec.json: entry 1: hardlink target", r#""../f""#, "'..'"],
    );
    spec_rejects(
        r#"{"type":"whiteout","path":"/etc/x"}"#,
        &["spec.json: entry 0: ", "absolute paths are not allowed"],
    );
    spec_rejects(
        r#"{"type":"tree","path":"opt//app","src":"."}"#,
        &["spec.json: entry 0: ", r#""opt//app": empty component"#],
    );
    // The /prefix of a directory input is a flag value: a usage error.
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/f"), b"x", 0o644);
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree=/opt/../etc"],
        2,
        &["input tree=/opt/../etc", "'..' components are not allowed"],
    );
}

// ---------------------------------------------------------------------------
// 2. Duplicate paths

#[test]
fn duplicate_paths() {
    // Two entries of one spec.
    spec_rejects(
        r#"{"type":"file","path":"a","content":"1"},{"type":"file","path":"a","content":"2"}"#,
        &["a: duplicate path (from spec.json entry 0 and spec.json entry 1)"],
    );
    // A directory and a file at the same path.
    spec_rejects(
        r#"{"type":"dir","path":"a"},{"type":"file","path":"a","content":"2"}"#,
        &[
            "a: duplicate path",
            "spec.json entry 0",
            "spec.json entry 1",
        ],
    );
    spec_rejects(
        r#"{"type":"file","path":"a/b","content":"1"},{"type":"dir","path":"a/b"}"#,
        &["a/b: duplicate path"],
    );
    // The same directory twice, with different attributes (equal ones merge).
    spec_rejects(
        r#"{"type":"dir","path":"a","mode":"0700"},{"type":"dir","path":"a"}"#,
        &["a: declared twice with different attributes"],
    );

    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/etc/motd"), b"x", 0o644);
    // A spec entry and a directory input giving the same file.
    spec_file(
        d,
        "spec.json",
        r#"{"type":"file","path":"etc/motd","content":"y"}"#,
    );
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "spec.json", "tree"],
        1,
        &[
            "etc/motd: duplicate path",
            "input directory tree",
            "spec.json entry 0",
        ],
    );
    // A file in a spec where the input has a directory.
    spec_file(
        d,
        "file.json",
        r#"{"type":"file","path":"etc","content":"y"}"#,
    );
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "file.json", "tree"],
        1,
        &[
            "etc: duplicate path",
            "input directory tree",
            "file.json entry 0",
        ],
    );
    // Two specs.
    spec_file(
        d,
        "other.json",
        r#"{"type":"file","path":"etc/motd","content":"z"}"#,
    );
    rejects(
        d,
        &[
            "layer",
            "--out",
            "out.tgz",
            "--spec",
            "spec.json",
            "--spec",
            "other.json",
        ],
        1,
        &[
            "etc/motd: duplicate path",
            "spec.json entry 0",
            "other.json entry 0",
        ],
    );
    // Two directory inputs, or one twice.
    write(&d.join("tree2/etc/motd"), b"x", 0o644);
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree", "tree2"],
        1,
        &[
            "etc/motd: duplicate path",
            "input directory tree",
            "input directory tree2",
        ],
    );
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree", "tree"],
        1,
        &["etc/motd: duplicate path"],
    );
}

// ---------------------------------------------------------------------------
// 3. Sources that are not regular files

#[test]
fn bad_sources() {
    let t = tempdir();
    let d = t.path();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    fs::create_dir(d.join("adir")).unwrap();
    mkfifo(&d.join("pipe"));
    for (src, phrase) in [
        ("dangling", "src dangling: dangling symlink"),
        ("missing", "src missing: no such file or directory"),
        ("adir", "src adir: not a regular file"),
        ("pipe", "src pipe: not a regular file"),
    ] {
        spec_file(
            d,
            "spec.json",
            &format!(r#"{{"type":"file","path":"x","src":"{src}"}}"#),
        );
        rejects(
            d,
            &["layer", "--out", "out.tgz", "--spec", "spec.json"],
            1,
            &["spec.json: entry 0: ", phrase],
        );
    }
    spec_file(
        d,
        "spec.json",
        r#"{"type":"tree","path":"x","src":"missing"}"#,
    );
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "spec.json"],
        1,
        &["spec.json: entry 0: ", "missing: no such file or directory"],
    );
    // Directory inputs.
    rejects(
        d,
        &["layer", "--out", "out.tgz", "nonexistent-dir"],
        1,
        &["input directory nonexistent-dir: no such file or directory"],
    );
    fs::write(d.join("plain"), "x").unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "plain"],
        1,
        &["input plain: not a directory"],
    );
}

// ---------------------------------------------------------------------------
// 4. Symlinks that escape the layer root

#[test]
fn escaping_symlinks() {
    spec_rejects(
        r#"{"type":"symlink","path":"a/b","target":"../../x"}"#,
        &["spec.json: entry 0: symlink a/b -> ../../x: escapes the layer root"],
    );
    spec_rejects(
        r#"{"type":"symlink","path":"up","target":".."}"#,
        &["symlink up -> ..: escapes the layer root"],
    );
    spec_rejects(
        r#"{"type":"symlink","path":"a","target":""}"#,
        &["spec.json: entry 0: symlink a: empty target"],
    );

    let t = tempdir();
    let d = t.path();
    fs::create_dir_all(d.join("tree/sub")).unwrap();
    std::os::unix::fs::symlink("../../../etc/shadow", d.join("tree/sub/evil")).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree"],
        1,
        &[
            "tree/sub/evil: ",
            "sub/evil -> ../../../etc/shadow",
            "escapes the layer root",
        ],
    );
    // Under a /prefix the same climb is measured from the prefix.
    fs::create_dir_all(d.join("pre")).unwrap();
    std::os::unix::fs::symlink("../../x", d.join("pre/evil")).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "pre=/opt"],
        1,
        &[
            "pre/evil: ",
            "opt/evil -> ../../x",
            "escapes the layer root",
        ],
    );
    // A link that climbs but stays inside is fine (no over-rejection).
    fs::create_dir_all(d.join("fine/sub")).unwrap();
    std::os::unix::fs::symlink("../f", d.join("fine/sub/ok")).unwrap();
    ok_in(d, &["layer", "--out", "fine.tgz", "fine"]);
}

// ---------------------------------------------------------------------------
// 5. Entries below a symlink (or a file) of the same layer

#[test]
fn writing_through_a_symlink_is_refused() {
    spec_rejects(
        r#"{"type":"symlink","path":"a","target":"/etc"},{"type":"file","path":"a/passwd","content":"root::0:0"}"#,
        &["a/passwd: parent a is a symlink in this layer (from spec.json entry 0)"],
    );
    spec_rejects(
        r#"{"type":"file","path":"f","content":"1"},{"type":"file","path":"f/g","content":"2"}"#,
        &["f/g: parent f is not a directory in this layer (from spec.json entry 0)"],
    );
    // The symlink from a directory input, the file from a spec.
    let t = tempdir();
    let d = t.path();
    fs::create_dir_all(d.join("tree/usr/lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib", d.join("tree/lib")).unwrap();
    spec_file(
        d,
        "spec.json",
        r#"{"type":"file","path":"lib/evil.so","content":"x"}"#,
    );
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "spec.json", "tree"],
        1,
        &[
            "lib/evil.so: parent lib is a symlink",
            "input directory tree",
        ],
    );
    // A directory input placed under a path a spec declares as a file.
    spec_file(
        d,
        "opt.json",
        r#"{"type":"file","path":"opt","content":"x"}"#,
    );
    write(&d.join("app/bin"), b"x", 0o755);
    rejects(
        d,
        &[
            "layer", "--out", "out.tgz", "--spec", "opt.json", "app=/opt",
        ],
        1,
        &["opt/bin: parent opt is not a directory", "opt.json entry 0"],
    );
}

// ---------------------------------------------------------------------------
// 6. Malformed specs

#[test]
fn malformed_specs() {
    let t = tempdir();
    let d = t.path();
    let deep = "[".repeat(100) + &"]".repeat(100);
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"version":1,"entries":[}"#.into(),
            "malformed JSON: expected value at line 1 column 25",
        ),
        (
            r#"{"version":1,"entries":[]} {}"#.into(),
            "malformed JSON: trailing characters",
        ),
        (String::new(), "malformed JSON: EOF while parsing"),
        (
            r#"{"version":2,"entries":[]}"#.into(),
            "unsupported spec version 2 (this strata reads version 1)",
        ),
        (
            r#"{"version":"1","entries":[]}"#.into(),
            r#"unsupported spec version "1""#,
        ),
        (r#"{"entries":[]}"#.into(), r#"missing "version" (expected 1)"#),
        // Typos are errors, never silently ignored.
        (
            r#"{"version":1,"entires":[]}"#.into(),
            "unknown field `entires`",
        ),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","mdoe":"0755"}]}"#.into(),
            "unknown field `mdoe`",
        ),
        (
            r#"{"version":1,"entries":[{"type":"socket","path":"a"}]}"#.into(),
            "unknown variant `socket`",
        ),
        (
            format!(r#"{{"version":1,"entries":{deep}}}"#),
            "JSON nested deeper than 64 levels",
        ),
        // Wrong types.
        (
            r#"{"version":1,"entries":[{"type":"dir","path":7}]}"#.into(),
            "invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"version":1,"entries":{}}"#.into(),
            "invalid type: map, expected a sequence",
        ),
        (
            r#"{"version":1,"parents":"yes","entries":[]}"#.into(),
            r#"invalid type: string "yes", expected a boolean"#,
        ),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","uid":-1}]}"#.into(),
            "invalid value: integer `-1`, expected u64",
        ),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","mode":true}]}"#.into(),
            r#"mode: expected an octal string ("0755") or a number"#,
        ),
        // Well-typed but meaningless values.
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","mode":"99"}]}"#.into(),
            r#"entry 0: mode "99": not an octal number"#,
        ),
        (
            r#"{"version":1,"entries":[{"type":"dir","path":"a","mode":"17777"}]}"#.into(),
            "entry 0: mode 17777: only permission bits",
        ),
        (
            r#"{"version":1,"entries":[{"type":"file","path":"a","content":"x","src":"spec.json"}]}"#.into(),
            r#"entry 0: a: a file needs exactly one of "src" or "content""#,
        ),
        (
            r#"{"version":1,"entries":[{"type":"file","path":"a"}]}"#.into(),
            r#"entry 0: a: a file needs exactly one of "src" or "content""#,
        ),
    ];
    for (text, phrase) in cases {
        fs::write(d.join("spec.json"), text).unwrap();
        rejects(
            d,
            &["layer", "--out", "out.tgz", "--spec", "spec.json"],
            1,
            &["strata: spec.json: ", phrase],
        );
    }
    // Not text at all.
    fs::write(d.join("spec.json"), [0xff, 0xfe, 0x00, 0x0a, 0x1b]).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "spec.json"],
        1,
        &["strata: spec.json: malformed JSON"],
    );
    // No spec file, or a directory.
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "nope.json"],
        1,
        &["reading nope.json: no such file or directory"],
    );
    fs::create_dir(d.join("specdir")).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "--spec", "specdir"],
        1,
        &["reading specdir: is a directory"],
    );
}

// ---------------------------------------------------------------------------
// 7. Layer descriptors for `strata image --layer FILE:DESCRIPTOR`

#[test]
fn bad_descriptors() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    let good = json_file(&d.join("l.json"));
    let size = good["size"].as_u64().unwrap();
    let variant = |name: &str, key: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v[key] = value;
        fs::write(d.join(name), v.to_string()).unwrap();
    };
    let img = |desc: &str| {
        vec![
            "image".to_string(),
            "--out".into(),
            "img".into(),
            "--digest-file".into(),
            "out.digest".into(),
            "--layer".into(),
            format!("l.tgz:{desc}"),
        ]
    };
    let check = |desc: &str, needles: &[&str]| {
        let args = img(desc);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rejects(d, &args, 1, needles);
    };

    variant("size.json", "size", serde_json::json!(size + 1));
    check(
        "size.json",
        &[
            "layer l.tgz: size mismatch",
            "descriptor size.json says",
            &format!("file has {size}"),
        ],
    );
    fs::write(d.join("bad.json"), "{not json").unwrap();
    check(
        "bad.json",
        &["bad.json: malformed JSON: key must be a string"],
    );
    variant("digest.json", "digest", serde_json::json!("sha256:XYZ"));
    check(
        "digest.json",
        &[
            "digest.json: malformed JSON",
            r#"invalid digest "sha256:XYZ": expected 64 hex characters"#,
        ],
    );
    variant(
        "upper.json",
        "digest",
        serde_json::json!(format!("sha256:{}", "A".repeat(64))),
    );
    check("upper.json", &["upper.json: ", "not lowercase hex"]);
    variant(
        "md5.json",
        "digest",
        serde_json::json!("md5:d41d8cd98f00b204e9800998ecf8427e"),
    );
    check(
        "md5.json",
        &["md5.json: ", r#"unsupported digest algorithm "md5""#],
    );
    variant("diffid.json", "diffId", serde_json::json!("sha256:"));
    check("diffid.json", &["diffid.json: ", "invalid digest"]);
    variant(
        "media.json",
        "mediaType",
        serde_json::json!("application/x-rar"),
    );
    check(
        "media.json",
        &["media.json: unknown layer media type \"application/x-rar\""],
    );
    variant("extra.json", "annotations", serde_json::json!({}));
    check(
        "extra.json",
        &["extra.json: ", "unknown field `annotations`"],
    );
    check(
        "nope.json",
        &["reading nope.json: no such file or directory"],
    );
    rejects(
        d,
        &["image", "--out", "img", "--layer", "nope.tgz"],
        1,
        &["layer nope.tgz: no such file or directory"],
    );
    rejects(
        d,
        &["image", "--out", "img", "--layer", "t"],
        1,
        &["layer t: not a regular file"],
    );
}

/// SECURITY.md: a well-formed descriptor digest that does not match the
/// file is trusted when composing (`strata image` reads no layer byte by
/// design) and caught by `strata verify`, which names the blob.
#[test]
fn descriptor_digest_not_matching_the_file_is_caught_by_verify() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    let wrong = "a".repeat(64);
    let mut v = json_file(&d.join("l.json"));
    v["digest"] = serde_json::json!(format!("sha256:{wrong}"));
    fs::write(d.join("wrong.json"), v.to_string()).unwrap();
    ok_in(d, &["image", "--out", "img", "--layer", "l.tgz:wrong.json"]);
    rejects(
        d,
        &["verify", "img"],
        1,
        &[&format!("img/blobs/sha256/{wrong}: digest mismatch")],
    );
}

// ---------------------------------------------------------------------------
// 8. Damaged layouts and things that are not layouts

#[test]
fn verify_finds_corruption() {
    let t = tempdir();
    let d = t.path();
    let hex = image(d);
    let j: serde_json::Value =
        serde_json::from_str(&ok_in(d, &["digest", "--json", "good"])).unwrap();
    let manifest = hex_of(&j["manifest"]);
    let config = hex_of(&j["config"]);
    let blob = |layout: &str, hex: &str| d.join(layout).join("blobs/sha256").join(hex);

    // A modified layer blob (a fresh file: the original is a hard link to l.tgz).
    copy_dir(&d.join("good"), &d.join("modified"));
    let mut bytes = fs::read(blob("modified", &hex)).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    fs::remove_file(blob("modified", &hex)).unwrap();
    fs::write(blob("modified", &hex), bytes).unwrap();
    rejects(
        d,
        &["verify", "modified"],
        1,
        &[&format!("modified/blobs/sha256/{hex}: digest mismatch")],
    );
    // A missing blob.
    copy_dir(&d.join("good"), &d.join("missing"));
    fs::remove_file(blob("missing", &hex)).unwrap();
    rejects(
        d,
        &["verify", "missing"],
        1,
        &[&format!(
            "missing/blobs/sha256/{hex}: layer blob is missing"
        )],
    );
    // A malformed index.json.
    copy_dir(&d.join("good"), &d.join("badindex"));
    fs::write(d.join("badindex/index.json"), "{").unwrap();
    rejects(
        d,
        &["verify", "badindex"],
        1,
        &["badindex/index.json: malformed JSON"],
    );
    // A truncated config blob.
    copy_dir(&d.join("good"), &d.join("trunc"));
    let cfg = fs::read(blob("trunc", &config)).unwrap();
    fs::write(blob("trunc", &config), &cfg[..cfg.len() / 2]).unwrap();
    rejects(
        d,
        &["verify", "trunc"],
        1,
        &[&format!(
            "trunc/blobs/sha256/{config}: size mismatch: descriptor says {} bytes, blob has {}",
            cfg.len(),
            cfg.len() / 2
        )],
    );
    // A manifest changed in place (same size).
    copy_dir(&d.join("good"), &d.join("edited"));
    let mut m = fs::read(blob("edited", &manifest)).unwrap();
    let at = m.iter().position(|&b| b == b'2').unwrap();
    m[at] = b'3';
    fs::write(blob("edited", &manifest), m).unwrap();
    rejects(
        d,
        &["verify", "edited"],
        1,
        &[&format!("edited/blobs/sha256/{manifest}: digest mismatch")],
    );
    // The same damage through `digest` and `inspect`, which read the manifest.
    rejects(
        d,
        &["inspect", "edited"],
        1,
        &[&format!("edited/blobs/sha256/{manifest}: digest mismatch")],
    );
    rejects(
        d,
        &["digest", "--json", "trunc"],
        1,
        &[&format!("trunc/blobs/sha256/{config}: size mismatch")],
    );
}

#[test]
fn not_layouts() {
    let t = tempdir();
    let d = t.path();
    fs::create_dir(d.join("empty")).unwrap();
    rejects(d, &["digest", "empty"], 1, &["empty/oci-layout: missing"]);
    fs::create_dir(d.join("noindex")).unwrap();
    fs::write(
        d.join("noindex/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    rejects(
        d,
        &["digest", "noindex"],
        1,
        &["noindex/index.json: missing"],
    );
    fs::create_dir(d.join("v2")).unwrap();
    fs::write(d.join("v2/oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    rejects(
        d,
        &["digest", "v2"],
        1,
        &["v2/oci-layout: unsupported imageLayoutVersion"],
    );
    rejects(
        d,
        &["digest", "nope"],
        1,
        &["opening nope: no such file or directory"],
    );
    // Files that are no tar: their bytes never reach the message.
    let mut random = noise(3000, 7);
    random[100] = b'\n';
    fs::write(d.join("random.bin"), random).unwrap();
    fs::write(d.join("empty.tar"), "").unwrap();
    for f in ["random.bin", "empty.tar"] {
        for cmd in ["digest", "verify", "inspect"] {
            rejects(
                d,
                &[cmd, f],
                1,
                &[&format!(
                    "strata: {f}: not an OCI layout (neither a directory nor a tar archive)"
                )],
            );
        }
    }
    // A truncated oci-archive, cut mid-entry.
    one_layer(d);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "a.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    let bytes = fs::read(d.join("a.tar")).unwrap();
    for (name, cut) in [("cut.tar", bytes.len() / 2 + 77), ("head.tar", 700)] {
        fs::write(d.join(name), &bytes[..cut]).unwrap();
        for cmd in ["digest", "verify"] {
            rejects(
                d,
                &[cmd, name],
                1,
                &[&format!("strata: {name}: not a readable tar archive")],
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 9. Bad base images

#[test]
fn bad_base_images() {
    let t = tempdir();
    let d = t.path();
    let layer_hex = image(d);
    let args = [
        "image",
        "--out",
        "img",
        "--layer",
        "l.tgz:l.json",
        "--base",
        "base",
    ];
    let fresh_base = || {
        let _ = fs::remove_dir_all(d.join("base"));
        copy_dir(&d.join("good"), &d.join("base"));
    };
    let good_index = json_file(&d.join("good/index.json"));
    let m = hex_of(&good_index["manifests"][0]["digest"]);
    let good_manifest = json_file(&d.join("good/blobs/sha256").join(&m));
    // Point index.json at a new manifest blob.
    let use_manifest = |bytes: &[u8]| {
        let digest = strata::digest::Digest::of(bytes);
        fs::write(d.join("base/blobs/sha256").join(digest.hex()), bytes).unwrap();
        fs::write(
            d.join("base/index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{}}}]}}"#,
                bytes.len()
            ),
        )
        .unwrap();
        digest.hex()
    };

    // The manifest replaced by malformed JSON: its size check catches it first.
    fresh_base();
    let mpath = d.join("base/blobs/sha256").join(&m);
    fs::write(&mpath, "{").unwrap();
    rejects(
        d,
        &args,
        1,
        &[&format!("base base: base/blobs/sha256/{m}: size mismatch")],
    );
    // ... or by garbage of the same size: the digest check.
    let len = good_index["manifests"][0]["size"].as_u64().unwrap();
    fs::write(&mpath, vec![b'{'; len as usize]).unwrap();
    rejects(
        d,
        &args,
        1,
        &[&format!("base/blobs/sha256/{m}: digest mismatch")],
    );
    // A manifest valid for its digest but malformed as a manifest.
    fresh_base();
    let m = use_manifest(br#"{"schemaVersion":2,"layers":"nope"}"#);
    rejects(
        d,
        &args,
        1,
        &[&format!("base/blobs/sha256/{m}: malformed JSON")],
    );
    let m = use_manifest(b"{");
    rejects(
        d,
        &args,
        1,
        &[&format!("base/blobs/sha256/{m}: malformed JSON: EOF")],
    );
    let mut v1 = good_manifest.clone();
    v1["schemaVersion"] = serde_json::json!(1);
    let m = use_manifest(v1.to_string().as_bytes());
    rejects(
        d,
        &args,
        1,
        &[&format!(
            "base/blobs/sha256/{m}: schemaVersion 1 (expected 2)"
        )],
    );
    // A config descriptor naming a blob that is no config (the layer).
    // (A manifest naming itself as its config would need a SHA-256 fixed
    // point: not constructible; strata checks it anyway.)
    let size = fs::metadata(d.join("l.tgz")).unwrap().len();
    let mut cfg_is_layer = good_manifest.clone();
    cfg_is_layer["config"]["digest"] = serde_json::json!(format!("sha256:{layer_hex}"));
    cfg_is_layer["config"]["size"] = serde_json::json!(size);
    use_manifest(cfg_is_layer.to_string().as_bytes());
    rejects(
        d,
        &args,
        1,
        &[&format!("base/blobs/sha256/{layer_hex}: malformed JSON")],
    );
    // A malformed index.json, an index listing nothing, a missing base.
    fresh_base();
    fs::write(
        d.join("base/index.json"),
        r#"{"schemaVersion":2,"manifests":[{}]}"#,
    )
    .unwrap();
    rejects(
        d,
        &args,
        1,
        &["base/index.json: malformed JSON: missing field"],
    );
    fs::write(
        d.join("base/index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    rejects(d, &args, 1, &["base/index.json: lists no manifests"]);
    fs::remove_dir_all(d.join("base")).unwrap();
    rejects(d, &args, 1, &["opening base: no such file or directory"]);
}

// ---------------------------------------------------------------------------
// 10. Usage errors: exit 2

#[test]
fn usage_errors_exit_2() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(d, &["image", "--out", "good", "--layer", "l.tgz:l.json"]);
    let l = ["--layer", "l.tgz:l.json"];
    let img = |flags: &[&'static str]| -> Vec<&'static str> {
        [&["image", "--out", "img"][..], flags, &l].concat()
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["layer", "--out", "out.tgz", "--compression", "lz4", "t"],
            r#"--compression "lz4": expected gzip, zstd or none"#,
        ),
        (
            vec!["layer", "--out", "out.tgz", "--mtime", "yesterday", "t"],
            r#"--mtime "yesterday": expected a non-negative integer"#,
        ),
        (
            vec!["layer", "--out", "out.tgz", "--mtime", "1.5", "t"],
            r#"--mtime "1.5""#,
        ),
        (
            vec!["layer", "--out", "out.tgz", "--level", "42", "t"],
            "--level: gzip level 42 out of range 1..=12",
        ),
        (
            vec![
                "layer",
                "--out",
                "out.tgz",
                "--compression",
                "none",
                "--level",
                "3",
                "t",
            ],
            "--level: compression none takes no level (3 given)",
        ),
        (
            vec!["layer", "--out", "out.tgz"],
            "no inputs: give directories and/or --spec FILE",
        ),
        (
            img(&["--platform", "linux"]),
            r#"platform "linux": expected os/arch"#,
        ),
        (img(&["--platform", "linux//v7"]), r#"platform "linux//v7""#),
        (
            img(&["--created", "yesterday"]),
            r#"created "yesterday": expected RFC 3339"#,
        ),
        (
            img(&["--env", "NOEQUALS"]),
            r#"--env "NOEQUALS": expected KEY=VALUE"#,
        ),
        (
            img(&["--label", "=v"]),
            r#"--label "=v": expected KEY=VALUE"#,
        ),
        (
            img(&["--annotation", "k"]),
            r#"--annotation "k": expected KEY=VALUE"#,
        ),
        (
            img(&["--format", "zip"]),
            r#"--format "zip": expected oci, oci-archive or docker-archive"#,
        ),
        (
            img(&["--entrypoint", "[1,2]"]),
            r#"--entrypoint "[1,2]": not a JSON array of strings"#,
        ),
        (
            img(&["--tag", "bad tag"]),
            r#"tag "bad tag": expected NAME[:TAG]"#,
        ),
        (
            vec!["index", "--out", "idx", "--format", "zip", "t"],
            r#"--format "zip""#,
        ),
        (
            vec!["index", "--out", "idx", "--format", "docker-archive", "t"],
            "--format docker-archive: a docker-archive holds one image",
        ),
        (
            vec!["inspect", "good", "--platform", "amd64"],
            r#"platform "amd64""#,
        ),
        // clap's own errors, on one line too.
        (
            vec!["layer", "--out", "out.tgz", "--threads", "many", "t"],
            "invalid value 'many' for '--threads <THREADS>'",
        ),
        (
            vec!["layer", "--out", "out.tgz", "--compresion", "none", "t"],
            "unexpected argument '--compresion' found",
        ),
        (
            vec!["layer", "t"],
            "the following required arguments were not provided: --out <OUT>",
        ),
        (vec!["build", "t"], "unrecognized subcommand 'build'"),
    ];
    for (args, phrase) in cases {
        rejects(d, &args, 2, &[phrase]);
    }
    // A malformed SOURCE_DATE_EPOCH is a usage error for every command using it.
    let bad_epoch = || {
        let mut c = strata();
        c.env("SOURCE_DATE_EPOCH", "yesterday");
        c
    };
    for args in [
        vec!["layer", "--out", "out.tgz", "t"],
        img(&[]),
        img(&["--format", "oci-archive"]),
    ] {
        rejects_with(
            d,
            &args,
            2,
            &[r#"SOURCE_DATE_EPOCH="yesterday": expected a non-negative integer"#],
            &bad_epoch,
        );
    }
}

// ---------------------------------------------------------------------------
// 11. FIFOs, sockets, and names that would break the one line

#[test]
fn special_files_in_an_input_directory() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/a"), b"x", 0o644);
    mkfifo(&d.join("tree/pipe"));
    rejects(
        d,
        &["layer", "--out", "out.tgz", "tree"],
        1,
        &["tree/pipe: a FIFO cannot go into a layer"],
    );
    write(&d.join("sock/a"), b"x", 0o644);
    let _listener = std::os::unix::net::UnixListener::bind(d.join("sock/s")).unwrap();
    rejects(
        d,
        &["layer", "--out", "out.tgz", "sock"],
        1,
        &["sock/s: a socket cannot go into a layer"],
    );
    // A newline in a file name stays escaped on the one line.
    fs::create_dir(d.join("nl")).unwrap();
    mkfifo(&d.join("nl/bad\nname"));
    rejects(
        d,
        &["layer", "--out", "out.tgz", "nl"],
        1,
        &[r"nl/bad\nname: a FIFO cannot go into a layer"],
    );
}

// ---------------------------------------------------------------------------
// 12. Crash safety: unwritable places, existing outputs, signals, full disks

#[test]
fn unwritable_outputs() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    let img = ["--layer", "l.tgz:l.json"];
    // A directory that does not exist, for each kind of output.
    for (args, path) in [
        (
            vec!["layer", "--out", "no/such/out.tgz", "t"],
            "no/such/out.tgz",
        ),
        (
            [&["image", "--out", "no/such/img"][..], &img].concat(),
            "no/such/img",
        ),
        (
            [
                &[
                    "image",
                    "--out",
                    "no/such/img.tar",
                    "--format",
                    "oci-archive",
                ][..],
                &img,
            ]
            .concat(),
            "no/such/img.tar",
        ),
        // The side outputs fail before the main output is committed.
        (
            vec![
                "layer",
                "--out",
                "out.tgz",
                "--descriptor",
                "no/such/out.json",
                "t",
            ],
            "no/such/out.json",
        ),
        (
            [
                &["image", "--out", "img", "--digest-file", "no/such/digest"][..],
                &img,
            ]
            .concat(),
            "no/such/digest",
        ),
    ] {
        rejects(
            d,
            &args,
            1,
            &[&format!("creating {path}: no such file or directory")],
        );
    }
    ok_in(d, &["image", "--out", "good", "--layer", "l.tgz:l.json"]);
    rejects(
        d,
        &[
            "index",
            "--out",
            "idx",
            "--digest-file",
            "no/such/digest",
            "good",
        ],
        1,
        &["creating no/such/digest: no such file or directory"],
    );
    // A directory where a file goes, a file where a directory goes: untouched.
    write(&d.join("isdir/keep"), b"keep", 0o644);
    rejects(
        d,
        &["layer", "--out", "isdir", "t"],
        1,
        &["renaming into isdir: is a directory"],
    );
    fs::write(d.join("afile"), PREVIOUS).unwrap();
    rejects(
        d,
        &["image", "--out", "afile", "--layer", "l.tgz:l.json"],
        1,
        &["afile: exists and is not a directory (refusing to replace it)"],
    );
    // A read-only directory (a read-only mount: chmod does not stop root).
    if let Some(_ro) = mount_tmpfs(&d.join("ro"), "ro,size=64k") {
        for args in [
            vec!["layer", "--out", "ro/out.tgz", "t"],
            [&["image", "--out", "ro/img"][..], &img].concat(),
        ] {
            let out = args[2];
            rejects(
                d,
                &args,
                1,
                &[&format!("creating {out}: read-only file system")],
            );
        }
    }
}

#[test]
fn failed_runs_leave_existing_outputs_untouched() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img",
            "--digest-file",
            "img.digest",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    ok_in(
        d,
        &[
            "image",
            "--out",
            "img.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    ok_in(
        d,
        &["layer", "--out", "out.tgz", "--descriptor", "out.json", "t"],
    );
    fs::write(d.join("bad.json"), "{").unwrap();
    // Real previous outputs (rejects compares them before and after).
    let image_fails = |out: &str, format: &str, layer: &str, needle: &str| {
        rejects(
            d,
            &[
                "image",
                "--out",
                out,
                "--format",
                format,
                "--digest-file",
                "img.digest",
                "--layer",
                layer,
            ],
            1,
            &[needle],
        );
    };
    image_fails("img", "oci", "nope.tgz", "layer nope.tgz");
    image_fails("img.tar", "oci-archive", "nope.tgz", "layer nope.tgz");
    image_fails("img", "oci", "l.tgz:bad.json", "bad.json: malformed JSON");
    image_fails(
        "img.tar",
        "oci-archive",
        "l.tgz:bad.json",
        "bad.json: malformed JSON",
    );
    rejects(
        d,
        &[
            "layer",
            "--out",
            "out.tgz",
            "--descriptor",
            "out.json",
            "--spec",
            "bad.json",
        ],
        1,
        &["bad.json: malformed JSON"],
    );
    rejects(
        d,
        &[
            "layer",
            "--out",
            "out.tgz",
            "--descriptor",
            "out.json",
            "--compression",
            "lz4",
            "t",
        ],
        2,
        &["--compression"],
    );
}

/// A tmpfs mounted at a path, unmounted on drop (also when a test panics).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mount a tmpfs with `opts` at `at`, or `None` (with a note) where we cannot.
fn mount_tmpfs(at: &Path, opts: &str) -> Option<Mount> {
    fs::create_dir_all(at).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(at)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !require(
        mounted,
        &format!("cannot mount a tmpfs at {} (not root?)", at.display()),
    ) {
        return None;
    }
    Some(Mount(at.to_path_buf()))
}

/// `t` with 3 MiB of noise, and `big.tar` (an uncompressed layer of it) with
/// its descriptor `big.json`.
fn three_mib(d: &Path) {
    write(&d.join("t/noise"), &noise(3 << 20, 7), 0o644);
    ok_in(
        d,
        &[
            "layer",
            "--out",
            "big.tar",
            "--descriptor",
            "big.json",
            "--compression",
            "none",
            "t",
        ],
    );
}

#[test]
fn full_disk_fails_cleanly() {
    let t = tempdir();
    let d = t.path();
    let Some(_small) = mount_tmpfs(&d.join("small"), "size=1m") else {
        return;
    };
    three_mib(d);
    let big = hex_of(&json_file(&d.join("big.json"))["digest"]);
    let enospc = "no space left on device";
    for comp in ["gzip", "zstd", "none"] {
        rejects(
            d,
            &[
                "layer",
                "--out",
                "small/out.tgz",
                "--descriptor",
                "small/out.json",
                "--compression",
                comp,
                "t",
            ],
            1,
            &[&format!("writing small/out.tgz: {enospc}")],
        );
    }
    rejects(
        d,
        &[
            "image",
            "--out",
            "small/img.tar",
            "--format",
            "oci-archive",
            "--layer",
            "big.tar:big.json",
        ],
        1,
        &["small/img.tar", enospc],
    );
    // A layout directory: the blob cannot be linked across file systems.
    rejects(
        d,
        &["image", "--out", "small/img", "--layer", "big.tar:big.json"],
        1,
        &[&format!("sha256:{big} into small/img"), enospc],
    );
    assert!(
        leftovers(&d.join("small"), &["out.tgz", "out.json", "img", "img.tar"]).is_empty()
            && fs::read_dir(d.join("small")).unwrap().count() == 0,
        "the tmpfs is not empty"
    );
}

/// Without a mount: `ulimit -f` (strata ignores SIGXFSZ, so write() fails
/// with EFBIG instead of the signal killing it before it can clean up).
#[test]
fn file_size_limit_fails_cleanly() {
    let t = tempdir();
    let d = t.path();
    three_mib(d);
    let limited = || {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            r#"ulimit -f 200 && exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_strata"),
        ])
        .env_remove("SOURCE_DATE_EPOCH");
        c
    };
    for comp in ["gzip", "zstd", "none"] {
        rejects_with(
            d,
            &["layer", "--out", "out.tgz", "--compression", comp, "t"],
            1,
            &["writing out.tgz: file too large"],
            &limited,
        );
    }
    rejects_with(
        d,
        &[
            "image",
            "--out",
            "img.tar",
            "--format",
            "docker-archive",
            "--layer",
            "big.tar:big.json",
        ],
        1,
        &["into img.tar: file too large"],
        &limited,
    );
}

/// Send `sig` to strata running `args` in `d` once its temporary exists.
fn interrupt(d: &Path, args: &[&str], sig: &str) {
    let mut child = strata()
        .current_dir(d)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while leftovers(d, &[]).is_empty() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("strata {args:?} ended ({st}) before its temporary appeared");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temporary appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "SIG{sig}: strata {args:?} finished before the signal; make the input bigger"
    );
    // Killed by the signal itself (no exit code) means the handler never ran.
    assert!(
        status.code().is_some(),
        "SIG{sig}: strata died of the signal ({status}) instead of cleaning up"
    );
}

#[test]
fn signals_leave_nothing_behind() {
    let t = tempdir();
    let d = t.path();
    // 300 MB of non-zero noise: seconds of writing, so the signal comes mid-write.
    let chunk = noise(1 << 20, 11);
    fs::create_dir(d.join("big")).unwrap();
    let mut f = std::io::BufWriter::new(fs::File::create(d.join("big/blob")).unwrap());
    for i in 0..300u32 {
        f.write_all(&i.to_le_bytes()).unwrap();
        f.write_all(&chunk[4..]).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    // A descriptor for it (composing does not read the blob; copying does).
    let size = fs::metadata(d.join("big/blob")).unwrap().len();
    let any = strata::digest::Digest::of(b"");
    fs::write(
        d.join("big.json"),
        format!(
            r#"{{"diffId":"{any}","digest":"{any}","mediaType":"application/vnd.oci.image.layer.v1.tar","size":{size}}}"#
        ),
    )
    .unwrap();
    let layer = [
        "layer",
        "--out",
        "out.tar",
        "--compression",
        "none",
        "--threads",
        "1",
        "big",
    ];
    let archive = [
        "image",
        "--out",
        "out.tar",
        "--format",
        "oci-archive",
        "--layer",
        "big/blob:big.json",
    ];
    for (sig, args, previous) in [
        ("TERM", &layer[..], false),
        ("TERM", &layer[..], true),
        ("INT", &layer[..], false),
        ("HUP", &layer[..], true),
        ("TERM", &archive[..], false),
        ("INT", &archive[..], true),
    ] {
        if previous {
            fs::write(d.join("out.tar"), PREVIOUS).unwrap();
        }
        interrupt(d, args, sig);
        if previous {
            assert_eq!(fs::read(d.join("out.tar")).unwrap(), PREVIOUS);
            assert_no_output(d, &[]);
            fs::remove_file(d.join("out.tar")).unwrap();
        } else {
            assert_no_output(d, &["out.tar"]);
        }
    }
}

// ---------------------------------------------------------------------------
// Truncated and lying inputs read as layers or archives

#[test]
fn truncated_compressed_layers() {
    let t = tempdir();
    let d = t.path();
    let mut x: u64 = 9;
    let noise: Vec<u8> = (0..300_000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                b'z'
            } else {
                x as u8
            }
        })
        .collect();
    write(&d.join("t/f"), &noise, 0o644);
    for (comp, magic) in [
        ("gzip", &[0x1f, 0x8b][..]),
        ("zstd", &[0x28, 0xb5, 0x2f, 0xfd]),
    ] {
        ok_in(d, &["layer", "--out", "full", "--compression", comp, "t"]);
        let bytes = fs::read(d.join("full")).unwrap();
        // Why no skip: `--compression` must give that compression, always.
        assert!(
            bytes.starts_with(magic),
            "the blob is not {comp}-compressed"
        );
        fs::write(d.join("cut.layer"), &bytes[..bytes.len() / 2]).unwrap();
        // Without a descriptor strata reads the layer and must notice the cut.
        rejects(
            d,
            &["image", "--out", "img", "--layer", "cut.layer"],
            1,
            &[
                "layer cut.layer: entry 0 (f): ",
                &format!("corrupt or truncated {comp} stream"),
            ],
        );
    }
}

#[test]
fn archives_whose_tar_sizes_lie() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(
        d,
        &[
            "image",
            "--out",
            "a.tar",
            "--format",
            "oci-archive",
            "--layer",
            "l.tgz:l.json",
        ],
    );
    let mut bytes = fs::read(d.join("a.tar")).unwrap();
    // The first file entry (a blob): claim a size far past the end of the archive.
    let hdr = (0..bytes.len())
        .step_by(512)
        .find(|&o| bytes[o + 156] == b'0')
        .unwrap();
    bytes[hdr + 124..hdr + 136].copy_from_slice(b"77777777777\0");
    let sum: u32 = bytes[hdr..hdr + 512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    bytes[hdr + 148..hdr + 156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    fs::write(d.join("lies.tar"), bytes).unwrap();
    for cmd in ["verify", "digest"] {
        rejects(d, &[cmd, "lies.tar"], 1, &["strata: lies.tar"]);
    }
}

/// Issue 8's layer-count limit: more than 1,000 layers, from the command
/// line or in a base manifest, is refused before anything is written.
#[test]
fn more_than_a_thousand_layers() {
    let t = tempdir();
    let d = t.path();
    let layer_hex = image(d);
    // 1,001 new layers (the same blob: the count is what is checked).
    let mut args: Vec<&str> = vec!["image", "--out", "img"];
    for _ in 0..1001 {
        args.extend(["--layer", "l.tgz:l.json"]);
    }
    rejects(d, &args, 1, &["1001 layers exceeds the limit of 1000"]);
    // A base manifest listing 1,001 layers.
    copy_dir(&d.join("good"), &d.join("base"));
    let idx = json_file(&d.join("good/index.json"));
    let m = hex_of(&idx["manifests"][0]["digest"]);
    let mut manifest = json_file(&d.join("good/blobs/sha256").join(&m));
    let layer = manifest["layers"][0].clone();
    manifest["layers"] = serde_json::Value::Array(vec![layer; 1001]);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = strata::digest::Digest::of(&bytes);
    fs::write(d.join("base/blobs/sha256").join(digest.hex()), &bytes).unwrap();
    fs::write(
        d.join("base/index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{}}}]}}"#,
            bytes.len()
        ),
    )
    .unwrap();
    let line = rejects(
        d,
        &[
            "image",
            "--out",
            "img",
            "--base",
            "base",
            "--layer",
            "l.tgz:l.json",
        ],
        1,
        &[&format!(
            "base/blobs/sha256/{}: 1001 layers exceeds the limit of 1000",
            digest.hex()
        )],
    );
    assert!(!line.contains(&layer_hex), "{line}");
    let line = rejects(
        d,
        &["verify", "base"],
        1,
        &["1001 layers exceeds the limit of 1000"],
    );
    assert!(line.contains("base/"), "{line}");
}

// ---------------------------------------------------------------------------
// The documented limits (README, SECURITY.md), each exceeded by one

// The entry limits (1,000,000 per tar or archive, 10,000,000 per directory
// walk) are checked by unit tests with the limit lowered (src/layer/read.rs,
// src/layout.rs, src/layer/dir.rs): a million headers are 512 MB, which the
// debug binary takes minutes to read, and ten million files cannot be made.

/// README/SECURITY.md: JSON over 64 MiB (a spec, an index.json) is refused
/// by name before it is parsed.
#[test]
fn json_over_64_mib_is_refused() {
    let t = tempdir();
    let d = t.path();
    let mut big = b"{\"version\":1,\"entries\":[]}".to_vec();
    big.resize((64 << 20) + 1, b' ');
    fs::write(d.join("spec.json"), &big).unwrap();
    rejects(
        d,
        &["layer", "--out", "l.tgz", "--spec", "spec.json"],
        1,
        &["spec.json: larger than the 67108864 byte limit"],
    );
    // Exactly 64 MiB is parsed (the limit is not lower than documented).
    big.truncate(64 << 20);
    fs::write(d.join("spec.json"), &big).unwrap();
    ok_in(d, &["layer", "--out", "l.tgz", "--spec", "spec.json"]);
    image(d);
    let mut index = fs::read(d.join("good/index.json")).unwrap();
    index.resize((64 << 20) + 1, b' ');
    fs::write(d.join("good/index.json"), &index).unwrap();
    rejects(
        d,
        &["verify", "good"],
        1,
        &["index.json: larger than the 67108864 byte limit"],
    );
}

/// README: inline `content` holds at most 1 MiB.
#[test]
fn inline_content_over_1_mib_is_refused() {
    let t = tempdir();
    let d = t.path();
    let spec = |n: usize| {
        format!(
            r#"{{"version":1,"entries":[{{"type":"file","path":"f","content":"{}"}}]}}"#,
            "x".repeat(n)
        )
    };
    fs::write(d.join("ok.json"), spec(1 << 20)).unwrap();
    ok_in(d, &["layer", "--out", "ok.tgz", "--spec", "ok.json"]);
    fs::write(d.join("over.json"), spec((1 << 20) + 1)).unwrap();
    rejects(
        d,
        &["layer", "--out", "l.tgz", "--spec", "over.json"],
        1,
        &["over.json", "inline content over 1048576 bytes"],
    );
}

/// A reader that stops early (`strata inspect x | head -1`) closes the pipe:
/// strata exits 0 without a word, never with a panic and a backtrace.
#[test]
fn a_closed_stdout_pipe_is_not_a_failure() {
    let t = tempdir();
    let d = t.path();
    write(&d.join("tree/a"), b"a\n", 0o644);
    ok_in(
        d,
        &["layer", "--out", "l.tgz", "--descriptor", "l.json", "tree"],
    );
    ok_in(d, &["image", "--out", "img", "--layer", "l.tgz:l.json"]);
    for args in [
        &["inspect", "img"][..],
        &["digest", "img"],
        &["verify", "img"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before strata writes a byte
        let out = strata()
            .current_dir(d)
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------
// Library errors speak of data: no string in the library names a CLI flag

/// The string literals of Rust source `src` (comments skipped), each with
/// its line number.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let line_at = |i: usize| src[..i].bytes().filter(|&c| c == b'\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'\'' => {
                // A char literal ('"', '\'', '\u{1F}') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            b'r' if !b[..i]
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = src[open + 1..]
                    .find(&close)
                    .map_or(b.len(), |e| open + 1 + e);
                out.push((line_at(i), src[open + 1..end].to_string()));
                i = end + close.len();
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push((line_at(start), src[start..i.min(b.len())].to_string()));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Does this literal name a flag in a sentence (`"--format x: …"`,
/// `"…; use --insecure"`)? A literal that is only a flag (an argument
/// strata passes to another program, `"--quiet"`) does not.
fn names_a_flag(lit: &str) -> bool {
    let is_flag_at = |i: usize| {
        lit[i..].starts_with("--") && lit[i + 2..].starts_with(|c: char| c.is_ascii_lowercase())
    };
    let whole_flag = lit.starts_with("--")
        && lit[2..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if whole_flag {
        return false;
    }
    (0..lit.len()).any(|i| {
        lit.is_char_boundary(i)
            && is_flag_at(i)
            && (i == 0 || lit[..i].ends_with(|c: char| c.is_whitespace() || c == '('))
    })
}

#[test]
fn no_library_string_names_a_cli_flag() {
    // One file is allowed, and it holds no error: the diff report's summary
    // line ("; --semantic ignored: …") is `strata diff`'s own output, and
    // names the mode the user chose, as the README and tests/audit.rs show it.
    let nouns_owns = |rel: &str| rel == "src/diff/report.rs";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let cli = rel == "src/cli.rs" || rel.starts_with("src/cli/") || rel == "src/main.rs";
        if cli || nouns_owns(&rel) {
            continue;
        }
        for (line, lit) in string_literals(&fs::read_to_string(f).unwrap()) {
            if names_a_flag(&lit) {
                found.push(format!("{rel}:{line}: {lit:?}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "library strings naming a CLI flag (say what the data needs; the CLI adds the flag):\n{}",
        found.join("\n")
    );
    // The scanner itself.
    assert!(names_a_flag("--format {s:?}: expected oci"));
    assert!(names_a_flag("blob x; use --insecure elsewhere"));
    assert!(!names_a_flag("--quiet"));
    assert!(!names_a_flag("a--b and x-->y"));
    let lits = string_literals("let c = '\"'; // \"--no\"\nf(r#\"say \"--yes\"\"#, \"a\\\"--b\");");
    assert_eq!(
        lits,
        vec![
            (2, "say \"--yes\"".to_string()),
            (2, "a\\\"--b".to_string())
        ]
    );
}

/// Closed choices (clap `ValueEnum`s) and the flags the CLI adds to the
/// library's data errors: one line naming the flag, exit 2 for usage.
#[test]
fn closed_choices_and_flag_hints_name_the_flag() {
    let t = tempdir();
    let d = t.path();
    one_layer(d);
    ok_in(d, &["image", "--out", "img", "--layer", "l.tgz:l.json"]);
    let cases: [(&[&str], &str); 5] = [
        (
            &["index", "--out", "idx", "--format", "tar", "img"],
            r#"--format "tar": expected oci, oci-archive or docker-archive"#,
        ),
        (
            &["normalize", "--modes", "all", "l.tgz", "o.tgz"],
            r#"--modes "all": expected keep or default"#,
        ),
        (
            &["normalize", "--compression", "lz4", "l.tgz", "o.tgz"],
            r#"--compression "lz4": expected gzip, zstd or none"#,
        ),
        (
            &["load", "--engine", "rkt", "img"],
            r#"--engine "rkt": expected docker or podman"#,
        ),
        (
            &["layer", "--out", "o.tgz", "--exclude", "a**", "t"],
            r#"--exclude: glob "a**""#,
        ),
    ];
    for (args, phrase) in cases {
        rejects(d, args, 2, &[phrase]);
    }
    fs::create_dir(d.join("fifo")).unwrap();
    mkfifo(&d.join("fifo/p"));
    rejects(
        d,
        &["layer", "--out", "o.tgz", "fifo"],
        1,
        &[
            "fifo/p: a FIFO cannot go into a layer unless asked for",
            "(--devices, --exclude)",
        ],
    );
}
