//! Policy conditions: `ip_allowlist` and `time_window`.
//!
//! See the [module documentation](super) for the exact semantics.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::Error;

/// The most entries an `ip_allowlist` may hold.
pub const MAX_IP_ALLOWLIST: usize = 256;

/// The conditions of a policy, as 1claw's free-form `conditions` object.
///
/// Deserializing rejects unknown keys, so a typo (`ip_alowlist`) is a 400
/// rather than a silently unconditional grant. An empty object (or JSON
/// `null`, via [`Conditions::from_json`]) means "no conditions".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Client addresses allowed; empty means no IP restriction. On the wire an
    /// explicit empty list is rejected (omit the key instead).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_allowlist"
    )]
    pub ip_allowlist: Vec<Cidr>,
    /// Wall-clock window during which the policy applies; `None` means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
}

fn de_allowlist<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    use serde::de::Error as _;
    match Option::<Vec<Cidr>>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(v) if v.is_empty() => Err(D::Error::custom(
            "ip_allowlist must list at least one CIDR; omit it for no IP restriction",
        )),
        Some(v) if v.len() > MAX_IP_ALLOWLIST => Err(D::Error::custom(format!(
            "ip_allowlist may hold at most {MAX_IP_ALLOWLIST} entries"
        ))),
        Some(v) => Ok(v),
    }
}

impl Conditions {
    /// Parses 1claw's `conditions` JSON. `null` and `{}` give no conditions;
    /// anything else that is not an object, an unknown key or a malformed value
    /// is an [`Error::Invalid`] whose message says what is wrong.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, Error> {
        match value {
            serde_json::Value::Null => Ok(Self::default()),
            serde_json::Value::Object(_) => Conditions::deserialize(value)
                .map_err(|e| Error::invalid(format!("invalid policy conditions: {e}"))),
            _ => Err(Error::invalid("policy conditions must be a JSON object")),
        }
    }

    /// The canonical JSON form (`{}` when there are no conditions).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// True when there is no condition at all.
    pub fn is_empty(&self) -> bool {
        self.ip_allowlist.is_empty() && self.time_window.is_none()
    }

    /// Whether every condition holds for a request from `ip` at `now`.
    ///
    /// A non-empty `ip_allowlist` fails when the client address is unknown.
    pub fn check(&self, ip: Option<IpAddr>, now: OffsetDateTime) -> bool {
        if !self.ip_allowlist.is_empty() {
            let Some(ip) = ip else { return false };
            if !self.ip_allowlist.iter().any(|c| c.contains(ip)) {
                return false;
            }
        }
        if let Some(w) = &self.time_window
            && !w.contains(now)
        {
            return false;
        }
        true
    }
}

/// An IPv4 or IPv6 network in CIDR notation, with the policy's reading of
/// client addresses (see [`Cidr::contains`]). The arithmetic is `ipnet`'s.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    /// Parses `addr/len` or a bare address (meaning `/32` or `/128`).
    /// A network with host bits set (`10.1.2.3/8`) is rejected as a likely
    /// mistake, with the intended network suggested.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || {
            let shown = if s.len() > 64 { "(too long)" } else { s };
            Error::invalid(format!(
                "ip_allowlist entry {shown:?} is not an IP address or CIDR \
                 (e.g. \"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\")"
            ))
        };
        if s.len() > 64 {
            return Err(bad());
        }
        let net = match s.split_once('/') {
            None => ipnet::IpNet::from(s.parse::<IpAddr>().map_err(|_| bad())?),
            Some((addr, p)) => {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix: u8 = p.parse().map_err(|_| bad())?;
                ipnet::IpNet::new(addr, prefix).map_err(|_| {
                    Error::invalid(format!(
                        "ip_allowlist entry {s:?} has a prefix longer than {max} bits"
                    ))
                })?
            }
        };
        if net.trunc() != net {
            return Err(Error::invalid(format!(
                "ip_allowlist entry {s:?} has host bits set; did you mean \"{}\"?",
                net.trunc()
            )));
        }
        Ok(Cidr(net))
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.0.network()
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 client address
    /// (`::ffff:a.b.c.d`) is treated as the IPv4 address `a.b.c.d`; an IPv4
    /// client is in an IPv6 network if its mapped form is (so `::/0` and
    /// `::ffff:0:0/96` contain every IPv4 client). A native IPv6 client is
    /// never in an IPv4 network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.0, ip.to_canonical()) {
            (ipnet::IpNet::V6(n), IpAddr::V4(c)) => n.contains(&c.to_ipv6_mapped()),
            (net, c) => net.contains(&c),
        }
    }
}

