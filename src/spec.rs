//! The layer spec: the versioned JSON contract between build rules (Bazel,
//! Nix) and `strata layer --spec FILE`.
//!
//! ```json
//! {"version": 1,
//!  "parents": true,
//!  "entries": [
//!    {"type": "file",     "path": "usr/bin/app", "src": "bazel-out/k8/bin/app", "mode": "0755"},
//!    {"type": "file",     "path": "etc/motd", "content": "hello\n"},
//!    {"type": "dir",      "path": "var/empty", "mode": "0700", "uid": 65534, "gid": 65534},
//!    {"type": "symlink",  "path": "bin/sh", "target": "busybox"},
//!    {"type": "hardlink", "path": "bin/ls", "target": "bin/busybox"},
//!    {"type": "whiteout", "path": "etc/old.conf"},
//!    {"type": "opaque",   "path": "var/cache"},
//!    {"type": "tree",     "path": "opt/app", "src": "bazel-out/k8/bin/app_tree"}
//!  ]}
//! ```
//!
//! Fields (unknown fields and unknown versions are errors, so a typo never
//! silently changes an image):
//! - `version` (required): `1`.
//! - `parents` (optional, default `true`): synthesize missing parent
//!   directories (0755, 0:0). `false` leaves them to the extractor, e.g. to
//!   avoid shadowing a base image's `lib -> usr/lib` symlink.
//! - every entry: `type` and `path`, the path inside the layer, relative
//!   (`usr/bin/app`; absolute paths, `..`, `.`, `//` and NUL are refused).
//! - `file`: exactly one of `src` (a host file; relative paths are relative to
//!   the working directory, symlinks are read through as Bazel presents inputs)
//!   or `content` (inline UTF-8 text). `mode` defaults to 0755 when the host file
//!   has any executable bit, else 0644.
//! - `dir`: `mode` defaults to 0755.
//! - `symlink`: `target`, stored byte for byte; a relative target that climbs
//!   above the layer root is refused.
//! - `hardlink`: `target`, the layer path of a regular file in the same layer.
//! - `whiteout`: deletes `path` from lower layers (writes `<dir>/.wh.<name>`).
//! - `opaque`: hides all lower-layer contents of directory `path`
//!   (writes `<path>/.wh..wh..opq`).
//! - `tree`: a host directory `src` whose contents go under `path` (optional;
//!   the layer root when absent), walked like a directory INPUT. When `src` is
//!   a regular file (a Nix store path can be one), it becomes the file `path`.
//!   Optional fields for a root filesystem (defaults: what a build output
//!   wants), the same words as `strata layer`'s flags:
//!   - `modes`: `"default"` (0755/0644 by the executable bit, dirs 0755) or
//!     `"keep"` (the tree's `mode & 07777`, setuid/setgid/sticky included);
//!   - `owners`: `"root"` (0:0), `"keep"` (the tree's numeric uid/gid;
//!     names stay empty) or `"keep-names"` (also user/group names, looked
//!     up in the tree's own `etc/passwd` and `etc/group`, never the host's;
//!     ids they do not list get no name);
//!   - `xattrs`: `true` keeps `security.capability` (file capabilities) as
//!     `SCHILY.xattr.*` PAX records; no other xattr is ever kept;
//!   - `devices`: `true` writes character/block devices and FIFOs as entries
//!     instead of refusing them (sockets are always refused);
//!   - `exclude`: glob patterns (`*` within a path component, `**` across
//!     components, `?` one character; see `strata::glob`) matched on layer
//!     paths, i.e. with `path` prepended: a match is left out with its whole
//!     subtree, unwalked; its parent directory stays (`"dev/*"` keeps `dev/`).
//!
//!   `modes`, `owners`, `xattrs`, `devices` and `exclude` apply only to a
//!   directory `src` (a regular-file `src` gets the defaults).
//! - `mode` (file, dir): octal string (`"0755"`, `"4755"`) or a JSON number
//!   (taken as the numeric mode, e.g. 493); at most 0o7777. setuid, setgid and
//!   sticky bits come only from here.
//! - `uid`, `gid` (file, dir, symlink; default 0), `uname`, `gname` (default
//!   empty).

use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::glob::Glob;
use crate::json;
use crate::layer::dir::walk_tree;
use crate::layer::dir_options::DirOptions;
use crate::layer::entry::{default_file_mode, Content, Entry, EntryKind, NormalizeOptions};
use crate::layer::path::LayerPath;
// Moved beside `LayerPath`; the old path stays for callers.
pub use crate::layer::path::check_link_target;
use crate::layer::policy::{Modes, Owners};

