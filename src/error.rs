//! Errors a user can act on.
//!
//! Every error carries a [`ErrorKind`] a caller can match on and one line of
//! text that names the file, blob or entry and the problem, e.g.
//! `writing blob sha256:ab…: permission denied`. I/O errors are rendered
//! without the `(os error N)` noise and never as a bare "i/o error".

use std::fmt;
use std::io;

/// What went wrong, broadly: lets the CLI choose an exit code and tests match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file failed.
    Io,
    /// The user's input (spec, flag value, path) is not acceptable.
    InvalidInput,
    /// Data read back (blob, tar, JSON, layout) is malformed or does not match its digest.
    Corrupt,
    /// Valid input that strata does not support (yet).
    Unsupported,
    /// A registry could not be reached, or answered with an error.
    Remote,
    /// A registry refused access (401/403): credentials are missing or wrong.
    Auth,
}

/// A strata error: a kind plus one human-readable line.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message` (lowercase, names what and where).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Invalid user input.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Malformed or mismatching data.
    pub fn corrupt(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Corrupt, message)
    }

    /// Unsupported input.
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, message)
    }

    /// An I/O failure while doing `what` (e.g. "reading /x/y").
    pub fn io(what: impl fmt::Display, err: &io::Error) -> Error {
        // Data errors smuggled through io::Error by decoders keep their kind.
        let kind = match err.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{what}: {}", describe_io(err)))
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the `strata:` prefix the CLI adds.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with more context: `"{context}: {message}"`.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Extension to add context to results whose error is an [`Error`].
pub trait Context<T> {
    /// Prefix any error with `context`.
    fn context(self, context: impl fmt::Display) -> Result<T>;
    /// Prefix any error with a lazily built context.
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// Extension turning `io::Result` into [`Result`] with a description of the action.
pub trait IoContext<T> {
    /// Describe the failed action, e.g. `.io_context(|| format!("reading {path}"))`.
    fn io_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn io_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(f(), &e))
    }
}

/// A short lowercase description of an I/O error, without `(os error N)`.
pub fn describe_io(err: &io::Error) -> String {
    use io::ErrorKind as K;
    let fixed = match err.kind() {
        K::NotFound => Some("no such file or directory"),
        K::PermissionDenied => Some("permission denied"),
        K::AlreadyExists => Some("file exists"),
        K::StorageFull => Some("no space left on device"),
        K::FileTooLarge => Some("file too large"),
        K::ReadOnlyFilesystem => Some("read-only file system"),
        K::NotADirectory => Some("not a directory"),
        K::IsADirectory => Some("is a directory"),
        K::UnexpectedEof => Some("unexpected end of file (truncated)"),
        _ => None,
    };
    if let Some(s) = fixed {
        return s.to_string();
    }
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => "unknown error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_described_without_os_error_noise() {
        let e = io::Error::from_raw_os_error(13);
        let err = Error::io("writing blob sha256:ab", &e);
        assert_eq!(err.to_string(), "writing blob sha256:ab: permission denied");
        assert_eq!(err.kind(), ErrorKind::Io);
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(describe_io(&e), "no space left on device");
    }

    #[test]
    fn context_prefixes() {
        let err = Error::invalid("bad path").context("spec.json");
        assert_eq!(err.to_string(), "spec.json: bad path");
    }
}
