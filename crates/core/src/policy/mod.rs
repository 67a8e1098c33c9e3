//! The vault policy engine: pure functions deciding whether a principal's
//! policies grant an action on a secret path. No I/O; the caller loads the
//! policies of one vault and passes them in.
//!
//! # Path patterns (`secret_path_pattern`)
//!
//! A pattern is a `/`-separated list of segments. Each segment is exactly one of:
//!
//! - `*`: matches exactly one path segment;
//! - `**`: matches zero or more path segments, at any position;
//! - a literal: ASCII letters, digits, `_` and `-` (the [`SecretPath`] segment
//!   rule), matched exactly and case-sensitively.
//!
//! A pattern must match the *whole* path. Examples: `**` matches every path;
//! `api-keys/*` matches `api-keys/stripe` but neither `api-keys/a/b` nor
//! `api-keys`; `api-keys/**` matches `api-keys/stripe`, `api-keys/a/b` **and**
//! `api-keys` itself (zero segments); `a/**/b` matches `a/b` and `a/x/y/b`;
//! `**/password` matches `password` and `x/y/password`; `prod/db` matches only
//! `prod/db`.
//!
//! Rejected with a 400: an empty pattern, empty segments (leading, trailing or
//! doubled `/`), partial wildcards such as `ab*`, `*.json` or `***`, any other
//! character (`.`, spaces, `%`…), more than 512 bytes or 32 segments, and a
//! pattern that begins or ends with a literal not beginning/ending with a
//! letter or digit (no path could match it). Matching costs at most
//! (path segments × pattern segments) steps; there is no backtracking.
//!
//! # Permissions
//!
//! `read`, `write`, `rotate`, `delete` (any other string is a 400). A policy
//! listing a permission *grants* these requested actions:
//!
//! | listed   | grants                                |
//! |----------|---------------------------------------|
//! | `read`   | `read` only                           |
//! | `write`  | `write`, `delete` and `rotate`        |
//! | `rotate` | `rotate`                              |
//! | `delete` | `delete`                              |
//!
//! `read` covers reading a value, its versions and seeing the path in a
//! listing; nothing but `read` grants `read`, and `read` grants nothing else.
//!
//! # Conditions
//!
//! `conditions` is a JSON object with the optional keys below; any other key is
//! a 400, so a typo can't turn a restricted grant into an unrestricted one.
//! All present conditions must hold.
//!
//! - `ip_allowlist`: a non-empty list of IPv4/IPv6 CIDRs (`"10.0.0.0/8"`,
//!   `"2001:db8::/32"`); a bare address means `/32` or `/128`. A CIDR with host
//!   bits set (`"10.1.2.3/8"`) is a 400. The client address must be in at least
//!   one entry; when the client address is unknown the condition fails. An
//!   IPv4-mapped IPv6 client (`::ffff:10.1.2.3`) is matched as the IPv4 address
//!   `10.1.2.3`; an IPv4 client is inside an IPv6 CIDR when its mapped form is
//!   (`::/0` contains everything, `0.0.0.0/0` only IPv4). At most 256 entries.
//! - `time_window`: `{"after":"HH:MM","before":"HH:MM","timezone":"UTC","days":["mon",…]}`.
//!   `after`/`before` are 24-hour wall-clock times (`00:00`–`23:59`) and must
//!   differ; `timezone` is an IANA name, default `UTC` (the bundled IANA
//!   database is used, so daylight-saving changes follow the real rules);
//!   `days` is optional, a non-empty list of `mon tue wed thu fri sat sun`
//!   (full English names and any case accepted). The request time is converted
//!   to local wall-clock time in `timezone`, truncated to the minute:
//!   - if `after < before`, it is inside when `after <= local < before`;
//!   - if `after > before`, the window crosses midnight: inside when
//!     `local >= after` (the window started today) or `local < before` (it
//!     started yesterday);
//!   - with `days`, the day that must be listed is the local day **on which
//!     the window started**: for `22:00`–`02:00` with `days:["fri"]`, Friday
//!     23:00 and Saturday 01:00 are inside, Friday 01:00 is not.
//!
//!   Because the window is wall-clock time, on a daylight-saving change a
//!   window lasts an hour less or more; a local time that happens twice is
//!   inside both times.
//!
//! # Policies and the decision
//!
//! [`evaluate`] looks at every policy given and keeps the *applicable* ones: a
//! policy applies to a request when all of these hold:
//!
//! 1. its principal is the caller;
//! 2. it has not expired: `expires_at` is absent or later than now (a policy
//!    is expired from the instant `expires_at` on);
//! 3. its pattern matches the requested path (for a vault-level request, with
//!    no path, see below);
//! 4. one of its permissions grants the requested action (table above);
//! 5. its conditions hold.
//!
//! The same test applies to `deny` policies: a deny whose pattern, permissions
//! or conditions don't fit the request does not apply (a deny listing `write`
//! blocks `write`, `delete` and `rotate`, exactly what an allow listing `write`
//! would grant).
//!
//! Among the applicable policies, the one with the highest `priority` decides;
//! at equal priority a `deny` beats an `allow`; among equals the policy with
//! the smallest id is reported, so the answer never depends on the order the
//! policies were loaded in. With no applicable policy the outcome is
//! [`PolicyOutcome::NoMatch`], which callers treat as "not granted" (the vault
//! owner bypass is the caller's business). `effect` defaults to `allow` and
//! `priority` to 0; a priority must be >= 0 ([`Policy::validate`]).
//!
//! **Vault-level requests** (`path = None`, e.g. "may this caller list this
//! vault at all"): an `allow` policy's pattern is not consulted, since every
//! pattern names some path; a `deny` policy applies only if its pattern is
//! universal, i.e. matches every possible path (`**`, `**/*`, `*/**`…). So an
//! allow on `dev/**` lets the caller list the vault even with a higher deny on
//! `prod/**`; the listing is then filtered path by path with what a read of
//! that exact path would be told ([`crate::authz::ReadFilter`]), which by
//! policy requires an `Allow` for `read` on it ([`may_read`]).
//!
//! # Token scope ceiling
//!
//! [`scope_allows`] applies an agent token's `scopes` as a ceiling on paths,
//! before policies. Only *path-like* scopes count: a scope containing `:`
//! (a capability such as `vaults:read`) and the empty string are ignored. With
//! no path-like scope the ceiling is open. A scope that is exactly `*` also
//! opens the ceiling: 1claw documents `["*"]` as the default meaning
//! "everything", although as a glob `*` would match single-segment paths only.
//! Otherwise at least one path-like scope, read as a path pattern, must match
//! the path; a path-like scope that is not a valid pattern matches nothing.