impl FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.addr(), self.0.prefix_len())
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The bundled IANA time zone database. Bundled rather than read from
/// `/usr/share/zoneinfo` so evaluation needs no file system and every node of
/// a deployment applies the same rules.
fn tzdb() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// A daily wall-clock window in an IANA time zone, optionally limited to some
/// days of the week. Wire form:
/// `{"after":"HH:MM","before":"HH:MM","timezone":"Europe/Paris","days":["mon","fri"]}`.
#[derive(Clone, PartialEq)]
pub struct TimeWindow {
    /// Minutes since local midnight, inclusive.
    after: u16,
    /// Minutes since local midnight, exclusive.
    before: u16,
    tz_name: String,
    tz: TimeZone,
    /// Bit `i` set = day `i` (Monday = 0) allowed; `None` = every day.
    days: Option<u8>,
}

impl TimeWindow {
    /// Builds a window: `after` and `before` are `"HH:MM"` (24-hour, `00:00` to
    /// `23:59`) and must differ; `timezone` is an IANA name (default `"UTC"`);
    /// `days`, if given, is a non-empty list of `mon`..`sun` (full English
    /// names and any letter case accepted).
    pub fn new(
        after: &str,
        before: &str,
        timezone: Option<&str>,
        days: Option<&[&str]>,
    ) -> Result<Self, Error> {
        let after = parse_hhmm("after", after)?;
        let before = parse_hhmm("before", before)?;
        if after == before {
            return Err(Error::invalid(
                "time_window.after and time_window.before must differ \
                 (omit time_window for no time restriction)",
            ));
        }
        let name = timezone.unwrap_or("UTC");
        let tz = (name.len() <= 64)
            .then(|| tzdb().get(name).ok())
            .flatten()
            .ok_or_else(|| {
                let shown = if name.len() > 64 { "(too long)" } else { name };
                Error::invalid(format!(
                    "time_window.timezone {shown:?} is not a known IANA time zone \
                     (e.g. \"UTC\", \"Europe/Paris\", \"America/New_York\")"
                ))
            })?;
        let tz_name = tz.iana_name().unwrap_or(name).to_owned();
        let days = match days {
            None => None,
            Some([]) => {
                return Err(Error::invalid(
                    "time_window.days must list at least one day; omit it for every day",
                ));
            }
            Some(list) => {
                let mut mask = 0u8;
                for d in list {
                    mask |= 1 << parse_day(d)?;
                }
                Some(mask)
            }
        };
        Ok(TimeWindow {
            after,
            before,
            tz_name,
            tz,
            days,
        })
    }

    /// The IANA name of the window's time zone.
    pub fn timezone(&self) -> &str {
        &self.tz_name
    }

    /// Whether `now` falls in the window. See the module docs for the rule;
    /// in short: local wall-clock minute in `[after, before)`, wrapping past
    /// midnight when `after > before`, on an allowed day counted from the
    /// window's start.
    pub fn contains(&self, now: OffsetDateTime) -> bool {
        let Ok(ts) = jiff::Timestamp::from_nanosecond(now.unix_timestamp_nanos()) else {
            return false;
        };
        let local = self.tz.to_datetime(ts);
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let today = local.weekday().to_monday_zero_offset() as u8;
        let start_day = if self.after < self.before {
            if self.after <= minute && minute < self.before {
                today
            } else {
                return false;
            }
        } else if minute >= self.after {
            today
        } else if minute < self.before {
            // The window started the previous local day.
            (today + 6) % 7
        } else {
            return false;
        };
        self.days.is_none_or(|mask| mask & (1 << start_day) != 0)
    }
}

fn parse_hhmm(field: &str, s: &str) -> Result<u16, Error> {
    let bad = || {
        Error::invalid(format!(
            "time_window.{field} must be a 24-hour time \"HH:MM\" from \"00:00\" to \"23:59\""
        ))
    };
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return Err(bad());
    }
    let digit = |i: usize| {
        b[i].is_ascii_digit()
            .then(|| u16::from(b[i] - b'0'))
            .ok_or_else(bad)
    };
    let h = digit(0)? * 10 + digit(1)?;
    let m = digit(3)? * 10 + digit(4)?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse_day(s: &str) -> Result<u8, Error> {
    let lower = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .zip(DAY_FULL_NAMES)
        .position(|(short, full)| lower == *short || lower == full)
        .map(|i| i as u8)
        .ok_or_else(|| {
            let shown = if s.len() > 16 { "(too long)" } else { s };
            Error::invalid(format!(
                "time_window.days entry {shown:?} is not a day; use mon, tue, wed, thu, fri, sat or sun"
            ))
        })
}

