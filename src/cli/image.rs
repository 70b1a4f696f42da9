//! `strata image`: flags and `--spec FILE` become one [`ImageSpec`], which
//! the library composes (`strata::image_spec::compose`); this file only
//! parses, merges and prints.
//!
//! Flags given with `--spec` (the rule `strata image --help` and the README
//! state): list flags append to the spec's lists (`--layer` on top of its
//! layers, `--env` after its `Env`, `--tag` after its tags); keyed flags
//! (`--label`, `--annotation`, `--exposed-port`, `--volume`) add keys, and a
//! key the spec sets to another value is a usage error; scalar flags
//! (`--base`, `--base-ref`, `--platform`, `--created`, `--entrypoint`,
//! `--cmd`, `--workdir`, `--user`, `--stop-signal`, `--source`, `--revision`,
//! `--image-version`) fill what the spec leaves
//! unset, and one that differs from the spec's value is a usage error.
//! `SOURCE_DATE_EPOCH` applies only when neither sets `created`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use clap::Args;

use super::{
    argv, epoch, fetch_remote_blobs, finish_side_output, format_flag, kv, side_output,
    source_date_epoch, usage, CliResult, Failure,
};
use strata::archive::{write_image, Format};
use strata::descriptor::Platform;
use strata::error::{Error, Result};
use strata::image::{check_rfc3339, rfc3339};
use strata::image_spec::{compose, BaseSpec, Empty, ImageSpec, LayerSource};

