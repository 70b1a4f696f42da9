//! The command line: the only place that reads flags, environment variables
//! (`SOURCE_DATE_EPOCH`) and the machine's core count, and the only place that
//! prints. Everything else is a call into the library.
//!
//! This root holds the command table, `main` and how failures become exit
//! codes; each command group is a file under `cli/` (flags, parsing, one or
//! two library calls, printing), the flag groups they share are in
//! `cli/common.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Args, Parser, Subcommand};

use strata::archive::{write_image, Format};
use strata::descriptor::Platform;
use strata::error::{Error, IoContext, Result};
use strata::image::{check_rfc3339, compose, rfc3339, ConfigChanges, ImageOptions, NewLayer};
use strata::json;
use strata::layer::compress::Compression;
use strata::layer::{read_small_file, LayerDescriptor};
use strata::layout::{BlobSource, Layout};
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
    Image(Box<ImageArgs>),
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

#[derive(Args)]
struct ImageArgs {
    /// Output path (a directory for --format oci, a file otherwise).
    #[arg(long)]
    out: Utf8PathBuf,
    /// oci (default), oci-archive or docker-archive.
    #[arg(long, default_value = "oci")]
    format: String,
    /// Base image: an OCI layout (directory or archive).
    #[arg(long)]
    base: Option<Utf8PathBuf>,
    /// Which image of the base layout, by its tag (when it holds several).
    #[arg(long)]
    base_ref: Option<String>,
    /// A layer blob, optionally with its descriptor: FILE[:DESCRIPTOR]; repeatable, bottom first.
    #[arg(long)]
    layer: Vec<String>,
    /// Entrypoint: a JSON array, or one argument per occurrence.
    #[arg(long, allow_hyphen_values = true)]
    entrypoint: Vec<String>,
    /// Cmd: a JSON array, or one argument per occurrence.
    #[arg(long, allow_hyphen_values = true)]
    cmd: Vec<String>,
    /// Environment variable K=V; repeatable.
    #[arg(long)]
    env: Vec<String>,
    /// Working directory.
    #[arg(long)]
    workdir: Option<String>,
    /// User (name, uid or uid:gid).
    #[arg(long)]
    user: Option<String>,
    /// Config label K=V; repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// Manifest annotation K=V; repeatable.
    #[arg(long)]
    annotation: Vec<String>,
    /// Port to expose (8080/tcp); repeatable.
    #[arg(long)]
    exposed_port: Vec<String>,
    /// Volume (/data); repeatable.
    #[arg(long)]
    volume: Vec<String>,
    /// Stop signal (SIGTERM).
    #[arg(long)]
    stop_signal: Option<String>,
    /// os/arch[/variant] (default: the base's, else linux/amd64).
    #[arg(long)]
    platform: Option<String>,
    /// Creation time, RFC 3339 (default: SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z).
    #[arg(long)]
    created: Option<String>,
    /// NAME:TAG recorded in the layout (ref.name annotation, docker RepoTags);
    /// repeatable for a docker-archive (every tag in RepoTags, the first in index.json).
    #[arg(long)]
    tag: Vec<String>,
    /// Also write the manifest digest (sha256:…, no newline) to this file.
    #[arg(long)]
    digest_file: Option<Utf8PathBuf>,
    /// Print nothing on success (use --digest-file for the digest).
    #[arg(long, short)]
    quiet: bool,
    /// Where layers of a shallow base are cached when an archive needs their bytes
    /// (default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata, else ~/.cache/strata;
    /// with none of these, a temporary directory beside --out, removed afterwards).
    #[arg(long)]
    cache_dir: Option<Utf8PathBuf>,
    /// --format oci only: write each blob that comes from a file inside DIR (a --layer file, a
    /// blob of a --base layout directory; canonical paths compared) as a symlink to that file's
    /// absolute canonical path, instead of a hard link or a copy (e.g. --link-under /nix/store:
    /// blobs referring to layer store paths); other blobs as without it.
    #[arg(long, value_name = "DIR")]
    link_under: Option<Utf8PathBuf>,
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
        Command::Image(a) => image(*a),
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

fn image_options(a: &ImageArgs) -> Result<ImageOptions> {
    for t in &a.tag {
        strata::descriptor::split_tag(t)?;
    }
    if a.tag.len() > 1 && a.format != "docker-archive" {
        return Err(Error::invalid(format!(
            "--tag given {} times: only a docker-archive records several tags (an OCI layout's index.json names one)",
            a.tag.len()
        )));
    }
    let created = match &a.created {
        Some(c) => {
            check_rfc3339(c)?;
            c.clone()
        }
        None => rfc3339(source_date_epoch()?.unwrap_or(0)),
    };
    let platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    Ok(ImageOptions {
        changes: ConfigChanges {
            entrypoint: argv(&a.entrypoint, "entrypoint")?,
            cmd: argv(&a.cmd, "cmd")?,
            env: kv(&a.env, "env")?,
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            labels: kv(&a.label, "label")?.into_iter().collect(),
            exposed_ports: a.exposed_port.clone(),
            volumes: a.volume.clone(),
            stop_signal: a.stop_signal.clone(),
        },
        platform,
        created,
        annotations: kv(&a.annotation, "annotation")?
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        tag: a.tag.first().cloned(),
        extra_tags: a.tag.iter().skip(1).cloned().collect(),
    })
}

/// Parse `FILE[:DESCRIPTOR]` and produce the layer's descriptor and source.
fn new_layer(spec: &str) -> Result<NewLayer> {
    let (file, desc_path) = match spec.rsplit_once(':') {
        Some((f, d)) if !f.is_empty() && !d.is_empty() && !Utf8Path::new(spec).exists() => {
            (Utf8PathBuf::from(f), Some(Utf8PathBuf::from(d)))
        }
        _ => (Utf8PathBuf::from(spec), None),
    };
    let meta = fs::metadata(&file).io_context(|| format!("layer {file}"))?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("layer {file}: not a regular file")));
    }
    let desc = match desc_path {
        Some(dp) => {
            let bytes = read_small_file(&dp, json::MAX_JSON_BYTES)?;
            let d: LayerDescriptor = json::parse(&bytes, dp.as_str())?;
            if Compression::from_media_type(&d.media_type).is_none() {
                return Err(Error::invalid(format!(
                    "{dp}: unknown layer media type {:?}",
                    d.media_type
                )));
            }
            if d.size != meta.len() {
                return Err(Error::corrupt(format!(
                    "layer {file}: size mismatch: descriptor {dp} says {} bytes, file has {}",
                    d.size,
                    meta.len()
                )));
            }
            d
        }
        // Why read and checked: nobody vouched for this layer (see layer::check).
        None => strata::layer::check::describe_file(&file, &format!("layer {file}"))?,
    };
    Ok(NewLayer {
        desc,
        source: BlobSource::File(file),
    })
}

