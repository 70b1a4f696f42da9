//! `strata load`: flags, environment (`DOCKER_HOST`, the temporary
//! directory, the blob cache) and printing; the work is in `strata::engine`.
//! Kept beside `cli.rs` so the command touches the shared command table in
//! two lines only.

use std::sync::Mutex;

use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};

use super::common::CacheDirArg;
use super::registry::{cache_dir, registries, temp_dir};
use super::report::Reporter;
use super::{usage, CliResult};
use strata::descriptor::Platform;
use strata::engine::docker::Docker;
use strata::engine::podman::Podman;
use strata::engine::{summary, EngineKind, LoadImage};
use strata::error::{Error, Result};
use strata::layout::Layout;
use strata::output;

#[derive(Args)]
pub(super) struct LoadArgs {
    /// The image: an OCI layout (directory, possibly shallow), oci-archive or docker-archive.
    image: Utf8PathBuf,
    /// The engine to load into.
    #[arg(long, value_enum, default_value = "docker")]
    engine: EngineArg,
    /// Docker's API socket, unix:///PATH (default: $DOCKER_HOST, else unix:///var/run/docker.sock).
    #[arg(long)]
    host: Option<String>,
    /// The podman program (default: podman on PATH).
    #[arg(long, default_value = "podman")]
    podman: Utf8PathBuf,
    /// NAME:TAG to give the image; repeatable (default: the tag the image records).
    #[arg(long)]
    tag: Vec<String>,
    /// From an index: which platform (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Which image of the layout, by its tag (when it holds several).
    #[arg(long = "ref")]
    reference: Option<String>,
    #[command(flatten)]
    cache: CacheDirArg,
    /// Print only the image ID.
    #[arg(long, short)]
    quiet: bool,
}

/// `--engine`.
#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    /// The Docker daemon, over its API socket.
    Docker,
    /// podman, run as a program.
    Podman,
}

/// What the signal handler says when a load is interrupted.
pub(super) static INTERRUPTED: Mutex<Option<String>> = Mutex::new(None);

/// The socket of `--host`, else `$DOCKER_HOST`, else Docker's default.
fn docker_socket(flag: Option<&str>) -> Result<Utf8PathBuf> {
    let env = std::env::var("DOCKER_HOST").ok().filter(|v| !v.is_empty());
    let (host, from) = match (flag, &env) {
        (Some(h), _) => (h.to_string(), "--host"),
        (None, Some(h)) => (h.clone(), "DOCKER_HOST"),
        (None, None) => return Ok("/var/run/docker.sock".into()),
    };
    match host.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(p.into()),
        _ => Err(Error::invalid(format!(
            "{from} {host:?}: strata talks to engines over a local socket only (unix:///PATH)"
        ))),
    }
}

pub(super) fn load(a: LoadArgs) -> CliResult {
    let engine = match a.engine {
        EngineArg::Docker => EngineKind::Docker,
        EngineArg::Podman => EngineKind::Podman,
    };
    if engine == EngineKind::Podman && a.host.is_some() {
        return Err(super::Failure::Usage(Error::invalid(
            "--host is for docker; podman is run as a program (--podman)",
        )));
    }
    let socket = if engine == EngineKind::Docker {
        Some(usage(docker_socket(a.host.as_deref()))?)
    } else {
        None
    };
    let platform = usage(a.platform.as_deref().map(Platform::parse).transpose())?;
    let layout = Layout::open(&a.image)?;
    let img = layout.image(a.reference.as_deref(), platform.as_ref())?;
    let mut img = LoadImage::from_layout(&layout, &img, a.tag.clone())?;
    // Before anything is sent: layers this engine cannot take.
    img.check_engine(engine)?;

    // A shallow image's layers the engine lacks come through the cache;
    // without one, a private directory under the temporary directory.
    let tmp = temp_dir()?;
    let mut fetch_dir: Option<output::AtomicDir> = None;
    let quiet = a.quiet;
    let cache_flag = a.cache.cache_dir.clone();
    let mut prepare = |img: &mut LoadImage, skip: usize| -> Result<()> {
        if img.remote_layers(skip).is_empty() {
            return Ok(());
        }
        let dir = match cache_dir(cache_flag.as_deref()) {
            Ok(d) => d,
            Err(_) => {
                if fetch_dir.is_none() {
                    fetch_dir = Some(output::AtomicDir::create(&tmp.join("strata-load.fetch"))?);
                }
                fetch_dir.as_ref().expect("set").path().to_path_buf()
            }
        };
        let cache = strata::registry::cache::Cache::new(&dir);
        let regs = registries(None, false, 3, &[])?;
        let progress = Reporter::new(quiet, "fetching");
        img.fetch_remote_layers(skip, &cache, &regs, &progress)?;
        progress.finish();
        Ok(())
    };

    let set_interrupted = |name: &str| {
        // Why two texts: Docker loads nothing of a truncated upload; a podman
        // pull past reading the layout may still finish (untagged).
        let what = match engine {
            EngineKind::Docker => "the image was not loaded",
            EngineKind::Podman => "the load was not completed",
        };
        if let Ok(mut m) = INTERRUPTED.lock() {
            *m = Some(format!("loading into {name}: interrupted; {what}"));
        }
    };
    let report = match engine {
        EngineKind::Docker => {
            let d = Docker::new(socket.as_deref().expect("docker has a socket"));
            let held = d.held_chain_ids_for(&img)?;
            set_interrupted(&d.name());
            d.load(&mut img, &held, &mut prepare)
        }
        EngineKind::Podman => {
            let p = Podman::new(&a.podman);
            let held = p.held_chain_ids_for(&img)?;
            set_interrupted(&p.name());
            p.load(&mut img, &held, &tmp, &mut prepare)
        }
    };
    if let Ok(mut m) = INTERRUPTED.lock() {
        *m = None;
    }
    let report = report?;
    outln!("{}", report.image_id);
    if !a.quiet {
        eprintln!("{}", summary(&report));
    }
    Ok(0)
}
