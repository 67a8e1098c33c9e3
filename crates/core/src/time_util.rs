//! Time helpers. Timestamps are UTC and carried as [`time::OffsetDateTime`];
//! on the wire they are RFC 3339 strings.

use time::OffsetDateTime;

/// Now, in UTC, truncated to microseconds (the precision every store keeps).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    let micros = t.unix_timestamp_nanos() / 1_000;
    from_micros(micros as i64)
}

/// Microseconds since the Unix epoch.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]. Out-of-range values clamp to the epoch.
pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Serde support for optional RFC 3339 timestamps.
pub mod rfc3339_opt {
    pub use time::serde::rfc3339::option::{deserialize, serialize};
}
