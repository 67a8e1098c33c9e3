//! `strongroom audit export` and `strongroom audit verify`: the offline side of
//! the tamper-evident log. Verification needs only the public signing key.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::store::{FileStore, OpenStore, StoreConfig};
use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use strongroom_core::OrgId;
use strongroom_core::audit::{ChainVerifier, Checkpoint, ExportLine, GENESIS_HASH, VerifyReport};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Write every audit chain (events and signed checkpoints) as JSON lines.
    Export(ExportArgs),
    /// Verify an export or a data directory with only the public key.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The server's data directory.
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database to read instead of the data directory.
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Only this organisation.
    #[arg(long)]
    org: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// An export made by `strongroom audit export`.
    #[arg(
        long,
        conflicts_with_all = ["data_dir", "database_url"],
        required_unless_present_any = ["data_dir", "database_url"]
    )]
    file: Option<PathBuf>,
    /// A data directory to read directly.
    #[arg(long, conflicts_with = "database_url")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database to read directly.
    #[arg(long)]
    database_url: Option<String>,
    /// The verification key: base64 of the raw 32-byte Ed25519 key, or a file
    /// holding the server's `/.well-known/jwks.json` or `/v1/auth/jwt-public-key` answer.
    #[arg(long)]
    public_key: String,
}

const PAGE: u32 = 5000;

pub async fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Export(a) => export(a).await.map(|_| 0),
        AuditCommand::Verify(a) => verify(a).await,
    }
}

async fn open_store(dir: &Path, database_url: Option<String>) -> anyhow::Result<OpenStore> {
    let cfg = StoreConfig::resolve(database_url, FileStore::default(), dir)?;
    OpenStore::open(&cfg, true).await
}

async fn export(a: ExportArgs) -> anyhow::Result<()> {
    let opened = open_store(&a.data_dir, a.database_url).await?;
    let store = opened.store();
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut orgs = store.audit_orgs().await?;
    if let Some(o) = &a.org {
        orgs.retain(|x| x == o);
    }
    let (mut events, mut checkpoints) = (0u64, 0u64);
    for org in orgs {
        let id = org_id(&org)?;
        let mut from = 1;
        loop {
            let page = store.audit_chain(id, from, PAGE).await?;
            for e in &page {
                serde_json::to_writer(&mut out, &ExportLine::Event(e.clone()))?;
                out.write_all(b"\n")?;
            }
            events += page.len() as u64;
            if page.len() < PAGE as usize {
                break;
            }
            from = page.last().map(|e| e.seq + 1).unwrap_or(from);
        }
        for cp in store.checkpoints(id).await? {
            serde_json::to_writer(&mut out, &ExportLine::Checkpoint(cp))?;
            out.write_all(b"\n")?;
            checkpoints += 1;
        }
    }
    out.flush()?;
    eprintln!("exported {events} events and {checkpoints} checkpoints");
    Ok(())
}

/// An organisation named by the log: a UUID unless the database was tampered with.
fn org_id(org: &str) -> anyhow::Result<OrgId> {
    org.parse().map_err(|_| {
        anyhow::anyhow!("the audit log names an organisation {org:?} that is not an id")
    })
}

/// Public keys by kid, from base64 or a JWKS / jwt-public-key JSON file.
fn load_keys(spec: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let b64 = |s: &str| {
        let s = s.trim().trim_end_matches('=');
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
            .ok()
            .filter(|k| k.len() == 32)
    };
    let mut keys = BTreeMap::new();
    if Path::new(spec).exists() {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(spec)?)
            .context("the key file is not JSON")?;
        if let Some(list) = v["keys"].as_array() {
            for k in list {
                if let (Some(kid), Some(x)) = (k["kid"].as_str(), k["x"].as_str().and_then(b64)) {
                    keys.insert(kid.to_owned(), x);
                }
            }
        } else if let (Some(kid), Some(x)) = (
            v["kid"].as_str(),
            v["public_key_base64"].as_str().and_then(b64),
        ) {
            keys.insert(kid.to_owned(), x);
        }
    } else if let Some(k) = b64(spec) {
        let arr: [u8; 32] = k.as_slice().try_into().expect("filtered to 32 bytes");
        keys.insert(strongroom_kms::kid_for(&arr), k);
    }
    if keys.is_empty() {
        bail!("no Ed25519 public key found in --public-key (base64 of 32 bytes, or a JWKS file)");
    }
    Ok(keys)
}

