//! Glob patterns over layer paths (`dev/*`, `var/cache/apt/**`, `**/*.pyc`).
//!
//! Syntax, matched against a relative layer path such as `usr/bin/su`
//! (components separated by `/`, no leading `/`, no trailing `/`):
//! - `*` matches any run of characters within one component (never `/`);
//! - `?` matches exactly one character, not `/`;
//! - `**` as a whole component matches any number of components: `a/**/b`
//!   matches `a/b`, `a/x/b`, `a/x/y/b`; a leading `**/` matches at any depth
//!   (`**/*.pyc`); a trailing `/**` matches everything *below* its directory
//!   but not the directory itself (`var/cache/**` matches `var/cache/x`,
//!   not `var/cache`), as in gitignore;
//! - `\` makes the next character literal (`\*` matches a `*`);
//! - everything else matches itself, byte for byte (no case folding, no
//!   Unicode normalization).
//!
//! A leading `/` in a pattern is ignored (`/dev/*` is `dev/*`): users think
//! of the paths as absolute in the image. `**` inside a component (`a**b`)
//! is two `*`. Empty patterns and empty components (`a//b`) are refused.
//!
//! Invariant: matching takes time O(pattern × path) whatever the input (no
//! backtracking blow-up), so a pattern cannot stall a walk.

use crate::error::{Error, Result};

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of components.
    AnyDepth,
    /// One component's pattern.
    Component(Vec<Token>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyChar,
    AnyRun,
}

impl Glob {
    /// Compile `pattern` (syntax in the module docs).
    pub fn new(pattern: &str) -> Result<Glob> {
        let body = pattern.strip_prefix('/').unwrap_or(pattern);
        if body.is_empty() {
            return Err(Error::invalid(format!("pattern {pattern:?}: empty")));
        }
        let mut segments = Vec::new();
        for comp in split_components(body, pattern)? {
            if comp == "**" {
                // Why merge: `**/**` means the same as `**`.
                if segments.last() != Some(&Segment::AnyDepth) {
                    segments.push(Segment::AnyDepth);
                }
                continue;
            }
            let mut tokens = Vec::new();
            let mut chars = comp.chars();
            while let Some(c) = chars.next() {
                tokens.push(match c {
                    '*' if tokens.last() == Some(&Token::AnyRun) => continue,
                    '*' => Token::AnyRun,
                    '?' => Token::AnyChar,
                    '\\' => Token::Literal(chars.next().expect("split checked escapes")),
                    c => Token::Literal(c),
                });
            }
            segments.push(Segment::Component(tokens));
        }
        Ok(Glob {
            pattern: pattern.to_string(),
            segments,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `path` (a relative layer path) matches the whole pattern.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.strip_suffix('/').unwrap_or(path);
        let comps: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        let segs = &self.segments;
        // ok[j]: segments[..i] match comps[..j]; one row per segment (DP,
        // so `**` never backtracks exponentially).
        let mut ok = vec![false; comps.len() + 1];
        ok[0] = true;
        for (i, seg) in segs.iter().enumerate() {
            let mut next = vec![false; comps.len() + 1];
            match seg {
                Segment::AnyDepth => {
                    // A trailing `**` needs at least one component (gitignore).
                    let min = usize::from(i + 1 == segs.len() && i > 0);
                    let mut reach = usize::MAX;
                    for j in 0..=comps.len() {
                        if ok[j] && reach == usize::MAX {
                            reach = j;
                        }
                        next[j] = reach != usize::MAX && j >= reach + min;
                    }
                }
                Segment::Component(tokens) => {
                    for j in 0..comps.len() {
                        if ok[j] && component_matches(tokens, comps[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            ok = next;
        }
        ok[comps.len()]
    }
}

/// Split on `/`, checking escapes and refusing empty components.
fn split_components<'a>(body: &'a str, pattern: &str) -> Result<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match (escaped, c) {
            (true, '/') => {
                return Err(Error::invalid(format!(
                    "pattern {pattern:?}: `\\/` cannot match (`/` separates components)"
                )))
            }
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '/') => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            (false, _) => {}
        }
    }
    if escaped {
        return Err(Error::invalid(format!(
            "pattern {pattern:?}: ends with a lone `\\`"
        )));
    }
    out.push(&body[start..]);
    if out.iter().any(|c| c.is_empty()) {
        return Err(Error::invalid(format!(
            "pattern {pattern:?}: empty path component"
        )));
    }
    Ok(out)
}

/// Whether one component matches one token list: the classic linear
/// wildcard match (on a mismatch, only the last `*` is retried).
fn component_matches(tokens: &[Token], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::AnyRun) => {
                star = Some((t, n));
                t += 1;
            }
            Some(Token::AnyChar) => {
                t += 1;
                n += 1;
            }
            Some(Token::Literal(c)) if *c == name[n] => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Glob::new(p).unwrap().matches(path)
    }

    #[test]
    fn star_stays_within_a_component() {
        assert!(m("dev/*", "dev/console"));
        assert!(!m("dev/*", "dev"));
        assert!(!m("dev/*", "dev/pts/0"));
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("*", "x"));
        assert!(m("/dev/*", "dev/null"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("tty?", "tty1"));
        assert!(!m("tty?", "tty"));
        assert!(!m("tty?", "tty12"));
        assert!(m("é?", "éü"));
        assert!(!m("a?b", "a/b"));
    }

    #[test]
    fn double_star_crosses_components() {
        assert!(m("var/cache/apt/**", "var/cache/apt/archives/partial"));
        assert!(m("var/cache/apt/**", "var/cache/apt/x"));
        assert!(!m("var/cache/apt/**", "var/cache/apt"));
        assert!(m("**/*.pyc", "a.pyc"));
        assert!(m("**/*.pyc", "usr/lib/x/a.pyc"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/x/y/c"));
        assert!(m("**", "anything/at/all"));
        assert!(m("a/**/**/b", "a/b"));
    }

    #[test]
    fn escapes_and_bad_patterns() {
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        for bad in ["", "/", "a//b", "a/", r"a\", r"a\/b"] {
            assert!(Glob::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let p = format!("{}b", "*a".repeat(40));
        let name = "a".repeat(5000);
        assert!(!m(&p, &name));
        let deep = format!("{}/x", "**/a".repeat(50));
        let path = vec!["a"; 2000].join("/");
        assert!(!m(&deep, &path));
    }
}
