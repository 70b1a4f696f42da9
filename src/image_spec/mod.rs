//! The image spec: the versioned JSON contract between front ends (Bazel,
//! Nix, people) and `strata image --spec FILE`. `strata image`'s flags build
//! the same [`ImageSpec`], so both reach [`compose`] by one path.
//!
//! ```json
//! {"version": 1,
//!  "base": {"path": "base.tar", "ref": "example.com/base:1"},
//!  "platform": "linux/arm64/v8",
//!  "layers": [
//!    {"blob": "bazel-out/k8/bin/app.tgz", "descriptor": "bazel-out/k8/bin/app.json"},
//!    {"blob": "extra.tar.gz"},
//!    {"dir": "closure"}
//!  ],
//!  "config": {
//!    "Entrypoint": ["/app"], "Cmd": ["--serve"],
//!    "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
//!    "WorkingDir": "/srv", "User": "65534:65534",
//!    "Labels": {"team": "infra"},
//!    "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data": {}},
//!    "StopSignal": "SIGTERM"
//!  },
//!  "annotations": {"org.example.note": "hi"},
//!  "source": "https://example.com/app.git",
//!  "revision": "0123abcd",
//!  "image_version": "1.2.3",
//!  "created": "2024-01-02T03:04:05Z",
//!  "tags": ["example.com/app:1"]}
//! ```
//!
//! With stamping (a build that wants its revision in the image):
//!
//! ```json
//! {"version": 1,
//!  "layers": [{"blob": "app.tgz"}],
//!  "stamp": ["bazel-out/stable-status.txt"],
//!  "revision": "{STABLE_GIT_COMMIT}",
//!  "tags": ["example.com/app:{STABLE_VERSION}"]}
//! ```
//!
//! Fields (unknown fields, at any level, and unknown versions are errors, so a
//! typo never silently changes an image; every field but `version` is
//! optional):
//! - `version` (required): `1`.
//! - `base`: the image to build on, an OCI layout (directory or archive):
//!   `path` (required) and `ref`, the tag choosing one image of a layout that
//!   holds several.
//! - `platform`: `"os/arch"` or `"os/arch/variant"`. Default: the base's, else
//!   `linux/amd64` (never the host's). With a base it must match the base's.
//! - `layers`: the new layers, bottom first, above the base's. Each entry is
//!   one of:
//!   - `{"blob": FILE, "descriptor": FILE}`: a layer blob and, optionally, its
//!     JSON descriptor `{mediaType, digest, size, diffId}` as `strata layer
//!     --descriptor` writes it (trusted: the blob is not read again, only its
//!     size checked). Without `descriptor` the blob is read, checked and
//!     hashed.
//!   - `{"dir": DIR}`: every layer in the directory `DIR` whose blob is named
//!     `N.layer` (`N` decimal digits, e.g. `0001.layer`), in increasing order
//!     of `N`, each with its descriptor `N.desc` when there is one; other
//!     files are ignored, and an empty directory adds no layer. This is how
//!     layers made at build time join a spec written before them (Nix's
//!     closure layers: `strata nix-layers` writes `closure/0001.json`, ...,
//!     `strata layer` turns each into `closure/0001.layer` + `.desc`).
//! - `config`: the container config, with the OCI image config's own field
//!   names (so Nix's `config` attrset passes through `builtins.toJSON`
//!   unchanged); each replaces or extends the base's:
//!   - `Entrypoint`, `Cmd`: argv lists. Setting `Entrypoint` without `Cmd`
//!     clears the base's `Cmd` (as Docker does).
//!   - `Env`: `["KEY=VALUE", ...]`, in order; one with the name of an
//!     inherited (or earlier) variable replaces it in place.
//!   - `WorkingDir`, `User` (name, uid or uid:gid), `StopSignal`: strings.
//!   - `Labels`: `{"key": "value"}`, added to the base's.
//!   - `ExposedPorts`: `{"8080/tcp": {}}` (a bare `"8080"` means tcp),
//!     `Volumes`: `{"/data": {}}`: added to the base's; the values must be
//!     `{}`.
//! - `annotations`: manifest annotations, `{"key": "value"}`.
//! - `source`, `revision`, `image_version`: strings recorded as the manifest
//!   annotations `org.opencontainers.image.source` (the URL of the sources),
//!   `.revision` (e.g. the commit) and `.version` (the packaged software's
//!   version; `image_version` because `version` is the spec's own). Setting
//!   one of those keys in `annotations` too, to another value, is an error.
//! - `stamp`: build status files (`KEY VALUE` lines, as Bazel's
//!   `bazel-out/stable-status.txt` and `volatile-status.txt` are written; at
//!   most 1 MiB each, UTF-8, a key given twice is an error). When `stamp` is
//!   present (even empty), `{KEY}` (letters, digits, `_`) in `source`,
//!   `revision`, `image_version`, `tags`, `annotations` and `config.Labels`
//!   values is replaced by KEY's value; a KEY the files do not hold is an
//!   error naming the field. Without `stamp` those strings are taken as
//!   written, braces and all: stamping is asked for, never implied. The image
//!   then depends on the status files' values, as asked; nothing else of them.
//! - `created`: RFC 3339. Default: `1970-01-01T00:00:00Z` (the CLI's default
//!   is `SOURCE_DATE_EPOCH` when set).
//! - `tags`: `["NAME:TAG", ...]`: the first is recorded in the layout's
//!   index.json (`org.opencontainers.image.ref.name`) and all of them in a
//!   docker-archive's `RepoTags`.
//!
//! An image that adds layers to a base also gets, unless `annotations` sets
//! them, the manifest annotations `org.opencontainers.image.base.digest` (the base's
//! manifest digest) and `org.opencontainers.image.base.name` (the base's name
//! when its index.json records one: `io.containerd.image.name`, as strata,
//! docker and containerd write, else an `org.opencontainers.image.ref.name`
//! that is a whole `NAME:TAG`, as a `docker save` archive's `RepoTags` give,
//! in that same full form, `docker.io/library/NAME:TAG` for a bare `NAME:TAG`;
//! omitted otherwise, e.g. for a ref name that is a tag alone). One that adds
//! no layer is the base re-described (a re-packaging, as `oci_load` does, or
//! a config change): it keeps the base manifest's annotations (`annotations`
//! win) and names no base, so re-packaging an image changes no digest.
//!
//! Paths (`base.path`, `blob`, `descriptor`, `dir`) are host paths; relative
//! ones resolve against the working directory of the process (Bazel actions
//! run in the execroot, Nix builders in their build directory), never against
//! the spec file's directory. Where the output goes, and in which format, is
//! not part of the spec: those are `strata image`'s flags. Flags given with
//! `--spec` add to it (lists append) and must not contradict it (a scalar or
//! key set to another value is a usage error): see the README's "The image
//! spec".

