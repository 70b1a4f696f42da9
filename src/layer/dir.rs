//! Directory inputs: a host tree walked into layer entries.
//!
//! Invariants: children are listed in sorted order (never readdir order);
//! by default modes come from the executable bit only (never the umask),
//! owners are 0:0 and FIFOs, sockets and devices are refused; a root
//! filesystem can keep its modes, owners, file capabilities and device
//! nodes and leave out paths ([`DirOptions`]); symlinks inside the tree are
//! kept as symlinks and never followed out of it (a relative target climbing
//! above the layer root is refused); files with several links become
//! independent files (inode numbers never make hard links). The top directory itself
//! may be a symlink (as Bazel presents tree artifacts) and is read through.
//! Directories are listed on several threads; entries and errors (the first
//! in walk order) do not depend on how many.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::{Arc, Condvar, Mutex};

use camino::{Utf8Path, Utf8PathBuf};

use super::accounts::Accounts;
use super::dir_options::{dev_numbers, read_xattrs, DirOptions};
use super::entry::{default_file_mode, Content, Entry, EntryKind, DIR_MODE, SYMLINK_MODE};
use super::path::{check_link_target, LayerPath};
use super::policy::{Modes, Owners};
use crate::error::{Error, IoContext, Result};

/// Most entries one walk may produce (a guard against runaway trees).
pub const MAX_ENTRIES: usize = 10_000_000;

/// Walk `dir`, placing its contents under `prefix` (the layer root if `None`).
///
/// Directories are listed and their names lstat'ed (relative to the open
/// directory) on up to `threads` threads, while this thread puts the
/// listings in walk order as they come (and lists too when the next one is
/// not ready): 100,000 names take ~0.19 s of readdir and lstat calls on one
/// thread. The entries and the error (the first in walk order) are the same
/// for any `threads`.
pub fn walk_dir(dir: &Utf8Path, prefix: Option<&LayerPath>, threads: usize) -> Result<Vec<Entry>> {
    walk_tree(dir, prefix, threads, &DirOptions::default())
}

/// [`walk_dir`] with the attribute policy and exclusions of `opts`.
pub fn walk_tree(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    threads: usize,
    opts: &DirOptions,
) -> Result<Vec<Entry>> {
    walk_tree_limited(dir, prefix, threads, opts, MAX_ENTRIES)
}

/// [`walk_dir`] with at most `max_entries` names (unit tests lower it: ten
/// million files cannot be made in a test).
#[cfg(test)]
fn walk_dir_limited(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    threads: usize,
    max_entries: usize,
) -> Result<Vec<Entry>> {
    walk_tree_limited(dir, prefix, threads, &DirOptions::default(), max_entries)
}

/// [`walk_tree`] with at most `max_entries` names.
fn walk_tree_limited(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    threads: usize,
    opts: &DirOptions,
    max_entries: usize,
) -> Result<Vec<Entry>> {
    let meta = fs::metadata(dir).io_context(|| format!("input directory {dir}"))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!("input {dir}: not a directory")));
    }
    let origin: Arc<str> = Arc::from(format!("input directory {dir}"));
    let walk = Walk {
        root: dir,
        max_entries,
        opts,
        origin,
        queue: Mutex::new(Queue {
            todo: vec![(0, dir.to_owned(), prefix.cloned())],
            busy: 0,
            done: vec![None],
            listed: 0,
            over: false,
            stop: false,
        }),
        wake: Condvar::new(),
    };
    std::thread::scope(|s| {
        for _ in 1..threads.clamp(1, 16) {
            s.spawn(|| while walk.list_next(false) {});
        }
        let mut out = Vec::new();
        let result = walk.assemble(0, &mut out);
        // Workers stop at once after an error; else they have run out of work.
        let over = {
            let mut q = walk.queue.lock().expect("lock");
            q.stop = true;
            q.over
        };
        walk.wake.notify_all();
        // Past the limit, which listings came before it depends on timing:
        // the limit is the error, whatever else the walk ran into.
        if over {
            return Err(walk.too_many());
        }
        result.map(|()| out)
    })
    .and_then(|mut out| {
        if opts.owner_names && opts.owners == Owners::Keep {
            // Why after the walk: the tree's files are read once, whatever the threads.
            let acc = Accounts::read(dir)?;
            for e in &mut out {
                e.uname = acc.users.get(&e.uid).cloned().unwrap_or_default();
                e.gname = acc.groups.get(&e.gid).cloned().unwrap_or_default();
            }
        }
        Ok(out)
    })
}

