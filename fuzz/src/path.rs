//! `path`: secret paths (`SecretPath::parse` and `SecretPath::from_url_encoded`).
//!
//! Properties, for any input text:
//! - a refusal is `Error::Invalid` (a 400), never another class;
//! - an accepted path is canonical: its text is the input (for `parse`), it
//!   re-parses to itself, it is its own URL form, and it keeps the limits
//!   (at most `MAX_PATH_LEN` bytes and `MAX_SEGMENTS` non-empty segments of
//!   `[A-Za-z0-9_-]`, starting and ending with a letter or digit);
//! - a URL-encoded path decodes segment by segment: percent-encoding every
//!   byte of an accepted path's segments decodes back to the same path, and
//!   no accepted path holds a `/` that came from `%2F`.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use strongroom_core::path::{MAX_PATH_LEN, MAX_SEGMENTS};
use strongroom_core::{Error, SecretPath};

/// The target.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_parse(&text);
    check_url(&text);
}

fn assert_canonical(p: &SecretPath) {
    let s = p.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_PATH_LEN, "length of {p:?}");
    let segs: Vec<&str> = p.segments().collect();
    assert!(segs.len() <= MAX_SEGMENTS, "depth of {p:?}");
    for seg in &segs {
        assert!(
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "segment {seg:?} of {p:?}"
        );
    }
    let b = s.as_bytes();
    assert!(
        b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric(),
        "edges of {p:?}"
    );
    assert_eq!(segs.join("/"), s);
    assert_eq!(p.to_string(), s);
    // Re-rendered and re-parsed, by either door: the same path.
    assert_eq!(SecretPath::parse(s).as_ref(), Ok(p), "re-parse of {p:?}");
    assert_eq!(
        SecretPath::from_url_encoded(s).as_ref(),
        Ok(p),
        "a canonical path is its own URL form: {p:?}"
    );
    // Every byte of every segment percent-encoded still names the same path.
    let encoded: Vec<String> = segs
        .iter()
        .map(|seg| utf8_percent_encode(seg, NON_ALPHANUMERIC).to_string())
        .collect();
    assert_eq!(
        SecretPath::from_url_encoded(&encoded.join("/")).as_ref(),
        Ok(p),
        "percent-encoded segments of {p:?}"
    );
}

fn assert_invalid(what: &str, input: &str, e: &Error) {
    assert!(
        matches!(e, Error::Invalid(_)),
        "{what}({input:?}) refused with {e:?}, not Invalid (400)"
    );
}

fn check_parse(text: &str) {
    match SecretPath::parse(text) {
        Ok(p) => {
            assert_eq!(p.as_str(), text, "parse must not rewrite its input");
            assert_canonical(&p);
        }
        Err(e) => assert_invalid("parse", text, &e),
    }
}

fn check_url(text: &str) {
    match SecretPath::from_url_encoded(text) {
        Ok(p) => {
            assert_canonical(&p);
            // As many segments as the raw text: an encoded '/' never splits one.
            assert_eq!(
                p.segments().count(),
                text.split('/').count(),
                "{text:?} decoded to {p:?}"
            );
        }
        Err(e) => assert_invalid("from_url_encoded", text, &e),
    }
}
