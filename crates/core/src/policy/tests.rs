use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;

use super::*;
use uuid::Uuid;

use crate::{AgentId, PolicyId, UserId};

const NOW: OffsetDateTime = datetime!(2024-06-12 12:00 UTC);

fn agent() -> Subject {
    Subject::Agent(AgentId::new())
}
fn path(s: &str) -> SecretPath {
    SecretPath::parse(s).unwrap()
}

/// An unconditional, non-expiring allow at priority 0.
fn policy(who: Subject, pattern: &str, perms: &[Permission]) -> Policy {
    Policy {
        id: PolicyId::new(),
        vault_id: VaultId::new(),
        pattern: PathPattern::parse(pattern).unwrap(),
        principal: who,
        permissions: perms.to_vec(),
        conditions: Conditions::default(),
        expires_at: None,
        effect: Effect::Allow,
        priority: 0,
    }
}
fn deny(mut p: Policy, priority: i32) -> Policy {
    p.effect = Effect::Deny;
    p.priority = priority;
    p
}

use Permission::{Delete, Read, Rotate, Write};

fn eval(ps: &[Policy], who: &Subject, p: &str, wanted: Permission) -> PolicyOutcome {
    evaluate(ps, who, Some(&path(p)), wanted, None, NOW)
}

#[test]
fn permission_parsing() {
    for p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
        assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
    }
    for bad in ["", "READ", "admin", "read "] {
        assert!(bad.parse::<Permission>().is_err(), "{bad:?}");
    }
    assert_eq!(
        Permission::parse_list(&["read", "write", "read"]).unwrap(),
        vec![Read, Write]
    );
    assert!(Permission::parse_list::<&str>(&[]).is_err());
    assert!(Permission::parse_list(&["read", "list"]).is_err());
    assert_eq!("deny".parse::<Effect>().unwrap(), Effect::Deny);
    assert_eq!(Effect::default(), Effect::Allow);
    assert!("block".parse::<Effect>().is_err());
}

#[test]
fn permission_implications() {
    // The full grant table.
    let table = [
        (Read, [true, false, false, false]),
        (Write, [false, true, true, true]),
        (Rotate, [false, false, true, false]),
        (Delete, [false, false, false, true]),
    ];
    for (held, row) in table {
        for (wanted, expected) in [Read, Write, Rotate, Delete].into_iter().zip(row) {
            assert_eq!(held.grants(wanted), expected, "{held} grants {wanted}?");
        }
    }
    // And through evaluate.
    let a = agent();
    let w = [policy(a, "**", &[Write])];
    assert!(eval(&w, &a, "x", Write).is_allow());
    assert!(eval(&w, &a, "x", Delete).is_allow(), "write implies delete");
    assert!(eval(&w, &a, "x", Rotate).is_allow(), "write implies rotate");
    assert_eq!(
        eval(&w, &a, "x", Read),
        PolicyOutcome::NoMatch,
        "write is not read"
    );
    let r = [policy(a, "**", &[Read])];
    assert!(eval(&r, &a, "x", Read).is_allow());
    for wanted in [Write, Rotate, Delete] {
        assert_eq!(
            eval(&r, &a, "x", wanted),
            PolicyOutcome::NoMatch,
            "read is not {wanted}"
        );
    }
    let rot = [policy(a, "**", &[Rotate])];
    assert!(eval(&rot, &a, "x", Rotate).is_allow());
    assert_eq!(eval(&rot, &a, "x", Write), PolicyOutcome::NoMatch);
    let del = [policy(a, "**", &[Delete])];
    assert!(eval(&del, &a, "x", Delete).is_allow());
    assert_eq!(eval(&del, &a, "x", Write), PolicyOutcome::NoMatch);
}

#[test]
fn pattern_must_match_path() {
    let a = agent();
    let ps = [policy(a, "prod/*", &[Read])];
    assert!(eval(&ps, &a, "prod/db", Read).is_allow());
    assert_eq!(eval(&ps, &a, "prod/db/x", Read), PolicyOutcome::NoMatch);
    assert_eq!(eval(&ps, &a, "prod", Read), PolicyOutcome::NoMatch);
    assert_eq!(eval(&ps, &a, "dev/db", Read), PolicyOutcome::NoMatch);
}

#[test]
fn principal_must_match() {
    let a = agent();
    let b = agent();
    let ps = [policy(a, "**", &[Read])];
    assert!(eval(&ps, &a, "x", Read).is_allow());
    assert_eq!(eval(&ps, &b, "x", Read), PolicyOutcome::NoMatch);
    // Same uuid, other kind of principal.
    let uuid = Uuid::now_v7();
    let as_agent = Subject::Agent(AgentId(uuid));
    let as_user = Subject::User(UserId(uuid));
    let ps = [policy(as_agent, "**", &[Read])];
    assert_eq!(eval(&ps, &as_user, "x", Read), PolicyOutcome::NoMatch);
    // A deny for someone else doesn't touch us.
    let ps = [policy(a, "**", &[Read]), deny(policy(b, "**", &[Read]), 9)];
    assert!(eval(&ps, &a, "x", Read).is_allow());
}

