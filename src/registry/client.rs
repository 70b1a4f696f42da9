//! A blocking HTTP client for one registry (OCI distribution API), with the
//! authentication dance and retries every command shares.
//!
//! - Auth: a request goes out with what worked last; a `401` with a `Basic`
//!   challenge retries with the credentials, a `Bearer` challenge fetches a
//!   token from the realm (with the credentials, if any, as Basic auth) for
//!   the challenge's scope plus the scopes the caller needs, then retries.
//!   An identity token (Docker's `identitytoken`) is an OAuth2 refresh token:
//!   it is `POST`ed to the realm (`grant_type=refresh_token`), as Docker
//!   does; a realm without OAuth2 (404/405) is asked with `GET` as above.
//! - Retries with exponential backoff on connection failures, 5xx and 429
//!   (honouring `Retry-After` up to a cap), for requests whose body can be
//!   sent again; streaming uploads resume at a higher level (`push`).
//! - Invariant: no credential, token or upload URL (its query holds upload
//!   state) appears in an error; errors name the registry and repository.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{describe_io, Error, ErrorKind, Result};
use crate::registry::auth::{parse_challenge, Challenge, Credentials};

pub use crate::media_type::MANIFEST_ACCEPT;
// Moved to modules of their own; the old paths stay for callers.
use super::status::status_text;
pub use super::status::{registry_message, status_error};
pub use super::tls::parse_pem_certs;
use super::tls::tls_config;

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP instead of HTTPS (`--insecure`, or `http://` on loopback).
    pub plain_http: bool,
    /// Credentials, if any.
    pub credentials: Option<Credentials>,
    /// Attempts after the first for retryable failures.
    pub retries: u32,
    /// First backoff delay; doubles per attempt, capped at 8 s.
    pub backoff: Duration,
    /// Certificates (DER) trusted besides Mozilla's roots, e.g. a private CA.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            plain_http: false,
            credentials: None,
            retries: 5,
            backoff: Duration::from_millis(250),
            extra_roots: Vec::new(),
        }
    }
}

/// A request body that can be sent again on retry.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// No body.
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
}

#[derive(Default)]
struct AuthState {
    /// Basic was asked for: send it up front from now on.
    basic: bool,
    /// Bearer tokens by the scopes they were issued for.
    tokens: BTreeMap<String, String>,
    /// The last Bearer challenge (realm, service).
    bearer: Option<(String, Option<String>)>,
}

/// A client for one registry.
pub struct Client {
    agent: ureq::Agent,
    registry: String,
    base: String,
    opts: ClientOptions,
    auth: Mutex<AuthState>,
}

/// The part of a transport error a user can act on.
fn describe_transport(t: &ureq::Transport) -> String {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return describe_io(io);
        }
        src = s.source();
    }
    match t.kind() {
        ureq::ErrorKind::Dns => "cannot resolve the host name".into(),
        ureq::ErrorKind::ConnectionFailed => "cannot connect".into(),
        ureq::ErrorKind::TooManyRedirects => "too many redirects".into(),
        ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => "invalid URL".into(),
        _ => t
            .message()
            .map(|m| m.to_lowercase())
            .unwrap_or_else(|| "connection failed".into()),
    }
}

impl Client {
    /// A client for `registry` (`HOST[:PORT]`).
    pub fn new(registry: &str, opts: ClientOptions) -> Client {
        let mut builder = ureq::AgentBuilder::new();
        if !opts.extra_roots.is_empty() {
            builder = builder.tls_config(tls_config(&opts.extra_roots));
        }
        let agent = builder
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .redirects(5)
            .build();
        let scheme = if opts.plain_http { "http" } else { "https" };
        Client {
            agent,
            registry: registry.to_string(),
            base: format!("{scheme}://{registry}"),
            opts,
            auth: Mutex::new(AuthState::default()),
        }
    }

    /// The registry host this client talks to.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Whether it speaks plain HTTP.
    pub fn plain_http(&self) -> bool {
        self.opts.plain_http
    }

