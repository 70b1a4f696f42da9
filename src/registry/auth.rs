//! Registry credentials: explicit (`--username` + `--password-stdin`), or
//! from a Docker `config.json` (`auths` entries, `credHelpers` and
//! `credsStore` through `docker-credential-<name> get`).
//!
//! Invariant: a secret never reaches a message. [`Credentials`] prints as
//! `<redacted>`, and errors about a config file or helper name the file or
//! helper, never what it returned.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use camino::Utf8Path;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::registry::reference::DOCKER_HUB;

/// A username and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (`<token>` for an identity token).
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

/// The user name Docker gives an identity token (in `config.json` and from
/// credential helpers).
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// Whether the password is an identity (OAuth2 refresh) token: a token
    /// service is then asked with `grant_type=refresh_token`, as Docker does.
    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The keys a config may use for `registry` (`127.0.0.1:5000`,
/// `https://127.0.0.1:5000`, Docker Hub's `https://index.docker.io/v1/`, ...).
fn matches_host(key: &str, registry: &str) -> bool {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.split('/').next().unwrap_or(k);
    if registry == DOCKER_HUB {
        return matches!(k, "index.docker.io" | "docker.io" | "registry-1.docker.io");
    }
    k == registry
}

/// The server name a credential helper is asked about.
fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// Look up credentials for `registry` in the Docker config at `path`.
/// A missing file means no credentials; a malformed one is an error.
pub fn from_docker_config(path: &Utf8Path, registry: &str) -> Result<Option<Credentials>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {path}"), &e)),
    };
    let cfg: DockerConfig = serde_json::from_slice(&bytes).map_err(|e| {
        Error::corrupt(format!(
            "{path}: not a valid Docker config (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if let Some((_, helper)) = cfg
        .cred_helpers
        .iter()
        .find(|(k, _)| matches_host(k, registry))
    {
        return from_helper(helper, registry).map_err(|e| e.context(path));
    }
    if let Some((key, entry)) = cfg.auths.iter().find(|(k, _)| matches_host(k, registry)) {
        if let Some(t) = &entry.identity_token {
            return Ok(Some(Credentials {
                username: IDENTITY_TOKEN_USER.into(),
                password: t.clone(),
            }));
        }
        if let Some(a) = &entry.auth {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    Error::corrupt(format!(
                        "{path}: auths[{key:?}].auth is not base64 of USER:PASSWORD"
                    ))
                })?;
            let (u, p) = raw.split_once(':').ok_or_else(|| {
                Error::corrupt(format!(
                    "{path}: auths[{key:?}].auth is not base64 of USER:PASSWORD"
                ))
            })?;
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
    }
    if let Some(store) = &cfg.creds_store {
        return from_helper(store, registry).map_err(|e| e.context(path));
    }
    Ok(None)
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Ask `docker-credential-<name> get` about `registry`.
pub fn from_helper(name: &str, registry: &str) -> Result<Option<Credentials>> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::invalid(format!(
            "credential helper name {name:?} is not a plain name"
        )));
    }
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("running {prog}"), &e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(helper_server(registry).as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("running {prog}"), &e))?;
    if !out.status.success() {
        // Why not an error: helpers exit 1 with "credentials not found" for
        // registries they do not know; anonymous access may still work.
        return Ok(None);
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::corrupt(format!(
            "{prog} get: reply is not {{\"Username\":...,\"Secret\":...}}"
        ))
    })?;
    if reply.username.is_empty() && reply.secret.is_empty() {
        // Why: some helpers (docker-credential-pass 0.6) answer an unknown
        // registry with empty fields and exit 0; Docker takes that as none.
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter, if any.
        service: Option<String>,
        /// The `scope` parameter, if any.
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` → map (quoted values may hold commas).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    _ => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = camino::Utf8PathBuf::from_path_buf(dir.path().join("config.json")).unwrap();
        assert_eq!(from_docker_config(&p, "127.0.0.1:5000").unwrap(), None);
        // base64("alice:s3cret:x")
        std::fs::write(
            &p,
            r#"{"auths":{"http://127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0Ong="},
                "https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#,
        )
        .unwrap();
        let c = from_docker_config(&p, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cret:x");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = from_docker_config(&p, DOCKER_HUB).unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(from_docker_config(&p, "127.0.0.1:5001").unwrap(), None);
        std::fs::write(&p, r#"{"auths":{"127.0.0.1:5000":{"auth":"!!"}}}"#).unwrap();
        let e = from_docker_config(&p, "127.0.0.1:5000").unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        assert!(!e.to_string().contains("!!"));
    }
}
