//! Slow clients and connection floods against the real binary, beyond
//! `transport.rs`: slowloris heads and bodies that keep trickling (so only a
//! total deadline, not an inactivity timer, ends them), and thousands of
//! idle connections past `max_connections`, with the server started under a
//! low soft open-file limit as a login shell gives it.
//!
//! Measured, not timed: resident memory from `/proc`, which connections the
//! server closed, and a normal client served during the flood.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn addr_of(server: &Server) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

/// (soft, hard) `RLIMIT_NOFILE` of a process, from `/proc/<pid>/limits`.
fn nofile(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    let n = |s: &str| {
        if s == "unlimited" {
            u64::MAX
        } else {
            s.parse().unwrap()
        }
    };
    (n(f[3]), n(f[4]))
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// One `GET /v1/health` on a fresh connection; its status, if answered.
fn health(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the server has closed `s` (EOF or reset) within `within`; any
/// bytes it sends first (a 408) are read and dropped.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Raises this test process's soft open-file limit to its hard limit
/// (`prlimit`, util-linux), and both to `at_least` where allowed (root), so
/// it can hold thousands of sockets. Answers the hard limit.
fn raise_own_nofile(at_least: u64) -> u64 {
    let me = std::process::id();
    let set = |n: u64| {
        Command::new("prlimit")
            .arg(format!("--pid={me}"))
            .arg(format!("--nofile={n}:{n}"))
            .stderr(Stdio::null())
            .status()
            .expect("prlimit (util-linux) is needed to raise the open-file limit")
            .success()
    };
    let (_, hard) = nofile(me);
    // Linux never reports an unlimited open-file limit (it is bounded by
    // fs.nr_open); a hard limit below what is needed is raised where allowed.
    let raised = hard < at_least && set(at_least);
    if !raised {
        assert!(
            set(hard),
            "could not raise the soft open-file limit to {hard}"
        );
    }
    let (soft, hard) = nofile(me);
    assert_eq!(soft, hard);
    hard
}

#[test]
fn thousands_of_idle_connections_stay_bounded_and_others_are_served() {
    const FLOOD: usize = 3000;
    const CAP: usize = 2500;
    // Long enough that every connection of the flood is open before the
    // first one times out (the listen backlog is 128: a burst of connects
    // meets a few one-second SYN retries).
    const HEADER_TIMEOUT: u64 = 20;
    let hard = raise_own_nofile((FLOOD + 200) as u64);
    assert!(
        hard >= (FLOOD + 200) as u64,
        "the hard open-file limit ({hard}) is too low for {FLOOD} connections"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nheader_timeout_secs = {HEADER_TIMEOUT}\nbody_timeout_secs = 2\nidle_timeout_secs = {HEADER_TIMEOUT}\nmax_connections = {CAP}\n"
        ),
    )
    .unwrap();
    // Started as from a login shell: soft limit 1024, hard limit high. The
    // server raises its soft limit to the hard one, or its cap falls to 960.
    let server = Launch {
        wrapper: vec!["prlimit".into(), format!("--nofile=1024:{hard}")],
        ..Launch::new(&dir.path().join("data"))
    }
    .arg("--config")
    .arg(config.to_str().unwrap())
    .start();
    let pid = server.pid();
    let (soft, server_hard) = nofile(pid);
    assert_eq!(server_hard, hard, "the wrapper kept the hard limit");
    assert_eq!(
        soft, hard,
        "the server keeps a soft open-file limit of {soft} below its hard limit {hard}"
    );
    assert!(
        !server.logs().contains("max_connections is above"),
        "the cap was lowered:\n{}",
        server.logs()
    );
    let addr = addr_of(&server);
    assert_eq!(health(addr), Some(200));
    let baseline = rss_kib(pid);

    // The flood: FLOOD connections that send nothing.
    let started = Instant::now();
    let open = |n: usize| -> Vec<TcpStream> {
        let openers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..n / 4)
                        .map(|_| TcpStream::connect(addr).expect("connect"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        openers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    };
    // Below the cap, a normal client is served at once beside the flood.
    let mut idle = open(CAP - 100);
    assert_eq!(health(addr), Some(200), "not served beside the flood");
    idle.extend(open(FLOOD - (CAP - 100)));
    assert!(
        started.elapsed() < Duration::from_secs(HEADER_TIMEOUT - 5),
        "opening the flood took {:?}",
        started.elapsed()
    );
    let opened_in = started.elapsed();
    // Those past the cap are closed at once (EOF: a clean close, no answer).
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = 0;
    for s in &mut idle {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => refused += 1,
            Ok(_) => panic!("an idle connection was sent bytes"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("a connection past the cap was reset, not closed: {e}"),
        }
        s.set_nonblocking(false).unwrap();
    }
    let during = rss_kib(pid);
    eprintln!(
        "{FLOOD} connections opened in {opened_in:?}; {refused} closed at once; RSS {} MiB -> {} MiB",
        baseline / 1024,
        during / 1024
    );
    assert!(
        refused >= FLOOD - CAP,
        "only {refused} of the {} connections past the cap were closed",
        FLOOD - CAP
    );
    assert!(
        refused <= FLOOD - CAP + 5,
        "{refused} closed: the cap is lower than configured"
    );
    // Bounded: well under 32 KiB a connection held.
    assert!(
        during < baseline + (CAP as u64 * 32),
        "RSS {during} KiB with {CAP} idle connections (baseline {baseline} KiB)"
    );

    // Every slot is held now; the header timeout frees them, and a normal
    // client is served while the flood is still connected.
    let deadline = Instant::now() + Duration::from_secs(HEADER_TIMEOUT + 10);
    let served = loop {
        if let Some(s) = health(addr) {
            break s;
        }
        assert!(Instant::now() < deadline, "never served during the flood");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served, 200);
    let closed = idle
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(HEADER_TIMEOUT)))
        .filter(|c| *c)
        .count();
    assert_eq!(
        closed, FLOOD,
        "idle connections outlived the header timeout"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    eprintln!("after the flood: RSS {} MiB", after / 1024);
    assert!(
        after < baseline + 64 * 1024,
        "RSS {after} KiB after the flood"
    );
    assert_eq!(health(addr), Some(200));
    assert_eq!(server.pid(), pid);
}

/// Sends `chunks` one at a time, `every` apart, until the server closes the
/// connection; answers what it sent back and how long it took.
fn trickle(mut s: TcpStream, chunks: &[&[u8]], every: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(every)).unwrap();
    let mut answer = vec![];
    let mut buf = [0u8; 1024];
    for c in chunks.iter().cycle() {
        if s.write_all(c).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        start.elapsed(),
    )
}