    /// `base + path` (path starts with `/v2/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether `url` is on this registry (scheme, host and port).
    fn same_origin(&self, url: &str) -> bool {
        url.strip_prefix(&self.base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
    }

    /// Resolve a `Location` header (absolute, or relative to the registry).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    fn auth_header(&self, scopes: &[String]) -> Option<String> {
        let st = self.auth.lock().expect("auth lock");
        if st.bearer.is_some() {
            let key = scopes.join(" ");
            if let Some(t) = st.tokens.get(&key) {
                return Some(t.clone());
            }
            // A token for other scopes may still cover these (e.g. push implies pull).
            if let Some(t) = st.tokens.values().next_back() {
                return Some(t.clone());
            }
        }
        if st.basic {
            return self
                .opts
                .credentials
                .as_ref()
                .map(Credentials::basic_header);
        }
        None
    }

    /// Handle a 401: learn the challenge and get what it asks for. Returns
    /// false when there is nothing new to try.
    fn authenticate(
        &self,
        resp: &ureq::Response,
        sent: Option<&str>,
        scopes: &[String],
        what: &str,
    ) -> Result<bool> {
        // Another thread may have authenticated since this request went out:
        // then retry with what it got. Each decision below is taken under the
        // lock, so a thread that learns the challenge between this request's
        // send and this check is seen (seeing it only before the lock made a
        // parallel push report "refused the credentials" now and then).
        let Some(ch) = resp.header("www-authenticate").and_then(parse_challenge) else {
            return Ok(self.auth_header(scopes).as_deref() != sent);
        };
        match ch {
            Challenge::Basic => {
                let mut st = self.auth.lock().expect("auth lock");
                let Some(creds) = &self.opts.credentials else {
                    return Ok(false);
                };
                if st.basic {
                    // Refused if this request carried them; else retry with them.
                    return Ok(sent != Some(creds.basic_header().as_str()));
                }
                st.basic = true;
                Ok(true)
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut all: Vec<String> = scopes.to_vec();
                if let Some(s) = scope {
                    for s in s.split(' ') {
                        if !all.iter().any(|x| x == s) {
                            all.push(s.to_string());
                        }
                    }
                }
                let key = scopes.join(" ");
                if let Some(t) = self.auth.lock().expect("auth lock").tokens.get(&key) {
                    // Refused if this request carried it; else one just came.
                    return Ok(sent != Some(t.as_str()));
                }
                let token = self.fetch_token(&realm, service.as_deref(), &all, what)?;
                let mut st = self.auth.lock().expect("auth lock");
                st.bearer = Some((realm, service));
                st.tokens.insert(key, format!("Bearer {token}"));
                Ok(true)
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        what: &str,
    ) -> Result<String> {
        let refresh = self
            .opts
            .credentials
            .as_ref()
            .filter(|c| c.is_identity_token());
        if let Some(c) = refresh {
            // The distribution token spec's OAuth2 form; scopes space-separated.
            let scope = scopes.join(" ");
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", c.password.as_str()),
                ("client_id", "strata"),
                ("scope", scope.as_str()),
            ];
            if let Some(s) = service {
                form.push(("service", s));
            }
            match self.agent.post(realm).send_form(&form) {
                // No OAuth2 at this realm: the GET below, as the spec says.
                Err(ureq::Error::Status(404 | 405, _)) => {}
                res => return self.token_reply(res, realm, what),
            }
        }
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        for s in scopes {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.opts.credentials {
            req = req.set("Authorization", &c.basic_header());
        }
        self.token_reply(req.call(), realm, what)
    }

    /// The token in a token service's reply (`token` or `access_token`).
    fn token_reply(
        &self,
        res: std::result::Result<ureq::Response, ureq::Error>,
        realm: &str,
        what: &str,
    ) -> Result<String> {
        let host = realm
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or(realm);
        match res {
            Ok(resp) => {
                #[derive(Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let mut body = Vec::new();
                resp.into_reader()
                    .take(1 << 20)
                    .read_to_end(&mut body)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Remote,
                            format!("{what}: token from {host}: {}", describe_io(&e)),
                        )
                    })?;
                let t: Token = serde_json::from_slice(&body).map_err(|_| {
                    Error::new(
                        ErrorKind::Remote,
                        format!("{what}: token service {host} replied with no token"),
                    )
                })?;
                t.token.or(t.access_token).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Remote,
                        format!("{what}: token service {host} replied with no token"),
                    )
                })
            }
            Err(ureq::Error::Status(code, _)) if code == 401 || code == 403 => Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "{what}: token service {host} refused {}: {}",
                    match &self.opts.credentials {
                        Some(c) if c.is_identity_token() => "the identity token",
                        Some(_) => "the credentials",
                        None => "anonymous access",
                    },
                    status_text(code)
                ),
            )),
            Err(ureq::Error::Status(_, resp)) => {
                Err(status_error(&format!("{what}: token service {host}"), resp))
            }
            Err(ureq::Error::Transport(t)) => Err(Error::new(
                ErrorKind::Remote,
                format!("{what}: token service {host}: {}", describe_transport(&t)),
            )),
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        let exp = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(5))
            .min(Duration::from_secs(8));
        match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(s) => Duration::from_secs(s.min(30)).max(exp),
            None => exp,
        }
    }

    /// Send a request with auth and retries. Returns the response for every
    /// status below 500 except 401 (after authenticating) and 429; `what`
    /// names the operation for errors, e.g. `pushing 127.0.0.1:5000/app`.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scopes: &[String],
        what: &str,
    ) -> Result<ureq::Response> {
        self.send_with(method, url, headers, body, scopes, what, self.opts.retries)
    }

    /// [`Client::send`] without retries (a caller that resumes itself).
    pub fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scopes: &[String],
        what: &str,
    ) -> Result<ureq::Response> {
        self.send_with(method, url, headers, body, scopes, what, 0)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_with(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scopes: &[String],
        what: &str,
        retries: u32,
    ) -> Result<ureq::Response> {
        let mut attempt = 0;
        let mut auth_tries = 0;
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            // Why: a Location may point elsewhere (a CDN); credentials go to the registry only.
            let sent = if self.same_origin(url) {
                self.auth_header(scopes)
            } else {
                None
            };
            if let Some(a) = &sent {
                req = req.set("Authorization", a);
            }
            let res = match body {
                Body::Empty if method == "PUT" || method == "POST" || method == "PATCH" => {
                    req.set("Content-Length", "0").send_bytes(&[])
                }
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
            };
            let retry_after;
            match res {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, resp)) => {
                    auth_tries += 1;
                    if auth_tries <= 2 && self.authenticate(&resp, sent.as_deref(), scopes, what)? {
                        continue;
                    }
                    return Err(self.unauthorized(what, resp));
                }
                Err(ureq::Error::Status(403, resp)) => {
                    return Err(Error::new(
                        ErrorKind::Auth,
                        format!(
                            "{what}: 403 Forbidden: {} has no permission for this{}",
                            if self.opts.credentials.is_some() {
                                "that user"
                            } else {
                                "anonymous access"
                            },
                            registry_message(resp)
                        ),
                    ))
                }
                Err(ureq::Error::Status(code, resp)) if code == 429 || code >= 500 => {
                    if attempt >= retries {
                        let what = if attempt > 0 {
                            format!("{what} (after {} attempts)", attempt + 1)
                        } else {
                            what.to_string()
                        };
                        return Err(status_error(&what, resp));
                    }
                    retry_after = resp.header("retry-after").map(str::to_string);
                }
                Err(ureq::Error::Status(_, resp)) => return Ok(resp),
                Err(ureq::Error::Transport(t)) => {
                    if attempt >= retries {
                        return Err(Error::new(
                            ErrorKind::Remote,
                            format!(
                                "{what}: {}: {}{}",
                                self.registry,
                                describe_transport(&t),
                                if attempt > 0 {
                                    format!(" (after {} attempts)", attempt + 1)
                                } else {
                                    String::new()
                                }
                            ),
                        ));
                    }
                    retry_after = None;
                }
            }
            std::thread::sleep(self.backoff(attempt, retry_after.as_deref()));
            attempt += 1;
        }
    }

    fn unauthorized(&self, what: &str, resp: ureq::Response) -> Error {
        let hint = if self.opts.credentials.is_some() {
            "the registry refused the credentials"
        } else {
            "the registry requires credentials (docker login, or a user name and password)"
        };
        Error::new(
            ErrorKind::Auth,
            format!("{what}: 401 Unauthorized: {hint}{}", registry_message(resp)),
        )
    }

    /// Describe a transport error from a streaming request.
    pub fn transport_error(&self, what: &str, e: ureq::Error) -> Error {
        match e {
            ureq::Error::Status(_, resp) => status_error(what, resp),
            ureq::Error::Transport(t) => Error::new(
                ErrorKind::Remote,
                format!("{what}: {}: {}", self.registry, describe_transport(&t)),
            ),
        }
    }

    /// Sleep before retry `attempt` of a higher-level operation.
    pub fn pause(&self, attempt: u32) {
        std::thread::sleep(self.backoff(attempt, None));
    }

    /// Attempts a higher-level operation may make after the first.
    pub fn retries(&self) -> u32 {
        self.opts.retries
    }
}