mod conditions;
mod pattern;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, PolicyId, SecretPath, Subject, VaultId};

pub use conditions::{Cidr, Conditions, MAX_IP_ALLOWLIST, TimeWindow};
pub use pattern::PathPattern;

/// A permission a policy can list, and an action a request can want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read values, versions and listings.
    Read,
    /// Create versions; grants `delete` and `rotate` too.
    Write,
    /// Have the server generate a new version.
    Rotate,
    /// Delete a secret.
    Delete,
}

impl Permission {
    /// Every permission, in wire order.
    pub const ALL: [Permission; 4] = [
        Permission::Read,
        Permission::Write,
        Permission::Rotate,
        Permission::Delete,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Rotate => "rotate",
            Permission::Delete => "delete",
        }
    }

    /// Whether a policy listing `self` grants a request for `wanted`:
    /// `write` grants `write`, `delete` and `rotate`; every other permission
    /// grants only itself.
    pub fn grants(self, wanted: Permission) -> bool {
        self == wanted
            || (self == Permission::Write
                && matches!(wanted, Permission::Delete | Permission::Rotate))
    }

    /// Parses a policy's `permissions` array: each entry must be a known
    /// permission and the list must not be empty. Duplicates are dropped.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Permission>, Error> {
        if items.is_empty() {
            return Err(Error::invalid("permissions must not be empty"));
        }
        let mut out = Vec::with_capacity(items.len());
        for s in items {
            let p = s.as_ref().parse()?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::invalid("permission must be one of read, write, rotate, delete"))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a policy grants or refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants (the default).
    #[default]
    Allow,
    /// Refuses, overriding allows of the same or lower priority.
    Deny,
}