#[test]
fn slowloris_heads_and_bodies_are_cut_off_by_their_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        "[server]\nheader_timeout_secs = 2\nbody_timeout_secs = 2\nidle_timeout_secs = 3\nmax_connections = 64\n",
    )
    .unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let addr = addr_of(&server);
    let pid = server.pid();

    // 40 heads, one header byte every 200 ms (never idle for long), and 20
    // bodies, one byte every 200 ms after a complete head.
    let mut slow = vec![];
    for i in 0..60 {
        let s = TcpStream::connect(addr).unwrap();
        slow.push(std::thread::spawn(move || {
            if i < 40 {
                let mut first = s.try_clone().unwrap();
                first
                    .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
                // Header lines, a byte at a time, never finishing the head.
                let head: Vec<&[u8]> = b"X-Slow: 1\r\n".chunks(1).collect();
                let (answer, took) = trickle(s, &head, Duration::from_millis(200));
                ("head", answer, took)
            } else {
                let mut first = s.try_clone().unwrap();
                first
                    .write_all(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                    .unwrap();
                let (answer, took) = trickle(s, &[b" "], Duration::from_millis(200));
                ("body", answer, took)
            }
        }));
    }
    // Meanwhile, others are served.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_eq!(health(addr), Some(200), "not served beside slow clients");
    }
    for t in slow {
        let (kind, answer, took) = t.join().unwrap();
        assert!(
            took < Duration::from_secs(8),
            "a trickling {kind} held its connection for {took:?}"
        );
        if kind == "body" {
            assert!(answer.starts_with("HTTP/1.1 408"), "{kind}: {answer}");
        } else {
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{kind}: {answer}"
            );
        }
    }
    assert_eq!(health(addr), Some(200));
    assert_eq!(server.pid(), pid);
    drop(server);
}

/// A burst of connects waits in the kernel's accept queue while the server
/// is busy, instead of losing SYNs (each lost one costs its client a
/// one-second retransmit). Measured with the server stopped (`SIGSTOP`):
/// the kernel completes as many handshakes as the listen backlog holds.
#[test]
fn a_burst_of_connects_queues_for_accept_while_the_server_is_busy() {
    const BURST: usize = 600;
    raise_own_nofile(BURST as u64 + 200);
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(4096);
    assert!(
        somaxconn > BURST,
        "net.core.somaxconn ({somaxconn}) caps every listen backlog below {BURST}: raise it to run this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let addr = addr_of(&server);
    let pid = server.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..BURST / 8)
                    .filter_map(|_| {
                        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let queued: Vec<TcpStream> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        queued.len(),
        BURST,
        "only {} of {BURST} connects were queued while the server was busy (the listen backlog)",
        queued.len()
    );
    drop(queued);
    assert_eq!(health(addr), Some(200));
}