/// `dir/name`, allocated at its size: a tree's host paths are kept until the
/// layer is written, and `Path::join` leaves ~60% spare capacity in each.
fn join_name(dir: &Utf8Path, name: &str) -> Utf8PathBuf {
    let mut s = String::with_capacity(dir.as_str().len() + 1 + name.len());
    s.push_str(dir.as_str());
    if !s.is_empty() && !s.ends_with('/') {
        s.push('/');
    }
    s.push_str(name);
    Utf8PathBuf::from(s)
}

/// One directory's children, sorted by name, each with the number of its own
/// listing if it is a directory; cut at the first name that failed, `error`.
struct Listing {
    entries: Vec<Entry>,
    subdirs: Vec<Option<usize>>,
    error: Option<Error>,
}

/// A directory still to list: its number, host path and layer path.
type Todo = (usize, Utf8PathBuf, Option<LayerPath>);

struct Queue {
    /// A stack: a listing's subdirectories go on in reverse, so the next one
    /// taken is the next in walk order, the one the caller waits for.
    todo: Vec<Todo>,
    busy: usize,
    /// Listings by number, until the caller takes them; the root is 0.
    done: Vec<Option<Listing>>,
    /// Names listed so far; past the limit (`over`) nothing more is.
    listed: usize,
    over: bool,
    stop: bool,
}

struct Walk<'a> {
    root: &'a Utf8Path,
    /// [`MAX_ENTRIES`], but for unit tests.
    max_entries: usize,
    opts: &'a DirOptions,
    origin: Arc<str>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Walk<'_> {
    fn too_many(&self) -> Error {
        Error::invalid(format!(
            "{}: more than {} entries",
            self.root, self.max_entries
        ))
    }

    /// List one directory from the queue. Returns false once there is none
    /// left to list (or the walk stopped); with `once`, also when the queue
    /// is momentarily empty instead of waiting.
    fn list_next(&self, once: bool) -> bool {
        let (id, host, path) = {
            let mut q = self.queue.lock().expect("lock");
            loop {
                if q.stop {
                    return false;
                }
                if let Some(todo) = q.todo.pop() {
                    q.busy += 1;
                    break todo;
                }
                if q.busy == 0 || once {
                    return false;
                }
                q = self.wake.wait(q).expect("lock");
            }
        };
        let mut l = list_one(&host, path.as_ref(), &self.origin, self.opts);
        let mut q = self.queue.lock().expect("lock");
        q.listed += l.entries.len();
        q.over |= q.listed > self.max_entries;
        if !q.over {
            for sub in l.subdirs.iter_mut().flatten() {
                *sub = q.done.len();
                q.done.push(None);
            }
            for (e, sub) in l.entries.iter().zip(&l.subdirs).rev() {
                if let Some(sub) = *sub {
                    let todo = (
                        sub,
                        join_name(&host, e.path.file_name()),
                        Some(e.path.clone()),
                    );
                    q.todo.push(todo);
                }
            }
        }
        q.done[id] = Some(l);
        q.busy -= 1;
        self.wake.notify_all();
        true
    }

    /// Listing `id`, listing directories itself while it is not ready.
    fn take(&self, id: usize) -> Result<Listing> {
        loop {
            let mut q = self.queue.lock().expect("lock");
            loop {
                if let Some(l) = q.done.get_mut(id).and_then(Option::take) {
                    return Ok(l);
                }
                if q.over {
                    return Err(self.too_many());
                }
                if !q.todo.is_empty() {
                    break;
                }
                q = self.wake.wait(q).expect("lock");
            }
            drop(q);
            self.list_next(true);
        }
    }

    /// Put listing `id` and, after each directory, its own listing into
    /// `out`, in walk order, stopping at the first error in that order.
    fn assemble(&self, id: usize, out: &mut Vec<Entry>) -> Result<()> {
        let l = self.take(id)?;
        for (entry, sub) in l.entries.into_iter().zip(l.subdirs) {
            out.push(entry);
            if let Some(sub) = sub {
                self.assemble(sub, out)?;
            }
        }
        l.error.map_or(Ok(()), Err)
    }
}