#[test]
fn expired_policies_do_not_apply() {
    let a = agent();
    let mut p = policy(a, "**", &[Read]);
    p.expires_at = Some(NOW + time::Duration::seconds(1));
    assert!(eval(std::slice::from_ref(&p), &a, "x", Read).is_allow());
    p.expires_at = Some(NOW);
    assert_eq!(
        eval(&[p.clone()], &a, "x", Read),
        PolicyOutcome::NoMatch,
        "expires_at == now"
    );
    p.expires_at = Some(NOW - time::Duration::hours(1));
    assert_eq!(eval(&[p.clone()], &a, "x", Read), PolicyOutcome::NoMatch);
    // An expired deny no longer blocks.
    let allow = policy(a, "**", &[Read]);
    let d = deny(p, 5);
    assert_eq!(
        eval(&[allow.clone(), d], &a, "x", Read),
        PolicyOutcome::Allow {
            policy_id: allow.id
        }
    );
}

#[test]
fn deny_beats_allow_at_equal_priority() {
    let a = agent();
    let allow = policy(a, "**", &[Read]);
    let d = deny(policy(a, "prod/**", &[Read]), 0);
    for ps in [[allow.clone(), d.clone()], [d.clone(), allow.clone()]] {
        assert_eq!(
            eval(&ps, &a, "prod/db", Read),
            PolicyOutcome::Deny { policy_id: d.id }
        );
        assert_eq!(
            eval(&ps, &a, "dev/db", Read),
            PolicyOutcome::Allow {
                policy_id: allow.id
            }
        );
    }
    // The deny's permissions must cover the request: deny write blocks delete
    // and rotate, not read.
    let dw = deny(policy(a, "**", &[Write]), 0);
    let aw = policy(a, "**", &[Read, Write]);
    let ps = [aw.clone(), dw.clone()];
    assert!(eval(&ps, &a, "x", Read).is_allow());
    for wanted in [Write, Delete, Rotate] {
        assert_eq!(
            eval(&ps, &a, "x", wanted),
            PolicyOutcome::Deny { policy_id: dw.id }
        );
    }
}

#[test]
fn higher_priority_wins() {
    let a = agent();
    let mut allow = policy(a, "prod/db", &[Read]);
    allow.priority = 10;
    let d = deny(policy(a, "prod/**", &[Read]), 5);
    let ps = [d.clone(), allow.clone()];
    assert_eq!(
        eval(&ps, &a, "prod/db", Read),
        PolicyOutcome::Allow {
            policy_id: allow.id
        }
    );
    assert_eq!(
        eval(&ps, &a, "prod/other", Read),
        PolicyOutcome::Deny { policy_id: d.id }
    );
    // And a higher deny beats a lower allow.
    let d = deny(policy(a, "prod/**", &[Read]), 11);
    assert_eq!(
        eval(&[allow, d.clone()], &a, "prod/db", Read),
        PolicyOutcome::Deny { policy_id: d.id }
    );
}

#[test]
fn ties_are_order_independent() {
    let a = agent();
    let p1 = policy(a, "**", &[Read]);
    let p2 = policy(a, "x", &[Read]);
    let first = p1.id.min(p2.id);
    assert_eq!(
        eval(&[p1.clone(), p2.clone()], &a, "x", Read),
        PolicyOutcome::Allow { policy_id: first }
    );
    assert_eq!(
        eval(&[p2, p1], &a, "x", Read),
        PolicyOutcome::Allow { policy_id: first }
    );
}

#[test]
fn conditions_gate_allow_and_deny() {
    let a = agent();
    let office = Conditions::from_json(&json!({"ip_allowlist": ["10.0.0.0/8"]})).unwrap();
    let mut allow = policy(a, "**", &[Read]);
    allow.conditions = office.clone();
    let inside: IpAddr = "10.1.1.1".parse().unwrap();
    let outside: IpAddr = "8.8.8.8".parse().unwrap();
    let ev = |ps: &[Policy], ip| evaluate(ps, &a, Some(&path("x")), Read, ip, NOW);
    assert!(ev(std::slice::from_ref(&allow), Some(inside)).is_allow());
    assert_eq!(
        ev(std::slice::from_ref(&allow), Some(outside)),
        PolicyOutcome::NoMatch
    );
    assert_eq!(
        ev(std::slice::from_ref(&allow), None),
        PolicyOutcome::NoMatch
    );
    // A deny whose condition fails does not apply: deny "outside office hours".
    let plain = policy(a, "**", &[Read]);
    let mut d = deny(policy(a, "**", &[Read]), 1);
    d.conditions =
        Conditions::from_json(&json!({"time_window": {"after": "20:00", "before": "08:00"}}))
            .unwrap();
    let ps = [plain.clone(), d.clone()];
    assert!(ev(&ps, None).is_allow(), "12:00 is outside the deny window");
    assert_eq!(
        evaluate(
            &ps,
            &a,
            Some(&path("x")),
            Read,
            None,
            datetime!(2024-06-12 22:00 UTC)
        ),
        PolicyOutcome::Deny { policy_id: d.id }
    );
}