/// The pull/push scope for `repository`.
pub fn scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_only_go_to_the_registry() {
        let c = Client::new("127.0.0.1:5000", ClientOptions::default());
        assert!(c.same_origin("https://127.0.0.1:5000/v2/app/blobs/uploads/x?_state=1"));
        assert!(!c.same_origin("https://127.0.0.1:50001/v2/"));
        assert!(!c.same_origin("http://127.0.0.1:5000/v2/"));
        assert!(!c.same_origin("https://cdn.example/127.0.0.1:5000/v2/"));
        assert_eq!(
            c.resolve("/v2/app/blobs/uploads/u?_state=s"),
            "https://127.0.0.1:5000/v2/app/blobs/uploads/u?_state=s"
        );
    }

    fn response(head: &str) -> ureq::Response {
        format!("HTTP/1.1 401 Unauthorized\r\n{head}\r\nContent-Length: 0\r\n\r\n")
            .parse()
            .unwrap()
    }

    /// Two parallel requests both get 401; the one handled second must retry
    /// with the credentials the first turned on, not report them refused.
    #[test]
    fn a_challenge_learned_by_another_thread_is_retried_not_refused() {
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let header = creds.basic_header();
        let c = Client::new(
            "127.0.0.1:5000",
            ClientOptions {
                credentials: Some(creds),
                ..ClientOptions::default()
            },
        );
        let basic = response("WWW-Authenticate: Basic realm=\"r\"");
        assert!(
            c.authenticate(&basic, None, &[], "x").unwrap(),
            "first 401 turns Basic on"
        );
        assert!(
            c.authenticate(&basic, None, &[], "x").unwrap(),
            "a request sent before retries"
        );
        assert!(
            !c.authenticate(&basic, Some(&header), &[], "x").unwrap(),
            "credentials sent and refused"
        );
        c.auth.lock().unwrap().bearer = Some(("https://t".into(), None));
        c.auth
            .lock()
            .unwrap()
            .tokens
            .insert("repository:a:pull".into(), "Bearer t1".into());
        let bearer =
            response("WWW-Authenticate: Bearer realm=\"https://t\",scope=\"repository:a:pull\"");
        let scopes = ["repository:a:pull".to_string()];
        assert!(c.authenticate(&bearer, None, &scopes, "x").unwrap());
        assert!(!c
            .authenticate(&bearer, Some("Bearer t1"), &scopes, "x")
            .unwrap());
    }
}