use std::collections::BTreeMap;

use camino::Utf8Path;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::descriptor::{
    containerd_name, split_tag, Descriptor, Platform, ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{check_rfc3339, rfc3339, Composed, ConfigChanges, ImageOptions, NewLayer};
use crate::json;
use crate::layer::read_small_file;
use crate::layout::Layout;

mod layer_files;
mod stamp;
use layer_files::load_dir;
pub use layer_files::load_layer;

/// Manifest annotation: where the image's sources are (`source`).
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// Manifest annotation: the sources' revision (`revision`).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// Manifest annotation: the packaged software's version (`image_version`).
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
/// Manifest annotation: the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// Manifest annotation: the base image's reference.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// The only image spec version this strata reads.
pub const IMAGE_SPEC_VERSION: u64 = 1;

/// A parsed image spec (see the module docs for every field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Always [`IMAGE_SPEC_VERSION`].
    pub version: u64,
    /// The image to build on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseSpec>,
    /// `os/arch[/variant]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// New layers, bottom first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSource>,
    /// The container config.
    #[serde(default)]
    pub config: ConfigSpec,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `org.opencontainers.image.source`: where the sources are (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`: the sources' revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `org.opencontainers.image.version`: the packaged software's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
    /// Build status files whose `{KEY}`s the descriptive strings may name
    /// (`None`: no substitution at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Vec<String>>,
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `NAME:TAG`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The base image of a spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSpec {
    /// An OCI layout directory or archive.
    pub path: String,
    /// The tag choosing one image of the layout.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// One `layers` entry: a blob (with an optional descriptor) or a directory
/// of numbered blobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSource {
    /// A layer blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// Its descriptor (with `blob` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<String>,
    /// A directory of `N.layer` blobs with `N.desc` descriptors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// An empty JSON object, the value of `ExposedPorts` and `Volumes` keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// The container config, with the OCI image config's field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct ConfigSpec {
    /// Entrypoint argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub Entrypoint: Option<Vec<String>>,
    /// Cmd argv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub Cmd: Option<Vec<String>>,
    /// `KEY=VALUE`s, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub Env: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub WorkingDir: Option<String>,
    /// User: name, uid or uid:gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub User: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub Labels: BTreeMap<String, String>,
    /// Ports to expose.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ExposedPorts: BTreeMap<String, Empty>,
    /// Volumes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub Volumes: BTreeMap<String, Empty>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub StopSignal: Option<String>,
}

const TOP_FIELDS: &[&str] = &[
    "version",
    "base",
    "platform",
    "layers",
    "config",
    "annotations",
    "source",
    "revision",
    "image_version",
    "stamp",
    "created",
    "tags",
];

const CONFIG_FIELDS: &[&str] = &[
    "Entrypoint",
    "Cmd",
    "Env",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
];

/// Deserialize one field's value, naming the field in errors.
fn field<T: DeserializeOwned>(v: &Value, name: &str) -> Result<T> {
    T::deserialize(v).map_err(|e| Error::invalid(format!("{name}: {e}")))
}

/// Refuse keys of `obj` not in `known`, naming the first (in sorted order).
fn known_keys(obj: &Map<String, Value>, known: &[&str], within: &str) -> Result<()> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(format!(
            "{within}unknown field {k:?} (expected one of {})",
            known.join(", ")
        ))),
    }
}

impl ImageSpec {
    /// An empty version-1 spec (a base-less image with no layers, until
    /// fields are set).
    pub fn new() -> ImageSpec {
        ImageSpec {
            version: IMAGE_SPEC_VERSION,
            ..ImageSpec::default()
        }
    }

    /// Parse and check spec bytes; `what` names the file in errors, which
    /// also name the field (`spec.json: config.Env[1]: ...`).
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageSpec> {
        let v: Value = json::parse(bytes, what)?;
        let spec = Self::from_value(&v).map_err(|e| e.context(what))?;
        spec.check().map_err(|e| e.context(what))?;
        Ok(spec)
    }

    /// Read, parse and check a spec file (at most [`json::MAX_JSON_BYTES`]).
    pub fn read(path: &Utf8Path) -> Result<ImageSpec> {
        let bytes = read_small_file(path, json::MAX_JSON_BYTES)?;
        ImageSpec::parse(&bytes, path.as_str())
    }

    /// Field by field, so an error names the field serde's does not.
    fn from_value(v: &Value) -> Result<ImageSpec> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("expected a JSON object {\"version\": 1, ...}"))?;
        match obj.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(IMAGE_SPEC_VERSION) => {}
            Some(other) => {
                return Err(Error::unsupported(format!(
                    "version: unsupported image spec version {other} (this strata reads version {IMAGE_SPEC_VERSION})"
                )))
            }
            None => {
                return Err(Error::invalid(format!(
                    "missing \"version\" (expected {IMAGE_SPEC_VERSION})"
                )))
            }
        }
        known_keys(obj, TOP_FIELDS, "")?;
        let mut spec = ImageSpec::new();
        for (k, v) in obj {
            match k.as_str() {
                "base" => spec.base = field(v, "base")?,
                "platform" => spec.platform = field(v, "platform")?,
                "layers" => {
                    let items: Vec<Value> = field(v, "layers")?;
                    spec.layers = items
                        .iter()
                        .enumerate()
                        .map(|(i, l)| field(l, &format!("layers[{i}]")))
                        .collect::<Result<_>>()?;
                }
                "config" => {
                    let c: Map<String, Value> = field(v, "config")?;
                    known_keys(&c, CONFIG_FIELDS, "config: ")?;
                    for (ck, cv) in &c {
                        let one = Map::from_iter([(ck.clone(), cv.clone())]);
                        let part: ConfigSpec = field(&Value::Object(one), &format!("config.{ck}"))?;
                        spec.config.merge_from(part);
                    }
                }
                "annotations" => spec.annotations = field(v, "annotations")?,
                "created" => spec.created = field(v, "created")?,
                "source" => spec.source = field(v, "source")?,
                "revision" => spec.revision = field(v, "revision")?,
                "image_version" => spec.image_version = field(v, "image_version")?,
                "stamp" => spec.stamp = field(v, "stamp")?,
                "tags" => spec.tags = field(v, "tags")?,
                _ => {} // "version", checked above
            }
        }
        Ok(spec)
    }

    /// Check the values (what serde's types cannot): errors name the field.
    pub fn check(&self) -> Result<()> {
        if self.version != IMAGE_SPEC_VERSION {
            return Err(Error::unsupported(format!(
                "version: unsupported image spec version {} (this strata reads version {IMAGE_SPEC_VERSION})",
                self.version
            )));
        }
        if let Some(p) = &self.platform {
            Platform::parse(p).map_err(|e| e.context("platform"))?;
        }
        if let Some(c) = &self.created {
            check_rfc3339(c).map_err(|e| e.context("created"))?;
        }
        // Why not with stamp files: `{KEY}` is no tag yet (checked once replaced).
        if self.stamp.is_none() {
            for (i, t) in self.tags.iter().enumerate() {
                split_tag(t).map_err(|e| e.context(format!("tags[{i}]")))?;
            }
        }
        for (i, l) in self.layers.iter().enumerate() {
            let ok = matches!(
                (&l.blob, &l.descriptor, &l.dir),
                (Some(_), _, None) | (None, None, Some(_))
            );
            if !ok {
                return Err(Error::invalid(format!(
                    "layers[{i}]: expected {{\"blob\": FILE}} (with an optional \"descriptor\") or {{\"dir\": DIR}}"
                )));
            }
        }
        for (i, e) in self.config.Env.iter().enumerate() {
            env_pair(e).map_err(|e| e.context(format!("config.Env[{i}]")))?;
        }
        for (name, key, value) in self.described() {
            if let Some(other) = self.annotations.get(key).filter(|o| *o != value) {
                return Err(Error::invalid(format!(
                    "{name} {value:?}: annotations[{key:?}] says {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// This spec with `{KEY}`s replaced from its stamp files (itself when it
    /// has none), checked again.
    pub fn stamped(&self) -> Result<ImageSpec> {
        let Some(files) = &self.stamp else {
            self.check()?;
            return Ok(self.clone());
        };
        let status = stamp::read_status(files)?;
        let sub = |s: &str, field: &str| -> Result<String> {
            stamp::substitute(s, &status).map_err(|k| {
                Error::invalid(format!(
                    "{field}: {{{k}}}: no {k} in the stamp files ({})",
                    files.join(", ")
                ))
            })
        };
        let opt = |v: &Option<String>, field: &str| v.as_deref().map(|s| sub(s, field)).transpose();
        let map = |m: &BTreeMap<String, String>, field: &str| -> Result<BTreeMap<String, String>> {
            m.iter()
                .map(|(k, v)| Ok((k.clone(), sub(v, &format!("{field}[{k:?}]"))?)))
                .collect()
        };
        let mut out = self.clone();
        out.source = opt(&self.source, "source")?;
        out.revision = opt(&self.revision, "revision")?;
        out.image_version = opt(&self.image_version, "image_version")?;
        out.annotations = map(&self.annotations, "annotations")?;
        out.config.Labels = map(&self.config.Labels, "config.Labels")?;
        out.tags = (self.tags.iter().enumerate())
            .map(|(i, t)| {
                let t = sub(t, &format!("tags[{i}]"))?;
                split_tag(&t).map_err(|e| e.context(format!("tags[{i}]")))?;
                Ok(t)
            })
            .collect::<Result<_>>()?;
        out.check()?;
        Ok(out)
    }

    /// The `source`, `revision` and `image_version` set: (field, annotation, value).
    fn described(&self) -> Vec<(&'static str, &'static str, &str)> {
        [
            ("source", ANNOTATION_SOURCE, &self.source),
            ("revision", ANNOTATION_REVISION, &self.revision),
            ("image_version", ANNOTATION_VERSION, &self.image_version),
        ]
        .into_iter()
        .filter_map(|(n, k, v)| v.as_deref().map(|v| (n, k, v)))
        .collect()
    }

    /// The composition options this spec asks for (no file is read).
    pub fn options(&self) -> Result<ImageOptions> {
        let c = &self.config;
        Ok(ImageOptions {
            changes: ConfigChanges {
                entrypoint: c.Entrypoint.clone(),
                cmd: c.Cmd.clone(),
                env: c.Env.iter().map(|e| env_pair(e)).collect::<Result<_>>()?,
                workdir: c.WorkingDir.clone(),
                user: c.User.clone(),
                labels: c.Labels.clone(),
                exposed_ports: c.ExposedPorts.keys().cloned().collect(),
                volumes: c.Volumes.keys().cloned().collect(),
                stop_signal: c.StopSignal.clone(),
            },
            platform: self.platform.as_deref().map(Platform::parse).transpose()?,
            // Why a fixed default: the library never reads the clock.
            created: self.created.clone().unwrap_or_else(|| rfc3339(0)),
            annotations: {
                let mut a = self.annotations.clone();
                for (_, key, value) in self.described() {
                    a.insert(key.to_string(), value.to_string());
                }
                a
            },
            tag: self.tags.first().cloned(),
            extra_tags: self.tags.iter().skip(1).cloned().collect(),
        })
    }

    /// The new layers, bottom first: descriptors read (or blobs described)
    /// and `dir` entries listed. With `fields`, errors name the entry
    /// (`layers[2]: ...`), as for a spec a person wrote.
    pub fn load_layers(&self, fields: bool) -> Result<Vec<NewLayer>> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let at = |e: Error| {
                if fields {
                    e.context(format!("layers[{i}]"))
                } else {
                    e
                }
            };
            match (&l.blob, &l.dir) {
                (Some(blob), _) => out.push(
                    load_layer(blob.as_ref(), l.descriptor.as_deref().map(Utf8Path::new))
                        .map_err(at)?,
                ),
                (None, Some(dir)) => out.extend(load_dir(dir.as_ref()).map_err(at)?),
                (None, None) => {
                    return Err(at(Error::invalid("neither \"blob\" nor \"dir\"")));
                }
            }
        }
        Ok(out)
    }
}

impl ConfigSpec {
    /// Take every field `other` sets.
    fn merge_from(&mut self, other: ConfigSpec) {
        let ConfigSpec {
            Entrypoint,
            Cmd,
            Env,
            WorkingDir,
            User,
            Labels,
            ExposedPorts,
            Volumes,
            StopSignal,
        } = other;
        self.Entrypoint = Entrypoint.or(self.Entrypoint.take());
        self.Cmd = Cmd.or(self.Cmd.take());
        self.Env.extend(Env);
        self.WorkingDir = WorkingDir.or(self.WorkingDir.take());
        self.User = User.or(self.User.take());
        self.Labels.extend(Labels);
        self.ExposedPorts.extend(ExposedPorts);
        self.Volumes.extend(Volumes);
        self.StopSignal = StopSignal.or(self.StopSignal.take());
    }
}

/// `KEY=VALUE` with a non-empty KEY.
fn env_pair(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| Error::invalid(format!("{s:?}: expected KEY=VALUE with a non-empty KEY")))
}

/// Compose the image a spec describes: open the base, load the layers, and
/// call [`crate::image::compose`]. `origin` names the spec (its file) in
/// errors, which then also name the field (`spec.json: layers[2]: ...`);
/// `None` for a spec a program built (the CLI's flags): errors name the files.
pub fn compose(spec: &ImageSpec, origin: Option<&str>) -> Result<Composed> {
    let named = |e: Error| match origin {
        Some(o) => e.context(o),
        None => e,
    };
    let field = |e: Error, f: &str| {
        if origin.is_some() {
            named(e.context(f))
        } else {
            e
        }
    };
    let spec = &spec.stamped().map_err(named)?;
    let mut opts = spec.options().map_err(named)?;
    let base_layout = match &spec.base {
        Some(b) => Some(Layout::open(Utf8Path::new(&b.path)).map_err(|e| field(e, "base"))?),
        None => None,
    };
    let base_image = match (&base_layout, &spec.base) {
        (Some(l), Some(b)) => Some(
            l.image(b.reference.as_deref(), opts.platform.as_ref())
                .map_err(|e| named(e.context(format!("base {}", l.path()))))?,
        ),
        _ => None,
    };
    let layers = spec.load_layers(origin.is_some()).map_err(named)?;
    if let (Some(l), Some(img), Some(b)) = (&base_layout, &base_image, &spec.base) {
        if layers.is_empty() {
            // Why: no layer added, it is the base re-described (oci_load's
            // re-packaging, a config change): the base's annotations, no base.
            for (k, v) in &img.manifest.annotations {
                opts.annotations
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        } else {
            let top = l.top(b.reference.as_deref()).map_err(named)?;
            base_annotations(&mut opts.annotations, &top, &img.manifest_desc.digest);
        }
    }
    let base = base_layout.as_ref().zip(base_image.as_ref());
    crate::image::compose(base, layers, &opts).map_err(named)
}

/// `base.digest` and, when the base's index.json entry names it, `base.name`;
/// annotations the spec sets itself stay.
fn base_annotations(annotations: &mut BTreeMap<String, String>, top: &Descriptor, digest: &Digest) {
    // Why the containerd form (docker.io/library/demo:1): a docker save
    // archive says "demo:1" where podman's says the whole name; one image.
    let name = top
        .annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .cloned()
        .or_else(|| {
            let r = top.annotations.get(ANNOTATION_REF_NAME)?;
            let (name, tag) = split_tag(r).ok().filter(|_| r.contains(':'))?;
            Some(containerd_name(&name, &tag))
        });
    let mut set = |k: &str, v: String| {
        annotations.entry(k.to_string()).or_insert(v);
    };
    set(ANNOTATION_BASE_DIGEST, digest.to_string());
    if let Some(n) = name {
        set(ANNOTATION_BASE_NAME, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        ImageSpec::parse(s.as_bytes(), "s.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_example_parses() {
        let doc = r#"{"version": 1,
          "base": {"path": "base.tar", "ref": "example.com/base:1"},
          "platform": "linux/arm64/v8",
          "layers": [{"blob": "a.tgz", "descriptor": "a.json"}, {"blob": "b.tgz"}, {"dir": "closure"}],
          "config": {"Entrypoint": ["/app"], "Cmd": ["--serve"], "Env": ["A=1", "B=2"],
            "WorkingDir": "/srv", "User": "1:1", "Labels": {"team": "infra"},
            "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGTERM"},
          "annotations": {"k": "v"}, "created": "2024-01-02T03:04:05Z", "tags": ["a/b:1"]}"#;
        let s = ImageSpec::parse(doc.as_bytes(), "s.json").unwrap();
        assert_eq!(
            s.base.as_ref().unwrap().reference.as_deref(),
            Some("example.com/base:1")
        );
        assert_eq!(s.layers.len(), 3);
        assert_eq!(s.config.Env, ["A=1", "B=2"]);
        let o = s.options().unwrap();
        assert_eq!(o.changes.exposed_ports, ["8080/tcp"]);
        assert_eq!(o.tag.as_deref(), Some("a/b:1"));
        // Serialize and parse again: the same spec (the struct is the contract).
        let again = ImageSpec::parse(&json::to_canonical(&s), "again").unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(r#"{"version": 1, "colour": 1}"#).contains("s.json: unknown field \"colour\""));
        assert!(
            err(r#"{"version": 2}"#).contains("s.json: version: unsupported image spec version 2")
        );
        assert!(err(r#"{"layers": []}"#).contains("missing \"version\""));
        assert!(err(r#"{"version": 1, "config": {"Env": "A=1"}}"#)
            .starts_with("s.json: config.Env: invalid type"));
        assert!(err(r#"{"version": 1, "config": {"Healthcheck": {}}}"#)
            .contains("s.json: config: unknown field \"Healthcheck\""));
        assert!(
            err(r#"{"version": 1, "config": {"Env": ["A"]}}"#).contains("s.json: config.Env[0]")
        );
        assert!(
            err(r#"{"version": 1, "config": {"Volumes": {"/d": {"x": 1}}}}"#)
                .starts_with("s.json: config.Volumes: unknown field `x`")
        );
        assert!(
            err(r#"{"version": 1, "layers": [{"blob": "a"}, {"blobs": "b"}]}"#)
                .starts_with("s.json: layers[1]: unknown field `blobs`")
        );
        assert!(err(r#"{"version": 1, "layers": [{"descriptor": "a"}]}"#)
            .starts_with("s.json: layers[0]: expected"));
        assert!(err(r#"{"version": 1, "created": "now"}"#).starts_with("s.json: created: "));
        assert!(err(r#"{"version": 1, "platform": "linux"}"#).starts_with("s.json: platform: "));
        assert!(
            err(r#"{"version": 1, "tags": ["a:b", 3]}"#).starts_with("s.json: tags: invalid type")
        );
        assert!(err(r#"{"version": 1, "base": {"ref": "x"}}"#)
            .starts_with("s.json: base: missing field `path`"));
        assert!(err("[1]").contains("expected a JSON object"));
    }
}
