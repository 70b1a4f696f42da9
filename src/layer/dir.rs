//! Directory inputs: a host tree walked into layer entries.
//!
//! Invariants: children are listed in sorted order (never readdir order);
//! modes come from the executable bit only (never the umask); owners are 0:0;
//! symlinks inside the tree are kept as symlinks and never followed out of it
//! (a relative target climbing above the layer root is refused); files with
//! several links become independent files (inode numbers never make hard
//! links); FIFOs, sockets and devices are refused. The top directory itself
//! may be a symlink (as Bazel presents tree artifacts) and is read through.
//! Names are lstat'ed on several threads; entries and errors (the first in
//! walk order) do not depend on how many.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};

use super::entry::{default_file_mode, Content, Entry, EntryKind, SYMLINK_MODE};
use super::path::LayerPath;
use crate::error::{Error, IoContext, Result};
use crate::parallel::parallel;
use crate::spec::check_link_target;

/// Most entries one walk may produce (a guard against runaway trees).
pub const MAX_ENTRIES: usize = 10_000_000;

/// Entries whose lstat one worker takes at a time.
const STAT_CHUNK: usize = 512;

/// Walk `dir`, placing its contents under `prefix` (the layer root if `None`).
///
/// Directories are listed first, in sorted order, on this thread (readdir's
/// file type says which names to descend into); every other name is then
/// lstat'ed on up to `threads` threads — 100,000 lstat calls are most of a
/// walk's time. The entries and the error (the first in walk order) are the
/// same for any `threads`.
pub fn walk_dir(dir: &Utf8Path, prefix: Option<&LayerPath>, threads: usize) -> Result<Vec<Entry>> {
    let meta = fs::metadata(dir).io_context(|| format!("input directory {dir}"))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!("input {dir}: not a directory")));
    }
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let origin: Arc<str> = Arc::from(format!("input directory {dir}"));
    walk(dir, prefix, &origin, &mut out, &mut pending)?;
    let chunks: Vec<&[usize]> = pending.chunks(STAT_CHUNK).collect();
    let kinds = parallel(&chunks, threads, |chunk| {
        chunk
            .iter()
            .map(|&i| classify(&out[i]))
            .collect::<Result<Vec<_>>>()
    })?;
    for (&i, (kind, mode)) in pending.iter().zip(kinds.into_iter().flatten()) {
        out[i].kind = kind;
        out[i].mode = mode;
    }
    Ok(out)
}

/// A name that is not a directory, until [`classify`] has looked at it: the
/// host path, as a file of unknown size.
fn unclassified(host: Utf8PathBuf) -> EntryKind {
    EntryKind::File(Content::Path(host, 0))
}

/// What a non-directory name is: its kind and mode, from lstat.
fn classify(entry: &Entry) -> Result<(EntryKind, u32)> {
    let EntryKind::File(Content::Path(host, _)) = &entry.kind else {
        unreachable!("only unclassified entries are pending");
    };
    let meta = fs::symlink_metadata(host).io_context(|| format!("reading {host}"))?;
    let ft = meta.file_type();
    if ft.is_file() {
        let mode = default_file_mode(meta.permissions().mode());
        Ok((
            EntryKind::File(Content::Path(host.clone(), meta.len())),
            mode,
        ))
    } else if ft.is_symlink() {
        let target = fs::read_link(host).io_context(|| format!("reading symlink {host}"))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| Error::invalid(format!("symlink {host}: target is not UTF-8")))?;
        check_link_target(&entry.path, &target).map_err(|e| e.context(host))?;
        Ok((EntryKind::Symlink(target), SYMLINK_MODE))
    } else if ft.is_dir() {
        // Replaced by a directory since it was listed.
        Err(Error::invalid(format!("{host}: changed while it was read")))
    } else {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        Err(Error::invalid(format!(
            "{host}: {what} cannot go into a layer (declare it in a spec if needed)"
        )))
    }
}

