//! The command line: the only place that reads flags, environment variables
//! (`SOURCE_DATE_EPOCH`) and the machine's core count, and the only place that
//! prints. Everything else is a call into the library.
//!
//! This root holds the command table, `main` and how failures become exit
//! codes; each command group is a file under `cli/` (flags, parsing, one or
//! two library calls, printing), the flag groups they share are in
//! `cli/common.rs`.

use std::io::{self, Write};

use clap::{Parser, Subcommand};

use strata::error::{Error, Result};
use strata::output;

/// `println!` for results on stdout. Why: a reader that stops early
/// (`strata inspect x | head -1`, `grep -q`) closes the pipe; that is no
/// failure of strata, so it exits 0 quietly instead of panicking as
/// `println!` does on a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}
/// `print!` with the same rule as [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_stdout(format_args!($($t)*)) };
}

mod attach;
mod audit;
use audit::{DiffArgs, NormalizeArgs};
mod common;
mod image;
mod index;
mod inspect;
mod layer;
mod load;
mod nix_layers;
mod registry;
mod report;
mod sign;
// What the `image` command below calls, by the names it has always used.
use common::{argv, epoch, finish_side_output, format_flag, kv, side_output, source_date_epoch};
use registry::fetch_remote_blobs;
mod sbom;

/// Write to stdout; a closed pipe ends the process with exit 0, another
/// error with the one-line error and exit 1.
pub(crate) fn write_stdout(args: std::fmt::Arguments) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!(
            "strata: writing to standard output: {}",
            strata::error::describe_io(&e)
        );
        std::process::exit(1);
    }
}

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Deterministic OCI layers and images: same inputs, same digest."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build one layer blob from directories and/or specs.
    Layer(layer::LayerArgs),
    /// Compose pre-built layers (onto an optional base) into an image.
    Image(Box<image::ImageArgs>),
    /// Make a multi-platform image index from single-platform images.
    Index(index::IndexArgs),
    /// Split a Nix closure (exportReferencesGraph files) into layer specs, by popularity.
    NixLayers(nix_layers::NixLayersArgs),
    /// Print the manifest (or index) digest of an image.
    Digest(inspect::DigestArgs),
    /// Check every blob, digest, size, diff_id and reference of an image.
    Verify(inspect::VerifyArgs),
    /// Summarize an image (platform, config, layers).
    Inspect(inspect::InspectArgs),
    /// Push an image or index to a registry.
    Push(Box<registry::PushArgs>),
    /// Pull an image or index from a registry into an OCI layout.
    Pull(Box<registry::PullArgs>),
    /// Explain why two images or layers differ (exit 0 same, 1 different, 2 error).
    Diff(DiffArgs),
    /// Rewrite a foreign layer or image into strata's canonical form.
    Normalize(NormalizeArgs),
    /// Load an image into docker or podman, sending only the layers the engine lacks.
    Load(load::LoadArgs),
    /// Attach a file to an image as an OCI 1.1 referrer (SBOM, report, …).
    Attach(attach::AttachArgs),
    /// Sign an image (cosign-compatible ECDSA P-256 signature, attached).
    Sign(sign::SignArgs),
    /// Attach an in-toto statement about an image, signed in a DSSE envelope.
    Attest(sign::AttestArgs),
    /// Write an SBOM (SPDX 2.3 or CycloneDX 1.6 JSON) of an image: its layers, Debian and Nix packages.
    Sbom(sbom::SbomArgs),
    /// Write SLSA v1 provenance (an in-toto Statement) of an image.
    Provenance(sbom::ProvenanceArgs),
}

/// A usage error (exit 2) or a failure (exit 1).
enum Failure {
    Usage(Error),
    Failed(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Failed(e)
    }
}

fn usage<T>(r: Result<T>) -> std::result::Result<T, Failure> {
    r.map_err(Failure::Usage)
}

type CliResult<T = i32> = std::result::Result<T, Failure>;

