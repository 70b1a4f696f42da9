//! The command line: the only place that reads flags, environment variables
//! (`SOURCE_DATE_EPOCH`) and the machine's core count, and the only place that
//! prints. Everything else is a call into the library.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use strata::archive::Format;
use strata::descriptor::{is_index, Descriptor, Index, Platform, OCI_INDEX};
use strata::error::{Error, IoContext, Result};
use strata::glob::Glob;
use strata::image::tag_annotations;
use strata::json::to_canonical;
use strata::layer::compress::Compression;
use strata::layer::dedupe::link_identical;
use strata::layer::dir::walk_tree;
use strata::layer::dir_options::DirOptions;
use strata::layer::entry::{normalize, NormalizeOptions};
use strata::layer::path::LayerPath;
use strata::layer::{write_layer_file, LayerOptions};
use strata::layout::{Layout, LayoutPlan};
use strata::output;
use strata::spec::LayerSpec;

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

mod audit;
use audit::{DiffArgs, NormalizeArgs};
mod image;
mod load;

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
    Layer(LayerArgs),
    /// Compose pre-built layers (onto an optional base) into an image.
    Image(Box<image::ImageArgs>),
    /// Make a multi-platform image index from single-platform images.
    Index(IndexArgs),
    /// Split a Nix closure (exportReferencesGraph files) into layer specs, by popularity.
    NixLayers(NixLayersArgs),
    /// Print the manifest (or index) digest of an image.
    Digest(DigestArgs),
    /// Check every blob, digest, size, diff_id and reference of an image.
    Verify(VerifyArgs),
    /// Summarize an image (platform, config, layers).
    Inspect(InspectArgs),
    /// Push an image or index to a registry.
    Push(Box<PushArgs>),
    /// Pull an image or index from a registry into an OCI layout.
    Pull(Box<PullArgs>),
    /// Explain why two images or layers differ (exit 0 same, 1 different, 2 error).
    Diff(DiffArgs),
    /// Rewrite a foreign layer or image into strata's canonical form.
    Normalize(NormalizeArgs),
    /// Load an image into docker or podman, sending only the layers the engine lacks.
    Load(load::LoadArgs),
}

#[derive(Args)]
struct LayerArgs {
    /// Where to write the layer blob.
    #[arg(long)]
    out: Utf8PathBuf,
    /// Also write a JSON descriptor {mediaType, digest, size, diffId} here.
    #[arg(long)]
    descriptor: Option<Utf8PathBuf>,
    /// gzip (default), zstd or none.
    #[arg(long, default_value = "gzip")]
    compression: String,
    /// Compression level (gzip 1-12, default 5; zstd 1-19, default 3).
    #[arg(long)]
    level: Option<i32>,
    /// mtime of every entry, seconds since the epoch (default: SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    mtime: Option<String>,
    /// Compression threads (default: all cores; the bytes never depend on it).
    #[arg(long)]
    threads: Option<usize>,
    /// Store identical files separately instead of as hard links to the first.
    #[arg(long)]
    no_dedupe: bool,
    /// Print nothing on success (the digest is in --descriptor).
    #[arg(long, short)]
    quiet: bool,
    /// A layer spec (JSON, {"version":1,"entries":[...]}); repeatable.
    #[arg(long)]
    spec: Vec<Utf8PathBuf>,
    /// Directories whose contents become the layer root; DIR=/prefix puts them under /prefix.
    inputs: Vec<String>,
    /// Modes of DIR inputs: default (0755/0644 by the executable bit) or keep (the tree's, setuid/setgid/sticky included; for root filesystems).
    #[arg(long, default_value = "default")]
    modes: String,
    /// Owners of DIR inputs: root (0:0), keep (the tree's numeric uid/gid; names empty) or keep-names (also names from the tree's own etc/passwd and etc/group).
    #[arg(long, default_value = "root")]
    owners: String,
    /// Keep file capabilities (the security.capability xattr, no other) of DIR inputs.
    #[arg(long)]
    xattrs: bool,
    /// Write character/block devices and FIFOs of DIR inputs instead of refusing them.
    #[arg(long)]
    devices: bool,
    /// Leave out layer paths matching GLOB, with their subtrees (`*` within a component, `**` across, `?`); repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
}

