//! The regression harness: every committed corpus file (`corpus/<target>/`)
//! and every crash input kept after a fix (`regressions/<target>/`) runs
//! through its target's property checks, in a normal `cargo test`.

use std::path::{Path, PathBuf};

use strongroom_fuzz::{TARGETS, audit_export, bodies, config};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.expect("a directory entry").path();
            if p.is_file() {
                let data = std::fs::read(&p).expect("reading an input");
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}

/// Runs every input of `target` through `check`, naming the file that fails.
fn replay(target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "corpus/{target}/ is empty");
    for (path, data) in inputs {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{} violates a property", path.display());
    }
}

fn target(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a target")
}

#[test]
fn path() {
    replay("path", target("path"));
}

#[test]
fn pattern() {
    replay("pattern", target("pattern"));
}

#[test]
fn conditions() {
    replay("conditions", target("conditions"));
}

#[test]
fn jwt() {
    replay("jwt", target("jwt"));
}

#[test]
fn envelope() {
    replay("envelope", target("envelope"));
}

// The targets with files own their scratch directory here, so it is removed.
#[test]
fn bodies() {
    let h = bodies::Harness::new();
    replay("bodies", |d| h.check(d));
}

#[test]
fn audit_export() {
    let h = audit_export::Harness::new();
    replay("audit_export", |d| h.check(d));
}

#[test]
fn config() {
    let h = config::Harness::new();
    replay("config", |d| h.check(d));
}

#[test]
fn every_target_has_a_binary_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0u64;
    for (name, _) in TARGETS {
        assert!(
            root.join("src/bin").join(format!("{name}.rs")).is_file(),
            "src/bin/{name}.rs"
        );
        for (p, data) in inputs(name) {
            assert!(data.len() <= 64 * 1024, "{} is large", p.display());
            total += data.len() as u64;
        }
    }
    assert!(total < 1 << 20, "the corpus holds {total} bytes");
}

/// Every route whose method carries a body is fuzzed, or listed as reading none.
#[test]
fn every_body_route_is_fuzzed() {
    let normalize = |p: &str| {
        p.replace("{vault_id}", "{vault}")
            .replace("{agent_id}", "{agent}")
            .replace("{policy_id}", "{policy}")
            .replace("{user_id}", "{member}")
            .replace("{*path}", "{secret}")
    };
    let fuzzed: Vec<(String, String)> = bodies::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(
            bodies::NO_BODY
                .iter()
                .map(|(m, p)| (m.to_string(), normalize(p))),
        )
        .collect();
    for (method, path) in strongroom_server::routes::operations() {
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            continue;
        }
        let op = (method.to_string(), normalize(path));
        assert!(
            fuzzed.contains(&op),
            "{method} {path} is neither fuzzed (bodies::ROUTES) nor in bodies::NO_BODY"
        );
    }
}

/// The committed export verifies, and no single-byte edit of it verifies to
/// anything but its own lines.
#[test]
fn audit_fixture_verifies_and_every_byte_edit_is_caught() {
    let h = audit_export::Harness::new();
    let fixture = audit_export::FIXTURE.as_bytes();
    assert_eq!(h.verify(fixture), audit_export::Verdict::Valid);
    let mut edited = fixture.to_vec();
    for i in 0..fixture.len() {
        edited[i] ^= 0x01;
        h.check(&edited);
        edited[i] ^= 0x01;
    }
    // Dropping the last checkpoint's events (it names the last event) breaks it.
    let lines: Vec<&str> = audit_export::FIXTURE.lines().collect();
    let without_last_event: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| !(l.contains("\"type\":\"event\"") && *i == lines.len() - 3))
        .map(|(_, l)| *l)
        .collect();
    assert_ne!(
        h.verify(without_last_event.join("\n").as_bytes()),
        audit_export::Verdict::Valid
    );
}

/// The harness reaches the handlers as the owner: a valid body is accepted.
#[test]
fn bodies_harness_is_authenticated() {
    let h = bodies::Harness::new();
    for seed in ["11-0", "12-0", "05-0"] {
        let data = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("corpus/bodies")
                .join(seed),
        )
        .expect("a seed");
        let (route, a) = h.send(&data).expect("an answer");
        assert!(a.status.is_success(), "{route}: {}", a.status);
    }
}