fn list_one(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    origin: &Arc<str>,
    opts: &DirOptions,
) -> Listing {
    let mut l = Listing {
        entries: Vec::new(),
        subdirs: Vec::new(),
        error: None,
    };
    let mut names = Vec::new();
    let listed = fs::read_dir(dir).and_then(|rd| {
        for ent in rd {
            let ent = ent?;
            names.push((ent.file_name(), ent));
        }
        Ok(())
    });
    if let Err(e) = listed.io_context(|| format!("reading directory {dir}")) {
        l.error = Some(e);
        return l;
    }
    // Why: readdir order differs between filesystems and runs.
    names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    l.entries.reserve(names.len());
    l.subdirs.reserve(names.len());
    for (name, ent) in names {
        match child(dir, prefix, origin, name, &ent, opts) {
            Ok(None) => {}
            Ok(Some((entry, is_dir))) => {
                l.entries.push(entry);
                l.subdirs.push(is_dir.then_some(0));
            }
            Err(e) => {
                l.error = Some(e);
                break;
            }
        }
    }
    l
}

/// One name of `dir` as an entry, and whether it is a directory to descend
/// into (`None`: excluded). Its metadata comes from lstat relative to the
/// open directory.
fn child(
    dir: &Utf8Path,
    prefix: Option<&LayerPath>,
    origin: &Arc<str>,
    name: OsString,
    ent: &fs::DirEntry,
    opts: &DirOptions,
) -> Result<Option<(Entry, bool)>> {
    let name = name.into_string().map_err(|n| {
        Error::invalid(format!(
            "{dir}/{}: file name is not UTF-8",
            n.to_string_lossy()
        ))
    })?;
    let host = join_name(dir, &name);
    let rel = LayerPath::parse(&name).map_err(|e| e.context(&host))?;
    let path = LayerPath::join(prefix, &rel);
    if !opts.exclude.is_empty() && opts.excluded(path.as_str()) {
        return Ok(None);
    }
    // d_type where the filesystem gives it: no syscall for a directory.
    let ft = ent.file_type().io_context(|| format!("reading {host}"))?;
    let mut entry = Entry::dir(path, Arc::clone(origin));
    if ft.is_dir() && !opts.needs_dir_metadata() {
        return Ok(Some((entry, true)));
    }
    let meta = ent.metadata().io_context(|| format!("reading {host}"))?;
    let ft = meta.file_type();
    let host_mode = meta.permissions().mode();
    if opts.owners == Owners::Keep {
        entry.uid = u64::from(meta.uid());
        entry.gid = u64::from(meta.gid());
    }
    // Why `& 0o7777` only with Keep: the default derives modes from intent
    // (the executable bit), never from host bits that carry the umask.
    let kept = (opts.modes == Modes::Keep).then_some(host_mode & 0o7777);
    if ft.is_dir() {
        entry.mode = kept.unwrap_or(DIR_MODE);
        return Ok(Some((entry, true)));
    }
    if ft.is_file() {
        entry.mode = kept.unwrap_or_else(|| default_file_mode(host_mode));
        if opts.xattrs {
            entry.xattrs = read_xattrs(&host)?;
        }
        entry.kind = EntryKind::File(Content::Path(host, meta.len()));
    } else if opts.devices && (ft.is_char_device() || ft.is_block_device() || ft.is_fifo()) {
        entry.mode = kept.unwrap_or_else(|| default_file_mode(host_mode));
        entry.kind = if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            let (major, minor) = dev_numbers(meta.rdev());
            EntryKind::Device {
                block: ft.is_block_device(),
                major,
                minor,
            }
        };
    } else if ft.is_symlink() {
        let target = fs::read_link(&host).io_context(|| format!("reading symlink {host}"))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| Error::invalid(format!("symlink {host}: target is not UTF-8")))?;
        check_link_target(&entry.path, &target).map_err(|e| e.context(&host))?;
        entry.kind = EntryKind::Symlink(target);
        entry.mode = SYMLINK_MODE;
    } else if ft.is_socket() {
        return Err(Error::invalid(format!(
            "{host}: a socket cannot go into a layer; exclude it"
        )));
    } else {
        let what = if ft.is_fifo() { "a FIFO" } else { "a device" };
        return Err(Error::invalid(format!(
            "{host}: {what} cannot go into a layer unless asked for \
             (allow devices), or exclude it"
        )));
    }
    Ok(Some((entry, false)))
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

    /// The documented limit (README, SECURITY.md) and its check, with the
    /// limit lowered: ten million files cannot be made in a test.
    #[test]
    fn names_past_the_limit_are_an_error_for_any_thread_count() {
        assert_eq!(MAX_ENTRIES, 10_000_000);
        let t = tree();
        let root = Utf8Path::from_path(t.path()).unwrap();
        // 7 directories, each with 300 files and `sub`, which holds 2.
        let names = 7 + 7 * 301 + 7 * 2;
        for threads in [1, 4] {
            let all = walk_dir_limited(root, None, threads, names).unwrap();
            assert_eq!(all.len(), names);
            let e = walk_dir_limited(root, None, threads, names - 1).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{root}: more than {} entries", names - 1)
            );
        }
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
            fifo.contains("d6/fifo: a FIFO cannot go into a layer unless asked for"),
            "{fifo}"
        );
    }

    #[test]
    fn keep_modes_and_excludes() {
        let t = tree();
        let root = t.path();
        fs::set_permissions(root.join("d1/sub"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::set_permissions(root.join("d1/f001"), fs::Permissions::from_mode(0o4750)).unwrap();
        fs::set_permissions(root.join("d1/f002"), fs::Permissions::from_mode(0o2640)).unwrap();
        // A FIFO below an excluded directory: never listed, so never refused.
        std::process::Command::new("mkfifo")
            .arg(root.join("d6/sub/fifo"))
            .status()
            .unwrap();
        let opts = DirOptions {
            modes: Modes::Keep,
            exclude: vec![
                crate::glob::Glob::new("d6/sub").unwrap(),
                crate::glob::Glob::new("**/f2??").unwrap(),
            ],
            ..DirOptions::default()
        };
        let root = Utf8Path::from_path(root).unwrap();
        let one = walk_tree(root, None, 1, &opts).unwrap();
        assert_eq!(walk_tree(root, None, 4, &opts).unwrap(), one);
        let at = |p: &str| one.iter().find(|e| e.path.as_str() == p);
        assert_eq!(at("d1/sub").unwrap().mode, 0o1777);
        assert_eq!(at("d1/f001").unwrap().mode, 0o4750);
        assert_eq!(at("d1/f002").unwrap().mode, 0o2640);
        assert_eq!(at("d1/sub/run").unwrap().mode, 0o700);
        assert!(at("d6/sub").is_none() && at("d6/sub/run").is_none());
        assert!(at("d6").is_some() && at("d3/f199").is_some() && at("d3/f200").is_none());
        // The defaults on the same tree: the executable bit only.
        let plain = walk_dir(root, None, 2).unwrap_err().to_string();
        assert!(plain.contains("d6/sub/fifo: a FIFO"), "{plain}");
    }
}