#[derive(Args)]
struct IndexArgs {
    /// Output path.
    #[arg(long)]
    out: Utf8PathBuf,
    /// oci (default) or oci-archive.
    #[arg(long, default_value = "oci")]
    format: String,
    /// NAME:TAG recorded in the layout.
    #[arg(long)]
    tag: Option<String>,
    /// Also write the index digest (sha256:…, no newline) to this file.
    #[arg(long)]
    digest_file: Option<Utf8PathBuf>,
    /// Print nothing on success (use --digest-file for the digest).
    #[arg(long, short)]
    quiet: bool,
    /// Cache for layers of shallow images an archive needs (see `strata image --cache-dir`).
    #[arg(long)]
    cache_dir: Option<Utf8PathBuf>,
    /// Single-platform images (OCI layouts or archives).
    #[arg(required = true)]
    images: Vec<Utf8PathBuf>,
}

#[derive(Args)]
struct DigestArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Which image, by tag, when the layout holds several.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Print manifest, config and layer digests as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PathArg {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
}

#[derive(Args)]
struct VerifyArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Fail when a layer is only recorded as remote (a shallow layout).
    #[arg(long)]
    require_complete: bool,
}

/// How to reach registries (shared by push and pull).
#[derive(Args)]
struct RegistryArgs {
    /// Plain HTTP to the registry (default: HTTPS, certificates verified).
    #[arg(long)]
    insecure: bool,
    /// User name for the registry (with --password-stdin); default: Docker's config.json.
    #[arg(long)]
    username: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// No per-blob report or progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Attempts after the first for failed requests (connection errors, 5xx, 429).
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Also trust the certificates in this PEM file (a private CA); repeatable.
    /// Default: $SSL_CERT_FILE, if set.
    #[arg(long)]
    ca_cert: Vec<Utf8PathBuf>,
}

#[derive(Args)]
struct PushArgs {
    /// OCI layout directory, oci-archive or docker-archive (may be shallow).
    path: Utf8PathBuf,
    /// Destination: HOST[:PORT]/REPO[:TAG] (http://HOST for a loopback registry without TLS).
    reference: String,
    /// Another tag in the same repository; repeatable.
    #[arg(long)]
    tag: Vec<String>,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    image_ref: Option<String>,
    /// Blobs larger than this go up in chunks of this size (resumable).
    #[arg(long, default_value_t = 8 << 20)]
    chunk_size: usize,
    /// Also write the pushed digest (sha256:…, no newline) to this file.
    #[arg(long)]
    digest_file: Option<Utf8PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args)]
struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG][@sha256:…] (pin by digest).
    reference: String,
    /// The OCI layout directory to write.
    #[arg(long)]
    out: Utf8PathBuf,
    /// From an index, pull only this platform (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Leave the layers in the registry: write only index, manifest and config, and where each layer lives.
    #[arg(long)]
    shallow: bool,
    /// NAME:TAG to record in index.json (default: the reference, when it has a tag).
    #[arg(long)]
    tag: Option<String>,
    /// Also write the pulled digest (sha256:…, no newline) to this file.
    #[arg(long)]
    digest_file: Option<Utf8PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args)]