/// Run the CLI; returns the exit code.
pub fn main() -> i32 {
    // Why: a killed build must not leave half-written outputs behind.
    let _ = ctrlc::set_handler(|| {
        output::remove_pending();
        if let Some(m) = load::INTERRUPTED.lock().ok().and_then(|m| m.clone()) {
            eprintln!("strata: {}", one_line(&m));
        }
        std::process::exit(130);
    });
    ignore_sigxfsz();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version (exit 0), and the help a bare `strata` prints.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("strata: {}", clap_line(&e));
            return 2;
        }
    };
    let res = match cli.command {
        Command::Layer(a) => layer::layer(a),
        Command::Image(a) => image::image(*a),
        Command::Index(a) => index::index(a),
        Command::NixLayers(a) => nix_layers::nix_layers(a),
        Command::Digest(a) => inspect::digest(a),
        Command::Verify(a) => inspect::verify(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Push(a) => registry::push(*a),
        Command::Pull(a) => registry::pull(*a),
        Command::Diff(a) => return audit::diff(a),
        Command::Normalize(a) => audit::normalize(a),
        Command::Load(a) => load::load(a),
        Command::Attach(a) => attach::attach(a),
        Command::Sign(a) => sign::sign(a),
        Command::Attest(a) => sign::attest(a),
        Command::Sbom(a) => sbom::sbom(a),
        Command::Provenance(a) => sbom::provenance(a),
    };
    match res {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("strata: {}", one_line(&e.to_string()));
            2
        }
        Err(Failure::Failed(e)) => {
            eprintln!("strata: {}", one_line(&e.to_string()));
            1
        }
    }
}

/// Why: an error is ONE line; a host file name may hold a newline.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// clap's multi-line usage error as one line: the message, its details and tips.
fn clap_line(e: &clap::Error) -> String {
    if let Some(line) = choice_line(e) {
        return one_line(&line);
    }
    let text = e.to_string();
    let mut out = String::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        let l = l.strip_prefix("error: ").unwrap_or(l);
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(l);
    }
    if out.is_empty() {
        out.push_str("invalid arguments");
    }
    one_line(&(out + " (see --help)"))
}

/// A bad value of a closed choice (`ValueEnum`) or of a flag strata parses
/// itself, in strata's words: `--compression "lz4": expected gzip, zstd or
/// none`; `None` for every other clap error.
fn choice_line(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use std::error::Error as _;
    match e.kind() {
        // Our own value parsers' errors already name the flag and the value.
        ErrorKind::ValueValidation => e
            .source()
            .and_then(|s| s.downcast_ref::<Error>())
            .map(|s| s.to_string()),
        ErrorKind::InvalidValue => {
            let flag = match e.get(ContextKind::InvalidArg)? {
                ContextValue::String(s) => s.split(' ').next()?.to_string(),
                _ => return None,
            };
            let value = match e.get(ContextKind::InvalidValue)? {
                ContextValue::String(s) => s.clone(),
                _ => return None,
            };
            let valid = match e.get(ContextKind::ValidValue)? {
                ContextValue::Strings(v) if !v.is_empty() => v.clone(),
                _ => return None,
            };
            let expected = match valid.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => return None,
            };
            Some(format!("{flag} {value:?}: expected {expected}"))
        }
        _ => None,
    }
}

/// Why: with `ulimit -f` exceeded, SIGXFSZ would kill strata before it could
/// remove its temporary; ignored, write() fails with EFBIG ("file too large").
fn ignore_sigxfsz() {
    #[cfg(unix)]
    {
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        #[cfg(any(target_arch = "mips", target_arch = "mips64"))]
        const SIGXFSZ: i32 = 31;
        #[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
        const SIGXFSZ: i32 = 25;
        const SIG_IGN: usize = 1;
        // SAFETY: installing SIG_IGN for one signal touches no Rust state.
        unsafe {
            signal(SIGXFSZ, SIG_IGN);
        }
    }
}