impl Effect {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl FromStr for Effect {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "allow" => Ok(Effect::Allow),
            "deny" => Ok(Effect::Deny),
            _ => Err(Error::invalid("effect must be allow or deny")),
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A vault policy (1claw "grant"), as the engine evaluates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Policy id.
    pub id: PolicyId,
    /// The vault it belongs to (the caller passes one vault's policies).
    pub vault_id: VaultId,
    /// `secret_path_pattern`.
    pub pattern: PathPattern,
    /// Who it is for (`principal_type` + `principal_id`).
    pub principal: Subject,
    /// What it grants (or, for a deny, refuses).
    pub permissions: Vec<Permission>,
    /// Conditions that must hold for it to apply.
    pub conditions: Conditions,
    /// From this instant on, the policy no longer applies.
    pub expires_at: Option<OffsetDateTime>,
    /// Allow or deny.
    pub effect: Effect,
    /// Higher wins; must be >= 0.
    pub priority: i32,
}

impl Policy {
    /// Checks the invariants the wire types can't express: a non-empty
    /// permission list and a priority >= 0.
    pub fn validate(&self) -> Result<(), Error> {
        if self.permissions.is_empty() {
            return Err(Error::invalid("permissions must not be empty"));
        }
        if self.priority < 0 {
            return Err(Error::invalid("priority must be 0 or greater"));
        }
        Ok(())
    }

    /// True once `now` has reached `expires_at`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Whether this policy takes part in the decision for the request: rules
    /// 1–5 of the [module documentation](self), including the vault-level
    /// (`path = None`) rule.
    pub fn applies(
        &self,
        who: &Subject,
        path: Option<&SecretPath>,
        wanted: Permission,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> bool {
        self.principal == *who
            && !self.is_expired(now)
            && match path {
                Some(p) => self.pattern.matches(p),
                None => self.effect == Effect::Allow || self.pattern.is_universal(),
            }
            && self.permissions.iter().any(|p| p.grants(wanted))
            && self.conditions.check(ip, now)
    }
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// The deciding policy allows.
    Allow {
        /// The deciding policy.
        policy_id: PolicyId,
    },
    /// The deciding policy denies.
    Deny {
        /// The deciding policy.
        policy_id: PolicyId,
    },
    /// No policy applies.
    NoMatch,
}

impl PolicyOutcome {
    /// True only for [`PolicyOutcome::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, PolicyOutcome::Allow { .. })
    }
}

/// Decides a request against one vault's policies; see the
/// [module documentation](self) for the rules.
pub fn evaluate(
    policies: &[Policy],
    who: &Subject,
    path: Option<&SecretPath>,
    wanted: Permission,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> PolicyOutcome {
    // Rank: priority, then deny over allow, then the smaller id.
    let rank = |p: &Policy| {
        (
            p.priority,
            p.effect == Effect::Deny,
            std::cmp::Reverse(p.id),
        )
    };
    let winner = policies
        .iter()
        .filter(|p| p.applies(who, path, wanted, ip, now))
        .max_by_key(|p| rank(p));
    match winner {
        None => PolicyOutcome::NoMatch,
        Some(p) if p.effect == Effect::Deny => PolicyOutcome::Deny { policy_id: p.id },
        Some(p) => PolicyOutcome::Allow { policy_id: p.id },
    }
}

/// Whether `who` may read `path` by policy: [`evaluate`] for
/// [`Permission::Read`] gives `Allow`. Used to filter listings.
pub fn may_read(
    policies: &[Policy],
    who: &Subject,
    path: &SecretPath,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> bool {
    evaluate(policies, who, Some(path), Permission::Read, ip, now).is_allow()
}

/// The path-like scopes of a credential (capabilities such as `vaults:read`
/// and empty strings are not path-like).
pub(crate) fn path_like(scopes: &[String]) -> impl Iterator<Item = &str> {
    scopes
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty() && !s.contains(':'))
}

/// The token scope ceiling; see the [module documentation](self#token-scope-ceiling).
pub fn scope_allows(scopes: &[String], path: &SecretPath) -> bool {
    scope_ceiling_open(scopes)
        || path_like(scopes).any(|s| PathPattern::parse(s).is_ok_and(|p| p.matches(path)))
}

/// True when the scopes set no path ceiling: no path-like scope, or `*`.
pub fn scope_ceiling_open(scopes: &[String]) -> bool {
    let mut it = path_like(scopes).peekable();
    it.peek().is_none() || it.any(|s| s == "*")
}

#[cfg(test)]
mod tests;
