//! The JSON of a listing, written directly rather than through serde.
//!
//! A listing of a thousand secrets is about 250 KiB of JSON. Through
//! `serde_json` every key and every value is scanned byte by byte for
//! characters to escape, and each timestamp is formatted into its own
//! `String`: over a quarter of the request's CPU. Every entry has the same
//! shape, and most of what it holds can't need escaping — the keys are fixed,
//! the id is a UUID, the path a [`SecretPath`](strongroom_core::SecretPath)
//! (ASCII letters, digits, `_`, `-` and `/`: nothing JSON escapes), the times
//! RFC 3339 — so those are copied as they are. What could hold anything (the
//! type, the author, the metadata object) still goes through `serde_json`.
//!
//! The bytes are exactly those of `serde_json::to_vec(&SecretList)`, the
//! derived `Serialize` that the OpenAPI schema describes; the tests below
//! check that over entries of every shape.

use std::io::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{SecretList, SecretMetadataResponse};

/// Why a listing could not be written (never in practice: a time outside
/// what RFC 3339 can say, as `serde` would also refuse).
#[derive(Debug)]
pub(super) struct Unwritable;

impl From<serde_json::Error> for Unwritable {
    fn from(_: serde_json::Error) -> Self {
        Unwritable
    }
}

impl From<time::error::Format> for Unwritable {
    fn from(_: time::error::Format) -> Self {
        Unwritable
    }
}

impl From<std::io::Error> for Unwritable {
    fn from(_: std::io::Error) -> Self {
        Unwritable
    }
}

/// Appends `{"secrets":[…]}` to `out`.
pub(super) fn write_list(list: &SecretList, out: &mut Vec<u8>) -> Result<(), Unwritable> {
    out.extend_from_slice(b"{\"secrets\":[");
    for (i, s) in list.secrets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_entry(s, out)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

fn write_entry(s: &SecretMetadataResponse, out: &mut Vec<u8>) -> Result<(), Unwritable> {
    out.extend_from_slice(b"{\"id\":\"");
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(s.id.as_uuid().hyphenated().encode_lower(&mut id).as_bytes());
    out.extend_from_slice(b"\",\"path\":\"");
    out.extend_from_slice(s.path.as_str().as_bytes());
    out.extend_from_slice(b"\",\"type\":");
    serde_json::to_writer(&mut *out, &s.secret_type)?;
    write!(out, ",\"version\":{}", s.version)?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut *out, &s.metadata)?;
    out.extend_from_slice(b",\"created_at\":");
    write_time(s.created_at, out)?;
    out.extend_from_slice(b",\"expires_at\":");
    match s.expires_at {
        Some(t) => write_time(t, out)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(if s.is_disabled {
        b",\"is_disabled\":true"
    } else {
        b",\"is_disabled\":false"
    });
    out.extend_from_slice(b",\"created_by\":");
    serde_json::to_writer(&mut *out, &s.created_by)?;
    out.push(b'}');
    Ok(())
}

/// An RFC 3339 time as a JSON string (its characters need no escaping).
fn write_time(t: OffsetDateTime, out: &mut Vec<u8>) -> Result<(), Unwritable> {
    out.push(b'"');
    t.format_into(out, &Rfc3339)?;
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use strongroom_core::{SecretId, SecretPath};
    use time::{Duration, UtcOffset};

    use super::*;

    fn written(list: &SecretList) -> String {
        let mut out = Vec::new();
        write_list(list, &mut out).expect("writable");
        String::from_utf8(out).expect("UTF-8")
    }

    fn derived(list: &SecretList) -> String {
        serde_json::to_string(list).expect("serializable")
    }

    fn entry(path: &str) -> SecretMetadataResponse {
        SecretMetadataResponse {
            id: SecretId::new(),
            path: SecretPath::parse(path).unwrap(),
            secret_type: "generic".into(),
            version: 1,
            metadata: json!({}),
            created_at: OffsetDateTime::now_utc(),
            expires_at: None,
            is_disabled: false,
            created_by: "agent:0192b1c3-1f2e-7a3b-9c4d-5e6f7a8b9c0d".into(),
        }
    }

    #[test]
    fn empty_and_ordinary_listings_are_what_serde_writes() {
        let empty = SecretList { secrets: vec![] };
        assert_eq!(written(&empty), r#"{"secrets":[]}"#);
        assert_eq!(written(&empty), derived(&empty));
        let list = SecretList {
            secrets: (0..50)
                .map(|i| entry(&format!("bench/list/k{i:06}")))
                .collect(),
        };
        assert_eq!(written(&list), derived(&list));
    }

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let mut e = entry("a/b-c_d/E9");
        e.secret_type = "quote\" back\\slash \u{7} nl\n tab\t é 🔑 \u{2028}".into();
        e.created_by = "user:\"</script>\"".into();
        e.metadata =
            json!({"k\"ey": "v\u{1}al", "n": [1, -2, 3.5, 1e300, null, true], "o": {"é": "\\"}});
        e.expires_at = Some(OffsetDateTime::UNIX_EPOCH + Duration::nanoseconds(123_456_789));
        e.is_disabled = true;
        e.version = u32::MAX;
        let list = SecretList { secrets: vec![e] };
        assert_eq!(written(&list), derived(&list));
    }

    #[test]
    fn a_time_rfc3339_cannot_say_is_refused_as_serde_refuses_it() {
        let mut e = entry("a");
        e.created_at = OffsetDateTime::UNIX_EPOCH.to_offset(UtcOffset::from_hms(1, 2, 3).unwrap());
        let list = SecretList { secrets: vec![e] };
        assert!(serde_json::to_string(&list).is_err());
        assert!(write_list(&list, &mut Vec::new()).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_entry_is_written_as_serde_writes_it(
            path in "[a-z0-9]([a-zA-Z0-9_-]{0,6}[a-z0-9])?(/[a-z0-9]([a-zA-Z0-9_-]{0,6}[a-z0-9])?){0,3}",
            secret_type in any::<String>(),
            created_by in any::<String>(),
            version in any::<u32>(),
            metadata in json_value(),
            created_us in -62_135_596_800_000_000i64..253_402_300_799_000_000,
            expires_us in prop::option::of(0i64..253_402_300_799_000_000),
            is_disabled in any::<bool>(),
        ) {
            let e = SecretMetadataResponse {
                id: SecretId::new(),
                path: SecretPath::parse(&path).unwrap(),
                secret_type,
                version,
                metadata,
                created_at: strongroom_core::time_util::from_micros(created_us),
                expires_at: expires_us.map(strongroom_core::time_util::from_micros),
                is_disabled,
                created_by,
            };
            let list = SecretList { secrets: vec![e, entry("x/y")] };
            prop_assert_eq!(written(&list), derived(&list));
        }
    }
}
