//! Image references: `[http://]HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
//!
//! Parsing follows Docker's rules where users expect them: a first component
//! with a `.` or `:` or equal to `localhost` is a registry host, anything else
//! is a Docker Hub repository (`app` → `docker.io/library/app`). Plain HTTP is
//! never chosen silently: it comes from an explicit `http://` prefix (loopback
//! hosts only) or from the caller's `insecure` flag.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's registry host (the API endpoint behind `docker.io`).
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host with optional port, e.g. `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<Digest>,
    /// Whether the reference said `http://` (only accepted for loopback hosts).
    pub plain_http: bool,
}

/// Whether `host` (with optional port) is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

fn valid_component(c: &str) -> bool {
    // Distribution spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    if c.is_empty() || c.len() > 255 {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    // [A-Za-z0-9_][A-Za-z0-9._-]{0,127}
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

impl Reference {
    /// Parse a reference; errors quote it and say what is wrong.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "reference {s:?}: {why} (expected HOST[:PORT]/REPO[:TAG][@sha256:...], e.g. 127.0.0.1:5000/app:1)"
            ))
        };
        let (plain_http, rest) = match s.strip_prefix("http://") {
            Some(r) => (true, r),
            None => (false, s.strip_prefix("https://").unwrap_or(s)),
        };
        if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("empty or holds whitespace"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(e.message()))?)),
            None => (rest, None),
        };
        let (name, tag) = {
            let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[last_slash..].rfind(':') {
                Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
                None => (rest, None),
            }
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(&format!("invalid tag {t:?}")));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, more))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), more.to_string())
            }
            _ => {
                let repo = if name.contains('/') {
                    name.to_string()
                } else {
                    format!("library/{name}")
                };
                (DOCKER_HUB.to_string(), repo)
            }
        };
        let registry = if registry == "docker.io" || registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(bad(&format!(
                "invalid repository {repository:?} (lowercase letters, digits and . _ - separators)"
            )));
        }
        if plain_http && !is_loopback(&registry) {
            return Err(bad(
                "http:// is accepted only for 127.0.0.1, ::1 and localhost; plain HTTP elsewhere must be allowed explicitly",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
            plain_http,
        })
    }

    /// The tag or digest to request a manifest by (`latest` when neither).
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `HOST/REPO` (as docker prints it).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `HOST/REPO:TAG` as a layout records a pulled image's name (Docker
    /// Hub as `docker.io`), when the reference has a tag.
    pub fn tag_name(&self) -> Option<String> {
        let host = if self.registry == DOCKER_HUB {
            "docker.io"
        } else {
            self.registry.as_str()
        };
        let t = self.tag.as_ref()?;
        Some(format!("{host}/{}:{t}", self.repository))
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        if !valid_tag(tag) {
            return Err(Error::invalid(format!("tag {tag:?}: invalid")));
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_spell_docker_hub_as_docker_io() {
        let name = |s: &str| Reference::parse(s).unwrap().tag_name();
        assert_eq!(
            name("alpine:3").as_deref(),
            Some("docker.io/library/alpine:3")
        );
        assert_eq!(
            name("127.0.0.1:5000/app:1").as_deref(),
            Some("127.0.0.1:5000/app:1")
        );
        assert_eq!(name("127.0.0.1:5000/app"), None);
    }

    #[test]
    fn parses_hosts_tags_and_digests() {
        let r = Reference::parse("127.0.0.1:5000/app:1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "app");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert!(!r.plain_http);
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = Reference::parse(&format!("localhost:5000/a/b@{d}")).unwrap();
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.digest.unwrap().to_string(), d);
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.name(), "registry-1.docker.io/library/busybox");
        assert_eq!(r.manifest_ref(), "latest");
        let r = Reference::parse("docker.io/foo/bar:x").unwrap();
        assert_eq!(r.name(), "registry-1.docker.io/foo/bar");
        let r = Reference::parse("http://localhost:5000/app").unwrap();
        assert!(r.plain_http);
        assert_eq!(r.to_string(), "localhost:5000/app");
    }

    #[test]
    fn rejects_bad_references() {
        for s in [
            "",
            "127.0.0.1:5000/App:1",
            "127.0.0.1:5000/app:-x",
            "127.0.0.1:5000/app@sha256:zz",
            "http://registry.example/app",
            "127.0.0.1:5000/a//b",
            "a b",
        ] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
    }
}
