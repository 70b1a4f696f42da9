//! How a walked directory's metadata becomes entry attributes: the policy a
//! build output wants (the default) or the one a root filesystem needs.
//!
//! Defaults (right for build outputs, whose host modes carry the umask and
//! whose owners are whoever ran the build): modes from the executable bit
//! only, owners 0:0, no xattrs, devices and FIFOs refused, nothing excluded.
//!
//! A root filesystem's modes and owners *are* its content (`etc/shadow`
//! 0640 root:shadow, `tmp/` 1777, setuid `usr/bin/su`), so [`DirOptions`]
//! can keep them, using the vocabulary of `strata normalize`
//! ([`Modes`], [`Owners`]):
//! - `Modes::Keep`: `mode & 0o7777` from lstat, setuid/setgid/sticky
//!   included, for files, directories, devices and FIFOs (symlinks stay
//!   0777: Linux ignores their mode). Never the umask: the tree's bits are
//!   taken as they are, and the extracting host's umask does not apply to
//!   layer entries.
//! - `Owners::Keep`: numeric uid/gid from lstat; user and group *names*
//!   stay empty unless `owner_names`. Why: names must come from a user
//!   database, and the host's (`getpwuid`) describes the build machine, not
//!   the image; an engine maps numeric ids through the image's own
//!   `/etc/passwd` anyway. With `owner_names`, they come from the tree's
//!   own `etc/passwd` and `etc/group` ([`super::accounts`]).
//! - `xattrs`: only the allow-list [`XATTR_ALLOW`] (`security.capability`,
//!   file capabilities such as `ping`'s `cap_net_raw`), read from regular
//!   files. Others are left out on purpose: `security.selinux` is a label of
//!   the build host's policy, `system.posix_acl_*` and `user.*` are host
//!   state a container engine does not restore consistently.
//! - `devices`: character/block devices and FIFOs become tar entries (with
//!   their device numbers); sockets are always refused (tar cannot hold one).
//! - `exclude`: [`Glob`] patterns matched on layer paths; a match is left
//!   out with everything below it (its subtree is not even listed), its
//!   parent stays (`dev/*` keeps an empty `dev/`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use camino::Utf8Path;

use super::entry::Xattrs;
use super::policy::{Modes, Owners};
use crate::error::{Error, Result};
use crate::glob::Glob;

/// The extended attributes kept when asked for, and no others.
pub const XATTR_ALLOW: &[&str] = &["security.capability"];

/// How [`super::dir::walk_tree`] turns host metadata into entries.
#[derive(Debug, Clone)]
pub struct DirOptions {
    /// Keep the tree's permission bits, or derive them from the executable bit.
    pub modes: Modes,
    /// Keep the tree's numeric owners, or write 0:0.
    pub owners: Owners,
    /// With kept owners, also write user/group names, looked up in the
    /// tree's own `etc/passwd` and `etc/group`.
    pub owner_names: bool,
    /// Keep the allow-listed xattrs ([`XATTR_ALLOW`]) of regular files.
    pub xattrs: bool,
    /// Write devices and FIFOs instead of refusing them.
    pub devices: bool,
    /// Leave out layer paths matching any of these, with their subtrees.
    pub exclude: Vec<Glob>,
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions {
            modes: Modes::Default,
            owners: Owners::Root,
            owner_names: false,
            xattrs: false,
            devices: false,
            exclude: Vec::new(),
        }
    }
}

impl DirOptions {
    /// Whether the walk must lstat directories too (the default needs only
    /// their d_type, which costs no syscall).
    pub fn needs_dir_metadata(&self) -> bool {
        self.modes == Modes::Keep || self.owners == Owners::Keep
    }

    /// Whether the layer path `path` is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        self.exclude.iter().any(|g| g.matches(path))
    }
}

/// Major and minor numbers of a Linux `dev_t` (glibc's encoding: 12-bit
/// major and 20-bit minor split around the low bits).
pub fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The allow-listed xattrs of `host` (not following a symlink), or `None`
/// when it has none. A filesystem without xattr support has none.
pub fn read_xattrs(host: &Utf8Path) -> Result<Option<Box<Xattrs>>> {
    let path = CString::new(host.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("{host}: NUL in path")))?;
    let mut out = Xattrs::new();
    for name in XATTR_ALLOW {
        let cname = CString::new(*name).expect("static name");
        // Why two calls: the first gives the size; a value may change
        // between them, which the second call reports as ERANGE.
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: path and name are NUL-terminated; buf is writable for
            // buf.len() bytes.
            let n = unsafe {
                libc::lgetxattr(
                    path.as_ptr(),
                    cname.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                out.insert((*name).to_string(), buf);
                break;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENODATA) | Some(libc::ENOTSUP) => break,
                Some(libc::ERANGE) if buf.len() < 1 << 16 => buf.resize(1 << 16, 0),
                _ => return Err(Error::io(format!("reading xattr {name} of {host}"), &err)),
            }
        }
    }
    Ok((!out.is_empty()).then(|| Box::new(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_decode_like_glibc() {
        // makedev(1, 3) = /dev/null; makedev(259, 1048575): wide fields.
        assert_eq!(dev_numbers(0x103), (1, 3));
        let (ma, mi) = (259u64, 1_048_575u64);
        let dev = ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12);
        assert_eq!(dev_numbers(dev), (259, 1_048_575));
    }

    #[test]
    fn files_without_xattrs_have_none() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let p = Utf8Path::from_path(t.path()).unwrap();
        assert_eq!(read_xattrs(p).unwrap(), None);
    }
}