struct InspectArgs {
    /// OCI layout directory, oci-archive or docker-archive.
    path: Utf8PathBuf,
    /// Which image, by tag.
    #[arg(long = "ref")]
    reference: Option<String>,
    /// For an index: which platform.
    #[arg(long)]
    platform: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
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
        Command::Layer(a) => layer(a),
        Command::Image(a) => image::image(*a),
        Command::Index(a) => index(a),
        Command::NixLayers(a) => nix_layers(a),
        Command::Digest(a) => digest(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::Push(a) => push(*a),
        Command::Pull(a) => pull(*a),
        Command::Diff(a) => return audit::diff(a),
        Command::Normalize(a) => audit::normalize(a),
        Command::Load(a) => load::load(a),
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

/// SOURCE_DATE_EPOCH, or `None` when unset; malformed values are errors.
fn source_date_epoch() -> Result<Option<u64>> {
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

fn epoch(flag: Option<&str>, name: &str) -> Result<u64> {
    match flag {
        Some(s) => s.parse::<u64>().map_err(|_| {
            Error::invalid(format!(
                "--{name} {s:?}: expected a non-negative integer (seconds since 1970)"
            ))
        }),
        None => Ok(source_date_epoch()?.unwrap_or(0)),
    }
}

fn threads(flag: Option<usize>) -> usize {
    flag.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

fn layer(a: LayerArgs) -> CliResult {
    let compression = usage(Compression::parse(&a.compression, a.level))?;
    let mtime = usage(epoch(a.mtime.as_deref(), "mtime"))?;
    if a.inputs.is_empty() && a.spec.is_empty() {
        return Err(Failure::Usage(Error::invalid(
            "no inputs: give directories and/or --spec FILE",
        )));
    }
    let threads = threads(a.threads);
    let dopts = usage(dir_options(&a))?;
    let dir_flags = a.modes != "default"
        || a.owners != "root"
        || a.xattrs
        || a.devices
        || !a.exclude.is_empty();
    if a.inputs.is_empty() && dir_flags {
        // Why refuse: silently ignoring e.g. --exclude would build another layer than asked.
        return Err(Failure::Usage(Error::invalid(
            "--modes, --owners, --xattrs, --devices and --exclude apply to DIR inputs; \
             a spec's tree entries take the same as fields (\"modes\", \"exclude\", ...)",
        )));
    }
    let mut entries = Vec::new();
    let mut nopts = NormalizeOptions::default();
    for input in &a.inputs {
        let (dir, prefix) = split_input(input).map_err(Failure::Usage)?;
        let mut walked = walk_tree(&dir, prefix.as_ref(), threads, &dopts)?;
        // Why not extend: one tree of 100,000 files is ~15 MB of entries;
        // taking the vector keeps a single copy.
        if entries.is_empty() {
            entries = walked;
        } else {
            entries.append(&mut walked);
        }
    }
    for s in &a.spec {
        let spec = LayerSpec::read(s)?;
        nopts.parents &= spec.normalize_options().parents;
        entries.extend(spec.entries(s.as_str(), threads)?);
    }
    let mut entries = normalize(entries, nopts)?;
    let opts = LayerOptions {
        compression,
        mtime,
        threads,
    };
    if !a.no_dedupe {
        link_identical(&mut entries, opts.threads)?;
    }
    let desc_out = side_output(a.descriptor.as_deref())?;
    let desc = write_layer_file(&entries, &a.out, &opts)?;
    finish_side_output(desc_out, &to_canonical(&desc))?;
    if !a.quiet {
        outln!("{}", desc.digest);
    }
    Ok(0)
}

/// `strata layer`'s attribute policy for DIR inputs (spec trees say their own).
fn dir_options(a: &LayerArgs) -> Result<DirOptions> {
    // The library's message names the value; the flag is prefixed to it.
    let flag = |e: Error, name: &str| e.context(format!("--{name}"));
    let (owners, owner_names) =
        strata::spec::parse_owners(&a.owners).map_err(|e| flag(e, "owners"))?;
    Ok(DirOptions {
        modes: strata::spec::parse_modes(&a.modes).map_err(|e| flag(e, "modes"))?,
        owners,
        owner_names,
        xattrs: a.xattrs,
        devices: a.devices,
        exclude: a
            .exclude
            .iter()
            .map(|g| Glob::new(g).map_err(|e| flag(e, "exclude")))
            .collect::<Result<_>>()?,
    })
}

/// A small extra output (--descriptor, --digest-file), its temporary created
/// before the main output is committed. Why: a bad path for it must fail the
/// run before the main output exists, so a failed run leaves no output.
fn side_output(path: Option<&Utf8Path>) -> Result<Option<(fs::File, output::AtomicFile)>> {
    path.map(output::AtomicFile::create).transpose()
}

fn finish_side_output(out: Option<(fs::File, output::AtomicFile)>, bytes: &[u8]) -> Result<()> {
    let Some((mut f, atomic)) = out else {
        return Ok(());
    };
    f.write_all(bytes)
        .io_context(|| format!("writing {}", atomic.dest()))?;
    atomic.commit(f)
}

/// `DIR` or `DIR=/prefix`.
fn split_input(s: &str) -> Result<(Utf8PathBuf, Option<LayerPath>)> {
    if let Some((dir, prefix)) = s.rsplit_once('=') {
        if prefix.starts_with('/') && !dir.is_empty() {
            let p = prefix.trim_start_matches('/');
            let lp = if p.is_empty() {
                None
            } else {
                Some(LayerPath::parse(p).map_err(|e| e.context(format!("input {s}")))?)
            };
            return Ok((Utf8PathBuf::from(dir), lp));
        }
    }
    Ok((Utf8PathBuf::from(s), None))
}

fn kv(items: &[String], flag: &str) -> Result<Vec<(String, String)>> {
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

fn argv(items: &[String], flag: &str) -> Result<Option<Vec<String>>> {
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

fn index(a: IndexArgs) -> CliResult {
    let format = usage(Format::parse(&a.format))?;
    if format == Format::DockerArchive {
        return Err(Failure::Usage(Error::invalid(
            "--format docker-archive: a docker-archive holds one image, not an index; use oci or oci-archive",
        )));
    }
    let mtime = usage(epoch(None, "mtime"))?;
    let mut plan = LayoutPlan::default();
    let mut entries: Vec<Descriptor> = Vec::new();
    for path in &a.images {
        let layout = Layout::open(path)?;
        let img = layout.image(None, None).map_err(|e| e.context(path))?;
        let platform = img.platform();
        if entries
            .iter()
            .any(|d| d.platform.as_ref() == Some(&platform))
        {
            return Err(Failure::Failed(Error::invalid(format!(
                "{path}: a second image for platform {platform}"
            ))));
        }
        let mut d = Descriptor::new(
            &img.manifest_desc.media_type,
            img.manifest_desc.digest,
            img.manifest_desc.size,
        );
        d.platform = Some(platform);
        entries.push(d);
        copy_image_blobs(&layout, &img, &mut plan)?;
    }
    let index_bytes = to_canonical(&Index::new(entries));
    let (d, n) = plan.add_bytes(index_bytes);
    let mut top = Descriptor::new(OCI_INDEX, d, n);
    tag_annotations(&mut top, a.tag.as_deref()).map_err(Failure::Usage)?;
    plan.index_json = to_canonical(&Index::new(vec![top]));
    let _fetched = if format != Format::Oci {
        fetch_remote_blobs(&mut plan, a.cache_dir.as_deref(), &a.out, a.quiet)?
    } else {
        None
    };
    let digest_out = side_output(a.digest_file.as_deref())?;
    match format {
        Format::Oci => plan.write_dir(&a.out)?,
        _ => strata::archive::write_tar(&plan, &a.out, mtime)?,
    }
    finish_side_output(digest_out, d.to_string().as_bytes())?;
    if !a.quiet {
        outln!("{d}");
    }
    Ok(0)
}

fn copy_image_blobs(
    layout: &Layout,
    img: &strata::layout::Image,
    plan: &mut LayoutPlan,
) -> Result<()> {
    let mut all = vec![img.manifest_desc.clone(), img.manifest.config.clone()];
    all.extend(img.manifest.layers.iter().cloned());
    for d in all {
        let src = layout.blob(&d.digest).ok_or_else(|| {
            Error::corrupt(format!("{}: blob {} is missing", layout.path(), d.digest))
        })?;
        plan.blobs.insert(d.digest, (d.size, src));
    }
    Ok(())
}

#[derive(Args)]
struct NixLayersArgs {
    /// At most this many layers (>= 1).
    #[arg(long)]
    max_layers: usize,
    /// Directory to write the specs to (0001.json, 0002.json, ..., bottom first); replaced as a whole.
    #[arg(long)]
    out_dir: Utf8PathBuf,
    /// A store path to leave out (its references stay); repeatable.
    #[arg(long)]
    drop: Vec<String>,
    /// A references graph whose paths another layer holds (left out); repeatable.
    #[arg(long)]
    exclude_graph: Vec<Utf8PathBuf>,
    /// size (default): the largest store paths alone, the rest grouped by the large paths using
    /// them; popularity: the most depended-on paths one each, the rest in the last layer.
    #[arg(long, default_value = "size")]
    strategy: String,
    /// A lock a previous build wrote (--lock-out): keep its assignment (paths matched by name); new paths go on top.
    #[arg(long)]
    previous: Option<Utf8PathBuf>,
    /// Write this split's lock here (canonical JSON), for the next build's --previous.
    #[arg(long)]
    lock_out: Option<Utf8PathBuf>,
    /// PATTERN[,PATTERN...]: the store paths matched (a store path, or a name glob such as
    /// 'python3*') share one layer of their own, below the split; repeatable.
    #[arg(long)]
    group: Vec<String>,
    /// References graphs (exportReferencesGraph files) whose paths are layered.
    #[arg(required = true)]
    graphs: Vec<Utf8PathBuf>,
}

fn nix_layers(a: NixLayersArgs) -> CliResult {
    if a.max_layers < 1 {
        return Err(Failure::Usage(Error::invalid(
            "--max-layers 0: must be at least 1",
        )));
    }
    if a.out_dir.file_name().is_none() {
        return Err(Failure::Usage(Error::invalid(format!(
            "--out-dir {}: needs a name of its own (not ., .. or /): it is replaced as a whole",
            a.out_dir
        ))));
    }
    let strategy = match a.strategy.as_str() {
        "size" => strata::nix::Strategy::Size,
        "popularity" => strata::nix::Strategy::Popularity,
        s => {
            return Err(Failure::Usage(Error::invalid(format!(
                "--strategy {s}: must be size or popularity"
            ))))
        }
    };
    let groups = a
        .group
        .iter()
        .map(|g| strata::nix::Group::parse(g, "--group"))
        .collect::<strata::Result<Vec<_>>>()
        .map_err(Failure::Usage)?;
    let mut closure = strata::nix::Closure::new();
    for g in &a.graphs {
        closure.read_graph(g, false)?;
    }
    for g in &a.exclude_graph {
        closure.read_graph(g, true)?;
    }
    let previous = match &a.previous {
        Some(p) => {
            let bytes = strata::layer::read_small_file(p, strata::json::MAX_JSON_BYTES)?;
            let lock = strata::nix::Lock::parse(&bytes, p.as_str())?;
            lock.check(p.as_str(), a.max_layers, strategy.name())?;
            Some(lock)
        }
        None => None,
    };
    let split = strata::nix::split_closure(
        &closure,
        &a.drop,
        a.max_layers,
        strategy,
        previous.as_ref(),
        a.lock_out.is_some(),
        &groups,
    )?;
    let specs = strata::nix::write_specs(&split.layers, &a.out_dir)?;
    if let (Some(out), Some(lock)) = (&a.lock_out, &split.lock) {
        strata::output::write_file(out, &strata::json::to_canonical(&lock.to_json()))?;
    }
    for spec in specs {
        outln!("{spec}");
    }
    Ok(0)
}

fn digest(a: DigestArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    let top = layout.top(a.reference.as_deref())?;
    if !a.json {
        outln!("{}", top.digest);
        return Ok(0);
    }
    let v = if is_index(&top.media_type) {
        let idx = layout.read_index(&top)?;
        let ms: Vec<Value> = idx
            .manifests
            .iter()
            .map(|m| json!({"digest": m.digest, "platform": m.platform}))
            .collect();
        json!({"index": top.digest, "manifests": ms})
    } else {
        let img = layout.image_at(&top)?;
        let ids = img.diff_ids()?;
        json!({
            "manifest": top.digest,
            "config": img.manifest.config.digest,
            "layers": img.manifest.layers.iter().map(|l| l.digest).collect::<Vec<_>>(),
            "diffIds": ids,
        })
    };
    print_json(&v);
    Ok(0)
}

fn print_json(v: &Value) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(&to_canonical(v));
    let _ = out.write_all(b"\n");
}

fn verify(a: VerifyArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    let mut report = strata::verify::verify(&layout);
    if a.require_complete && !report.remote.is_empty() {
        let n = report.remote.len();
        report.problems.push(format!(
            "{}: {n} layer(s) only in a registry (shallow): {}",
            a.path,
            report.remote.join(", ")
        ));
    }
    if report.ok() {
        if !report.remote.is_empty() {
            eprintln!(
                "strata: {}: shallow: {} layer(s) live in a registry, not checked here: {}",
                a.path,
                report.remote.len(),
                one_line(&report.remote.join(", "))
            );
        }
        let top: Vec<String> = layout
            .index
            .manifests
            .iter()
            .map(|d| d.digest.to_string())
            .collect();
        outln!(
            "ok: {} ({} blobs, {} layers verified)",
            top.join(", "),
            report.blobs_checked,
            report.layers_checked
        );
        Ok(0)
    } else {
        // One line, as every error: the problem itself, or all of them.
        let line = match report.problems.as_slice() {
            [one] => one.clone(),
            all => format!("{}: {} problems: {}", a.path, all.len(), all.join("; ")),
        };
        eprintln!("strata: {}", one_line(&line));
        Ok(1)
    }
}

fn human(n: u64) -> String {
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

fn inspect(a: InspectArgs) -> CliResult {
    let layout = Layout::open(&a.path)?;
    let platform = usage(a.platform.as_deref().map(Platform::parse).transpose())?;
    let top = layout.top(a.reference.as_deref())?;
    if is_index(&top.media_type) && platform.is_none() {
        let idx = layout.read_index(&top)?;
        if a.json {
            print_json(
                &json!({"digest": top.digest, "mediaType": top.media_type, "manifests": idx.manifests}),
            );
        } else {
            outln!("index     {}", top.digest);
            for m in &idx.manifests {
                let p = m
                    .platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into());
                outln!("  {p:<16} {}  {}", m.digest, human(m.size));
            }
        }
        return Ok(0);
    }
    let img = layout.image(a.reference.as_deref(), platform.as_ref())?;
    let ids = img.diff_ids()?;
    let cfg = img.config.get("config").cloned().unwrap_or(json!({}));
    let layers: Vec<Value> = img
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"digest": l.digest, "size": l.size, "mediaType": l.media_type, "diffId": ids.get(i)}))
        .collect();
    if a.json {
        print_json(&json!({
            "digest": img.manifest_desc.digest,
            "platform": img.platform().to_string(),
            "created": img.config.get("created"),
            "configDigest": img.manifest.config.digest,
            "config": cfg,
            "layers": layers,
            "annotations": img.manifest.annotations,
        }));
        return Ok(0);
    }
    outln!("image     {}", img.manifest_desc.digest);
    outln!("platform  {}", img.platform());
    if let Some(c) = img.config.get("created").and_then(|v| v.as_str()) {
        outln!("created   {c}");
    }
    outln!("config    {}", img.manifest.config.digest);
    if let Some(obj) = cfg.as_object() {
        for (k, v) in obj {
            outln!("  {k:<13} {}", String::from_utf8_lossy(&to_canonical(v)));
        }
    }
    let total: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
    outln!("layers    {} ({})", img.manifest.layers.len(), human(total));
    for l in &img.manifest.layers {
        let kind = l.media_type.rsplit('.').next().unwrap_or(&l.media_type);
        outln!("  {}  {:>10}  {kind}", l.digest, human(l.size));
    }
    Ok(0)
}

// ---- registries: push, pull, and the cache shallow layouts fill ----

/// Docker's client config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<Utf8PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Utf8PathBuf::from_path_buf(d.into())
            .ok()
            .map(|d| d.join("config.json"));
    }
    let home = std::env::var_os("HOME")?;
    Utf8PathBuf::from_path_buf(home.into())
        .ok()
        .map(|h| h.join(".docker/config.json"))
}