/// The only spec version this strata reads.
pub const SPEC_VERSION: u64 = 1;

/// Largest inline `content` accepted.
const MAX_INLINE: usize = 1 << 20;

/// A parsed layer spec.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Always [`SPEC_VERSION`].
    pub version: u64,
    /// Synthesize parent directories (default true).
    #[serde(default)]
    pub parents: Option<bool>,
    /// The entries, in any order.
    pub entries: Vec<SpecEntry>,
}

/// A mode as octal string or number.
#[derive(Debug, Deserialize, Clone)]
#[serde(
    untagged,
    expecting = "mode: expected an octal string (\"0755\") or a number"
)]
pub enum ModeValue {
    /// Numeric mode.
    Num(u64),
    /// Octal text.
    Text(String),
}

/// Ownership fields shared by several entry types.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// Owner uid.
    #[serde(default)]
    pub uid: u64,
    /// Owner gid.
    #[serde(default)]
    pub gid: u64,
    /// Owner name.
    #[serde(default)]
    pub uname: String,
    /// Group name.
    #[serde(default)]
    pub gname: String,
}

/// One spec entry (see the module docs for each field).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum SpecEntry {
    File {
        path: String,
        src: Option<String>,
        content: Option<String>,
        mode: Option<ModeValue>,
        #[serde(default)]
        uid: u64,
        #[serde(default)]
        gid: u64,
        #[serde(default)]
        uname: String,
        #[serde(default)]
        gname: String,
    },
    Dir {
        path: String,
        mode: Option<ModeValue>,
        #[serde(default)]
        uid: u64,
        #[serde(default)]
        gid: u64,
        #[serde(default)]
        uname: String,
        #[serde(default)]
        gname: String,
    },
    Symlink {
        path: String,
        target: String,
        #[serde(default)]
        uid: u64,
        #[serde(default)]
        gid: u64,
        #[serde(default)]
        uname: String,
        #[serde(default)]
        gname: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    Whiteout {
        path: String,
    },
    Opaque {
        path: String,
    },
    Tree {
        path: Option<String>,
        src: String,
        #[serde(default)]
        modes: Option<String>,
        #[serde(default)]
        owners: Option<String>,
        #[serde(default)]
        xattrs: bool,
        #[serde(default)]
        devices: bool,
        #[serde(default)]
        exclude: Vec<String>,
    },
}

#[derive(Deserialize)]
struct VersionOnly {
    version: Option<serde_json::Value>,
}

impl LayerSpec {
    /// Parse spec bytes; `what` names the file in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<LayerSpec> {
        let v: VersionOnly = json::parse(bytes, what)?;
        match v.version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(SPEC_VERSION) => {}
            Some(other) => {
                return Err(Error::unsupported(format!(
                    "{what}: unsupported spec version {other} (this strata reads version {SPEC_VERSION})"
                )))
            }
            None => {
                return Err(Error::invalid(format!(
                    "{what}: missing \"version\" (expected {SPEC_VERSION})"
                )))
            }
        }
        json::parse(bytes, what)
    }

    /// Read and parse a spec file.
    pub fn read(path: &Utf8Path) -> Result<LayerSpec> {
        let bytes = crate::layer::read_small_file(path, json::MAX_JSON_BYTES)?;
        LayerSpec::parse(&bytes, path.as_str())
    }

    /// Normalization options the spec asks for.
    pub fn normalize_options(&self) -> NormalizeOptions {
        NormalizeOptions {
            parents: self.parents.unwrap_or(true),
        }
    }

    /// Turn the spec into entries (not yet normalized). `what` names the spec;
    /// `threads` bounds the threads that list `tree` directories (the entries
    /// are the same for any number).
    pub fn entries(&self, what: &str, threads: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let origin = format!("{what} entry {i}");
            entry_to_entries(e, &origin, threads, &mut out)
                .map_err(|err| err.context(format!("{what}: entry {i}")))?;
        }
        Ok(out)
    }
}

fn parse_mode(m: &Option<ModeValue>) -> Result<Option<u32>> {
    let v = match m {
        None => return Ok(None),
        Some(ModeValue::Num(n)) => *n,
        Some(ModeValue::Text(s)) => {
            let t = s.strip_prefix("0o").unwrap_or(s);
            u64::from_str_radix(t, 8)
                .map_err(|_| Error::invalid(format!("mode {s:?}: not an octal number")))?
        }
    };
    if v > 0o7777 {
        return Err(Error::invalid(format!(
            "mode {v:o}: only permission bits (at most 07777) are allowed"
        )));
    }
    Ok(Some(v as u32))
}

