//! What several commands share: flag groups (`#[command(flatten)]`), closed
//! choices (`ValueEnum`), the environment (`SOURCE_DATE_EPOCH`, the core
//! count) and small outputs (`--descriptor`, `--digest-file`).

use std::fs;
use std::io::{self, Write};

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Args, ValueEnum};
use serde_json::Value;

use strata::archive::Format;
use strata::error::{Error, IoContext, Result};
use strata::json::to_canonical;
use strata::layer::compress::Compression;
use strata::output;

/// Where a command writes its result and what it prints.
#[derive(Args)]
pub(crate) struct OutputArgs {
    /// Output path (a directory for --format oci, a file otherwise).
    #[arg(long)]
    pub(crate) out: Utf8PathBuf,
    #[command(flatten)]
    pub(crate) digest_file: DigestFileArg,
    /// Print nothing on success (use --digest-file for the digest).
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// `--digest-file`.
#[derive(Args)]
pub(crate) struct DigestFileArg {
    /// Also write the digest (sha256:…, no newline) to this file.
    #[arg(long)]
    pub(crate) digest_file: Option<Utf8PathBuf>,
}

/// `--cache-dir`.
#[derive(Args)]
pub(crate) struct CacheDirArg {
    /// Where layers of a shallow image are cached when they are needed
    /// (default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata, else
    /// ~/.cache/strata; with none of these, a temporary directory, removed
    /// afterwards).
    #[arg(long)]
    pub(crate) cache_dir: Option<Utf8PathBuf>,
}

/// `--mtime` and `--threads`: what makes entries and how fast.
#[derive(Args)]
pub(crate) struct EntryArgs {
    /// mtime of every entry, seconds since the epoch (default:
    /// SOURCE_DATE_EPOCH, else 0); `normalize` also makes it an image's
    /// created time.
    #[arg(long)]
    mtime: Option<String>,
    /// Compression threads (default: all cores; the bytes never depend on it).
    #[arg(long)]
    threads: Option<usize>,
}

impl EntryArgs {
    /// `--mtime`, else SOURCE_DATE_EPOCH, else 0.
    pub(crate) fn mtime(&self) -> Result<u64> {
        epoch(self.mtime.as_deref(), "mtime")
    }

    /// `--threads`, else every core.
    pub(crate) fn threads(&self) -> usize {
        threads(self.threads)
    }
}

/// `--compression`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompressionArg {
    /// gzip (levels 1-12, default 5).
    Gzip,
    /// zstd (levels 1-19, default 3).
    Zstd,
    /// no compression: a plain tar.
    None,
}

impl CompressionArg {
    /// The compression with `--level`, when given.
    pub(crate) fn with_level(self, level: Option<i32>) -> Result<Compression> {
        let name = match self {
            CompressionArg::Gzip => "gzip",
            CompressionArg::Zstd => "zstd",
            CompressionArg::None => "none",
        };
        // The name is valid (clap checked it): an error is about the level.
        Compression::parse(name, level).map_err(|e| e.context("--level"))
    }
}

/// `--format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// An OCI layout directory.
    Oci,
    /// An OCI layout in a tar.
    OciArchive,
    /// A tar that is both an OCI layout and a `docker load` archive.
    DockerArchive,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Oci => Format::Oci,
            FormatArg::OciArchive => Format::OciArchive,
            FormatArg::DockerArchive => Format::DockerArchive,
        }
    }
}

/// SOURCE_DATE_EPOCH, or `None` when unset; malformed values are errors.
pub(crate) fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(_) => Err(Error::invalid("SOURCE_DATE_EPOCH: not valid UTF-8")),
        Ok(s) if s.is_empty() => Ok(None),
        Ok(s) => s.parse::<u64>().map(Some).map_err(|_| {
            Error::invalid(format!(
                "SOURCE_DATE_EPOCH={s:?}: expected a non-negative integer (seconds since 1970)"
            ))
        }),
    }
}

/// The flag `--name`'s seconds, else SOURCE_DATE_EPOCH, else 0.
pub(crate) fn epoch(flag: Option<&str>, name: &str) -> Result<u64> {
    match flag {
        Some(s) => s.parse::<u64>().map_err(|_| {
            Error::invalid(format!(
                "--{name} {s:?}: expected a non-negative integer (seconds since 1970)"
            ))
        }),
        None => Ok(source_date_epoch()?.unwrap_or(0)),
    }
}

/// The flag's thread count, else every core; at least 1.
pub(crate) fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

/// A small extra output (--descriptor, --digest-file), its temporary created
/// before the main output is committed. Why: a bad path for it must fail the
/// run before the main output exists, so a failed run leaves no output.
pub(crate) fn side_output(
    path: Option<&Utf8Path>,
) -> Result<Option<(fs::File, output::AtomicFile)>> {
    path.map(output::AtomicFile::create).transpose()
}

/// Write and commit a [`side_output`] (nothing when there is none).
pub(crate) fn finish_side_output(
    out: Option<(fs::File, output::AtomicFile)>,
    bytes: &[u8],
) -> Result<()> {
    let Some((mut f, atomic)) = out else {
        return Ok(());
    };
    f.write_all(bytes)
        .io_context(|| format!("writing {}", atomic.dest()))?;
    atomic.commit(f)
}

/// `KEY=VALUE` items of the flag `--flag`.
pub(crate) fn kv(items: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::invalid(format!("--{flag} {s:?}: expected KEY=VALUE")))
        })
        .collect()
}

/// An argv flag: one JSON array, or one argument per occurrence.
pub(crate) fn argv(items: &[String], flag: &str) -> Result<Option<Vec<String>>> {
    match items {
        [] => Ok(None),
        [one] if one.trim_start().starts_with('[') => serde_json::from_str::<Vec<String>>(one)
            .map(Some)
            .map_err(|e| {
                Error::invalid(format!(
                    "--{flag} {one:?}: not a JSON array of strings: {e}"
                ))
            }),
        many => Ok(Some(many.to_vec())),
    }
}

/// Canonical JSON and a newline on stdout.
pub(crate) fn print_json(v: &Value) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(&to_canonical(v));
    let _ = out.write_all(b"\n");
}

/// A size for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parse a `--format` value given as text (the `image` command's flag).
pub(crate) fn format_flag(s: &str) -> Result<Format> {
    FormatArg::from_str(s, false)
        .map(Format::from)
        .map_err(|_| {
            Error::invalid(format!(
                "--format {s:?}: expected oci, oci-archive or docker-archive"
            ))
        })
}

/// The library's errors speak of data; where one names what a flag of this
/// command changes (`needle`), the flag is added: `… (--insecure)`.
pub(crate) fn hint(e: Error, needle: &str, flags: &str) -> Error {
    if e.message().contains(needle) {
        let m = format!("{} ({flags})", e.message());
        Error::new(e.kind(), m)
    } else {
        e
    }
}