fn cache_dir(flag: Option<&Utf8Path>) -> Result<Utf8PathBuf> {
    if let Some(d) = flag {
        return Ok(d.to_path_buf());
    }
    let var = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Utf8PathBuf::from)
    };
    if let Some(d) = var("STRATA_CACHE_DIR") {
        return Ok(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Ok(d.join("strata"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".cache/strata"));
    }
    Err(Error::invalid(
        "no cache directory: set --cache-dir, STRATA_CACHE_DIR, XDG_CACHE_HOME or HOME",
    ))
}

/// Registries whose credentials come from Docker's config, except `explicit`
/// (from --username/--password-stdin) for the registry it names.
fn registries(
    explicit: Option<(String, strata::registry::auth::Credentials)>,
    insecure: bool,
    retries: u32,
    ca_certs: &[Utf8PathBuf],
) -> Result<strata::registry::Registries> {
    use strata::registry::client::{parse_pem_certs, ClientOptions};
    let mut files = ca_certs.to_vec();
    if files.is_empty() {
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            files.push(
                Utf8PathBuf::from_path_buf(f.into())
                    .map_err(|_| Error::invalid("SSL_CERT_FILE: not a UTF-8 path"))?,
            );
        }
    }
    let mut extra_roots = Vec::new();
    for f in &files {
        extra_roots.extend(parse_pem_certs(f)?);
    }
    let config = docker_config_path();
    Ok(strata::registry::Registries::new(
        move |registry, plain_http| {
            let credentials = match &explicit {
                Some((r, c)) if r == registry => Some(c.clone()),
                _ => match &config {
                    Some(p) => strata::registry::auth::from_docker_config(p, registry)?,
                    None => None,
                },
            };
            Ok(ClientOptions {
                plain_http: plain_http || insecure,
                credentials,
                retries,
                extra_roots: extra_roots.clone(),
                ..ClientOptions::default()
            })
        },
    ))
}

