//! Path globs over layer entry paths (`var/cache/*`, `**/*.pyc`), as
//! `strata diff --ignore` takes them.
//!
//! Syntax, matched against a whole entry path as a layer stores it
//! (relative, `/`-separated, no leading `./`, no trailing `/`):
//! - `*` matches any run of characters within one path component (also
//!   none; dots are not special: `*` matches `.hidden`);
//! - `**` as a whole component matches any number of components (also
//!   none): `**/*.pyc` matches `a.pyc` and `usr/lib/x/a.pyc`, `var/**`
//!   matches everything below `var`; `**` next to other characters is an
//!   error (write `*`);
//! - `?` matches one character other than `/`;
//! - `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) match one character of (not
//!   of) the class; `]` first in the class stands for itself;
//! - `\x` matches `x` literally; everything else matches itself.
//!
//! A leading `/` or `./` and a trailing `/` in the pattern are dropped
//! (entry paths are relative to the root). Matching is on Unicode scalar
//! values, case-sensitive, and a pure function of pattern and path (no
//! host state), so it cannot affect determinism. [`Glob::covers`] also
//! matches everything below a matching directory, which is what excluding or
//! ignoring a directory means.

use crate::error::{Error, Result};

/// One token of a component pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `[...]`: ranges (inclusive), negated.
    Class(Vec<(char, char)>, bool),
}

/// One component of the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`: any number of components.
    Deep,
    /// A component pattern.
    Name(Vec<Token>),
}

/// A compiled glob (see the module docs for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    parts: Vec<Part>,
}

impl Glob {
    /// Compile `pattern`; an error names the pattern and what is wrong.
    pub fn new(pattern: &str) -> Result<Glob> {
        let bad = |why: &str| Error::invalid(format!("glob {pattern:?}: {why}"));
        let mut p = pattern;
        while let Some(rest) = p.strip_prefix("./") {
            p = rest;
        }
        let p = p.trim_start_matches('/').trim_end_matches('/');
        if p.is_empty() {
            return Err(bad("empty pattern"));
        }
        let mut parts = Vec::new();
        for comp in p.split('/') {
            if comp.is_empty() {
                return Err(bad("empty path component ('//')"));
            }
            if comp == "**" {
                // Why: `**/**` means the same as `**`; one keeps matching linear.
                if parts.last() != Some(&Part::Deep) {
                    parts.push(Part::Deep);
                }
                continue;
            }
            parts.push(Part::Name(tokens(comp).map_err(|m| bad(&m))?));
        }
        Ok(Glob {
            text: pattern.to_string(),
            parts,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (an entry path; a trailing `/` is ignored) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let comps: Vec<&str> = path.split('/').collect();
        match_parts(&self.parts, &comps)
    }

    /// Whether `path` or one of its ancestor directories matches: what
    /// excluding or ignoring a matching directory means for what is below it.
    pub fn covers(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let comps: Vec<&str> = path.split('/').collect();
        (1..=comps.len()).any(|n| match_parts(&self.parts, &comps[..n]))
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parse one component pattern.
fn tokens(comp: &str) -> std::result::Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut it = comp.chars().peekable();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => {
                if out.last() == Some(&Token::Star) {
                    return Err(
                        "'**' must be a whole path component (use '*' within one)".to_string()
                    );
                }
                Token::Star
            }
            '?' => Token::Any,
            '\\' => Token::Char(it.next().ok_or("a trailing '\\' escapes nothing")?),
            '[' => {
                let negated = matches!(it.peek(), Some('!' | '^'));
                if negated {
                    it.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = match it.next() {
                        None => return Err("unclosed '[' class".to_string()),
                        Some(']') if !first => break,
                        Some('\\') => it.next().ok_or("unclosed '[' class")?,
                        Some(c) => c,
                    };
                    first = false;
                    if it.peek() == Some(&'-') {
                        let mut ahead = it.clone();
                        ahead.next();
                        match ahead.peek() {
                            Some(&']') | None => ranges.push((c, c)),
                            Some(&hi) => {
                                it.next();
                                it.next();
                                if hi < c {
                                    return Err(format!("class range {c}-{hi} is reversed"));
                                }
                                ranges.push((c, hi));
                            }
                        }
                    } else {
                        ranges.push((c, c));
                    }
                }
                Token::Class(ranges, negated)
            }
            c => Token::Char(c),
        });
    }
    Ok(out)
}

