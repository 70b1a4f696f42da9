//! Image composition: base image + pre-built layers + config changes →
//! config blob, manifest, and the layout plan that holds them.
//!
//! Invariants: the new config and manifest are canonical JSON (sorted keys,
//! compact); base layer blobs are referenced, never recompressed, and their
//! descriptors carried over as read; no host value (path, label, user, time)
//! enters the config: `created` and history times come from the caller, and
//! history says only `strata`. Docker's semantics are followed where users
//! expect them: setting an entrypoint without a cmd clears the base's cmd, and
//! `--env K=V` replaces an inherited `K` in place.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::descriptor::{
    containerd_name, split_tag, Descriptor, Index, Manifest, Platform, ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::json::to_canonical;
use crate::layer::compress::Compression;
use crate::layer::LayerDescriptor;
use crate::layout::{BlobSource, Image, Layout, LayoutPlan};
use crate::media_type::{OCI_CONFIG, OCI_MANIFEST};

// The limit moved to `limits`; the old path stays for callers.
pub use crate::limits::MAX_LAYERS;

/// Changes to the container config (`config` object of the image config).
#[derive(Debug, Clone, Default)]
pub struct ConfigChanges {
    /// New entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// New cmd.
    pub cmd: Option<Vec<String>>,
    /// Environment variables to set, in order.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub workdir: Option<String>,
    /// User (`name`, `uid`, `uid:gid`).
    pub user: Option<String>,
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// Ports to expose (`8080/tcp`, `53/udp`; bare numbers mean tcp).
    pub exposed_ports: Vec<String>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Stop signal.
    pub stop_signal: Option<String>,
}

/// Everything `strata image` decides besides the layers.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// Config changes.
    pub changes: ConfigChanges,
    /// Target platform (default: the base's, or linux/amd64).
    pub platform: Option<Platform>,
    /// The `created` timestamp (RFC 3339).
    pub created: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// `NAME:TAG` to record in index.json (and docker-archive RepoTags).
    pub tag: Option<String>,
    /// More `NAME:TAG`s, for docker-archive's RepoTags only.
    pub extra_tags: Vec<String>,
}

/// A pre-built layer to append.
#[derive(Debug, Clone)]
pub struct NewLayer {
    /// Its descriptor.
    pub desc: LayerDescriptor,
    /// Where its bytes are.
    pub source: BlobSource,
}

/// The result of composition.
#[derive(Debug, Clone)]
pub struct Composed {
    /// index.json + blobs.
    pub plan: LayoutPlan,
    /// The manifest's descriptor (as in index.json).
    pub manifest: Descriptor,
    /// The config's digest (Docker's image ID).
    pub config_digest: Digest,
    /// All layer descriptors, bottom first.
    pub layers: Vec<Descriptor>,
    /// The `NAME:TAG` recorded, if any.
    pub repo_tag: Option<String>,
    /// Further `NAME:TAG`s (docker-archive RepoTags after the first).
    pub extra_repo_tags: Vec<String>,
}