fn base_entry(path: &str, kind: EntryKind, mode: u32, owner: Owner, origin: &str) -> Result<Entry> {
    Ok(Entry {
        path: LayerPath::parse(path)?,
        kind,
        mode,
        uid: owner.uid,
        gid: owner.gid,
        uname: owner.uname,
        gname: owner.gname,
        xattrs: None,
        origin: Arc::from(origin),
    })
}

fn entry_to_entries(
    e: &SpecEntry,
    origin: &str,
    threads: usize,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let owner = |uid: &u64, gid: &u64, uname: &String, gname: &String| Owner {
        uid: *uid,
        gid: *gid,
        uname: uname.clone(),
        gname: gname.clone(),
    };
    match e {
        SpecEntry::File {
            path,
            src,
            content,
            mode,
            uid,
            gid,
            uname,
            gname,
        } => {
            let mode = parse_mode(mode)?;
            let (content, host_mode) = match (src, content) {
                (Some(src), None) => file_source(src)?,
                (None, Some(text)) => {
                    if text.len() > MAX_INLINE {
                        return Err(Error::invalid(format!(
                            "{path}: inline content over {MAX_INLINE} bytes; use \"src\""
                        )));
                    }
                    (Content::Inline(text.as_bytes().to_vec()), 0o644)
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "{path}: a file needs exactly one of \"src\" or \"content\""
                    )))
                }
            };
            let mode = mode.unwrap_or_else(|| default_file_mode(host_mode));
            out.push(base_entry(
                path,
                EntryKind::File(content),
                mode,
                owner(uid, gid, uname, gname),
                origin,
            )?);
        }
        SpecEntry::Dir {
            path,
            mode,
            uid,
            gid,
            uname,
            gname,
        } => {
            let mode = parse_mode(mode)?.unwrap_or(crate::layer::entry::DIR_MODE);
            out.push(base_entry(
                path,
                EntryKind::Dir,
                mode,
                owner(uid, gid, uname, gname),
                origin,
            )?);
        }
        SpecEntry::Symlink {
            path,
            target,
            uid,
            gid,
            uname,
            gname,
        } => {
            let lp = LayerPath::parse(path)?;
            check_link_target(&lp, target)?;
            out.push(base_entry(
                path,
                EntryKind::Symlink(target.clone()),
                crate::layer::entry::SYMLINK_MODE,
                owner(uid, gid, uname, gname),
                origin,
            )?);
        }
        SpecEntry::Hardlink { path, target } => {
            let t = LayerPath::parse(target).map_err(|e| e.context("hardlink target"))?;
            out.push(base_entry(
                path,
                EntryKind::Hardlink(t),
                0o644,
                Owner::default(),
                origin,
            )?);
        }
        SpecEntry::Whiteout { path } => {
            let lp = LayerPath::parse(path)?;
            let name = format!(".wh.{}", lp.file_name());
            let wh = match lp.parent() {
                Some(parent) => parent.child(&name)?,
                None => LayerPath::parse(&name)?,
            };
            out.push(whiteout(wh, origin));
        }
        SpecEntry::Opaque { path } => {
            let lp = LayerPath::parse(path)?;
            out.push(whiteout(lp.child(".wh..wh..opq")?, origin));
        }
        SpecEntry::Tree {
            path,
            src,
            modes,
            owners,
            xattrs,
            devices,
            exclude,
        } => {
            let prefix = match path {
                Some(p) => Some(LayerPath::parse(p)?),
                None => None,
            };
            let opts = tree_options(modes, owners, *xattrs, *devices, exclude)?;
            let is_file = std::fs::metadata(src).map(|m| m.is_file()).unwrap_or(false);
            match (is_file, prefix) {
                (true, Some(p)) => {
                    let (content, host_mode) = file_source(src)?;
                    let mode = default_file_mode(host_mode);
                    out.push(base_entry(
                        p.as_str(),
                        EntryKind::File(content),
                        mode,
                        Owner::default(),
                        origin,
                    )?);
                }
                (true, None) => {
                    return Err(Error::invalid(format!(
                        "tree {src}: a file needs a \"path\""
                    )));
                }
                (false, prefix) => out.extend(walk_tree(
                    Utf8Path::new(src),
                    prefix.as_ref(),
                    threads,
                    &opts,
                )?),
            }
        }
    }
    Ok(())
}

