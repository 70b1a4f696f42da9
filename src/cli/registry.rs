//! `strata push` and `strata pull`, and how the CLI reaches registries:
//! credentials (flags, Docker's config.json), certificates
//! (`--ca-cert`, `SSL_CERT_FILE`) and the blob cache directory (flag,
//! `STRATA_CACHE_DIR`, XDG, HOME). The transfers are
//! [`strata::registry::push`] and [`strata::registry::pull`].

use std::io::{self, Read};

use camino::{Utf8Path, Utf8PathBuf};
use clap::Args;

use super::common::{finish_side_output, hint, side_output, DigestFileArg};
use super::report::Reporter;
use super::{usage, CliResult};
use strata::descriptor::Platform;
use strata::error::{Error, IoContext, Result};
use strata::layout::{Layout, LayoutPlan};
use strata::output;

/// How to reach registries (shared by push and pull).
#[derive(Args)]
pub(super) struct RegistryArgs {
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
pub(super) struct PushArgs {
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
    #[command(flatten)]
    digest_file: DigestFileArg,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args)]
pub(super) struct PullArgs {
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
    #[command(flatten)]
    digest_file: DigestFileArg,
    /// Also pull the image's attachments (referrers API, else the referrers
    /// tag schema, and cosign's .sig tag).
    #[arg(long)]
    referrers: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

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

pub(super) fn cache_dir(flag: Option<&Utf8Path>) -> Result<Utf8PathBuf> {
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
pub(super) fn registries(
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

/// The blob cache that a shallow image's layers are fetched into: the cache
/// directory (`--cache-dir`, else the environment's, see [`cache_dir`]), else
/// a private directory at `fallback` (a build sandbox with no HOME: Bazel's
/// actions), removed when the returned guard drops.
fn fetch_cache(
    flag: Option<&Utf8Path>,
    fallback: &Utf8Path,
) -> Result<(strata::registry::cache::Cache, Option<output::AtomicDir>)> {
    Ok(match cache_dir(flag) {
        Ok(d) => (strata::registry::cache::Cache::new(&d), None),
        Err(_) => {
            // Why an AtomicDir never committed: removed on drop and on SIGINT/SIGTERM.
            let t = output::AtomicDir::create(fallback)?;
            (strata::registry::cache::Cache::new(t.path()), Some(t))
        }
    })
}

/// The temporary directory, which strata's paths need in UTF-8.
pub(super) fn temp_dir() -> Result<Utf8PathBuf> {
    let t = std::env::temp_dir();
    Utf8PathBuf::from_path_buf(t)
        .map_err(|p| Error::invalid(format!("temporary directory {}: not UTF-8", p.display())))
}

/// Fill a plan's remote blobs from the cache (fetching what it lacks).
/// Without any cache directory (a build sandbox with no HOME: Bazel's
/// actions), the blobs go to a private temporary directory beside `out`,
/// removed when the returned guard drops (after the output is written).
pub(super) fn fetch_remote_blobs(
    plan: &mut LayoutPlan,
    flag: Option<&Utf8Path>,
    out: &Utf8Path,
    quiet: bool,
) -> Result<Option<output::AtomicDir>> {
    if plan.first_remote().is_none() {
        return Ok(None);
    }
    let name = format!("{}.fetch", out.file_name().unwrap_or("out"));
    let (cache, guard) = fetch_cache(flag, &out.with_file_name(name))?;
    let regs = registries(None, false, 3, &[])?;
    let progress = Reporter::new(quiet, "fetching");
    cache.materialize(plan, &regs, &progress)?;
    progress.finish();
    Ok(guard)
}

/// Fetch the remote layers of `image` (a shallow layout) into the cache, so
/// what reads layers (an SBOM) reads them from there. Without any cache
/// directory (a build sandbox with no HOME: Bazel's actions), a private
/// temporary directory beside `out` (else in the temporary directory),
/// removed when the returned guard drops (after the layers were read).
pub(super) fn fetch_image_layers(
    layout: &mut Layout,
    image: &strata::layout::Image,
    flag: Option<&Utf8Path>,
    out: Option<&Utf8Path>,
) -> Result<Option<output::AtomicDir>> {
    let any_remote = image.manifest.layers.iter().any(|d| {
        matches!(
            layout.blob(&d.digest),
            Some(strata::BlobSource::Remote { .. })
        )
    });
    if !any_remote {
        return Ok(None);
    }
    let at = match out {
        Some(o) => o.with_file_name(format!("{}.fetch", o.file_name().unwrap_or("out"))),
        None => temp_dir()?.join("strata-sbom.fetch"),
    };
    let (cache, guard) = fetch_cache(flag, &at)?;
    let regs = registries(None, false, 3, &[])?;
    // Quiet: the SBOM commands print documents or digests, not transfers.
    let progress = Reporter::new(true, "fetching");
    cache.fetch_layers(layout, image, &regs, &progress)?;
    progress.finish();
    Ok(guard)
}

pub(super) fn push(a: PushArgs) -> CliResult {
    let dest = usage(reference(&a.reference))?;
    for t in &a.tag {
        usage(dest.with_tag(t).map_err(|e| e.context("--tag")))?;
    }
    let regs = usage(a.registry.registries(&dest.registry))?;
    let layout = Layout::open(&a.path)?;
    let top = layout.top(a.image_ref.as_deref())?;
    let progress = Reporter::new(a.registry.quiet, "pushing");
    let opts = strata::registry::push::PushOptions {
        chunk_size: a.chunk_size,
        jobs: a.registry.jobs,
    };
    let digest_out = side_output(a.digest_file.digest_file.as_deref())?;
    let report =
        strata::registry::push::push(&layout, &top, &dest, &a.tag, &regs, &opts, &progress)
            .map_err(credentials_hint)?;
    let attached = strata::registry::referrers::push_attachments(
        &layout,
        &report.digest,
        &dest,
        &regs,
        &opts,
        &progress,
    )?;
    progress.finish();
    progress.line(&format!("pushed {}: {}", dest.name(), progress.summary()));
    if !attached.manifests.is_empty() {
        let via = if attached.api {
            "referrers API"
        } else {
            "referrers tag schema"
        };
        progress.line(&format!("attached {} ({via})", attached.manifests.len()));
    }
    finish_side_output(digest_out, report.digest.to_string().as_bytes())?;
    let mut name = dest.clone();
    name.digest = None;
    outln!("{name}@{}", report.digest);
    Ok(0)
}

pub(super) fn pull(a: PullArgs) -> CliResult {
    let src = usage(reference(&a.reference))?;
    let regs = usage(a.registry.registries(&src.registry))?;
    let platform = usage(a.platform.as_deref().map(Platform::parse).transpose())?;
    let tag = match &a.tag {
        Some(t) => {
            usage(strata::descriptor::split_tag(t))?;
            Some(t.clone())
        }
        None => src.tag_name(),
    };
    let progress = Reporter::new(a.registry.quiet, "pulling");
    let opts = strata::registry::pull::PullOptions {
        platform,
        shallow: a.shallow,
        tag,
        jobs: a.registry.jobs,
    };
    let digest_out = side_output(a.digest_file.digest_file.as_deref())?;
    let report = strata::registry::pull::pull(&regs, &src, &opts, &a.out, &progress)
        .map_err(credentials_hint)?;
    if a.referrers {
        let got =
            strata::registry::referrers::pull_attachments(&regs, &src, &report.digest, &a.out)?;
        progress.line(&format!("attachments: {}", got.manifests.len()));
    }
    progress.finish();
    progress.line(&format!("pulled {}: {}", src.name(), progress.summary()));
    finish_side_output(digest_out, report.digest.to_string().as_bytes())?;
    let mut name = src.clone();
    name.digest = None;
    name.tag = None;
    outln!("{name}@{}", report.digest);
    Ok(0)
}

/// A reference argument; `--insecure` is what allows plain HTTP.
fn reference(s: &str) -> Result<strata::registry::Reference> {
    strata::registry::Reference::parse(s).map_err(|e| hint(e, "plain HTTP elsewhere", "--insecure"))
}

/// Where credentials come from besides Docker's config.
fn credentials_hint(e: Error) -> Error {
    hint(
        e,
        "requires credentials",
        "--username with --password-stdin",
    )
}