fn image(a: ImageArgs) -> CliResult {
    let format = usage(format_flag(&a.format))?;
    if a.link_under.is_some() && format != Format::Oci {
        return Err(Failure::Usage(Error::invalid(format!(
            "--link-under: only a layout directory (--format oci) holds links, not {}",
            a.format
        ))));
    }
    let opts = usage(image_options(&a))?;
    let mtime = usage(epoch(None, "mtime"))?;
    let base_layout = a.base.as_deref().map(Layout::open).transpose()?;
    let base_image = match &base_layout {
        Some(l) => Some(
            l.image(a.base_ref.as_deref(), opts.platform.as_ref())
                .map_err(|e| e.context(format!("base {}", l.path())))?,
        ),
        None => None,
    };
    let layers = a
        .layer
        .iter()
        .map(|s| new_layer(s))
        .collect::<Result<Vec<_>>>()?;
    let base = base_layout.as_ref().zip(base_image.as_ref());
    let mut composed = compose(base, layers, &opts)?;
    // Kept until the output is written: a temporary fetch directory, if one was needed.
    let _fetched = if format != Format::Oci {
        fetch_remote_blobs(&mut composed.plan, a.cache_dir.as_deref(), &a.out, a.quiet)?
    } else {
        None
    };
    let digest_out = side_output(a.digest_file.as_deref())?;
    if let Some(dir) = &a.link_under {
        composed.plan.write_dir_linking(&a.out, dir)?;
    } else {
        write_image(&composed, format, &a.out, mtime)?;
    }
    finish_side_output(digest_out, composed.manifest.digest.to_string().as_bytes())?;
    if !a.quiet {
        outln!("{}", composed.manifest.digest);
    }
    Ok(0)
}
