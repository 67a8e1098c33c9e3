//! The read decision for a listing, made once per listing rather than once
//! per path.
//!
//! A listing shows exactly the paths [`authorize`](super::authorize) would let
//! the caller read. Almost all of that decision does not depend on the path:
//! the organisation, the token's vault binding, the vault's kind, the caller's
//! role and creatorship, and which of the caller's policies are live for `read`
//! right now (principal, expiry, permissions and conditions depend only on the
//! caller, the client address and the time). [`ReadFilter::new`] settles all of
//! that up front; [`ReadFilter::allows`] is left with the path-dependent part:
//! the token's scope patterns (parsed once) and the live policies' patterns, in
//! rank order, the first match deciding (as [`evaluate`](crate::policy::evaluate)
//! picks the highest-ranked applicable policy). When nothing is left to depend
//! on the path, the answer is computed once.
//!
//! The equivalence with `authorize(…, Action::Read, Some(path), …)` is checked
//! by a property test below over random principals, vaults, policies and paths.

use std::cmp::Reverse;

use time::OffsetDateTime;

use super::{VaultFacts, VaultKind, is_under_agent};
use crate::policy::{self, Effect, PathPattern, Permission, Policy};
use crate::{Principal, Role, SecretPath, Subject};

/// Which paths of one vault a caller may read, decided once for a listing.
#[derive(Debug)]
pub struct ReadFilter<'a> {
    decision: Decision<'a>,
}

#[derive(Debug)]
enum Decision<'a> {
    /// The same answer for every path.
    Every(bool),
    /// Path by path.
    PerPath(PerPath<'a>),
}

#[derive(Debug)]
struct PerPath<'a> {
    /// The token's path ceiling; `None` when it is open.
    ceiling: Option<Vec<PathPattern>>,
    /// The policies that apply to a read of some path, highest rank first.
    live: Vec<&'a Policy>,
    /// What a path no live policy matches gets (the creator / owner bypass).
    no_match: bool,
    /// In the agent-keys vault: the rules of that vault.
    agent_keys: Option<AgentKeys>,
}

#[derive(Debug)]
struct AgentKeys {
    /// An owner or admin reads every agent's keys (unless a policy denies).
    admin: bool,
    /// The calling agent's id, whose own keys it may read with a grant.
    agent: Option<String>,
}

impl<'a> ReadFilter<'a> {
    /// Settles everything about reading in `vault` that doesn't depend on the
    /// path. `policies` are the vault's policies naming `who`, as for
    /// [`authorize`](super::authorize).
    pub fn new(
        who: &Principal,
        vault: &VaultFacts,
        policies: &'a [Policy],
        now: OffsetDateTime,
    ) -> Self {
        let refused = ReadFilter {
            decision: Decision::Every(false),
        };
        if who.org_id != vault.org_id
            || (!who.vault_ids.is_empty() && !who.vault_ids.contains(&vault.id))
        {
            return refused;
        }
        let ceiling = (!policy::scope_ceiling_open(&who.scopes)).then(|| {
            // As `scope_allows`: a path-like scope that is not a pattern matches nothing.
            policy::path_like(&who.scopes)
                .filter_map(|s| PathPattern::parse(s).ok())
                .collect::<Vec<_>>()
        });
        let mut live: Vec<&Policy> = policies
            .iter()
            .filter(|p| {
                p.principal == who.subject
                    && !p.is_expired(now)
                    && p.permissions.iter().any(|g| g.grants(Permission::Read))
                    && p.conditions.check(who.ip, now)
            })
            .collect();
        live.sort_by_key(|p| Reverse((p.priority, p.effect == Effect::Deny, Reverse(p.id))));
        let (no_match, agent_keys) = match vault.kind {
            VaultKind::Standard => (
                vault.created_by == Some(who.subject) || who.role == Some(Role::Owner),
                None,
            ),
            VaultKind::AgentKeys => {
                let admin = matches!(who.role, Some(Role::Owner | Role::Admin));
                let agent = match who.subject {
                    Subject::Agent(id) => Some(id.to_string()),
                    Subject::User(_) => None,
                };
                (admin, Some(AgentKeys { admin, agent }))
            }
        };
        let per_path = PerPath {
            ceiling,
            live,
            no_match,
            agent_keys,
        };
        let decision = match per_path.constant() {
            Some(answer) => Decision::Every(answer),
            None => Decision::PerPath(per_path),
        };
        ReadFilter { decision }
    }

