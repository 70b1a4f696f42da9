//! A tar entry as its header states it: its type, every header field, its
//! PAX records and xattrs; and which entry names are acceptable at all.
//!
//! Invariants: an entry's `path` is its name in comparison form (no leading
//! `./`, no trailing `/`, `.` for the root), and a name with `..`
//! components, an absolute path or NUL never becomes an entry (extracting
//! it would write outside the root).

use std::collections::BTreeMap;

/// The type of a tar entry, as its type flag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryType {
    /// Regular file (`0`, NUL or `7`).
    File,
    /// Hard link (`1`).
    Hardlink,
    /// Symbolic link (`2`).
    Symlink,
    /// Character device (`3`).
    CharDevice,
    /// Block device (`4`).
    BlockDevice,
    /// Directory (`5`, or a v7 file whose name ends in `/`).
    Dir,
    /// FIFO (`6`).
    Fifo,
}

impl EntryType {
    /// A short lowercase name (`file`, `dir`, …) for messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Hardlink => "hardlink",
            EntryType::Symlink => "symlink",
            EntryType::CharDevice => "char device",
            EntryType::BlockDevice => "block device",
            EntryType::Dir => "dir",
            EntryType::Fifo => "fifo",
        }
    }

    /// Whether entries of this type carry content bytes in the stream.
    pub(super) fn has_data(self) -> bool {
        self == EntryType::File
    }
}

/// One entry as the archive states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Position in the stream, from 0 (extension headers not counted).
    pub index: usize,
    /// The name as stored, after PAX `path` / GNU long name (e.g. `./etc/`).
    pub name: String,
    /// The name normalized for comparison: no leading `./`, no trailing `/`;
    /// `.` for the root directory entry some tools write.
    pub path: String,
    /// Entry type.
    pub kind: EntryType,
    /// Mode as stored (permission bits and possibly file-type bits).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Owner user name.
    pub uname: String,
    /// Owner group name.
    pub gname: String,
    /// Modification time, whole seconds (PAX `mtime` when present).
    pub mtime: i64,
    /// Sub-second part of a PAX `mtime`, in nanoseconds.
    pub mtime_nanos: u32,
    /// Content size (0 for entry types that carry no data).
    pub size: u64,
    /// Link target (symlinks, hard links).
    pub linkname: String,
    /// Device major number.
    pub devmajor: u64,
    /// Device minor number.
    pub devminor: u64,
    /// PAX records in effect (global then local), except xattrs.
    pub pax: BTreeMap<String, String>,
    /// Extended attributes (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*` records).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// How the header was encoded: `ustar`, `gnu` or `v7`, plus `+pax`,
    /// `+gnu-longname`, `+gnu-longlink` for extension headers.
    pub format: String,
}

impl TarEntry {
    /// The mtime as text: `1700000000` or `1700000000.5`.
    pub fn mtime_text(&self) -> String {
        if self.mtime_nanos == 0 {
            self.mtime.to_string()
        } else {
            let frac = format!("{:09}", self.mtime_nanos);
            format!("{}.{}", self.mtime, frac.trim_end_matches('0'))
        }
    }

    pub(super) fn label(&self) -> String {
        format!("entry {} ({})", self.index, self.path)
    }
}

/// Validate an entry name and return its comparison form (see [`TarEntry::path`]).
pub fn check_path(name: &str) -> std::result::Result<String, String> {
    let shown = || format!("{name:?}");
    if name.contains('\0') {
        return Err(format!("path {}: contains NUL", shown()));
    }
    if name.is_empty() {
        return Err("empty entry name".to_string());
    }
    if name.starts_with('/') {
        return Err(format!(
            "path {}: absolute paths are refused (extracting it could write outside the root)",
            shown()
        ));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(format!(
            "path {}: '..' components are refused (extracting it could write outside the root)",
            shown()
        ));
    }
    let mut p = name;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    let p = p.trim_end_matches('/');
    if p.is_empty() || p == "." {
        return Ok(".".to_string());
    }
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(check_path("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(check_path("a\0b").unwrap_err().contains("NUL"));
        assert!(check_path("../etc")
            .unwrap_err()
            .contains("'..' components"));
        assert_eq!(check_path("./").unwrap(), ".");
        assert_eq!(check_path("./etc/").unwrap(), "etc");
    }
}