#[test]
fn vault_level_requests() {
    let a = agent();
    let dev = policy(a, "dev/**", &[Read]);
    let prod_deny = deny(policy(a, "prod/**", &[Read]), 9);
    let ev = |ps: &[Policy], wanted| evaluate(ps, &a, None, wanted, None, NOW);
    // Any allow pattern counts; a non-universal deny does not.
    assert_eq!(
        ev(&[dev.clone(), prod_deny.clone()], Read),
        PolicyOutcome::Allow { policy_id: dev.id }
    );
    assert_eq!(
        ev(std::slice::from_ref(&dev), Write),
        PolicyOutcome::NoMatch
    );
    assert_eq!(
        ev(std::slice::from_ref(&prod_deny), Read),
        PolicyOutcome::NoMatch
    );
    // A universal deny does.
    let all_deny = deny(policy(a, "**/*", &[Read]), 0);
    assert_eq!(
        ev(&[dev.clone(), all_deny.clone()], Read),
        PolicyOutcome::Deny {
            policy_id: all_deny.id
        }
    );
    // The listing is then filtered per path.
    let ps = [dev, prod_deny];
    assert!(may_read(&ps, &a, &path("dev/db"), None, NOW));
    assert!(!may_read(&ps, &a, &path("prod/db"), None, NOW));
    assert!(!may_read(&ps, &a, &path("other"), None, NOW));
}

#[test]
fn may_read_requires_read() {
    let a = agent();
    let ps = [policy(a, "**", &[Write])];
    assert!(!may_read(&ps, &a, &path("x"), None, NOW));
    let ps = [policy(a, "**", &[Read])];
    assert!(may_read(&ps, &a, &path("x"), None, NOW));
    assert!(!may_read(&[], &a, &path("x"), None, NOW));
}

#[test]
fn policy_validation() {
    let mut p = policy(agent(), "**", &[Read]);
    assert!(p.validate().is_ok());
    p.priority = -1;
    assert!(p.validate().is_err());
    p.priority = 0;
    p.permissions.clear();
    assert!(p.validate().is_err());
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn scope_ceiling() {
    let p = path("prod/db/password");
    // No path-like scopes: open.
    assert!(scope_allows(&[], &p));
    assert!(scope_allows(
        &scopes(&["vaults:read", "secrets:write", ""]),
        &p
    ));
    // Lone `*` means everything (1claw's default), even for multi-segment paths.
    assert!(scope_allows(&scopes(&["*"]), &p));
    assert!(scope_allows(&scopes(&["dev/**", "*"]), &p));
    // Path-like scopes form a ceiling; capability scopes beside them don't open it.
    assert!(scope_allows(&scopes(&["prod/**"]), &p));
    assert!(scope_allows(&scopes(&["dev/**", "prod/*/password"]), &p));
    assert!(!scope_allows(&scopes(&["dev/**"]), &p));
    assert!(!scope_allows(&scopes(&["dev/**", "vaults:read"]), &p));
    assert!(
        !scope_allows(&scopes(&["prod/*"]), &p),
        "`*` inside a pattern is one segment"
    );
    // An invalid path-like scope matches nothing (fail closed).
    assert!(!scope_allows(&scopes(&["prod/db*"]), &p));
    assert!(!scope_allows(&scopes(&["prod/db*", "vaults:read"]), &p));
}

proptest! {
    /// Adding a deny never turns a refusal into an allow, and adding an
    /// allow never turns an allow into a refusal.
    #[test]
    fn monotonic(prio_a in 0i32..4, prio_d in 0i32..4, deny_path in 0usize..3, wanted in 0usize..4) {
        let a = agent();
        let paths = ["**", "x/*", "y/**"];
        let wanted = Permission::ALL[wanted];
        let mut allow = policy(a, "x/**", &[Write, Read]);
        allow.priority = prio_a;
        let d = deny(policy(a, paths[deny_path], &[wanted]), prio_d);
        let only_allow = eval(std::slice::from_ref(&allow), &a, "x/y", wanted);
        let both = eval(&[allow.clone(), d.clone()], &a, "x/y", wanted);
        if !only_allow.is_allow() {
            prop_assert!(!both.is_allow());
        }
        let only_deny = eval(std::slice::from_ref(&d), &a, "x/y", wanted);
        if only_deny.is_allow() {
            prop_assert!(both.is_allow());
        }
        // The documented rule, restated.
        let deny_applies = d.pattern.matches(&path("x/y"));
        let allow_applies = allow.permissions.iter().any(|p| p.grants(wanted));
        let expected = match (allow_applies, deny_applies) {
            (false, false) => PolicyOutcome::NoMatch,
            (true, false) => PolicyOutcome::Allow { policy_id: allow.id },
            (false, true) => PolicyOutcome::Deny { policy_id: d.id },
            (true, true) if prio_a > prio_d => PolicyOutcome::Allow { policy_id: allow.id },
            (true, true) => PolicyOutcome::Deny { policy_id: d.id },
        };
        prop_assert_eq!(both, expected);
    }
}
