//! `strata layer` on root filesystem trees: kept modes and owners, devices
//! and FIFOs, file capabilities, exclusions, and the same options in a spec's
//! `tree` entry. The trees are made here as root (chown, mknod, setcap); not
//! being root is a skip, and a failure under `STRATA_REQUIRE_TOOLS=1`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;

use crate::util::{fail_in, have_tool, ok_in, sh, tempdir, write};

/// Whether the tests can chown and mknod (they run as root in CI).
fn is_root() -> bool {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        assert!(
            std::env::var("STRATA_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "root filesystem tests need root (chown, mknod) and STRATA_REQUIRE_TOOLS=1 is set"
        );
        eprintln!("skipping: root filesystem tests need root (chown, mknod)");
    }
    root
}

/// What a test compares of one tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every entry of an uncompressed layer, by name.
fn entries(p: &Path) -> BTreeMap<String, Seen> {
    let mut ar = tar::Archive::new(fs::File::open(p).unwrap());
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for r in pax {
                let r = r.unwrap();
                if let Some(name) = r.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), r.value_bytes().to_vec());
                }
            }
        }
        let h = e.header();
        let seen = Seen {
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            dev: (
                h.device_major().unwrap().unwrap_or(0),
                h.device_minor().unwrap().unwrap_or(0),
            ),
            xattrs,
        };
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        out.insert(name, seen);
    }
    out
}

fn mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A small root filesystem: setuid, setgid, sticky, group-owned, other
/// owners, a FIFO and a device (root only), something to exclude.
fn rootfs(root: &Path) {
    write(&root.join("usr/bin/su"), b"su\n", 0o755);
    mode(&root.join("usr/bin/su"), 0o4755);
    write(&root.join("etc/shadow"), b"root:*:1::::::\n", 0o640);
    chown(root.join("etc/shadow"), Some(0), Some(42)).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    mode(&root.join("tmp"), 0o1777);
    fs::create_dir_all(root.join("var/mail")).unwrap();
    mode(&root.join("var/mail"), 0o2775);
    chown(root.join("var/mail"), Some(0), Some(8)).unwrap();
    write(&root.join("home/user/notes"), b"mine\n", 0o600);
    chown(root.join("home/user/notes"), Some(1000), Some(1000)).unwrap();
    chown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::symlink("notes", root.join("home/user/link")).unwrap();
    std::os::unix::fs::lchown(root.join("home/user/link"), Some(1000), Some(1000)).unwrap();
    fs::create_dir_all(root.join("dev")).unwrap();
    sh(
        root,
        "mknod -m 0620 dev/console c 5 1 && mknod -m 0660 dev/loop0 b 7 0",
    );
    sh(root, "mkfifo -m 0600 run-fifo");
    // Excluded subtrees are never listed: a socket (always refused) below one.
    fs::create_dir_all(root.join("var/cache/apt/sub")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(root.join("var/cache/apt/sub/s")).unwrap();
}

#[test]
fn default_refuses_devices_and_keep_keeps_modes_owners_and_devices() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let root = t.path().join("rootfs");
    rootfs(&root);
    let err = fail_in(t.path(), &["layer", "--out", "l.tar", "rootfs"], 1);
    assert!(
        err.contains("dev/console: a device cannot go into a layer unless asked for"),
        "{err}"
    );
    let args = [
        "layer",
        "--out",
        "l.tar",
        "--compression",
        "none",
        "--modes",
        "keep",
        "--owners",
        "keep",
        "--devices",
        "--exclude",
        "var/cache/apt/*",
        "rootfs",
    ];
    ok_in(t.path(), &args);
    let got = entries(&t.path().join("l.tar"));
    let at = |p: &str| {
        got.get(p)
            .unwrap_or_else(|| panic!("{p} missing: {:?}", got.keys()))
    };
    let (k, m, u, g) = (
        |s: &Seen| s.kind,
        |s: &Seen| s.mode,
        |s: &Seen| s.uid,
        |s: &Seen| s.gid,
    );
    assert_eq!(m(at("usr/bin/su")), 0o4755);
    assert_eq!((m(at("etc/shadow")), g(at("etc/shadow"))), (0o640, 42));
    assert_eq!(m(at("tmp/")), 0o1777);
    assert_eq!((m(at("var/mail/")), g(at("var/mail/"))), (0o2775, 8));
    assert_eq!((u(at("home/user/")), g(at("home/user/"))), (1000, 1000));
    assert_eq!(
        (m(at("home/user/notes")), u(at("home/user/notes"))),
        (0o600, 1000)
    );
    assert_eq!(
        (k(at("home/user/link")), u(at("home/user/link"))),
        ('2', 1000)
    );
    assert_eq!((k(at("dev/console")), at("dev/console").dev), ('3', (5, 1)));
    assert_eq!(m(at("dev/console")), 0o620);
    assert_eq!((k(at("dev/loop0")), at("dev/loop0").dev), ('4', (7, 0)));
    assert_eq!((k(at("run-fifo")), m(at("run-fifo"))), ('6', 0o600));
    // Normalizing it is the identity (devices, FIFOs, kept modes and owners).
    ok_in(t.path(), &["normalize", "l.tar", "n.tar"]);
    assert!(fs::read(t.path().join("l.tar")).unwrap() == fs::read(t.path().join("n.tar")).unwrap());
    // The excluded directory's parent stays, empty; nothing below was listed.
    assert!(got.contains_key("var/cache/apt/"));
    assert!(
        !got.keys().any(|p| p.starts_with("var/cache/apt/sub")),
        "{got:?}"
    );

    // Without --devices, excluding dev/* and the FIFO is the other way out.
    ok_in(
        t.path(),
        &[
            "layer",
            "--out",
            "x.tar",
            "--compression",
            "none",
            "--exclude",
            "dev/*",
            "--exclude",
            "run-*",
            "--exclude",
            "/var/cache/**",
            "rootfs",
        ],
    );
    let got = entries(&t.path().join("x.tar"));
    assert!(got.contains_key("dev/"), "dev/ itself stays");
    assert!(!got
        .keys()
        .any(|p| p.starts_with("dev/c") || p.starts_with("run-")));
    // Defaults unchanged: executable bit only, 0:0.
    assert_eq!(m(&got["usr/bin/su"]), 0o755);
    assert_eq!((m(&got["etc/shadow"]), g(&got["etc/shadow"])), (0o644, 0));
    assert_eq!(m(&got["tmp/"]), 0o755);
}

