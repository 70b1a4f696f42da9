//! What a registry said when a request failed: its status in words and the
//! codes and messages of its `errors` body (OCI distribution spec).
//!
//! Invariants: the registry's words are bounded (64 KiB read, 200 characters
//! per message) and control characters are dropped, so a hostile registry
//! cannot flood or forge the one-line error; a 404 is the caller's input
//! (`InvalidInput`), anything else a remote failure.

use std::io::Read;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's own words about a failed request, if it said any.
pub fn registry_message(resp: ureq::Response) -> String {
    let mut body = Vec::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_end(&mut body);
    match serde_json::from_slice::<ErrorsBody>(&body) {
        Ok(b) if !b.errors.is_empty() => {
            let parts: Vec<String> = b
                .errors
                .iter()
                .map(|e| {
                    let msg: String = e
                        .message
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect();
                    if msg.is_empty() {
                        e.code.clone()
                    } else {
                        format!("{} ({msg})", e.code)
                    }
                })
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

/// A status code in words (`404 Not Found`), or `unexpected status`.
pub(super) fn status_text(code: u16) -> &'static str {
    match code {
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        409 => "409 Conflict",
        413 => "413 Payload Too Large",
        416 => "416 Range Not Satisfiable",
        429 => "429 Too Many Requests",
        500 => "500 Internal Server Error",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        _ => "unexpected status",
    }
}

/// An error for an unexpected status: `{what}: 404 Not Found: MANIFEST_UNKNOWN (...)`.
pub fn status_error(what: &str, resp: ureq::Response) -> Error {
    let code = resp.status();
    let text = status_text(code);
    let text = if text == "unexpected status" {
        format!("unexpected status {code}")
    } else {
        text.to_string()
    };
    let kind = if code == 404 {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Remote
    };
    Error::new(kind, format!("{what}: {text}{}", registry_message(resp)))
}