/// A `tree` entry's attribute policy (the same words as `strata layer`).
fn tree_options(
    modes: &Option<String>,
    owners: &Option<String>,
    xattrs: bool,
    devices: bool,
    exclude: &[String],
) -> Result<DirOptions> {
    let mut o = DirOptions {
        xattrs,
        devices,
        ..DirOptions::default()
    };
    if let Some(m) = modes {
        o.modes = parse_modes(m).map_err(|e| e.context("modes"))?;
    }
    if let Some(w) = owners {
        (o.owners, o.owner_names) = parse_owners(w).map_err(|e| e.context("owners"))?;
    }
    o.exclude = exclude
        .iter()
        .map(|g| Glob::new(g).map_err(|e| e.context("exclude")))
        .collect::<Result<_>>()?;
    Ok(o)
}

/// `keep` or `default` (as `strata normalize --modes`).
pub fn parse_modes(s: &str) -> Result<Modes> {
    match s {
        "keep" => Ok(Modes::Keep),
        "default" => Ok(Modes::Default),
        m => Err(Error::invalid(format!("{m:?}: expected keep or default"))),
    }
}

/// `keep`, `keep-names` or `root` (as `strata normalize --owners`, plus
/// names from the tree's own `etc/passwd`/`etc/group`): the policy and
/// whether names are looked up.
pub fn parse_owners(s: &str) -> Result<(Owners, bool)> {
    match s {
        "keep" => Ok((Owners::Keep, false)),
        "keep-names" => Ok((Owners::Keep, true)),
        "root" => Ok((Owners::Root, false)),
        o => Err(Error::invalid(format!(
            "{o:?}: expected keep, keep-names or root"
        ))),
    }
}

fn whiteout(path: LayerPath, origin: &str) -> Entry {
    Entry {
        kind: EntryKind::File(Content::Inline(Vec::new())),
        mode: 0o644,
        ..Entry::dir(path, origin)
    }
}

/// Resolve a `src` host file through symlinks; returns content and host mode.
fn file_source(src: &str) -> Result<(Content, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let p = Utf8PathBuf::from(src);
    let meta = match std::fs::metadata(&p) {
        Ok(m) => m,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::fs::symlink_metadata(&p).is_ok() =>
        {
            return Err(Error::invalid(format!("src {src}: dangling symlink")))
        }
        Err(e) => return Err(Error::io(format!("src {src}"), &e)),
    };
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "src {src}: not a regular file (use a \"tree\" entry for directories)"
        )));
    }
    Ok((Content::Path(p, meta.len()), meta.permissions().mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_checked() {
        let e = LayerSpec::parse(br#"{"version":2,"entries":[]}"#, "s.json").unwrap_err();
        assert!(e.to_string().contains("unsupported spec version 2"), "{e}");
        let e = LayerSpec::parse(br#"{"entries":[]}"#, "s.json").unwrap_err();
        assert!(e.to_string().contains("missing \"version\""), "{e}");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = LayerSpec::parse(
            br#"{"version":1,"entries":[{"type":"dir","path":"a","mdoe":"0755"}]}"#,
            "s.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("mdoe"), "{e}");
    }

    #[test]
    fn entries_and_modes() {
        let s = LayerSpec::parse(
            br#"{"version":1,"entries":[
              {"type":"dir","path":"d","mode":"1777"},
              {"type":"file","path":"d/f","content":"hi","mode":493},
              {"type":"whiteout","path":"etc/x"},
              {"type":"opaque","path":"var"}]}"#,
            "s.json",
        )
        .unwrap();
        let e = s.entries("s.json", 2).unwrap();
        assert_eq!(e[0].mode, 0o1777);
        assert_eq!(e[1].mode, 0o755);
        assert_eq!(e[2].path.as_str(), "etc/.wh.x");
        assert_eq!(e[3].path.as_str(), "var/.wh..wh..opq");
    }

    #[test]
    fn bad_modes_and_links() {
        let s = LayerSpec::parse(
            br#"{"version":1,"entries":[{"type":"dir","path":"d","mode":"99"}]}"#,
            "s.json",
        )
        .unwrap();
        let e = s.entries("s.json", 2).unwrap_err();
        assert!(
            e.to_string().contains("s.json: entry 0: mode \"99\""),
            "{e}"
        );
        let s = LayerSpec::parse(
            br#"{"version":1,"entries":[{"type":"symlink","path":"a/b","target":"../../x"}]}"#,
            "s.json",
        )
        .unwrap();
        let e = s.entries("s.json", 2).unwrap_err();
        assert!(e.to_string().contains("escapes the layer root"), "{e}");
    }
}