async fn verify(a: VerifyArgs) -> anyhow::Result<i32> {
    let keys = load_keys(&a.public_key)?;
    let sig_ok = |kid: &str, msg: &[u8], sig: &[u8]| {
        keys.get(kid)
            .is_some_and(|k| strongroom_crypto::verify_ed25519(k, msg, sig))
    };
    let mut reports: Vec<(String, VerifyReport)> = vec![];
    if let Some(file) = &a.file {
        // Group lines by organisation, keeping their order.
        let mut chains: BTreeMap<
            String,
            (Vec<strongroom_core::audit::ChainedEvent>, Vec<Checkpoint>),
        > = BTreeMap::new();
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<ExportLine>(&line)
                .with_context(|| format!("line {} is not an audit export line", n + 1))?
            {
                ExportLine::Event(e) => chains.entry(e.org_id.clone()).or_default().0.push(e),
                ExportLine::Checkpoint(c) => chains.entry(c.org_id.clone()).or_default().1.push(c),
            }
        }
        for (org, (events, cps)) in chains {
            let mut v = ChainVerifier::new(&cps, 1, (GENESIS_HASH, None));
            v.feed(&events);
            reports.push((org, v.finish(&cps, &sig_ok)));
        }
    } else {
        let dir = a.data_dir.clone().unwrap_or_default();
        let opened = open_store(&dir, a.database_url.clone()).await?;
        let store = opened.store();
        for org in store.audit_orgs().await? {
            let Ok(id) = org_id(&org) else {
                // Only a tampered database names a chain so: report it, go on.
                reports.push((
                    org,
                    VerifyReport {
                        chain_valid: false,
                        events_verified: 0,
                        events_checked: 0,
                        checkpoints_verified: 0,
                        broken_at_event_id: None,
                        broken_at_seq: None,
                        reason: Some("the chain is named by no organisation id".into()),
                    },
                ));
                continue;
            };
            let cps = store.checkpoints(id).await?;
            let mut v = ChainVerifier::new(&cps, 1, (GENESIS_HASH, None));
            let mut from = 1;
            loop {
                let page = store.audit_chain(id, from, PAGE).await?;
                v.feed(&page);
                if page.len() < PAGE as usize || !v.intact() {
                    break;
                }
                from = page.last().map(|e| e.seq + 1).unwrap_or(from);
            }
            reports.push((org, v.finish(&cps, &sig_ok)));
        }
    }
    for (_, r) in reports.iter_mut() {
        // Every chain starts with its organisation's creation: an organisation
        // listed (by its row or its checkpoints) without a single event lost them.
        if r.chain_valid && r.events_checked == 0 {
            r.chain_valid = false;
            r.broken_at_seq = Some(1);
            r.reason = Some(
                "the organisation has no audit events left (its chain starts when it is created)"
                    .into(),
            );
        }
    }
    let mut bad = 0;
    for (org, r) in &reports {
        if r.chain_valid {
            println!(
                "org {org}: OK — {} events, {} signed checkpoints verified",
                r.events_verified, r.checkpoints_verified
            );
        } else {
            bad += 1;
            println!(
                "org {org}: BROKEN at event #{} ({}): {}",
                r.broken_at_seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                r.broken_at_event_id.as_deref().unwrap_or("unknown id"),
                r.reason.as_deref().unwrap_or("")
            );
        }
    }
    if reports.is_empty() {
        // Nothing attested is not a pass: every organisation's chain starts at
        // its creation, so an export (or a database) emptied of its events and
        // checkpoints would otherwise verify.
        println!(
            "no audit events found: nothing was verified (every organisation's chain starts when it is created)"
        );
        return Ok(1);
    }
    Ok(if bad > 0 { 1 } else { 0 })
}