fn explicit_credentials(
    a: &RegistryArgs,
    registry: &str,
) -> Result<Option<(String, strata::registry::auth::Credentials)>> {
    match (&a.username, a.password_stdin) {
        (None, false) => Ok(None),
        (None, true) => Err(Error::invalid("--password-stdin needs --username")),
        (Some(_), false) => Err(Error::invalid(
            "--username needs --password-stdin (passwords are never taken as arguments)",
        )),
        (Some(u), true) => {
            let mut pw = String::new();
            io::stdin()
                .read_to_string(&mut pw)
                .io_context(|| "reading the password from standard input")?;
            let pw = pw.trim_end_matches(['\n', '\r']).to_string();
            if pw.is_empty() {
                return Err(Error::invalid("--password-stdin: standard input is empty"));
            }
            Ok(Some((
                registry.to_string(),
                strata::registry::auth::Credentials {
                    username: u.clone(),
                    password: pw,
                },
            )))
        }
    }
}

impl RegistryArgs {
    /// Clients for every registry; `--username` applies to `registry` (the reference's).
    fn registries(&self, registry: &str) -> Result<strata::registry::Registries> {
        let creds = explicit_credentials(self, registry)?;
        registries(creds, self.insecure, self.retries, &self.ca_cert)
    }
}