#[derive(Args)]
pub(super) struct ImageArgs {
    /// Output path (a directory for --format oci, a file otherwise).
    #[arg(long)]
    out: Utf8PathBuf,
    /// oci (default), oci-archive or docker-archive.
    #[arg(long, default_value = "oci")]
    format: String,
    /// An image spec (JSON, {"version":1,...}; see the README's "The image spec"). Flags given
    /// too: lists append, keys and scalars must not contradict the spec's.
    #[arg(long)]
    spec: Option<Utf8PathBuf>,
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
    /// Where the sources are (a URL): the org.opencontainers.image.source annotation.
    #[arg(long)]
    source: Option<String>,
    /// The sources' revision (e.g. a commit): the org.opencontainers.image.revision annotation.
    #[arg(long)]
    revision: Option<String>,
    /// The packaged software's version: the org.opencontainers.image.version annotation.
    #[arg(long)]
    image_version: Option<String>,
    /// A build status file (KEY VALUE lines, e.g. bazel-out/stable-status.txt): {KEY} in
    /// --source, --revision, --image-version, --tag, --annotation and --label values is
    /// replaced by its value; repeatable.
    #[arg(long)]
    stamp: Vec<String>,
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

/// Parse `FILE[:DESCRIPTOR]` (a FILE that exists with a colon in its name is
/// taken whole).
fn layer_source(spec: &str) -> LayerSource {
    match spec.rsplit_once(':') {
        Some((f, d)) if !f.is_empty() && !d.is_empty() && !Utf8Path::new(spec).exists() => {
            LayerSource {
                blob: Some(f.into()),
                descriptor: Some(d.into()),
                dir: None,
            }
        }
        _ => LayerSource {
            blob: Some(spec.into()),
            ..LayerSource::default()
        },
    }
}

/// Set `slot` from a flag: fill it when unset, refuse a different value.
fn scalar<T: PartialEq + std::fmt::Debug>(
    slot: &mut Option<T>,
    flag: Option<T>,
    name: &str,
    field: &str,
    spec: &Utf8Path,
) -> Result<()> {
    match (slot.as_ref(), flag) {
        (_, None) => Ok(()),
        (None, Some(v)) => {
            *slot = Some(v);
            Ok(())
        }
        (Some(have), Some(v)) if *have == v => Ok(()),
        (Some(have), Some(v)) => Err(Error::invalid(format!(
            "--{name} {v:?} conflicts with {spec}'s {field} {have:?} (a flag may add to a spec, not change it)"
        ))),
    }
}

/// Add keyed flag values to a spec map, refusing a different value for a key it has.
fn keyed<V: PartialEq + std::fmt::Debug>(
    map: &mut BTreeMap<String, V>,
    items: Vec<(String, V)>,
    name: &str,
    field: &str,
    spec: Option<&Utf8Path>,
) -> Result<()> {
    for (k, v) in items {
        if let (Some(have), Some(spec)) = (map.get(&k), spec) {
            if *have != v {
                return Err(Error::invalid(format!(
                    "--{name} {k}={v:?} conflicts with {spec}'s {field}[{k:?}] {have:?} (a flag may add to a spec, not change it)"
                )));
            }
        }
        map.insert(k, v);
    }
    Ok(())
}

/// The spec the flags describe, on top of `spec` (from `--spec`, else empty).
/// Flag values are checked here so their errors name the flag.
fn with_flags(a: &ImageArgs, mut spec: ImageSpec, file: Option<&Utf8Path>) -> Result<ImageSpec> {
    // Why not with stamp files: a tag naming a {KEY} is checked once replaced.
    if a.stamp.is_empty() && spec.stamp.is_none() {
        for t in &a.tag {
            strata::descriptor::split_tag(t)?;
        }
    }
    if !a.stamp.is_empty() {
        spec.stamp
            .get_or_insert_with(Vec::new)
            .extend(a.stamp.iter().cloned());
    }
    if let Some(c) = &a.created {
        check_rfc3339(c)?;
    }
    if let Some(p) = &a.platform {
        Platform::parse(p)?;
    }
    let entrypoint = argv(&a.entrypoint, "entrypoint")?;
    let cmd = argv(&a.cmd, "cmd")?;
    let env = kv(&a.env, "env")?;
    let labels = kv(&a.label, "label")?;
    let annotations = kv(&a.annotation, "annotation")?;
    let ports = a
        .exposed_port
        .iter()
        .map(|p| (p.clone(), Empty {}))
        .collect();
    let volumes = a.volume.iter().map(|v| (v.clone(), Empty {})).collect();
    let Some(f) = file else {
        // Flags alone: every value goes to its empty slot.
        let c = &mut spec.config;
        c.Entrypoint = entrypoint;
        c.Cmd = cmd;
        c.Env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.WorkingDir = a.workdir.clone();
        c.User = a.user.clone();
        c.StopSignal = a.stop_signal.clone();
        keyed(&mut c.Labels, labels, "label", "", None)?;
        keyed(&mut c.ExposedPorts, ports, "", "", None)?;
        keyed(&mut c.Volumes, volumes, "", "", None)?;
        keyed(&mut spec.annotations, annotations, "", "", None)?;
        spec.base = a.base.as_ref().map(|path| BaseSpec {
            path: path.to_string(),
            reference: a.base_ref.clone(),
        });
        spec.platform = a.platform.clone();
        spec.created = a.created.clone();
        spec.source = a.source.clone();
        spec.revision = a.revision.clone();
        spec.image_version = a.image_version.clone();
        spec.layers = a.layer.iter().map(|l| layer_source(l)).collect();
        spec.tags = a.tag.clone();
        return Ok(spec);
    };
    let mut base_path = spec.base.as_ref().map(|b| b.path.clone());
    let flag_base = a.base.as_ref().map(|p| p.to_string());
    scalar(&mut base_path, flag_base, "base", "base.path", f)?;
    let mut base_ref = spec.base.as_ref().and_then(|b| b.reference.clone());
    scalar(&mut base_ref, a.base_ref.clone(), "base-ref", "base.ref", f)?;
    spec.base = match (base_path, base_ref) {
        (Some(path), reference) => Some(BaseSpec { path, reference }),
        (None, Some(_)) => {
            return Err(Error::invalid(format!(
                "--base-ref: neither --base nor {f} names a base image"
            )))
        }
        (None, None) => None,
    };
    scalar(
        &mut spec.platform,
        a.platform.clone(),
        "platform",
        "platform",
        f,
    )?;
    scalar(
        &mut spec.created,
        a.created.clone(),
        "created",
        "created",
        f,
    )?;
    scalar(&mut spec.source, a.source.clone(), "source", "source", f)?;
    scalar(
        &mut spec.revision,
        a.revision.clone(),
        "revision",
        "revision",
        f,
    )?;
    let v = a.image_version.clone();
    scalar(
        &mut spec.image_version,
        v,
        "image-version",
        "image_version",
        f,
    )?;
    let c = &mut spec.config;
    scalar(
        &mut c.Entrypoint,
        entrypoint,
        "entrypoint",
        "config.Entrypoint",
        f,
    )?;
    scalar(&mut c.Cmd, cmd, "cmd", "config.Cmd", f)?;
    scalar(
        &mut c.WorkingDir,
        a.workdir.clone(),
        "workdir",
        "config.WorkingDir",
        f,
    )?;
    scalar(&mut c.User, a.user.clone(), "user", "config.User", f)?;
    scalar(
        &mut c.StopSignal,
        a.stop_signal.clone(),
        "stop-signal",
        "config.StopSignal",
        f,
    )?;
    // Why append: Env is ordered, and a later KEY replaces an earlier one in place.
    c.Env
        .extend(env.into_iter().map(|(k, v)| format!("{k}={v}")));
    keyed(&mut c.Labels, labels, "label", "config.Labels", Some(f))?;
    keyed(
        &mut c.ExposedPorts,
        ports,
        "exposed-port",
        "config.ExposedPorts",
        Some(f),
    )?;
    keyed(&mut c.Volumes, volumes, "volume", "config.Volumes", Some(f))?;
    keyed(
        &mut spec.annotations,
        annotations,
        "annotation",
        "annotations",
        Some(f),
    )?;
    spec.layers.extend(a.layer.iter().map(|l| layer_source(l)));
    spec.tags.extend(a.tag.iter().cloned());
    Ok(spec)
}

pub(super) fn image(a: ImageArgs) -> CliResult {
    let format = usage(format_flag(&a.format))?;
    if a.link_under.is_some() && format != Format::Oci {
        return Err(Failure::Usage(Error::invalid(format!(
            "--link-under: only a layout directory (--format oci) holds links, not {}",
            a.format
        ))));
    }
    let file = a.spec.as_deref();
    let from_file = match file {
        Some(f) => ImageSpec::read(f)?,
        None => ImageSpec::new(),
    };
    let mut spec = usage(with_flags(&a, from_file, file))?;
    // A spec file was checked as read: what fails now, flags brought in.
    usage(spec.check())?;
    if spec.tags.len() > 1 && format != Format::DockerArchive {
        let given = match file {
            None => format!("--tag given {} times", spec.tags.len()),
            Some(f) => format!("{} tags (from {f} and --tag)", spec.tags.len()),
        };
        return Err(Failure::Usage(Error::invalid(format!(
            "{given}: only a docker-archive records several tags (an OCI layout's index.json names one)"
        ))));
    }
    if spec.created.is_none() {
        spec.created = Some(rfc3339(usage(source_date_epoch())?.unwrap_or(0)));
    }
    let mtime = usage(epoch(None, "mtime"))?;
    // Why the spec's name on its errors: it says which file to fix.
    let mut composed = compose(&spec, file.map(|f| f.as_str()))?;
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