fn token_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Star => false,
        Token::Class(ranges, negated) => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Match one component: greedy star with backtracking to the last star
/// (O(len × pattern) at worst, no recursion).
fn match_name(pat: &[Token], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    let (mut p, mut i) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && pat[p] == Token::Star {
            back = Some((p, i));
            p += 1;
        } else if p < pat.len() && token_matches(&pat[p], s[i]) {
            p += 1;
            i += 1;
        } else if let Some((bp, bi)) = back {
            p = bp + 1;
            i = bi + 1;
            back = Some((bp, bi + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|t| *t == Token::Star)
}

/// Match components: the same greedy backtracking, `**` in the role of `*`.
fn match_parts(parts: &[Part], comps: &[&str]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while i < comps.len() {
        match parts.get(p) {
            Some(Part::Deep) => {
                back = Some((p, i));
                p += 1;
                continue;
            }
            Some(Part::Name(t)) if match_name(t, comps[i]) => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match back {
            Some((bp, bi)) => {
                p = bp + 1;
                i = bi + 1;
                back = Some((bp, bi + 1));
            }
            None => return false,
        }
    }
    parts[p..].iter().all(|x| *x == Part::Deep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, path: &str) -> bool {
        Glob::new(pat).unwrap().matches(path)
    }

    #[test]
    fn star_stays_within_a_component() {
        assert!(m("var/cache/*", "var/cache/apt"));
        assert!(m("var/cache/*", "var/cache/.hidden"));
        assert!(!m("var/cache/*", "var/cache/apt/pkgcache.bin"));
        assert!(!m("var/cache/*", "var/cache"));
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("*", "x"));
        assert!(!m("*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn double_star_crosses_components() {
        assert!(m("**/*.pyc", "a.pyc"));
        assert!(m("**/*.pyc", "usr/lib/python3/x/a.pyc"));
        assert!(!m("**/*.pyc", "usr/lib/a.py"));
        assert!(m("var/**", "var/cache/apt/x"));
        assert!(m("var/**", "var"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/x/y/c"));
        assert!(m(
            "**/__pycache__/**",
            "usr/lib/__pycache__/m.cpython-311.pyc"
        ));
        assert!(m("**", "anything/at/all"));
        assert!(m("a/**/**/b", "a/b"));
        assert!(m("**/x/**/y", "p/x/q/x/r/y"));
    }

    #[test]
    fn question_mark_classes_and_escapes() {
        assert!(m("lib?.so", "lib1.so"));
        assert!(!m("lib?.so", "lib.so"));
        assert!(!m("a?b", "a/b"));
        assert!(m("[abc].txt", "b.txt"));
        assert!(!m("[abc].txt", "d.txt"));
        assert!(m("[a-c][0-9]", "c7"));
        assert!(m("[!a-c]", "d"));
        assert!(!m("[^a-c]", "b"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("\\*", "*"));
        assert!(m("a\\**", "a*xyz"));
        assert!(!m("\\*", "x"));
        assert!(m("caf\u{e9}/*", "caf\u{e9}/\u{65e5}"));
    }

    #[test]
    fn leading_and_trailing_slashes_are_dropped() {
        assert!(m("/etc/*", "etc/passwd"));
        assert!(m("./etc/", "etc"));
        assert!(m("etc", "etc/"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for (p, why) in [
            ("", "empty pattern"),
            ("/", "empty pattern"),
            ("a//b", "empty path component"),
            ("a**", "'**' must be a whole path component"),
            ("**.pyc", "'**' must be a whole path component"),
            ("[abc", "unclosed '[' class"),
            ("[z-a]", "reversed"),
            ("x\\", "escapes nothing"),
        ] {
            let e = Glob::new(p).unwrap_err().to_string();
            assert!(e.contains(why), "{p}: {e}");
            assert!(e.starts_with(&format!("glob {p:?}: ")), "{e}");
        }
    }

    #[test]
    fn covers_what_is_below_a_match() {
        let g = Glob::new("var/cache/*").unwrap();
        assert!(g.covers("var/cache/apt/archives/x.deb"));
        assert!(g.covers("var/cache/apt"));
        assert!(!g.covers("var/cache"));
        assert!(!g.covers("var/lib/x"));
        assert_eq!(g.as_str(), "var/cache/*");
        assert_eq!(g.to_string(), "var/cache/*");
    }
}
