//! `pattern`: path patterns (`PathPattern::parse` and `matches`).
//!
//! Input: `PATTERN` or `PATTERN\nPATH\nPATH...`.
//!
//! Properties:
//! - a refusal is `Error::Invalid` (a 400);
//! - an accepted pattern keeps its text, re-parses and round-trips through
//!   JSON to an equal pattern;
//! - a pattern without a wildcard is a secret path and matches exactly that
//!   path: not its parent, not a child, not a sibling;
//! - the pattern with each `*` replaced by a segment and each `**` by zero,
//!   one or two segments is a path it matches;
//! - for every other path given, `matches` agrees with an independent
//!   (memoised recursive) matcher, and a universal pattern matches it.

use std::collections::HashMap;

use strongroom_core::policy::PathPattern;
use strongroom_core::{Error, SecretPath};

/// The target.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let raw = lines.next().unwrap_or_default();
    let pattern = match PathPattern::parse(raw) {
        Ok(p) => p,
        Err(e) => {
            assert!(
                matches!(e, Error::Invalid(_)),
                "parse({raw:?}) refused with {e:?}, not Invalid (400)"
            );
            return;
        }
    };
    assert_eq!(pattern.as_str(), raw);
    assert_eq!(pattern.to_string(), raw);
    assert_eq!(PathPattern::parse(raw).as_ref(), Ok(&pattern));
    let json = serde_json::to_string(&pattern).expect("a pattern serializes");
    let back: PathPattern = serde_json::from_str(&json).expect("a pattern deserializes");
    assert_eq!(back, pattern, "JSON round trip of {raw:?}");

    let segs: Vec<&str> = raw.split('/').collect();
    if !raw.contains('*') {
        let path = SecretPath::parse(raw)
            .unwrap_or_else(|e| panic!("wildcard-free pattern {raw:?} is not a path: {e:?}"));
        assert!(pattern.matches(&path), "{raw:?} must match itself");
        for other in [format!("{raw}/x"), format!("x/{raw}"), format!("{raw}x")] {
            if let Ok(o) = SecretPath::parse(&other) {
                assert!(!pattern.matches(&o), "{raw:?} must not match {other:?}");
            }
        }
        if let Some((parent, _)) = raw.rsplit_once('/')
            && let Ok(o) = SecretPath::parse(parent)
        {
            assert!(!pattern.matches(&o), "{raw:?} must not match its parent");
        }
    } else {
        // Fill the wildcards: `*` takes one segment, `**` zero, one or two.
        for fill in 0..3usize {
            let mut out: Vec<String> = Vec::new();
            for s in &segs {
                match *s {
                    "*" => out.push("w".into()),
                    "**" => out.extend((0..fill).map(|i| format!("d{i}"))),
                    lit => out.push(lit.to_owned()),
                }
            }
            if let Ok(p) = SecretPath::parse(&out.join("/")) {
                assert!(pattern.matches(&p), "{raw:?} must match {p:?}");
                assert_eq!(pattern.matches(&p), reference(&segs, &out));
            }
        }
    }
    for line in lines {
        if let Ok(p) = SecretPath::parse(line) {
            let path_segs: Vec<&str> = p.segments().collect();
            assert_eq!(
                pattern.matches(&p),
                reference(&segs, &path_segs),
                "{raw:?} against {line:?}"
            );
            if pattern.is_universal() {
                assert!(pattern.matches(&p), "universal {raw:?} must match {line:?}");
            }
        }
    }
    if pattern.is_universal() {
        for p in ["a", "a/b", "a/b/c/d/e/f/g/h"] {
            assert!(pattern.matches(&SecretPath::parse(p).expect("a path")));
        }
    }
}

/// The grammar's definition, memoised on (pattern position, path position).
fn reference<S: AsRef<str>>(pattern: &[&str], path: &[S]) -> bool {
    fn go<S: AsRef<str>>(
        p: &[&str],
        s: &[S],
        i: usize,
        j: usize,
        memo: &mut HashMap<(usize, usize), bool>,
    ) -> bool {
        if let Some(&v) = memo.get(&(i, j)) {
            return v;
        }
        let v = match p.get(i) {
            None => j == s.len(),
            Some(&"**") => (j..=s.len()).any(|k| go(p, s, i + 1, k, memo)),
            Some(&"*") => j < s.len() && go(p, s, i + 1, j + 1, memo),
            Some(lit) => {
                s.get(j).is_some_and(|x| x.as_ref() == *lit) && go(p, s, i + 1, j + 1, memo)
            }
        };
        memo.insert((i, j), v);
        v
    }
    go(pattern, path, 0, 0, &mut HashMap::new())
}