fn str_list(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

fn apply_changes(cfg: &mut Map<String, Value>, ch: &ConfigChanges) {
    if let Some(ep) = &ch.entrypoint {
        cfg.insert("Entrypoint".into(), str_list(ep));
        if ch.cmd.is_none() {
            // Why: Docker clears an inherited Cmd when the entrypoint changes.
            cfg.remove("Cmd");
        }
    }
    if let Some(cmd) = &ch.cmd {
        cfg.insert("Cmd".into(), str_list(cmd));
    }
    if !ch.env.is_empty() {
        let mut env: Vec<String> = cfg
            .get("Env")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in &ch.env {
            let item = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()))
            {
                Some(slot) => *slot = item,
                None => env.push(item),
            }
        }
        cfg.insert("Env".into(), str_list(&env));
    }
    if let Some(w) = &ch.workdir {
        cfg.insert("WorkingDir".into(), Value::String(w.clone()));
    }
    if let Some(u) = &ch.user {
        cfg.insert("User".into(), Value::String(u.clone()));
    }
    if let Some(s) = &ch.stop_signal {
        cfg.insert("StopSignal".into(), Value::String(s.clone()));
    }
    let mut add_set = |key: &str, items: Vec<String>| {
        if items.is_empty() {
            return;
        }
        let obj = cfg.entry(key).or_insert_with(|| json!({}));
        if !obj.is_object() {
            *obj = json!({});
        }
        let m = obj.as_object_mut().expect("object");
        for i in items {
            m.insert(i, json!({}));
        }
    };
    add_set(
        "ExposedPorts",
        ch.exposed_ports
            .iter()
            .map(|p| {
                if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                }
            })
            .collect(),
    );
    add_set("Volumes", ch.volumes.clone());
    if !ch.labels.is_empty() {
        let obj = cfg.entry("Labels").or_insert_with(|| json!({}));
        if !obj.is_object() {
            *obj = json!({});
        }
        let m = obj.as_object_mut().expect("object");
        for (k, v) in &ch.labels {
            m.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// Validate option values that would otherwise produce a broken image.
fn check_changes(ch: &ConfigChanges) -> Result<()> {
    for (k, _) in &ch.env {
        if k.is_empty() || k.contains('=') {
            return Err(Error::invalid(format!(
                "environment variable {k:?}: expected KEY=VALUE with a non-empty KEY"
            )));
        }
    }
    for p in &ch.exposed_ports {
        let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        let ok_port = port.parse::<u16>().map(|n| n > 0).unwrap_or(false)
            || port
                .split_once('-')
                .is_some_and(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok());
        if !ok_port || !["tcp", "udp", "sctp"].contains(&proto) {
            return Err(Error::invalid(format!(
                "exposed port {p:?}: expected PORT[/tcp|udp|sctp], e.g. 8080/tcp"
            )));
        }
    }
    for v in &ch.volumes {
        if !v.starts_with('/') {
            return Err(Error::invalid(format!(
                "volume {v:?}: must be an absolute path in the container"
            )));
        }
    }
    Ok(())
}

/// Compose an image from an optional base and new layers.
pub fn compose(
    base: Option<(&Layout, &Image)>,
    layers: Vec<NewLayer>,
    opts: &ImageOptions,
) -> Result<Composed> {
    check_changes(&opts.changes)?;
    let mut plan = LayoutPlan::default();
    let mut config: Map<String, Value> = match base {
        Some((_, img)) => img
            .config
            .as_object()
            .cloned()
            .ok_or_else(|| Error::corrupt("base config is not a JSON object"))?,
        None => Map::new(),
    };
    let platform = resolve_platform(base.map(|b| b.1), opts.platform.as_ref())?;
    config.insert(
        "architecture".into(),
        Value::String(platform.architecture.clone()),
    );
    config.insert("os".into(), Value::String(platform.os.clone()));
    match &platform.variant {
        Some(v) => config.insert("variant".into(), Value::String(v.clone())),
        None => config.remove("variant"),
    };
    config.insert("created".into(), Value::String(opts.created.clone()));

    let mut cfg_obj = config
        .get("config")
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_default();
    apply_changes(&mut cfg_obj, &opts.changes);
    config.insert("config".into(), Value::Object(cfg_obj));

    // Layers: base first (referenced as read), then the new ones.
    let mut all_layers: Vec<Descriptor> = Vec::new();
    let mut diff_ids: Vec<Value> = Vec::new();
    if let Some((layout, img)) = base {
        let base_ids = img.diff_ids()?;
        if base_ids.len() != img.manifest.layers.len() {
            return Err(Error::corrupt(format!(
                "{}: base config lists {} diff_ids for {} layers",
                layout.path(),
                base_ids.len(),
                img.manifest.layers.len()
            )));
        }
        for (d, id) in img.manifest.layers.iter().zip(base_ids) {
            let src = layout.blob(&d.digest).ok_or_else(|| {
                Error::corrupt(format!(
                    "{}: base layer {} is missing",
                    layout.path(),
                    d.digest
                ))
            })?;
            let mut d = d.clone();
            // Docker media types name the same bytes; an OCI manifest wants OCI names.
            if let Some(c) = Compression::from_media_type(&d.media_type) {
                d.media_type = c.media_type().to_string();
            }
            plan.blobs.insert(d.digest, (d.size, src));
            all_layers.push(d);
            diff_ids.push(Value::String(id.to_string()));
        }
    }
    let mut history: Vec<Value> = config
        .get("history")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for l in &layers {
        plan.blobs
            .insert(l.desc.digest, (l.desc.size, l.source.clone()));
        all_layers.push(Descriptor::new(
            &l.desc.media_type,
            l.desc.digest,
            l.desc.size,
        ));
        diff_ids.push(Value::String(l.desc.diff_id.to_string()));
        // Why only "strata": a label, path or version here would change the digest.
        history.push(json!({"created": opts.created, "created_by": "strata"}));
    }
    if all_layers.len() > MAX_LAYERS {
        return Err(Error::invalid(format!(
            "{} layers exceeds the limit of {MAX_LAYERS}",
            all_layers.len()
        )));
    }
    config.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    if !history.is_empty() {
        config.insert("history".into(), Value::Array(history));
    }

    let (config_digest, config_size) = plan.add_bytes(to_canonical(&Value::Object(config)));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::new(OCI_CONFIG, config_digest, config_size),
        layers: all_layers.clone(),
        annotations: opts.annotations.clone(),
        extra: BTreeMap::new(),
    };
    let (md, ms) = plan.add_bytes(to_canonical(&manifest));
    let mut top = Descriptor::new(OCI_MANIFEST, md, ms);
    top.platform = Some(platform);
    let repo_tag = tag_annotations(&mut top, opts.tag.as_deref())?;
    let extra_repo_tags = opts
        .extra_tags
        .iter()
        .map(|t| split_tag(t).map(|(n, t)| format!("{n}:{t}")))
        .collect::<Result<Vec<_>>>()?;
    let mut extra_repo_tags: Vec<String> = extra_repo_tags
        .into_iter()
        .filter(|t| Some(t) != repo_tag.as_ref())
        .collect();
    // Why not sort: RepoTags keep the order given (the first is docker's main tag).
    let mut seen = std::collections::BTreeSet::new();
    extra_repo_tags.retain(|t| seen.insert(t.clone()));
    plan.index_json = to_canonical(&Index::new(vec![top.clone()]));
    Ok(Composed {
        plan,
        manifest: top,
        config_digest,
        layers: all_layers,
        repo_tag,
        extra_repo_tags,
    })
}

/// Put the ref-name annotations for `tag` on `desc`; returns `NAME:TAG`.
pub fn tag_annotations(desc: &mut Descriptor, tag: Option<&str>) -> Result<Option<String>> {
    let Some(t) = tag else { return Ok(None) };
    let (name, tag) = split_tag(t)?;
    desc.annotations
        .insert(ANNOTATION_REF_NAME.into(), tag.clone());
    desc.annotations.insert(
        ANNOTATION_CONTAINERD_NAME.into(),
        containerd_name(&name, &tag),
    );
    Ok(Some(format!("{name}:{tag}")))
}

fn resolve_platform(base: Option<&Image>, asked: Option<&Platform>) -> Result<Platform> {
    match (base, asked) {
        (Some(img), Some(p)) => {
            let have = img.platform();
            if !p.matches(&have) {
                return Err(Error::invalid(format!(
                    "platform {p} does not match the base image's platform {have}"
                )));
            }
            Ok(have)
        }
        (Some(img), None) => Ok(img.platform()),
        (None, Some(p)) => Ok(p.clone()),
        // Why a fixed default, not the host's: the host must not change the bytes.
        (None, None) => Ok(Platform::new("linux", "amd64", None)),
    }
}

/// Format seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// Howard Hinnant's days → civil date algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch of an RFC 3339 time (fractions dropped), or
/// `None` when it is malformed or before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    check_rfc3339(s).ok()?;
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, sec) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let zone = s[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = if zone == "Z" || zone == "z" {
        0
    } else {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let hh = zone.get(1..3)?.parse::<i64>().ok()?;
        let mm = zone.get(4..6)?.parse::<i64>().ok()?;
        sign * (hh * 3600 + mm * 60)
    };
    // Howard Hinnant's days-from-civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let t = days * 86400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

/// Check that `s` is an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
pub fn check_rfc3339(s: &str) -> Result<()> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let mut ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if ok {
        let mut rest = &s[19..];
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            ok &= n > 0;
            rest = &r[n..];
        }
        ok &= rest == "Z"
            || (rest.len() == 6
                && (rest.starts_with('+') || rest.starts_with('-'))
                && rest.as_bytes()[3] == b':'
                && rest[1..3].bytes().all(|c| c.is_ascii_digit())
                && rest[4..6].bytes().all(|c| c.is_ascii_digit()));
    }
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "created {s:?}: expected RFC 3339, e.g. 2024-01-02T03:04:05Z"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        check_rfc3339("2024-01-02T03:04:05Z").unwrap();
        check_rfc3339("2024-01-02T03:04:05.123+01:00").unwrap();
        assert!(check_rfc3339("2024-01-02 03:04:05").is_err());
        assert!(check_rfc3339("yesterday").is_err());
    }

    #[test]
    fn env_replaces_in_place_and_entrypoint_clears_cmd() {
        let mut cfg = Map::new();
        cfg.insert("Env".into(), json!(["PATH=/bin", "A=1"]));
        cfg.insert("Cmd".into(), json!(["sh"]));
        let ch = ConfigChanges {
            env: vec![("PATH".into(), "/usr/bin".into()), ("B".into(), "2".into())],
            entrypoint: Some(vec!["/app".into()]),
            exposed_ports: vec!["8080".into()],
            ..Default::default()
        };
        apply_changes(&mut cfg, &ch);
        assert_eq!(cfg["Env"], json!(["PATH=/usr/bin", "A=1", "B=2"]));
        assert!(cfg.get("Cmd").is_none());
        assert_eq!(cfg["ExposedPorts"], json!({"8080/tcp": {}}));
    }

    #[test]
    fn bad_changes() {
        let ch = ConfigChanges {
            exposed_ports: vec!["http".into()],
            ..Default::default()
        };
        assert!(check_changes(&ch).is_err());
        let ch = ConfigChanges {
            volumes: vec!["data".into()],
            ..Default::default()
        };
        assert!(check_changes(&ch).is_err());
    }

    #[test]
    fn rfc3339_times_normalize_to_utc_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T21:13:20-01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
