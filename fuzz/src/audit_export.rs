//! `audit_export`: the offline reader and verifier of an audit export
//! (`strongroom audit verify --file EXPORT --public-key JWKS`, through the
//! CLI's own code, over `core::audit`'s chain verifier).
//!
//! The fixture (`fixtures/audit-export.jsonl`, the seed of the corpus) is a
//! real export: a server's history of sign-up, vault, secret writes and
//! reads, with the checkpoint it signed at shutdown; `fixtures/audit-jwks.json`
//! is that server's published key.
//!
//! Properties, for any export text:
//! - verifying ends with "valid", "broken" or a clean error, never a panic;
//! - nothing can be forged without the signing key: when the export verifies
//!   as valid, every line of it is, as data, one of the fixture's lines
//!   (hex hashes compared without regard to letter case, the only freedom
//!   the format allows). So any edit of the fixture that verifies is a no-op
//!   for the verifier (whitespace, key order, an escape, an unknown key), and
//!   dropping lines only verifies where the design says so (events after the
//!   last checkpoint, or a whole organisation's chain).

use std::sync::{Mutex, OnceLock};

use clap::Parser;
use strongroom::audit::{AuditCommand, run as audit_run};
use strongroom_core::audit::ExportLine;

/// The committed export.
pub const FIXTURE: &str = include_str!("../fixtures/audit-export.jsonl");
/// The committed verification key (the server's JWKS).
pub const JWKS: &str = include_str!("../fixtures/audit-jwks.json");

#[derive(Parser)]
#[command(name = "strongroom-audit")]
struct AuditCli {
    #[command(subcommand)]
    command: AuditCommand,
}

/// The verdict of `strongroom audit verify`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exit code 0: every chain verified.
    Valid,
    /// Exit code 1: a chain is broken.
    Broken,
    /// The export could not be read (not an export line, not UTF-8, ...).
    Error,
}

/// A scratch directory with the key, and the fixture's lines as data.
pub struct Harness {
    dir: crate::Scratch,
    known: Vec<ExportLine>,
    lock: Mutex<()>,
}

impl Harness {
    /// Writes the key to a fresh scratch directory.
    pub fn new() -> Self {
        let dir = crate::Scratch::new("audit_export");
        std::fs::write(dir.path().join("jwks.json"), JWKS).expect("writing the key");
        let known = FIXTURE
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| normalized(&serde_json::from_str(l).expect("the fixture parses")))
            .collect();
        Harness {
            dir,
            known,
            lock: Mutex::new(()),
        }
    }

    /// Runs `strongroom audit verify` on `export`.
    pub fn verify(&self, export: &[u8]) -> Verdict {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let file = self.dir.path().join("export.jsonl");
        std::fs::write(&file, export).expect("writing the export");
        let key = self.dir.path().join("jwks.json");
        let cli = AuditCli::try_parse_from([
            "strongroom-audit".as_ref(),
            "verify".as_ref(),
            "--file".as_ref(),
            file.as_os_str(),
            "--public-key".as_ref(),
            key.as_os_str(),
        ])
        .expect("the arguments parse");
        match crate::runtime().block_on(audit_run(cli.command)) {
            Ok(0) => Verdict::Valid,
            Ok(1) => Verdict::Broken,
            Ok(n) => panic!("audit verify exited with {n}"),
            Err(_) => Verdict::Error,
        }
    }

    /// Checks one input.
    pub fn check(&self, data: &[u8]) {
        if self.verify(data) != Verdict::Valid {
            return;
        }
        let text = std::str::from_utf8(data).expect("a valid export is UTF-8");
        assert!(
            text.lines().any(|l| !l.trim().is_empty()),
            "an export with no lines verified"
        );
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed: ExportLine =
                serde_json::from_str(line).expect("a valid export's lines parse");
            assert!(
                self.known.contains(&normalized(&parsed)),
                "an export verified with a line that is not the fixture's: {line}"
            );
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// A line as the verifier sees it: hex hashes in lower case.
fn normalized(line: &ExportLine) -> ExportLine {
    let mut l = line.clone();
    match &mut l {
        ExportLine::Event(e) => e.integrity_hash.make_ascii_lowercase(),
        ExportLine::Checkpoint(c) => c.head_hash.make_ascii_lowercase(),
    }
    l
}

/// The target.
pub fn run(data: &[u8]) {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new).check(data);
}
