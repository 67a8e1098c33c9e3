//! A full disk under the real binary: its data directory on a size-limited
//! `tmpfs`, filled mid-load by a filler file.
//!
//! The answer chosen for a write that finds no space is `503` problem+json
//! ("the database is unavailable", `Retry-After`): SQLite's `SQLITE_FULL`
//! is a storage outage like any other I/O failure (the store maps it to
//! `Unavailable`), and it ends by itself when space comes back, which is
//! what `Retry-After` tells a client. What must hold: nothing acknowledged
//! is lost, no version exists without its value, the audit chain verifies,
//! the process neither dies nor spins, and writes succeed again once the
//! filler is deleted, without a restart.
//!
//! The `tmpfs` is mounted in a private mount namespace that the server
//! runs in (`unshare --mount`, or as a non-root user `unshare --user
//! --map-root-user --mount`), so it disappears with the server even if the
//! test fails; the test reaches it through `/proc/<pid>/root`.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::load::*;
use common::*;

const DB_DOWN: &str = "the database is unavailable";

/// The command that runs the server in a new mount namespace with a `size`
/// tmpfs on `dir`. Fails the test, saying why, where no such namespace can
/// be made (never a silent pass).
fn tmpfs_wrapper(dir: &Path, size: &str) -> Vec<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut w: Vec<String> = vec!["unshare".into()];
    if !root {
        w.extend(["--user".into(), "--map-root-user".into()]);
    }
    w.push("--mount".into());
    let script = format!("mount -t tmpfs -o size={size},mode=0700 tmpfs \"$0\" && exec \"$@\"");
    // A dry run first, for a clear message.
    let probe = Command::new(&w[0])
        .args(&w[1..])
        .args(["sh", "-c", &script])
        .arg(dir)
        .arg("true")
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the disk-full test needs a size-limited tmpfs: run as root, or allow unprivileged \
             user namespaces (sysctl kernel.unprivileged_userns_clone=1); `unshare … mount -t tmpfs` said: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("the disk-full test needs `unshare` (util-linux): {e}"),
    }
    w.extend(["sh".into(), "-c".into(), script, dir.display().to_string()]);
    w
}

