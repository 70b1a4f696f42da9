//! User and group names of a root filesystem, from the tree's own
//! `etc/passwd` and `etc/group` (`strata layer --owners keep-names`).
//!
//! Why the tree's files and never the host's (`getpwuid`, NSS): the names
//! must describe the image, not the machine that builds it, and a library
//! reads no host database implicitly (the bytes would change with the host).
//!
//! The files are untrusted bytes: each is read only if it is a regular file
//! reached without symlinks (`etc/passwd -> /etc/passwd` would read the
//! host's), at most [`MAX_ACCOUNTS_FILE`] bytes. Lines are `name:x:id:...`;
//! as glibc's files backend, malformed lines are skipped and the first line
//! with an id gives its name. A name is kept only if it fits a tar header's
//! 32-byte field and is printable UTF-8 without `:`.

use std::collections::BTreeMap;
use std::fs;

use camino::Utf8Path;

use crate::error::{Error, IoContext, Result};

/// Largest `etc/passwd` or `etc/group` read.
pub const MAX_ACCOUNTS_FILE: usize = 8 << 20;

/// Names by numeric id, of users and of groups.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accounts {
    /// uid → user name.
    pub users: BTreeMap<u64, String>,
    /// gid → group name.
    pub groups: BTreeMap<u64, String>,
}

impl Accounts {
    /// Read `tree/etc/passwd` and `tree/etc/group`.
    pub fn read(tree: &Utf8Path) -> Result<Accounts> {
        let etc = tree.join("etc");
        let meta = fs::symlink_metadata(&etc).io_context(|| format!("user names: {etc}"))?;
        if !meta.is_dir() {
            return Err(Error::invalid(format!(
                "user names: {etc}: not a directory (names are read only inside the tree)"
            )));
        }
        Ok(Accounts {
            users: parse(&read_regular(&etc.join("passwd"))?),
            groups: parse(&read_regular(&etc.join("group"))?),
        })
    }
}

fn read_regular(path: &Utf8Path) -> Result<Vec<u8>> {
    let meta = fs::symlink_metadata(path).io_context(|| format!("user names: {path}"))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "user names: {path}: not a regular file (a symlink could read the host's)"
        )));
    }
    super::read_small_file(path, MAX_ACCOUNTS_FILE)
}

/// `name:password:id:...` lines → id → first name.
pub fn parse(bytes: &[u8]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for line in bytes.split(|&b| b == b'\n') {
        let mut fields = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let valid = !name.is_empty()
            && name.len() <= 32
            && !name.starts_with(['+', '-', '#'])
            && name.chars().all(|c| !c.is_control() && c != ' ');
        let id = std::str::from_utf8(id)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok());
        if let (true, Some(id)) = (valid, id) {
            out.entry(id).or_insert_with(|| name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_valid_line_wins_and_garbage_is_skipped() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n\
            # comment:x:5\n\
            +nis:x:7\n\
            toor:x:0:0::/:/bin/sh\n\
            nobody:x:65534:65534::/:/usr/sbin/nologin\n\
            bad id:x:12\n\
            short:x\n\
            neg:x:-1\n\
            big:x:99999999999999999999999\n\
            \xff\xfe:x:13\n\
            waytoolongnamewaytoolongnamewaytoolong:x:14\n\
            ctl\x07:x:15\n\
            \n:::\n\0\0\0";
        let m = parse(text);
        let want: BTreeMap<u64, String> =
            [(0, "root".to_string()), (65534, "nobody".to_string())].into();
        assert_eq!(m, want);
    }

    #[test]
    fn hostile_trees_are_refused_with_the_file_named() {
        let t = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(t.path()).unwrap();
        let e = Accounts::read(root).unwrap_err().to_string();
        assert!(e.contains("/etc"), "{e}");
        fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd")).unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let e = Accounts::read(root).unwrap_err().to_string();
        assert!(e.contains("etc/passwd: not a regular file"), "{e}");
        fs::remove_file(root.join("etc/passwd")).unwrap();
        let huge = vec![b'x'; MAX_ACCOUNTS_FILE + 1];
        fs::write(root.join("etc/passwd"), huge).unwrap();
        let e = Accounts::read(root).unwrap_err().to_string();
        assert!(e.contains("etc/passwd: larger than"), "{e}");
        fs::write(root.join("etc/passwd"), "adm:x:3:4::/:/bin/sh\n").unwrap();
        let a = Accounts::read(root).unwrap();
        assert_eq!(a.users[&3], "adm");
        assert_eq!(a.groups[&0], "root");
    }
}