#[test]
fn same_tree_same_flags_same_bytes_whatever_umask_threads_or_creation_order() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    rootfs(&t.path().join("a"));
    fs::remove_file(t.path().join("a/var/cache/apt/sub/s")).unwrap();
    // The same tree created in another order (tar preserves modes, owners,
    // devices; extraction order differs from creation order).
    sh(
        t.path(),
        "mkdir b && tar -C a -cf - $(ls -r a) | tar -C b --same-owner -xpf -",
    );
    let flags = "--modes keep --owners keep --devices --exclude 'var/cache/apt/*' -q";
    let bin = env!("CARGO_BIN_EXE_strata");
    sh(
        t.path(),
        &format!(
            "umask 077 && TZ=Asia/Tokyo {bin} layer --out 1.tgz --threads 1 {flags} a && \
             umask 022 && TZ=UTC {bin} layer --out 2.tgz --threads 4 {flags} b"
        ),
    );
    assert_eq!(
        fs::read(t.path().join("1.tgz")).unwrap(),
        fs::read(t.path().join("2.tgz")).unwrap()
    );
}

#[test]
fn file_capabilities_are_kept_only_when_asked_and_block_hard_links() {
    if !is_root() || !have_tool("setcap") || !have_tool("getfattr") {
        return;
    }
    let t = tempdir();
    let big = vec![b'p'; 40_000];
    write(&t.path().join("tree/bin/ping"), &big, 0o755);
    write(&t.path().join("tree/bin/ping2"), &big, 0o755);
    sh(t.path(), "setcap cap_net_raw+ep tree/bin/ping");
    let cap = std::process::Command::new("getfattr")
        .args([
            "--only-values",
            "-n",
            "security.capability",
            "tree/bin/ping",
        ])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(cap.status.success(), "getfattr: {cap:?}");
    let build = |out: &str, extra: &[&str]| {
        let mut a = vec!["layer", "--out", out, "--compression", "none"];
        a.extend_from_slice(extra);
        a.push("tree");
        ok_in(t.path(), &a);
        entries(&t.path().join(out))
    };
    let plain = build("plain.tar", &[]);
    assert!(plain["bin/ping"].xattrs.is_empty());
    // Identical files without xattrs are linked (ping2 -> ping).
    assert_eq!(plain["bin/ping2"].kind, '1');
    let kept = build("caps.tar", &["--xattrs"]);
    let got = &kept["bin/ping"].xattrs;
    assert_eq!(got.keys().collect::<Vec<_>>(), ["security.capability"]);
    assert_eq!(got["security.capability"], cap.stdout);
    ok_in(t.path(), &["normalize", "caps.tar", "n.tar"]);
    assert!(
        fs::read(t.path().join("caps.tar")).unwrap() == fs::read(t.path().join("n.tar")).unwrap(),
        "normalizing a layer with file capabilities is the identity"
    );
    // A capability is part of a file's identity: no hard link across it.
    assert_eq!(kept["bin/ping2"].kind, '0');
    assert!(kept["bin/ping2"].xattrs.is_empty());
}

