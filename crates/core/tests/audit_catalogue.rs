//! The action catalogue in `docs/audit.md` and the code name the same
//! actions: every [`AuditAction`] has a row in the table, every row names an
//! action, and the `attempted` names of organisation refusals are
//! [`Attempt`]s (all of its non-change ones listed). The docs can't drift.

use std::collections::BTreeSet;

use strongroom_core::audit::{Attempt, AuditAction};

fn catalogue() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md");
    let doc = std::fs::read_to_string(path).expect("docs/audit.md");
    let start = doc
        .find("## What is recorded")
        .expect("the catalogue section");
    let rest = &doc[start + 1..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The table's rows: each split into its cells.
fn rows(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The backticked names in `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_action_is_in_the_table_and_every_row_is_an_action() {
    let section = catalogue();
    let rows = rows(&section);
    assert!(rows.len() >= AuditAction::ALL.len(), "{} rows", rows.len());
    let in_docs: BTreeSet<&str> = rows
        .iter()
        .map(|r| {
            let names = quoted(&r[0]);
            assert_eq!(names.len(), 1, "one action per row: {r:?}");
            names[0]
        })
        .collect();
    for name in &in_docs {
        assert!(
            AuditAction::parse(name).is_some(),
            "docs/audit.md lists `{name}`, which is no AuditAction"
        );
    }
    for a in AuditAction::ALL {
        assert!(
            in_docs.contains(a.as_str()),
            "AuditAction::{a:?} (`{a}`) has no row in docs/audit.md"
        );
    }
}

#[test]
fn the_attempted_names_of_organisation_refusals_are_attempts() {
    let section = catalogue();
    let mut listed = BTreeSet::new();
    for row in rows(&section) {
        if quoted(&row[0]) != [AuditAction::AccessDenied.as_str()] {
            continue;
        }
        let details = row.last().expect("a details cell");
        let Some(at) = details.find("`attempted` (") else {
            continue;
        };
        let list = &details[at + "`attempted` (".len()..];
        let list = &list[..list.find(')').expect("a closed list")];
        // Vault and secret refusals name an authz::Action (no dot).
        listed.extend(
            quoted(list)
                .into_iter()
                .filter(|n| n.contains('.'))
                .map(str::to_owned),
        );
    }
    assert!(
        !listed.is_empty(),
        "no organisation attempts found in docs/audit.md"
    );
    for name in &listed {
        assert!(
            Attempt::parse(name).is_some(),
            "docs/audit.md lists attempted `{name}`, which is no Attempt"
        );
    }
    for a in Attempt::READS {
        assert!(
            listed.contains(&a.to_string()),
            "Attempt::{a:?} (`{a}`) is not listed in docs/audit.md"
        );
    }
}