/// Fills the filesystem holding `file` until it has no space left.
fn fill(file: &Path) -> u64 {
    let mut f = std::fs::File::create(file).expect("creating the filler");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0x5a_u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    let _ = f.sync_all();
    written
}

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); the comm's closing parenthesis ends field 2.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_writes_cleanly_and_writes_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = Launch {
        wrapper: tmpfs_wrapper(&data, "160m"),
        ..Launch::new(&data)
    }
    .start();
    let pid = server.pid();
    // The server's view of its data directory: the tmpfs.
    let inside = PathBuf::from(format!("/proc/{pid}/root{}", data.display()));
    assert!(
        inside.join("strongroom.db").exists(),
        "no database on the tmpfs"
    );
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("disk").await;
    let mut seeded = vec![];
    for i in 0..20 {
        let (p, v) = (format!("seed/{i}"), format!("seed-value-{i}"));
        api.put_secret(&vault, &p, &v).await;
        seeded.push((p, v));
    }

    let load = Load::start(
        &api,
        &vault,
        "w",
        4,
        2,
        seeded.clone(),
        Duration::from_secs(30),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let filler = inside.join("filler");
    let filled = fill(&filler);
    eprintln!("filler: {} MiB", filled >> 20);
    // Large values until one is refused: the WAL's file may have room to
    // reuse (it grows to 64 MiB before it is cut back), so a few may pass.
    let big = "x".repeat(200_000);
    let mut refused_big = None;
    for i in 0..500 {
        let r = api
            .put(
                &format!("/v1/vaults/{vault}/secrets/big/{i}"),
                serde_json::json!({ "value": big }),
            )
            .await;
        match r.status {
            201 => {}
            503 => {
                let p = r.expect_problem(503);
                assert_eq!(p["detail"], DB_DOWN);
                refused_big = Some(i);
                break;
            }
            s => panic!("a large write on a full disk answered {s}: {}", r.text),
        }
    }
    let refused_big = refused_big.expect("a full disk took 100 MB of writes");
    eprintln!("the first large write refused: #{refused_big}");
    // The refused write left nothing behind; the ones before it are whole.
    api.get_secret(&vault, &format!("big/{refused_big}"))
        .await
        .expect_problem(404);
    for i in 0..refused_big {
        let r = api.get_secret(&vault, &format!("big/{i}")).await;
        if r.status == 200 {
            assert_eq!(r.body["value"].as_str().map(str::len), Some(big.len()));
        } else {
            // Reading needs its audit record stored: refused, not broken.
            assert_eq!(r.expect_problem(503)["detail"], DB_DOWN);
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Full, with the load stopped: the process is alive and idle, not spinning.
    let full = load.stop().await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = cpu_ticks(pid) - before;
    eprintln!("CPU while full and idle: {spent} ticks in 2 s");
    assert!(
        spent < 50,
        "the server spins on a full disk: {spent} ticks in 2 s"
    );
    assert_eq!(server.pid(), pid);
    // What needs no new storage still answers: health, and lists (not
    // audited). A secret's value is read only if its audit record can be
    // stored (fail closed): 200 while the WAL has room to reuse, else 503
    // (the load's readers saw both; `assert_clean_failures` checks them).
    api.get("/v1/health").await.expect(200);
    api.get("/v1/vaults").await.expect(200);
    let listed = api
        .get(&format!("/v1/vaults/{vault}/secrets"))
        .await
        .expect(200);
    assert!(listed.to_string().contains("seed/0"), "{listed}");

    // Space returns: writes succeed again, same process.
    let resumed = Load::start(&api, &vault, "after", 2, 1, seeded, Duration::from_secs(30));
    std::fs::remove_file(&filler).unwrap();
    let start = Instant::now();
    eventually(
        Duration::from_secs(15),
        "a write once space returned",
        || {
            let api = api.clone();
            let vault = vault.clone();
            async move {
                api.put(
                    &format!("/v1/vaults/{vault}/secrets/probe"),
                    serde_json::json!({"value": "probe"}),
                )
                .await
                .status
                    == 201
            }
        },
    )
    .await;
    eprintln!("writes resumed {:?} after the filler went", start.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = resumed.stop().await;

    let (w201, r200) = (full.count(201).0, full.count(200).1);
    let (w503, r503) = full.count(503);
    eprintln!(
        "while filling: writes {} attempted, {w201} acknowledged, {w503} refused; reads {r200} ok, {r503} refused",
        full.writes.len()
    );
    assert!(w201 > 10, "too few writes before the disk filled");
    assert!(w503 > 0, "no write met the full disk");
    assert_clean_failures(&full, 201, DB_DOWN);
    assert!(errors_of_kind(&api, "unavailable").await >= (w503 + r503) as u64);
    assert_clean_failures(&after, 201, DB_DOWN);
    assert!(
        after.count(201).0 > 0,
        "no write of the load succeeded after"
    );
    assert_eq!(server.pid(), pid, "the server restarted");
    let mut all = full;
    all.writes.extend(after.writes);
    let checked = assert_nothing_lost(&api, &vault, &all).await;
    eprintln!("{checked} versions read back");
    assert_audit_verifies(&api).await;
    for f in ["strongroom.db", "strongroom.db-wal"] {
        let len = std::fs::metadata(inside.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        eprintln!("{f}: {} KiB", len >> 10);
    }
    let big_after = api.put_secret(&vault, "big/after", &big).await;
    assert_eq!(big_after["version"], 1);
    for i in 0..refused_big {
        let r = api
            .get_secret(&vault, &format!("big/{i}"))
            .await
            .expect(200);
        assert_eq!(r["value"].as_str().map(str::len), Some(big.len()));
    }
}
