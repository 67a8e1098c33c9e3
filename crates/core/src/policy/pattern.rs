//! Path patterns (`secret_path_pattern` of a policy, path-like token scopes).
//!
//! See the [module documentation](super) for the grammar and the matching rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::path::{MAX_PATH_LEN, MAX_SEGMENTS, validate_segment};
use crate::{Error, SecretPath};

/// One segment of a pattern.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Seg {
    /// Must equal the path segment exactly (case-sensitive).
    Literal(Box<str>),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments.
    Any,
}

/// A validated glob over secret paths: `/`-separated segments, each a literal
/// path segment, `*` (exactly one segment) or `**` (zero or more segments).
///
/// Parse with [`PathPattern::parse`]; (de)serializes as its string form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    raw: String,
    segs: Vec<Seg>,
    shape: Shape,
}

/// The shapes most patterns have, matched without running the automaton:
/// a listing matches every path it holds against the caller's patterns.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Shape {
    /// Literals only: the path is the pattern.
    Exact,
    /// Literals then one final `**` (`prod/db/**`): the path is the first
    /// `len` bytes of the pattern (`prod/db`) or lies under them.
    Under { len: usize },
    /// Anything else.
    General,
}

impl Shape {
    fn of(raw: &str, segs: &[Seg]) -> Shape {
        let literal = |s: &Seg| matches!(s, Seg::Literal(_));
        if segs.iter().all(literal) {
            return Shape::Exact;
        }
        match segs.split_last() {
            // `**` alone stays General: it has no literal to compare.
            Some((Seg::Any, lits)) if !lits.is_empty() && lits.iter().all(literal) => {
                Shape::Under {
                    len: raw.len() - "/**".len(),
                }
            }
            _ => Shape::General,
        }
    }
}

