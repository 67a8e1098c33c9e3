//! `strongroom store copy --from sqlite:DIR --to postgres://…`: moves a
//! SQLite data directory into PostgreSQL, for the move to many nodes.
//!
//! - Rows move as stored: envelopes stay ciphertext, nothing is decrypted,
//!   and no key leaves its provider. With the `file` provider the data
//!   directory's keyring is copied into the database keyring, each key sealed
//!   again by the same root key (which stays out of the database).
//! - Tables are copied parents first, in pages in primary-key order, each
//!   page one transaction that skips rows already there: an interrupted copy
//!   is resumed by running the same command again.
//! - Verified before it reports success: the row count of every table, every
//!   version's envelope read back from PostgreSQL byte for byte, and every
//!   audit chain's head.
//!
//! Stop the server on the SQLite directory first: rows it writes during the
//! copy may be missed (the verification then fails).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use rusqlite::types::ValueRef;
use strongroom_store::sqlite::SqliteStore;
use strongroom_store_postgres::import::{Cell, ENVELOPE_COLUMNS, Importer, Kind, TABLES, Table};
use strongroom_store_postgres::{PgOptions, PgStore};

#[derive(Args)]
pub struct CopyArgs {
    /// The source: `sqlite:` and a data directory (or its `strongroom.db`).
    #[arg(long)]
    from: String,
    /// The target: a `postgres://` URL.
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    to: String,
    /// CAs for the target's TLS certificate (default: the system's).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Rows per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=5000))]
    batch_size: u32,
    /// The root key file that seals the data directory's keyring (default:
    /// `STRONGROOM_ROOT_KEY`, else `<data-dir>/root.key`).
    #[arg(long)]
    root_key_file: Option<PathBuf>,
}

/// Where the SQLite data is.
fn source(from: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let Some(path) = from.strip_prefix("sqlite:") else {
        bail!("--from must be sqlite:<data directory>, not {from:?}");
    };
    let path = PathBuf::from(path);
    let (dir, db) = if path.is_dir() {
        (path.clone(), path.join("strongroom.db"))
    } else {
        (
            path.parent().map(Path::to_owned).unwrap_or_default(),
            path.clone(),
        )
    };
    if !db.exists() {
        bail!("no database at {}", db.display());
    }
    Ok((dir, db))
}

pub async fn run(a: CopyArgs) -> anyhow::Result<()> {
    let (dir, db) = source(&a.from)?;
    // Bring the source's schema up to date first (its own migrations).
    SqliteStore::open(&db)
        .await
        .context("opening the SQLite database")?
        .close()
        .await;
    let src = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("opening the SQLite database to read")?;
    let mut opts = PgOptions::new(a.to.clone());
    opts.ca_file = a.ca_file.clone();
    let target = PgStore::connect(&opts)
        .await
        .context("connecting to PostgreSQL")?;
    let imp = target.importer();

    for t in TABLES {
        copy_table(&src, &imp, t, a.batch_size as usize).await?;
    }
    copy_keyring(&dir, a.root_key_file.as_deref(), &imp).await?;

    // Verify: counts, envelopes, chain heads.
    for t in TABLES {
        let (s, d) = (count(&src, t)?, imp.count(t).await?);
        if s != d {
            bail!(
                "verification failed: {} has {s} rows in SQLite but {d} in PostgreSQL",
                t.name
            );
        }
    }
    let versions = verify_envelopes(&src, &imp, a.batch_size as usize).await?;
    verify_heads(&src, &target).await?;
    target.close().await;
    println!(
        "copied and verified: {} tables, {versions} versions' envelopes identical, every audit chain's head identical",
        TABLES.len()
    );
    Ok(())
}

fn count(src: &rusqlite::Connection, t: &Table) -> anyhow::Result<u64> {
    let n: i64 = src.query_row(&format!("SELECT COUNT(*) FROM {}", t.name), [], |r| {
        r.get(0)
    })?;
    Ok(n as u64)
}

fn cell(v: ValueRef<'_>, kind: Kind, what: &str) -> anyhow::Result<Cell> {
    Ok(match (v, kind) {
        (ValueRef::Null, _) => Cell::Null,
        (ValueRef::Integer(n), Kind::Int) => Cell::Int(n),
        (ValueRef::Integer(n), Kind::Bool) => Cell::Bool(n != 0),
        (ValueRef::Text(t), Kind::Text) => Cell::Text(
            std::str::from_utf8(t)
                .with_context(|| format!("{what}: not UTF-8"))?
                .to_owned(),
        ),
        (ValueRef::Blob(b), Kind::Bytes) => Cell::Bytes(b.to_vec()),
        _ => bail!("{what}: a value of an unexpected type"),
    })
}

/// One page of a table after `after` (its key's values), in key order.
fn page(
    src: &rusqlite::Connection,
    t: &Table,
    after: Option<&[Cell]>,
    limit: usize,
) -> anyhow::Result<Vec<Vec<Cell>>> {
    let names: Vec<&str> = t.columns.iter().map(|(n, _)| *n).collect();
    let key = t.key.join(", ");
    let slots = vec!["?"; t.key.len()].join(", ");
    let filter = match after {
        Some(_) => format!("WHERE ({key}) > ({slots})"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {} {filter} ORDER BY {key} LIMIT {limit}",
        names.join(", "),
        t.name
    );
    let mut stmt = src.prepare_cached(&sql)?;
    let params: Vec<rusqlite::types::Value> = after
        .unwrap_or_default()
        .iter()
        .map(|c| match c {
            Cell::Int(n) => rusqlite::types::Value::Integer(*n),
            Cell::Text(s) => rusqlite::types::Value::Text(s.clone()),
            _ => rusqlite::types::Value::Null,
        })
        .collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = vec![];
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(t.columns.len());
        for (i, (name, kind)) in t.columns.iter().enumerate() {
            row.push(cell(r.get_ref(i)?, *kind, &format!("{}.{name}", t.name))?);
        }
        out.push(row);
    }
    Ok(out)
}