#[test]
fn spec_tree_entries_take_the_same_options() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    rootfs(&t.path().join("rootfs"));
    ok_in(
        t.path(),
        &[
            "layer",
            "--out",
            "cli.tgz",
            "-q",
            "--modes",
            "keep",
            "--owners",
            "keep",
            "--devices",
            "--exclude",
            "sys-root/var/cache/apt/*",
            "rootfs=/sys-root",
        ],
    );
    fs::write(
        t.path().join("s.json"),
        r#"{"version":1,"entries":[{"type":"tree","path":"sys-root","src":"rootfs",
            "modes":"keep","owners":"keep","devices":true,"xattrs":false,
            "exclude":["sys-root/var/cache/apt/*"]}]}"#,
    )
    .unwrap();
    ok_in(
        t.path(),
        &["layer", "--out", "spec.tgz", "-q", "--spec", "s.json"],
    );
    assert_eq!(
        fs::read(t.path().join("cli.tgz")).unwrap(),
        fs::read(t.path().join("spec.tgz")).unwrap()
    );
    for (bad, why) in [
        (
            r#""modes":"kept""#,
            r#"modes: "kept": expected keep or default"#,
        ),
        (
            r#""owners":"names""#,
            r#"owners: "names": expected keep, keep-names or root"#,
        ),
        (
            r#""exclude":["a//b"]"#,
            r#"exclude: glob "a//b": empty path component"#,
        ),
        (r#""excludes":["dev/*"]"#, "unknown field `excludes`"),
    ] {
        fs::write(
            t.path().join("bad.json"),
            format!(r#"{{"version":1,"entries":[{{"type":"tree","src":"rootfs",{bad}}}]}}"#),
        )
        .unwrap();
        let err = fail_in(
            t.path(),
            &["layer", "--out", "b.tgz", "--spec", "bad.json"],
            1,
        );
        assert!(err.contains(why), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let t = tempdir();
    fs::create_dir_all(t.path().join("d")).unwrap();
    for (args, why) in [
        (
            &["--modes", "all"][..],
            r#"--modes: "all": expected keep or default"#,
        ),
        (
            &["--owners", "nobody"][..],
            r#"--owners: "nobody": expected keep, keep-names or root"#,
        ),
        (
            &["--exclude", ""][..],
            r#"--exclude: glob "": empty pattern"#,
        ),
    ] {
        let mut a = vec!["layer", "--out", "l.tgz"];
        a.extend_from_slice(args);
        a.push("d");
        let err = fail_in(t.path(), &a, 2);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // Only specs: the DIR flags would do nothing, so they are refused.
    fs::write(t.path().join("s.json"), r#"{"version":1,"entries":[]}"#).unwrap();
    let err = fail_in(
        t.path(),
        &[
            "layer",
            "--out",
            "l.tgz",
            "--exclude",
            "dev/*",
            "--spec",
            "s.json",
        ],
        2,
    );
    assert!(err.contains("apply to DIR inputs"), "{err}");
}

#[test]
fn owner_names_come_from_the_trees_own_passwd_and_group() {
    if !is_root() {
        return;
    }
    let t = tempdir();
    let root = t.path().join("rootfs");
    rootfs(&root);
    fs::remove_file(root.join("var/cache/apt/sub/s")).unwrap();
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0::/root:/bin/sh
user:x:1000:1000::/:/bin/sh
",
        0o644,
    );
    write(
        &root.join("etc/group"),
        b"root:x:0:
mail:x:8:
shadow:x:42:
",
        0o644,
    );
    ok_in(
        t.path(),
        &[
            "layer",
            "--out",
            "l.tar",
            "--compression",
            "none",
            "--modes",
            "keep",
            "--owners",
            "keep-names",
            "--devices",
            "rootfs",
        ],
    );
    let mut ar = tar::Archive::new(fs::File::open(t.path().join("l.tar")).unwrap());
    let mut names = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let n = (
            h.username().unwrap().unwrap_or("").to_string(),
            h.groupname().unwrap().unwrap_or("").to_string(),
        );
        names.insert(String::from_utf8(e.path_bytes().into_owned()).unwrap(), n);
    }
    let pair = |u: &str, g: &str| (u.to_string(), g.to_string());
    assert_eq!(names["etc/shadow"], pair("root", "shadow"));
    assert_eq!(names["var/mail/"], pair("root", "mail"));
    // gid 1000 is in no group line: no name, the id still says it all.
    assert_eq!(names["home/user/notes"], pair("user", ""));
    // A symlinked etc/passwd (it could read the host's) is refused.
    fs::remove_file(root.join("etc/passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
    let err = fail_in(
        t.path(),
        &[
            "layer",
            "--out",
            "l.tar",
            "--owners",
            "keep-names",
            "--devices",
            "rootfs",
        ],
        1,
    );
    assert!(err.contains("etc/passwd: not a regular file"), "{err}");
}