    /// Whether the caller may read `path`: what
    /// `authorize(who, vault, Action::Read, Some(path), policies, now).is_ok()` says.
    pub fn allows(&self, path: &SecretPath) -> bool {
        match &self.decision {
            Decision::Every(answer) => *answer,
            Decision::PerPath(p) => p.allows(path),
        }
    }
}

impl PerPath<'_> {
    /// The answer when it can't depend on the path: with an open ceiling and
    /// no live policy, every path gets what an unmatched one gets.
    fn constant(&self) -> Option<bool> {
        (self.ceiling.is_none() && self.live.is_empty()).then_some(self.no_match)
    }

    fn allows(&self, path: &SecretPath) -> bool {
        if let Some(ceiling) = &self.ceiling
            && !ceiling.iter().any(|p| p.matches(path))
        {
            return false;
        }
        let winner = self.live.iter().find(|p| p.pattern.matches(path));
        let Some(keys) = &self.agent_keys else {
            return winner.map_or(self.no_match, |p| p.effect == Effect::Allow);
        };
        match winner {
            Some(p) if p.effect == Effect::Deny => false,
            _ if keys.admin => true,
            Some(_) => keys
                .agent
                .as_deref()
                .is_some_and(|id| is_under_agent(path.as_str(), id)),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use proptest::prelude::*;
    use time::Duration;

    use super::*;
    use crate::authz::{Action, authorize};
    use crate::policy::{Cidr, Conditions};
    use crate::{AgentId, OrgId, PolicyId, UserId, VaultId};

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-02 12:00 UTC);

    /// Everything a world is built from, as small indices proptest can shrink.
    #[derive(Debug, Clone)]
    struct Case {
        subject: usize,
        role: usize,
        same_org: bool,
        binding: usize,
        scopes: Vec<usize>,
        ip: bool,
        agent_keys: bool,
        creator: usize,
        policies: Vec<PolicyCase>,
        paths: Vec<Vec<usize>>,
    }

    /// (principal: other or the caller, pattern, permissions, deny, priority,
    /// expiry: none / past / future, an IP allowlist).
    type PolicyCase = (usize, usize, Vec<usize>, bool, i32, usize, bool);

    const PATTERNS: [&str; 9] = [
        "**",
        "a/**",
        "a/*",
        "a/b",
        "*/b",
        "**/b",
        "agents/**",
        "agents/*/**",
        "*/**",
    ];
    const SCOPES: [&str; 7] = ["a/**", "*/b", "*", "vaults:read", "", "a*", "agents/**"];
    const SEGMENTS: [&str; 4] = ["a", "b", "c", "agents"];

    fn case() -> impl Strategy<Value = Case> {
        let policy = (
            0usize..3,
            0..PATTERNS.len(),
            prop::collection::vec(0usize..4, 1..3),
            any::<bool>(),
            0i32..3,
            0usize..3,
            any::<bool>(),
        );
        (
            (0usize..3, 0usize..4, prop::bool::weighted(0.9), 0usize..3),
            (
                prop::collection::vec(0..SCOPES.len(), 0..3),
                any::<bool>(),
                any::<bool>(),
                0usize..3,
            ),
            prop::collection::vec(policy, 0..5),
            prop::collection::vec(prop::collection::vec(0usize..5, 1..5), 1..12),
        )
            .prop_map(
                |(
                    (subject, role, same_org, binding),
                    (scopes, ip, agent_keys, creator),
                    policies,
                    paths,
                )| Case {
                    subject,
                    role,
                    same_org,
                    binding,
                    scopes,
                    ip,
                    agent_keys,
                    creator,
                    policies,
                    paths,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The filter answers exactly what `authorize` answers for a read of
        /// each path, whoever asks, whatever the policies.
        #[test]
        fn agrees_with_authorize(c in case()) {
            let org = OrgId::new();
            let vault_id = VaultId::new();
            let agent = AgentId::new();
            let subjects = [
                Subject::User(UserId::new()),
                Subject::User(UserId::new()),
                Subject::Agent(agent),
            ];
            let roles = [None, Some(Role::Owner), Some(Role::Admin), Some(Role::Member)];
            let who = Principal {
                subject: subjects[c.subject],
                org_id: if c.same_org { org } else { OrgId::new() },
                role: roles[c.role],
                vault_ids: match c.binding {
                    0 => vec![],
                    1 => vec![vault_id],
                    _ => vec![VaultId::new()],
                },
                scopes: c.scopes.iter().map(|&i| SCOPES[i].to_owned()).collect(),
                token_id: None,
                token_exp: None,
                ip: c.ip.then(|| IpAddr::from([10, 1, 2, 3])),
                intents_api: false,
            };
            let vault = VaultFacts {
                id: vault_id,
                org_id: org,
                created_by: [Some(subjects[0]), Some(subjects[1]), None][c.creator],
                kind: if c.agent_keys { VaultKind::AgentKeys } else { VaultKind::Standard },
            };
            let policies: Vec<Policy> = c
                .policies
                .iter()
                .map(|(principal, pattern, perms, deny, priority, expiry, ip_only)| Policy {
                    id: PolicyId(uuid::Uuid::new_v4()),
                    vault_id,
                    pattern: PathPattern::parse(PATTERNS[*pattern]).unwrap(),
                    principal: if *principal == 0 { subjects[(c.subject + 1) % 3] } else { who.subject },
                    permissions: perms.iter().map(|&i| Permission::ALL[i]).collect(),
                    conditions: Conditions {
                        ip_allowlist: if *ip_only { vec![Cidr::parse("10.0.0.0/8").unwrap()] } else { vec![] },
                        time_window: None,
                    },
                    expires_at: [None, Some(NOW - Duration::hours(1)), Some(NOW + Duration::hours(1))][*expiry],
                    effect: if *deny { Effect::Deny } else { Effect::Allow },
                    priority: *priority,
                })
                .collect();
            let filter = ReadFilter::new(&who, &vault, &policies, NOW);
            let agent_segment = agent.to_string();
            for segs in &c.paths {
                let raw: Vec<&str> = segs
                    .iter()
                    .map(|&i| SEGMENTS.get(i).copied().unwrap_or(&agent_segment))
                    .collect();
                let path = SecretPath::parse(&raw.join("/")).unwrap();
                let expected = authorize(&who, &vault, Action::Read, Some(&path), &policies, NOW).is_ok();
                prop_assert_eq!(filter.allows(&path), expected, "{:?}", path);
            }
        }
    }

    /// A caller whose answer can't depend on the path is decided once.
    #[test]
    fn decided_once_without_path_rules() {
        let org = OrgId::new();
        let owner = Principal {
            subject: Subject::User(UserId::new()),
            org_id: org,
            role: Some(Role::Owner),
            vault_ids: vec![],
            scopes: vec![],
            token_id: None,
            token_exp: None,
            ip: None,
            intents_api: false,
        };
        let vault = VaultFacts {
            id: VaultId::new(),
            org_id: org,
            created_by: None,
            kind: VaultKind::Standard,
        };
        let f = ReadFilter::new(&owner, &vault, &[], NOW);
        assert!(matches!(f.decision, Decision::Every(true)));
        let mut stranger = owner.clone();
        stranger.org_id = OrgId::new();
        let f = ReadFilter::new(&stranger, &vault, &[], NOW);
        assert!(matches!(f.decision, Decision::Every(false)));
        let mut scoped = owner;
        scoped.scopes = vec!["a/**".into()];
        let f = ReadFilter::new(&scoped, &vault, &[], NOW);
        assert!(f.allows(&SecretPath::parse("a/b").unwrap()));
        assert!(!f.allows(&SecretPath::parse("b/a").unwrap()));
    }
}