impl PathPattern {
    /// Validates a pattern. Errors are [`Error::Invalid`] (400) with a message
    /// naming the offending segment.
    ///
    /// Rules: not empty; at most [`MAX_PATH_LEN`] bytes and [`MAX_SEGMENTS`]
    /// segments (the limits of [`SecretPath`]); no empty segment (no leading,
    /// trailing or doubled `/`); each segment is exactly `*`, exactly `**`, or
    /// a literal made of ASCII letters, digits, `_` and `-`; a `*` mixed with
    /// other characters (`ab*`, `*.json`, `***`) is rejected; a pattern that
    /// begins (ends) with a literal must begin (end) with a letter or digit,
    /// since no secret path could match it otherwise.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::invalid("path pattern must not be empty"));
        }
        if s.len() > MAX_PATH_LEN {
            return Err(Error::invalid(format!(
                "path pattern is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        let mut segs = Vec::new();
        for (i, seg) in s.split('/').enumerate() {
            let n = i + 1;
            if n > MAX_SEGMENTS {
                return Err(Error::invalid(format!(
                    "path pattern has more than {MAX_SEGMENTS} segments"
                )));
            }
            let parsed = match seg {
                "" => {
                    return Err(Error::invalid(
                        "path pattern must not contain empty segments (leading, trailing or doubled '/')",
                    ));
                }
                "*" => Seg::One,
                "**" => Seg::Any,
                _ if seg.contains('*') => {
                    return Err(Error::invalid(format!(
                        "path pattern segment {n} ({seg:?}) mixes '*' with other characters: \
                         a wildcard must be a whole segment, '*' (exactly one segment) \
                         or '**' (any number of segments)"
                    )));
                }
                _ => {
                    validate_segment(seg).map_err(|_| {
                        Error::invalid(format!(
                            "path pattern segment {n} may contain only letters, digits, '_' \
                             and '-', or be '*' or '**'"
                        ))
                    })?;
                    Seg::Literal(seg.into())
                }
            };
            segs.push(parsed);
        }
        let bytes = s.as_bytes();
        if matches!(segs.first(), Some(Seg::Literal(_))) && !bytes[0].is_ascii_alphanumeric() {
            return Err(Error::invalid(
                "path pattern must start with a letter, a digit or a wildcard",
            ));
        }
        if matches!(segs.last(), Some(Seg::Literal(_)))
            && !bytes[bytes.len() - 1].is_ascii_alphanumeric()
        {
            return Err(Error::invalid(
                "path pattern must end with a letter, a digit or a wildcard",
            ));
        }
        Ok(PathPattern {
            raw: s.to_owned(),
            shape: Shape::of(s, &segs),
            segs,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `path` matches: `*` consumes exactly one segment, `**` zero or
    /// more, a literal must equal its segment exactly (case-sensitive), and the
    /// whole path must be consumed. Runs in O(path segments × pattern segments).
    pub fn matches(&self, path: &SecretPath) -> bool {
        // Both sides hold only validated segments, so comparing the text
        // compares segment by segment.
        match self.shape {
            Shape::Exact => path.as_str() == self.raw,
            Shape::Under { len } => path
                .as_str()
                .strip_prefix(&self.raw[..len])
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            Shape::General => self.run(path.segments(), &mut 0),
        }
    }

    /// True when the pattern matches every valid secret path: it is made only
    /// of wildcards, holds at least one `**` and at most one `*` (e.g. `**`,
    /// `**/*`, `*/**/**`). Used to decide whether a deny policy covers a whole
    /// vault.
    pub fn is_universal(&self) -> bool {
        let mut any = false;
        let mut ones = 0usize;
        for s in &self.segs {
            match s {
                Seg::Any => any = true,
                Seg::One => ones += 1,
                Seg::Literal(_) => return false,
            }
        }
        any && ones <= 1
    }

    /// The matcher: a simulation of the pattern's NFA, one state per pattern
    /// position held in a bit set, advanced once per path segment. No
    /// backtracking, so `**/**/**/x` costs the same as `**/x` per state.
    /// `steps` counts state transitions, for the complexity test.
    fn run<'a>(&self, path: impl Iterator<Item = &'a str>, steps: &mut u64) -> bool {
        let m = self.segs.len();
        debug_assert!(m <= MAX_SEGMENTS && MAX_SEGMENTS < 64);
        let mut cur = self.closure(1);
        for seg in path {
            let mut next = 0u64;
            for (i, p) in self.segs.iter().enumerate() {
                if cur & (1u64 << i) == 0 {
                    continue;
                }
                *steps += 1;
                match p {
                    Seg::Any => next |= 1u64 << i,
                    Seg::One => next |= 1u64 << (i + 1),
                    Seg::Literal(l) if **l == *seg => next |= 1u64 << (i + 1),
                    Seg::Literal(_) => {}
                }
            }
            cur = self.closure(next);
            if cur == 0 {
                return false;
            }
        }
        cur & (1u64 << m) != 0
    }

    /// Adds the states reachable by letting each `**` match zero segments.
    fn closure(&self, mut set: u64) -> u64 {
        for (i, p) in self.segs.iter().enumerate() {
            if matches!(p, Seg::Any) && set & (1u64 << i) != 0 {
                set |= 1u64 << (i + 1);
            }
        }
        set
    }
}

impl FromStr for PathPattern {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.raw)
    }
}

impl Serialize for PathPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PathPattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pat(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }
    fn path(s: &str) -> SecretPath {
        SecretPath::parse(s).unwrap()
    }
    fn m(p: &str, s: &str) -> bool {
        pat(p).matches(&path(s))
    }

    #[test]
    fn literal_matches_only_itself() {
        assert!(m("prod/db", "prod/db"));
        assert!(!m("prod/db", "prod/dc"));
        assert!(!m("prod/db", "prod"));
        assert!(!m("prod/db", "prod/db/x"));
        assert!(!m("prod/db", "Prod/db"), "literals are case-sensitive");
    }

    #[test]
    fn single_star_is_exactly_one_segment() {
        assert!(m("a/*", "a/x"));
        assert!(!m("a/*", "a/x/y"));
        assert!(!m("a/*", "a"));
        assert!(!m("a/*", "b/x"));
        assert!(m("*", "x"));
        assert!(!m("*", "x/y"));
        assert!(m("*/b", "a/b"));
        assert!(!m("*/b", "b"));
    }

    #[test]
    fn double_star_at_start_middle_end() {
        // end, including zero segments; whole segments only
        assert!(m("a/**", "a/x"));
        assert!(!m("a/**", "ab"));
        assert!(!m("a/**", "ab/x"));
        assert!(!m("ab/**", "a"));
        assert!(m("a/b/**", "a/b"));
        assert!(!m("a/b/**", "a/bc/d"));
        assert!(m("a/**", "a/x/y/z"));
        assert!(m("a/**", "a"));
        assert!(!m("a/**", "b/x"));
        // start
        assert!(m("**/key", "key"));
        assert!(m("**/key", "x/y/key"));
        assert!(!m("**/key", "x/key/y"));
        // middle
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/x/y"));
        assert!(!m("a/**/b", "x/a/b"));
        // alone
        assert!(m("**", "x"));
        assert!(m("**", "x/y/z"));
        // combined with *
        assert!(m("**/*", "x"));
        assert!(m("*/**", "x/y"));
        assert!(!m("a/*/**", "a"));
        assert!(m("a/*/**", "a/b"));
    }

    #[test]
    fn rejects_bad_patterns_with_clear_messages() {
        for p in [
            "", "/a", "a/", "a//b", "ab*", "*b", "a/b*/c", "***", "a/*.json", "a.b", "a b", "..",
            "a/../b", "-a", "a/b_", "é", "a\\b",
        ] {
            assert!(PathPattern::parse(p).is_err(), "{p:?} should be rejected");
        }
        let Err(Error::Invalid(msg)) = PathPattern::parse("prod/ab*") else {
            panic!("expected Invalid");
        };
        assert!(
            msg.contains("segment 2") && msg.contains("whole segment"),
            "{msg}"
        );
        // Limits are those of SecretPath.
        assert!(PathPattern::parse(&vec!["a"; MAX_SEGMENTS + 1].join("/")).is_err());
        assert!(PathPattern::parse(&vec!["**"; MAX_SEGMENTS].join("/")).is_ok());
        assert!(PathPattern::parse(&"a".repeat(MAX_PATH_LEN + 1)).is_err());
        // Inner literals only follow the segment rule, as in SecretPath.
        assert!(PathPattern::parse("a/-b-/c").is_ok());
    }

    #[test]
    fn universal_patterns() {
        for p in ["**", "**/*", "*/**", "**/**", "**/*/**"] {
            assert!(pat(p).is_universal(), "{p}");
        }
        for p in ["*", "*/*/**", "a/**", "**/a", "*/*"] {
            assert!(!pat(p).is_universal(), "{p}");
        }
    }

    #[test]
    fn pathological_pattern_is_bounded() {
        // 31 `**` then a literal that never occurs, against 32 segments: a
        // backtracking matcher explores C(62,31) splits; ours does at most
        // one step per (path segment, pattern segment) pair.
        let mut p = vec!["**"; MAX_SEGMENTS - 1];
        p.push("x");
        let p = pat(&p.join("/"));
        let s = path(&vec!["a"; MAX_SEGMENTS].join("/"));
        let mut steps = 0;
        assert!(!p.run(s.segments(), &mut steps));
        assert!(
            steps <= (MAX_SEGMENTS * MAX_SEGMENTS) as u64,
            "steps = {steps}"
        );
        // and with `*`s mixed in
        let p = pat(&["**", "*"].repeat(16).join("/"));
        let mut steps = 0;
        assert!(p.run(s.segments(), &mut steps));
        assert!(steps <= (MAX_SEGMENTS * MAX_SEGMENTS) as u64);
    }

    #[test]
    fn serde_round_trip() {
        let p: PathPattern = serde_json::from_str("\"a/**/b\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"a/**/b\"");
        assert!(serde_json::from_str::<PathPattern>("\"a/b*\"").is_err());
    }

    /// The obvious (exponential) recursive definition, as an oracle.
    fn reference(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|k| reference(rest, &s[k..])),
            Some((&"*", rest)) => !s.is_empty() && reference(rest, &s[1..]),
            Some((lit, rest)) => s.first() == Some(lit) && reference(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_reference(
            p in prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "*", "**"]), 1..7),
            s in prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "c"]), 1..8),
        ) {
            let pattern = pat(&p.join("/"));
            let secret = path(&s.join("/"));
            prop_assert_eq!(pattern.matches(&secret), reference(&p, &s));
        }

        #[test]
        fn wildcarding_a_matching_path_still_matches(
            s in prop::collection::vec("[a-z0-9]{1,4}", 1..8),
            mask in prop::collection::vec(0u8..3, 8),
        ) {
            let secret = path(&s.join("/"));
            let p: Vec<&str> = s.iter().zip(&mask).map(|(seg, k)| match k {
                0 => seg.as_str(),
                1 => "*",
                _ => "**",
            }).collect();
            prop_assert!(pat(&p.join("/")).matches(&secret));
            prop_assert!(pat("**").matches(&secret));
        }
    }
}
