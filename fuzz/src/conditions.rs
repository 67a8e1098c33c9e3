//! `conditions`: a policy's `conditions` JSON (`Conditions::from_json`).
//!
//! Properties, for any input (parsed as JSON first, as the server does):
//! - a refusal is `Error::Invalid` (a 400);
//! - accepted conditions render canonically (`to_json`), and the rendering
//!   parses back to equal conditions and renders to the same JSON;
//! - evaluating them never panics, at any instant `time` can hold;
//! - with only an `ip_allowlist`, the network address of every entry is
//!   allowed (and with an `ip_allowlist`, an unknown client is not).

use strongroom_core::Error;
use strongroom_core::policy::Conditions;
use time::OffsetDateTime;

/// The target.
pub fn run(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let c = match Conditions::from_json(&value) {
        Ok(c) => c,
        Err(e) => {
            assert!(
                matches!(e, Error::Invalid(_)),
                "conditions {value} refused with {e:?}, not Invalid (400)"
            );
            return;
        }
    };
    let out = c.to_json();
    let again = Conditions::from_json(&out)
        .unwrap_or_else(|e| panic!("canonical form {out} of {value} refused: {e:?}"));
    assert_eq!(again, c, "round trip of {value} through {out}");
    assert_eq!(again.to_json(), out, "the canonical form is stable");
    assert_eq!(c.is_empty(), out == serde_json::json!({}));

    let instants = [
        OffsetDateTime::UNIX_EPOCH,
        OffsetDateTime::now_utc(),
        time::PrimitiveDateTime::MIN.assume_utc(),
        time::PrimitiveDateTime::MAX.assume_utc(),
        OffsetDateTime::from_unix_timestamp(i64::from(u32::from_le_bytes(seed(data))))
            .expect("a u32 timestamp is in range"),
    ];
    for now in instants {
        let _ = c.check(None, now);
        let _ = c.check(Some("127.0.0.1".parse().expect("an address")), now);
        let _ = c.check(Some("::ffff:10.0.0.1".parse().expect("an address")), now);
        for cidr in &c.ip_allowlist {
            let allowed = c.check(Some(cidr.network()), now);
            if c.time_window.is_none() {
                assert!(allowed, "{cidr:?} must allow its own network address");
            }
        }
    }
    if !c.ip_allowlist.is_empty() {
        assert!(!c.check(None, OffsetDateTime::now_utc()));
    }
}

fn seed(data: &[u8]) -> [u8; 4] {
    let mut s = [0u8; 4];
    for (i, b) in data.iter().enumerate() {
        s[i % 4] ^= b;
    }
    s
}
