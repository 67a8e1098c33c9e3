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
const KEY_DOWN: &str = "the key provider is unavailable";

/// A size-limited tmpfs on `dir`, mounted in a mount namespace of its own
/// that a holder process (`sleep`) keeps alive; servers join it with
/// `nsenter`, so one can stop and another start on the same filesystem. It
/// disappears when the holder is killed (on drop), whatever the test did.
struct Tmpfs {
    holder: std::process::Child,
    dir: PathBuf,
    user_ns: bool,
}

impl Tmpfs {
    /// Mounts it, or fails the test saying why (never a silent pass).
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let mut cmd = Command::new("unshare");
        if !root {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.arg("--mount")
            .args([
                "sh",
                "-c",
                &format!(
                    "mount -t tmpfs -o size={size},mode=0700 tmpfs \"$0\" && echo mounted && exec sleep 3600"
                ),
            ])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut holder = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("the disk-full test needs `unshare` (util-linux): {e}"));
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        );
        if line.trim() != "mounted" {
            let out = holder.wait_with_output().unwrap();
            panic!(
                "the disk-full test needs a size-limited tmpfs: run as root, or allow unprivileged \
                 user namespaces (sysctl kernel.unprivileged_userns_clone=1); `unshare … mount -t tmpfs` said: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Tmpfs {
            holder,
            dir: dir.to_owned(),
            user_ns: !root,
        }
    }

    /// The command a server runs under to see the tmpfs.
    fn wrapper(&self) -> Vec<String> {
        let mut w = vec![
            "nsenter".into(),
            format!("--target={}", self.holder.id()),
            "--mount".into(),
        ];
        if self.user_ns {
            w.extend(["--user".into(), "--preserve-credentials".into()]);
        }
        w
    }

    /// The tmpfs as this process can reach it.
    fn inside(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root{}",
            self.holder.id(),
            self.dir.display()
        ))
    }

    fn launch(&self) -> Server {
        Launch {
            wrapper: self.wrapper(),
            ..Launch::new(&self.dir)
        }
        .start()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
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
    let tmpfs = Tmpfs::mount(&data, "160m");
    let server = tmpfs.launch();
    let pid = server.pid();
    // The server's data directory: the tmpfs.
    let inside = tmpfs.inside();
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
    // A new vault needs a new KEK in the keyring file (the `file` provider
    // writes it whole to a temporary file, then renames it; that file is on
    // the full disk too) and rows: made whole, or refused by whichever
    // could not store its part.
    let r = api
        .post("/v1/vaults", serde_json::json!({"name": "while-full"}))
        .await;
    let full_vault = match r.status {
        201 => Some(r.body["id"].as_str().unwrap().to_owned()),
        _ => {
            let p = r.expect_problem(503);
            assert!(p["detail"] == DB_DOWN || p["detail"] == KEY_DOWN, "{p}");
            None
        }
    };

    // Space returns: writes succeed again, same process.
    let resumed = Load::start(&api, &vault, "after", 2, 1, seeded, Duration::from_secs(30));
    std::fs::remove_file(&filler).unwrap();
    let start = Instant::now();
    await_writes_resume(
        &api,
        &vault,
        Duration::from_secs(15),
        "a write once space returned",
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
    if let Some(v) = &full_vault {
        api.put_secret(v, "k", "in-the-vault-made-while-full").await;
    }

    // What is on the disk is whole: a clean stop, and a new process on the
    // same filesystem reads everything back (database and keyring).
    let (status, logs) = server.stop();
    assert!(status.success(), "exit {status:?}\n{logs}");
    let server = tmpfs.launch();
    let mut api = server.client();
    api.login("owner@example.com").await;
    assert_eq!(assert_nothing_lost(&api, &vault, &all).await, checked);
    for i in 0..refused_big {
        let r = api
            .get_secret(&vault, &format!("big/{i}"))
            .await
            .expect(200);
        assert_eq!(r["value"].as_str().map(str::len), Some(big.len()));
    }
    if let Some(v) = &full_vault {
        assert_eq!(
            api.get_secret(v, "k").await.expect(200)["value"],
            "in-the-vault-made-while-full"
        );
    }
    assert_audit_verifies(&api).await;
}