fn walk(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    origin: &Arc<str>,
    out: &mut Vec<Entry>,
    pending: &mut Vec<usize>,
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
        // d_type where the filesystem gives it (no syscall), else lstat.
        let is_dir = ent
            .file_type()
            .map(|t| t.is_dir())
            .io_context(|| format!("reading {dir}/{name}"))?;
        names.push((name, is_dir));
    }
    // Why: readdir order differs between filesystems and runs.
    names.sort();
    for (name, is_dir) in names {
        let host = dir.join(&name);
        let rel = LayerPath::parse(&name).map_err(|e| e.context(&host))?;
        let path = LayerPath::join(prefix, &rel);
        let mut entry = Entry::dir(path.clone(), Arc::clone(origin));
        if is_dir {
            out.push(entry);
            walk(&host, Some(&path), origin, out, pending)?;
        } else {
            entry.kind = unclassified(host);
            pending.push(out.len());
            out.push(entry);
        }
        if out.len() > MAX_ENTRIES {
            return Err(Error::invalid(format!(
                "{dir}: more than {MAX_ENTRIES} entries"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in 0..7 {
            let dir = root.join(format!("d{d}"));
            fs::create_dir_all(dir.join("sub")).unwrap();
            for f in (0..300).rev() {
                fs::write(dir.join(format!("f{f:03}")), vec![b'x'; f]).unwrap();
            }
            fs::write(dir.join("sub/run"), b"#!/bin/sh\n").unwrap();
            fs::set_permissions(dir.join("sub/run"), fs::Permissions::from_mode(0o700)).unwrap();
            symlink("../f001", dir.join("sub/link")).unwrap();
        }
        t
    }

    fn walk_with(root: &std::path::Path, threads: usize) -> Result<Vec<Entry>> {
        let root = Utf8Path::from_path(root).unwrap();
        walk_dir(root, None, threads)
    }

    #[test]
    fn entries_are_the_same_for_any_thread_count() {
        let t = tree();
        let one = walk_with(t.path(), 1).unwrap();
        assert_eq!(one.len(), 7 * (1 + 300 + 1 + 2));
        for threads in [2, 5] {
            assert_eq!(
                walk_with(t.path(), threads).unwrap(),
                one,
                "{threads} threads"
            );
        }
        let at = |p: &str| one.iter().find(|e| e.path.as_str() == p).unwrap();
        assert_eq!(at("d3/sub").kind, EntryKind::Dir);
        assert_eq!(at("d3/sub/run").mode, 0o755);
        assert_eq!(at("d3/f007").mode, 0o644);
        assert!(matches!(
            &at("d3/f007").kind,
            EntryKind::File(Content::Path(_, 7))
        ));
        assert_eq!(at("d3/sub/link").kind, EntryKind::Symlink("../f001".into()));
        // Listed in sorted order, parents first.
        let paths: Vec<&str> = one.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(&paths[..3], ["d0", "d0/f000", "d0/f001"]);
    }

    #[test]
    fn the_first_bad_name_in_walk_order_is_the_error_for_any_thread_count() {
        let t = tree();
        // Two bad names; d2's comes first in walk order.
        symlink("../../../etc/passwd", t.path().join("d2/sub/escape")).unwrap();
        symlink("../../x", t.path().join("d5/zz")).unwrap();
        std::process::Command::new("mkfifo")
            .arg(t.path().join("d6/fifo"))
            .status()
            .unwrap();
        let first = walk_with(t.path(), 1).unwrap_err().to_string();
        assert!(first.contains("d2/sub/escape"), "{first}");
        for threads in [2, 5] {
            assert_eq!(walk_with(t.path(), threads).unwrap_err().to_string(), first);
        }
        fs::remove_file(t.path().join("d2/sub/escape")).unwrap();
        let second = walk_with(t.path(), 2).unwrap_err().to_string();
        assert!(second.contains("d5/zz"), "{second}");
        fs::remove_file(t.path().join("d5/zz")).unwrap();
        let fifo = walk_with(t.path(), 3).unwrap_err().to_string();
        assert!(
            fifo.contains("d6/fifo: a FIFO cannot go into a layer"),
            "{fifo}"
        );
    }
}