/// Fill a plan's remote blobs from the cache (fetching what it lacks).
/// Without any cache directory (a build sandbox with no HOME: Bazel's
/// actions), the blobs go to a private temporary directory beside `out`,
/// removed when the returned guard drops (after the output is written).
fn fetch_remote_blobs(
    plan: &mut LayoutPlan,
    flag: Option<&Utf8Path>,
    out: &Utf8Path,
    quiet: bool,
) -> Result<Option<output::AtomicDir>> {
    if plan.first_remote().is_none() {
        return Ok(None);
    }
    let (dir, guard) = match cache_dir(flag) {
        Ok(d) => (d, None),
        Err(_) => {
            // Why an AtomicDir never committed: removed on drop and on SIGINT/SIGTERM.
            let name = format!("{}.fetch", out.file_name().unwrap_or("out"));
            let t = output::AtomicDir::create(&out.with_file_name(name))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let cache = strata::registry::cache::Cache::new(&dir);
    let regs = registries(None, false, 3, &[])?;
    let progress = Reporter::new(quiet, "fetching");
    cache.materialize(plan, &regs, &progress)?;
    progress.finish();
    Ok(guard)
}

/// Transfer reports on stderr: one line per blob (what happened, bytes
/// moved) and, on a terminal, a live status line. Quiet: nothing.
struct Reporter {
    quiet: bool,
    tty: bool,
    verb: &'static str,
    state: std::sync::Mutex<ReporterState>,
}

struct ReporterState {
    started: std::time::Instant,
    last_draw: Option<std::time::Instant>,
    moved: u64,
    total: u64,
    counts: BTreeMap<&'static str, usize>,
}

impl Reporter {
    fn new(quiet: bool, verb: &'static str) -> Reporter {
        use std::io::IsTerminal;
        Reporter {
            quiet,
            tty: io::stderr().is_terminal(),
            verb,
            state: std::sync::Mutex::new(ReporterState {
                started: std::time::Instant::now(),
                last_draw: None,
                moved: 0,
                total: 0,
                counts: BTreeMap::new(),
            }),
        }
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        let mut e = io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K");
        }
        let _ = writeln!(e, "{}", one_line(s));
    }

    /// The summary: `3 present, 1 uploaded; 12.0 MiB sent in 0.4 s`.
    fn summary(&self) -> String {
        let st = self.state.lock().expect("lock");
        let parts: Vec<String> = st.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "{}; {} moved in {:.1} s",
            if parts.is_empty() {
                "no blobs".to_string()
            } else {
                parts.join(", ")
            },
            human(st.moved),
            st.started.elapsed().as_secs_f64()
        )
    }

    fn finish(&self) {
        if !self.quiet && self.tty {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}

fn short(d: &strata::Digest) -> String {
    d.to_string()[..19].to_string()
}

impl strata::registry::Progress for Reporter {
    fn start(&self, _d: &strata::Digest, size: u64) {
        self.state.lock().expect("lock").total += size;
    }
    fn advance(&self, _d: &strata::Digest, bytes: u64) {
        if self.quiet || !self.tty {
            return;
        }
        let mut st = self.state.lock().expect("lock");
        st.moved += bytes;
        let now = std::time::Instant::now();
        if st
            .last_draw
            .is_some_and(|t| now.duration_since(t).as_millis() < 100)
        {
            return;
        }
        st.last_draw = Some(now);
        let secs = st.started.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            io::stderr().lock(),
            "\r\x1b[K{} {} of {} ({}/s)",
            self.verb,
            human(st.moved),
            human(st.total),
            human((st.moved as f64 / secs) as u64)
        );
    }
    fn done(&self, d: &strata::Digest, size: u64, outcome: strata::registry::Outcome, moved: u64) {
        {
            let mut st = self.state.lock().expect("lock");
            *st.counts.entry(outcome.as_str()).or_default() += 1;
            if !self.tty {
                st.moved += moved;
            }
        }
        self.line(&format!(
            "{} {:>10}  {}{}",
            short(d),
            human(size),
            outcome.as_str(),
            if moved > 0 {
                format!(" ({} moved)", human(moved))
            } else {
                String::new()
            }
        ));
    }
    fn retry(&self, d: &strata::Digest, why: &str) {
        self.line(&format!("{} retrying: {why}", short(d)));
    }
}

fn push(a: PushArgs) -> CliResult {
    let dest = usage(strata::registry::Reference::parse(&a.reference))?;
    for t in &a.tag {
        usage(dest.with_tag(t))?;
    }
    let regs = usage(a.registry.registries(&dest.registry))?;
    let layout = Layout::open(&a.path)?;
    let top = layout.top(a.image_ref.as_deref())?;
    let progress = Reporter::new(a.registry.quiet, "pushing");
    let opts = strata::registry::push::PushOptions {
        chunk_size: a.chunk_size,
        jobs: a.registry.jobs,
    };
    let digest_out = side_output(a.digest_file.as_deref())?;
    let report =
        strata::registry::push::push(&layout, &top, &dest, &a.tag, &regs, &opts, &progress)?;
    progress.finish();
    progress.line(&format!("pushed {}: {}", dest.name(), progress.summary()));
    finish_side_output(digest_out, report.digest.to_string().as_bytes())?;
    let mut name = dest.clone();
    name.digest = None;
    outln!("{name}@{}", report.digest);
    Ok(0)
}

fn pull(a: PullArgs) -> CliResult {
    let src = usage(strata::registry::Reference::parse(&a.reference))?;
    let regs = usage(a.registry.registries(&src.registry))?;
    let platform = usage(a.platform.as_deref().map(Platform::parse).transpose())?;
    let tag = match &a.tag {
        Some(t) => {
            usage(strata::descriptor::split_tag(t))?;
            Some(t.clone())
        }
        None => src.tag.as_ref().map(|t| {
            let host = if src.registry == strata::registry::reference::DOCKER_HUB {
                "docker.io"
            } else {
                src.registry.as_str()
            };
            format!("{host}/{}:{t}", src.repository)
        }),
    };
    let progress = Reporter::new(a.registry.quiet, "pulling");
    let opts = strata::registry::pull::PullOptions {
        platform,
        shallow: a.shallow,
        tag,
        jobs: a.registry.jobs,
    };
    let digest_out = side_output(a.digest_file.as_deref())?;
    let report = strata::registry::pull::pull(&regs, &src, &opts, &a.out, &progress)?;
    progress.finish();
    progress.line(&format!("pulled {}: {}", src.name(), progress.summary()));
    finish_side_output(digest_out, report.digest.to_string().as_bytes())?;
    let mut name = src.clone();
    name.digest = None;
    name.tag = None;
    outln!("{name}@{}", report.digest);
    Ok(0)
}
