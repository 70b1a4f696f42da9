//! Crash-safe outputs: everything is written beside its destination under a
//! temporary name (`.strata-tmp-*`) and renamed into place only when complete.
//!
//! Invariants: on any error (or a panic unwinding) the temporary is removed and
//! a pre-existing destination is untouched; a destination directory is replaced
//! as a whole (old one moved aside, new one renamed in, old one removed).
//! Temporaries registered here can also be removed by the CLI's signal handler
//! via [`remove_pending`], so SIGINT/SIGTERM leave nothing partial either.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, IoContext, Result};

/// Temporaries currently being written (for the signal handler).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(p: &Utf8Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.push(p.as_std_path().to_path_buf());
    }
}

fn unregister(p: &Utf8Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.retain(|x| x.as_path() != p.as_std_path());
    }
}

/// Have the signal handler ([`remove_pending`]) remove `p` (a file or a
/// directory another module creates and removes itself), until [`forget`].
pub fn remove_on_signal(p: &Utf8Path) {
    register(p);
}

/// Undo [`remove_on_signal`].
pub fn forget(p: &Utf8Path) {
    unregister(p);
}

/// Remove every temporary still pending (called from a signal handler path;
/// best effort, errors ignored).
pub fn remove_pending() {
    let list = match PENDING.lock() {
        Ok(v) => v.clone(),
        Err(e) => e.into_inner().clone(),
    };
    for p in list {
        if p.is_dir() {
            let _ = fs::remove_dir_all(&p);
        } else {
            let _ = fs::remove_file(&p);
        }
    }
}

fn parent_of(dest: &Utf8Path) -> Utf8PathBuf {
    match dest.parent() {
        Some(p) if !p.as_str().is_empty() => p.to_path_buf(),
        _ => Utf8PathBuf::from("."),
    }
}

fn tmp_name(dest: &Utf8Path) -> String {
    format!(".strata-tmp-{}-", dest.file_name().unwrap_or("out"))
}

/// A file being written; becomes `dest` on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: Option<Utf8PathBuf>,
    dest: Utf8PathBuf,
}

impl AtomicFile {
    /// Create the temporary beside `dest`; returns it open for writing.
    pub fn create(dest: &Utf8Path) -> Result<(File, AtomicFile)> {
        let dir = parent_of(dest);
        let named = tempfile::Builder::new()
            .prefix(&tmp_name(dest))
            .tempfile_in(&dir)
            .io_context(|| format!("creating {dest}"))?;
        let (file, path) = named
            .keep()
            .map_err(|e| Error::io(format!("creating {dest}"), &e.error))?;
        let tmp = Utf8PathBuf::from_path_buf(path)
            .map_err(|p| Error::invalid(format!("non-UTF-8 path {}", p.display())))?;
        register(&tmp);
        Ok((
            file,
            AtomicFile {
                tmp: Some(tmp),
                dest: dest.to_path_buf(),
            },
        ))
    }

    /// The destination path.
    pub fn dest(&self) -> &Utf8Path {
        &self.dest
    }

    /// Make the file world-readable (tempfile creates 0600) and rename it into place.
    pub fn commit(mut self, file: File) -> Result<()> {
        let tmp = self.tmp.take().expect("not yet committed");
        let dest = self.dest.clone();
        // No fsync: the guarantee is against failing or killed processes (the
        // rename is atomic), as for Bazel and Nix outputs; an fsync cost 0.8 s
        // per 690 MB layer.
        let res = (|| {
            drop(file);
            set_mode(&tmp, 0o644).io_context(|| format!("writing {dest}"))?;
            fs::rename(&tmp, &dest).io_context(|| format!("renaming into {dest}"))
        })();
        unregister(&tmp);
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(&tmp);
            unregister(&tmp);
        }
    }
}

#[cfg(unix)]
fn set_mode(p: &Utf8Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

/// Write `bytes` to `dest` atomically.
pub fn write_file(dest: &Utf8Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let (mut f, a) = AtomicFile::create(dest)?;
    f.write_all(bytes)
        .io_context(|| format!("writing {dest}"))?;
    a.commit(f)
}

/// A directory being filled; becomes `dest` on [`AtomicDir::commit`].
pub struct AtomicDir {
    tmp: Option<Utf8PathBuf>,
    dest: Utf8PathBuf,
}

impl AtomicDir {
    /// Create an empty temporary directory beside `dest`.
    pub fn create(dest: &Utf8Path) -> Result<AtomicDir> {
        let dir = parent_of(dest);
        let td = tempfile::Builder::new()
            .prefix(&tmp_name(dest))
            .tempdir_in(&dir)
            .io_context(|| format!("creating {dest}"))?;
        let tmp = Utf8PathBuf::from_path_buf(td.keep())
            .map_err(|p| Error::invalid(format!("non-UTF-8 path {}", p.display())))?;
        register(&tmp);
        set_dir_mode(&tmp).io_context(|| format!("creating {dest}"))?;
        Ok(AtomicDir {
            tmp: Some(tmp),
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary directory to write into.
    pub fn path(&self) -> &Utf8Path {
        self.tmp.as_deref().expect("not yet committed")
    }

    /// Replace `dest` with the filled directory.
    pub fn commit(mut self) -> Result<()> {
        let tmp = self.tmp.take().expect("not yet committed");
        let dest = self.dest.clone();
        let res = replace_dir(&tmp, &dest);
        unregister(&tmp);
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        res
    }
}

fn replace_dir(tmp: &Utf8Path, dest: &Utf8Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(_) => fs::rename(tmp, dest).io_context(|| format!("renaming into {dest}")),
        Ok(m) if m.is_dir() => {
            let aside = tempfile::Builder::new()
                .prefix(&tmp_name(dest))
                .tempdir_in(parent_of(dest))
                .io_context(|| format!("replacing {dest}"))?
                .keep();
            let aside = aside.join("old");
            fs::rename(dest, &aside).io_context(|| format!("replacing {dest}"))?;
            if let Err(e) = fs::rename(tmp, dest) {
                let _ = fs::rename(&aside, dest);
                let _ = fs::remove_dir(aside.parent().expect("has parent"));
                return Err(Error::io(format!("renaming into {dest}"), &e));
            }
            let _ = fs::remove_dir_all(aside.parent().expect("has parent"));
            Ok(())
        }
        Ok(_) => Err(Error::invalid(format!(
            "{dest}: exists and is not a directory (refusing to replace it)"
        ))),
    }
}

#[cfg(unix)]
fn set_dir_mode(p: &Utf8Path) -> std::io::Result<()> {
    set_mode(p, 0o755)
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_dir_all(&tmp);
            unregister(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> (tempfile::TempDir, Utf8PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = Utf8PathBuf::from_path_buf(t.path().to_path_buf()).unwrap();
        (t, p)
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let (_t, d) = tmpdir();
        let dest = d.join("out");
        {
            let (_f, _a) = AtomicFile::create(&dest).unwrap();
        }
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    }

    #[test]
    fn dir_replaces_old() {
        let (_t, d) = tmpdir();
        let dest = d.join("lay");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("old"), "x").unwrap();
        let a = AtomicDir::create(&dest).unwrap();
        fs::write(a.path().join("new"), "y").unwrap();
        a.commit().unwrap();
        assert!(dest.join("new").exists() && !dest.join("old").exists());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }
}