/// The key of a row (its key columns' cells).
fn key_of(t: &Table, row: &[Cell]) -> Vec<Cell> {
    t.key
        .iter()
        .map(|k| {
            let i = t
                .columns
                .iter()
                .position(|(n, _)| n == k)
                .expect("key column");
            row[i].clone()
        })
        .collect()
}

async fn copy_table(
    src: &rusqlite::Connection,
    imp: &Importer,
    t: &Table,
    batch: usize,
) -> anyhow::Result<()> {
    let total = count(src, t)?;
    if imp.count(t).await? >= total {
        eprintln!("{}: {total} rows already there", t.name);
        return Ok(());
    }
    let (mut after, mut done, mut added) = (None::<Vec<Cell>>, 0u64, 0u64);
    loop {
        let rows = page(src, t, after.as_deref(), batch)?;
        let Some(last) = rows.last() else { break };
        after = Some(key_of(t, last));
        added += imp
            .insert(t, &rows)
            .await
            .with_context(|| format!("copying {}", t.name))?;
        done += rows.len() as u64;
        if rows.len() < batch {
            break;
        }
    }
    eprintln!("{}: {done} rows read, {added} new", t.name);
    Ok(())
}

async fn copy_keyring(
    dir: &Path,
    root_key_file: Option<&Path>,
    imp: &Importer,
) -> anyhow::Result<()> {
    let keyring = dir.join("keyring.sealed");
    if !keyring.exists() {
        eprintln!(
            "keyring: none in {} (keys live in the provider)",
            dir.display()
        );
        return Ok(());
    }
    let root = match (std::env::var("STRONGROOM_ROOT_KEY").ok(), root_key_file) {
        (Some(v), _) => strongroom_kms::root_key::RootKey::parse(&v)?,
        (None, file) => {
            let file = file
                .map(Path::to_owned)
                .unwrap_or_else(|| dir.join("root.key"));
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "the keyring needs its root key: set STRONGROOM_ROOT_KEY or --root-key-file (looked for {})",
                    file.display()
                )
            })?;
            strongroom_kms::root_key::RootKey::parse(&text)?
        }
    };
    let entries = strongroom_kms::soft::shared_entries_from_file(&keyring, root)
        .context("opening the data directory's keyring")?;
    let added = imp.keyring(&entries).await?;
    eprintln!(
        "keyring: {} keys, {added} new in the database keyring (sealed by the same root key)",
        entries.len()
    );
    Ok(())
}

async fn verify_envelopes(
    src: &rusqlite::Connection,
    imp: &Importer,
    batch: usize,
) -> anyhow::Result<u64> {
    let t = TABLES
        .iter()
        .find(|t| t.name == "secret_versions")
        .expect("the versions table");
    let envelope_at: Vec<usize> = ENVELOPE_COLUMNS
        .iter()
        .map(|c| {
            t.columns
                .iter()
                .position(|(n, _)| n == c)
                .expect("envelope column")
        })
        .collect();
    let (mut after, mut checked) = (None::<Vec<Cell>>, 0u64);
    loop {
        let rows = page(src, t, after.as_deref(), batch)?;
        let Some(last) = rows.last() else { break };
        after = Some(key_of(t, last));
        let keys: Vec<(String, i64)> = rows
            .iter()
            .map(|r| match (&r[0], &r[1]) {
                (Cell::Text(id), Cell::Int(v)) => Ok((id.clone(), *v)),
                _ => bail!("secret_versions: a malformed key"),
            })
            .collect::<anyhow::Result<_>>()?;
        let stored = imp.envelopes(&keys).await?;
        for (row, key) in rows.iter().zip(&keys) {
            let want: Vec<Cell> = envelope_at.iter().map(|&i| row[i].clone()).collect();
            match stored.get(key) {
                Some(got) if *got == want => checked += 1,
                Some(_) => bail!(
                    "verification failed: the envelope of {} v{} differs in PostgreSQL",
                    key.0,
                    key.1
                ),
                None => bail!(
                    "verification failed: {} v{} is missing in PostgreSQL",
                    key.0,
                    key.1
                ),
            }
        }
        if rows.len() < batch {
            break;
        }
    }
    Ok(checked)
}

async fn verify_heads(src: &rusqlite::Connection, target: &PgStore) -> anyhow::Result<()> {
    use strongroom_store::AuditStore;
    let mut stmt = src.prepare(
        "SELECT org_id, seq, integrity_hash FROM audit_events e
         WHERE seq = (SELECT MAX(seq) FROM audit_events WHERE org_id = e.org_id) ORDER BY org_id",
    )?;
    let want: Vec<(String, u64, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let got: Vec<(String, u64, String)> = target
        .audit_heads()
        .await?
        .into_iter()
        .map(|h| (h.org_id, h.seq, h.hash))
        .collect();
    if want != got {
        bail!("verification failed: the audit chains' heads differ in PostgreSQL");
    }
    Ok(())
}
