//! Directory inputs: a host tree walked into layer entries.
//!
//! Invariants: children are listed in sorted order (never readdir order);
//! modes come from the executable bit only (never the umask); owners are 0:0;
//! symlinks inside the tree are kept as symlinks and never followed out of it
//! (a relative target climbing above the layer root is refused); files with
//! several links become independent files (inode numbers never make hard
//! links); FIFOs, sockets and devices are refused. The top directory itself
//! may be a symlink (as Bazel presents tree artifacts) and is read through.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;

use camino::Utf8Path;

use super::entry::{default_file_mode, Content, Entry, EntryKind, SYMLINK_MODE};
use super::path::LayerPath;
use crate::error::{Error, IoContext, Result};
use crate::spec::check_link_target;

/// Most entries one walk may produce (a guard against runaway trees).
pub const MAX_ENTRIES: usize = 10_000_000;

/// Walk `dir`, placing its contents under `prefix` (the layer root if `None`).
pub fn walk_dir(dir: &Utf8Path, prefix: Option<&LayerPath>) -> Result<Vec<Entry>> {
    let meta = fs::metadata(dir).io_context(|| format!("input directory {dir}"))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!("input {dir}: not a directory")));
    }
    let mut out = Vec::new();
    let origin: Arc<str> = Arc::from(format!("input directory {dir}"));
    walk(dir, prefix, &origin, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    origin: &Arc<str>,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let mut names = Vec::new();
    for ent in fs::read_dir(dir).io_context(|| format!("reading directory {dir}"))? {
        let ent = ent.io_context(|| format!("reading directory {dir}"))?;
        let name = ent.file_name().into_string().map_err(|n| {
            Error::invalid(format!(
                "{dir}/{}: file name is not UTF-8",
                n.to_string_lossy()
            ))
        })?;
        names.push(name);
    }
    // Why: readdir order differs between filesystems and runs.
    names.sort();
    for name in names {
        let host = dir.join(&name);
        let rel = LayerPath::parse(&name).map_err(|e| e.context(&host))?;
        let path = LayerPath::join(prefix, &rel);
        let meta = fs::symlink_metadata(&host).io_context(|| format!("reading {host}"))?;
        let ft = meta.file_type();
        let mut entry = Entry::dir(path.clone(), Arc::clone(origin));
        if ft.is_dir() {
            out.push(entry);
            walk(&host, Some(&path), origin, out)?;
        } else if ft.is_file() {
            entry.kind = EntryKind::File(Content::Path(host.clone(), meta.len()));
            entry.mode = default_file_mode(meta.permissions().mode());
            out.push(entry);
        } else if ft.is_symlink() {
            let target = fs::read_link(&host).io_context(|| format!("reading symlink {host}"))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| Error::invalid(format!("symlink {host}: target is not UTF-8")))?;
            check_link_target(&path, &target).map_err(|e| e.context(&host))?;
            entry.kind = EntryKind::Symlink(target);
            entry.mode = SYMLINK_MODE;
            out.push(entry);
        } else {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            return Err(Error::invalid(format!(
                "{host}: {what} cannot go into a layer (declare it in a spec if needed)"
            )));
        }
        if out.len() > MAX_ENTRIES {
            return Err(Error::invalid(format!(
                "{dir}: more than {MAX_ENTRIES} entries"
            )));
        }
    }
    Ok(())
}