fn fmt_hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl fmt::Debug for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindow")
            .field("after", &fmt_hhmm(self.after))
            .field("before", &fmt_hhmm(self.before))
            .field("timezone", &self.tz_name)
            .field("days", &RawTimeWindow::from(self.clone()).days)
            .finish()
    }
}

/// The wire form of [`TimeWindow`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeWindow {
    after: String,
    before: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<Vec<String>>,
}

impl From<TimeWindow> for RawTimeWindow {
    fn from(w: TimeWindow) -> Self {
        RawTimeWindow {
            after: fmt_hhmm(w.after),
            before: fmt_hhmm(w.before),
            timezone: Some(w.tz_name),
            days: w.days.map(|mask| {
                (0..7)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| DAY_NAMES[i].to_owned())
                    .collect()
            }),
        }
    }
}

impl Serialize for TimeWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawTimeWindow::from(self.clone()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimeWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTimeWindow::deserialize(d)?;
        let days: Option<Vec<&str>> = raw
            .days
            .as_ref()
            .map(|v| v.iter().map(String::as_str).collect());
        TimeWindow::new(
            &raw.after,
            &raw.before,
            raw.timezone.as_deref(),
            days.as_deref(),
        )
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }
    fn conds(v: serde_json::Value) -> Conditions {
        Conditions::from_json(&v).unwrap()
    }
    const NOON: OffsetDateTime = datetime!(2024-06-12 12:00 UTC); // a Wednesday

    #[test]
    fn no_conditions_always_pass() {
        for v in [json!(null), json!({})] {
            let c = conds(v);
            assert!(c.is_empty());
            assert!(c.check(None, NOON));
        }
    }

    #[test]
    fn rejects_unknown_keys_and_malformed_values() {
        for v in [
            json!({"ip_alowlist": ["10.0.0.0/8"]}),
            json!({"time_window": {"after": "08:00", "before": "20:00", "tz": "UTC"}}),
            json!({"ip_allowlist": []}),
            json!({"ip_allowlist": "10.0.0.0/8"}),
            json!({"ip_allowlist": ["10.0.0.0/33"]}),
            json!({"ip_allowlist": ["10.1.2.3/8"]}),
            json!({"ip_allowlist": ["10.0.0.0/"]}),
            json!({"ip_allowlist": ["10.0.0.0/+8"]}),
            json!({"ip_allowlist": ["fe80::1%eth0"]}),
            json!({"ip_allowlist": ["example.com"]}),
            json!({"ip_allowlist": ["2001:db8::/129"]}),
            json!({"time_window": {"after": "8:00", "before": "20:00"}}),
            json!({"time_window": {"after": "08:00", "before": "24:00"}}),
            json!({"time_window": {"after": "08:60", "before": "20:00"}}),
            json!({"time_window": {"after": "08:00", "before": "08:00"}}),
            json!({"time_window": {"after": "08:00"}}),
            json!({"time_window": {"after": "08:00", "before": "20:00", "timezone": "Mars/Olympus"}}),
            json!({"time_window": {"after": "08:00", "before": "20:00", "days": []}}),
            json!({"time_window": {"after": "08:00", "before": "20:00", "days": ["funday"]}}),
            json!([]),
            json!("x"),
        ] {
            assert!(
                matches!(Conditions::from_json(&v), Err(Error::Invalid(_))),
                "{v} should be rejected"
            );
        }
        let Err(Error::Invalid(msg)) = Conditions::from_json(&json!({"ip_alowlist": []})) else {
            panic!()
        };
        assert!(msg.contains("ip_alowlist"), "{msg}");
        let Err(Error::Invalid(msg)) =
            Conditions::from_json(&json!({"ip_allowlist": ["10.1.2.3/8"]}))
        else {
            panic!()
        };
        assert!(msg.contains("10.0.0.0/8"), "{msg}");
    }

    #[test]
    fn round_trips_canonically() {
        let c = conds(json!({
            "ip_allowlist": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
            "time_window": {"after": "22:00", "before": "06:00", "timezone": "europe/paris", "days": ["Friday", "MON"]},
        }));
        let out = c.to_json();
        assert_eq!(
            out,
            json!({
                "ip_allowlist": ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"],
                "time_window": {"after": "22:00", "before": "06:00", "timezone": "Europe/Paris", "days": ["mon", "fri"]},
            })
        );
        assert_eq!(conds(out), c);
        assert_eq!(conds(json!({"ip_allowlist": null})), Conditions::default());
        assert_eq!(
            conds(json!({"time_window": {"after": "08:00", "before": "20:00"}}))
                .time_window
                .unwrap()
                .timezone(),
            "UTC"
        );
    }

    #[test]
    fn ipv4_allowlist() {
        let c = conds(json!({"ip_allowlist": ["10.0.0.0/8", "192.0.2.7"]}));
        assert!(c.check(ip("10.1.2.3"), NOON));
        assert!(c.check(ip("192.0.2.7"), NOON));
        assert!(!c.check(ip("192.0.2.8"), NOON), "bare address is a /32");
        assert!(!c.check(ip("11.0.0.1"), NOON));
        assert!(!c.check(ip("2001:db8::1"), NOON), "IPv6 client, IPv4 list");
        assert!(!c.check(None, NOON), "unknown client IP fails");
    }

    #[test]
    fn ipv4_mapped_client_matches_ipv4_cidr() {
        let c = conds(json!({"ip_allowlist": ["10.0.0.0/8"]}));
        assert!(c.check(ip("::ffff:10.1.2.3"), NOON));
        assert!(!c.check(ip("::ffff:11.1.2.3"), NOON));
        // And an IPv6 network covering the mapped range contains IPv4 clients.
        let c = conds(json!({"ip_allowlist": ["::ffff:10.0.0.0/104"]}));
        assert!(c.check(ip("10.9.9.9"), NOON));
        assert!(!c.check(ip("11.9.9.9"), NOON));
        let c = conds(json!({"ip_allowlist": ["0.0.0.0/0"]}));
        assert!(c.check(ip("1.2.3.4"), NOON));
        assert!(!c.check(ip("2001:db8::1"), NOON));
    }

    #[test]
    fn ipv6_allowlist() {
        let c = conds(json!({"ip_allowlist": ["2001:db8::/32", "::1"]}));
        assert!(c.check(ip("2001:db8:1::5"), NOON));
        assert!(c.check(ip("::1"), NOON), "bare address is a /128");
        assert!(!c.check(ip("::2"), NOON));
        assert!(!c.check(ip("2001:db9::1"), NOON));
        assert!(!c.check(ip("10.0.0.1"), NOON));
        assert!(!c.check(None, NOON));
        let all = conds(json!({"ip_allowlist": ["::/0"]}));
        assert!(all.check(ip("2001:db9::1"), NOON));
    }

    #[test]
    fn cidr_edges() {
        let c = Cidr::parse("10.0.0.0/31").unwrap();
        assert!(c.contains("10.0.0.1".parse().unwrap()));
        assert!(!c.contains("10.0.0.2".parse().unwrap()));
        assert_eq!(c.to_string(), "10.0.0.0/31");
        assert_eq!(Cidr::parse("::/0").unwrap().prefix_len(), 0);
    }

    fn window(after: &str, before: &str, tz: Option<&str>, days: Option<&[&str]>) -> TimeWindow {
        TimeWindow::new(after, before, tz, days).unwrap()
    }

    #[test]
    fn time_window_inside_and_outside() {
        let w = window("08:00", "20:00", None, None);
        assert!(
            w.contains(datetime!(2024-06-12 08:00 UTC)),
            "after is inclusive"
        );
        assert!(w.contains(datetime!(2024-06-12 19:59:59 UTC)));
        assert!(
            !w.contains(datetime!(2024-06-12 20:00 UTC)),
            "before is exclusive"
        );
        assert!(!w.contains(datetime!(2024-06-12 07:59:59 UTC)));
        assert!(!w.contains(datetime!(2024-06-12 23:00 UTC)));
        // `now` in another offset is the same instant.
        assert!(!w.contains(datetime!(2024-06-12 12:00 +09:00)));
        // via Conditions
        let c = conds(json!({"time_window": {"after": "08:00", "before": "20:00"}}));
        assert!(c.check(None, NOON));
        assert!(!c.check(None, datetime!(2024-06-12 21:00 UTC)));
    }

    #[test]
    fn time_window_crossing_midnight() {
        let w = window("22:00", "06:00", None, None);
        assert!(w.contains(datetime!(2024-06-12 23:30 UTC)));
        assert!(w.contains(datetime!(2024-06-13 00:00 UTC)));
        assert!(w.contains(datetime!(2024-06-13 05:59 UTC)));
        assert!(!w.contains(datetime!(2024-06-13 06:00 UTC)));
        assert!(!w.contains(datetime!(2024-06-12 12:00 UTC)));
        assert!(!w.contains(datetime!(2024-06-12 21:59 UTC)));
    }

    #[test]
    fn time_window_in_other_time_zone() {
        // 09:00–17:00 New York. In June (EDT, UTC-4): 13:00–21:00 UTC.
        let w = window("09:00", "17:00", Some("America/New_York"), None);
        assert!(w.contains(datetime!(2024-06-12 13:00 UTC)));
        assert!(w.contains(datetime!(2024-06-12 20:59 UTC)));
        assert!(!w.contains(datetime!(2024-06-12 12:59 UTC)));
        assert!(!w.contains(datetime!(2024-06-12 21:00 UTC)));
        // In January (EST, UTC-5): 14:00–22:00 UTC.
        assert!(!w.contains(datetime!(2024-01-10 13:30 UTC)));
        assert!(w.contains(datetime!(2024-01-10 21:30 UTC)));
        // On the DST switch day (2024-03-10, 02:00 EST -> 03:00 EDT) the
        // window follows the wall clock: 09:00 EDT is 13:00 UTC.
        assert!(w.contains(datetime!(2024-03-10 13:00 UTC)));
        assert!(!w.contains(datetime!(2024-03-10 12:59 UTC)));
        // Just before and after the spring-forward gap.
        let night = window("01:00", "03:30", Some("America/New_York"), None);
        assert!(night.contains(datetime!(2024-03-10 06:59 UTC))); // 01:59 EST
        assert!(night.contains(datetime!(2024-03-10 07:00 UTC))); // 03:00 EDT
        assert!(!night.contains(datetime!(2024-03-10 07:30 UTC))); // 03:30 EDT
        // Fall back (2024-11-03): 01:30 happens twice, both inside.
        let w = window("01:00", "02:00", Some("America/New_York"), None);
        assert!(w.contains(datetime!(2024-11-03 05:30 UTC))); // 01:30 EDT
        assert!(w.contains(datetime!(2024-11-03 06:30 UTC))); // 01:30 EST
        assert!(!w.contains(datetime!(2024-11-03 07:00 UTC))); // 02:00 EST
        // A zone east of UTC whose local date differs from the UTC date.
        let tokyo = window("08:00", "10:00", Some("Asia/Tokyo"), Some(&["thu"]));
        // 2024-06-12 23:30 UTC is Thursday 2024-06-13 08:30 in Tokyo.
        assert!(tokyo.contains(datetime!(2024-06-12 23:30 UTC)));
        assert!(!tokyo.contains(datetime!(2024-06-12 08:30 UTC)));
    }

    #[test]
    fn time_window_days() {
        // 2024-06-12 is a Wednesday.
        let w = window("08:00", "20:00", None, Some(&["mon", "wed"]));
        assert!(w.contains(datetime!(2024-06-12 12:00 UTC)));
        assert!(w.contains(datetime!(2024-06-10 12:00 UTC)));
        assert!(!w.contains(datetime!(2024-06-11 12:00 UTC)));
        assert!(!w.contains(datetime!(2024-06-16 12:00 UTC)));
        // Cross-midnight: the day that counts is the day the window started.
        let fri_night = window("22:00", "02:00", None, Some(&["fri"]));
        assert!(fri_night.contains(datetime!(2024-06-14 23:00 UTC))); // Fri 23:00
        assert!(fri_night.contains(datetime!(2024-06-15 01:00 UTC))); // Sat 01:00, started Fri
        assert!(!fri_night.contains(datetime!(2024-06-15 23:00 UTC))); // Sat 23:00
        assert!(!fri_night.contains(datetime!(2024-06-14 01:00 UTC))); // Fri 01:00, started Thu
        // Sunday -> Monday wraps the week.
        let sun_night = window("23:00", "01:00", None, Some(&["sunday"]));
        assert!(sun_night.contains(datetime!(2024-06-17 00:30 UTC))); // Mon 00:30
    }
}
