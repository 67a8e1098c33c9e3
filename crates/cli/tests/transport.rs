//! Transport abuse against the real binary over loopback: password-hashing
//! bursts, slow clients, keep-alive after early answers, and junk-token floods.
//! The bounds are measured (resident memory, audit rows, connections closed,
//! a second client served), never timed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn addr_of(server: &Server) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address")
}

fn write_config(dir: &std::path::Path, toml: &str) -> String {
    let p = dir.join("strongroom.toml");
    std::fs::write(&p, toml).unwrap();
    p.display().to_string()
}

/// A kB figure from `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_logins_keeps_memory_bounded_and_returns_to_baseline() {
    let dir = tempfile::tempdir().unwrap();
    // Default Argon2id cost (19 MiB a hash); two hashing slots, whatever the
    // machine, so the bound below is the same everywhere.
    let config = write_config(
        dir.path(),
        "[limits]\npassword_hashing_concurrency = 2\npassword_hashing_wait_ms = 1000\n",
    );
    let server = Launch::new(dir.path()).arg("--config").arg(config).start();
    let mut api = server.client();
    api.signup("owner@example.com").await;
    api.login("owner@example.com").await;
    let pid = server.pid();
    let baseline = status_kib(pid, "VmRSS:");

    // Sample resident memory through the burst.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    // Six client addresses, 30 concurrent wrong logins each: every address
    // stays under its rate limit (burst 50), 180 hashes asked for at once.
    let mut tasks = vec![];
    for host in 2..8u8 {
        let http = client_from(IpAddr::from([127, 0, 0, host]));
        for i in 0..30 {
            let http = http.clone();
            let url = format!("{}/v1/auth/token", server.base);
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(url)
                    .json(&json!({"email": format!("u{i}@example.com"), "password": "Wrong-Horse-42!"}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (status, retry, ct)
            }));
        }
    }
    let (mut unauthorized, mut busy) = (0, 0);
    for t in tasks {
        let (status, retry, ct) = t.await.unwrap();
        assert!(ct.starts_with("application/problem+json"), "{ct}");
        match status {
            401 => unauthorized += 1,
            503 => {
                assert!(retry, "a busy answer says when to retry");
                busy += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = status_kib(pid, "VmRSS:");
    eprintln!(
        "RSS baseline {} MiB, peak {} MiB, after {} MiB; {unauthorized} answered 401, {busy} busy (503)",
        baseline / 1024,
        peak / 1024,
        after / 1024
    );
    assert!(unauthorized > 0, "some logins were checked");
    // Unbounded, 180 concurrent hashes held 180 × 19 MiB (over 3 GiB). With two
    // reusable buffers, password work adds at most ~40 MiB.
    assert!(
        peak < baseline + 200 * 1024,
        "peak {peak} KiB vs baseline {baseline} KiB"
    );
    assert!(
        after < baseline + 100 * 1024,
        "after {after} KiB vs baseline {baseline} KiB"
    );
    // The right password still works once the burst is over.
    api.login("owner@example.com").await;
}

/// Connects and sends half a request head.
fn half_sent(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.write_all(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Le")
        .ok()?;
    Some(s)
}

/// Whether the server closed the connection within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 408 before the close
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true, // reset
        }
    }
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

#[test]
fn slow_clients_are_cut_off_and_cannot_hold_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[server]\nheader_timeout_secs = 1\nbody_timeout_secs = 1\nidle_timeout_secs = 2\nmax_connections = 16\n",
    );
    let server = Launch::new(dir.path()).arg("--config").arg(config).start();
    let addr = addr_of(&server);

    // Below the cap, half-sent requests don't stop anyone else.
    let mut few: Vec<TcpStream> = (0..8).filter_map(|_| half_sent(addr)).collect();
    assert_eq!(few.len(), 8);
    assert_eq!(health(addr), Some(200));
    // And the header timeout closes them.
    for s in &mut few {
        assert!(
            closed_by_server(s, Duration::from_secs(30)),
            "a half-sent request stays open"
        );
    }

    // Past the cap: the extra connections are closed at once, and the slots
    // held by slow clients come back when their header timeout fires.
    let mut many: Vec<TcpStream> = (0..40).filter_map(|_| half_sent(addr)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let served = loop {
        if let Some(s) = health(addr) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "never served while slow clients held the slots"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served, 200);
    let closed = many
        .iter_mut()
        .map(|s| closed_by_server(s, Duration::from_secs(30)))
        .filter(|c| *c)
        .count();
    assert_eq!(closed, many.len(), "every half-sent connection is closed");

    // A body that stops arriving gets 408 and a closed connection.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    // A kept-alive connection that idles is closed after the idle timeout.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(30)));
    drop(server);
}

/// Reads one response: (status, lower-cased headers, body).
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, String, Vec<u8>)> {
    let mut status_line = String::new();
    if r.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        headers.push_str(&lower);
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((status, headers, body))
}

#[test]
fn a_connection_stays_usable_after_a_body_answered_before_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    // The failed-auth budget would turn the 401s below into 429s with
    // Connection: close; this test is about the bodies.
    let config = write_config(dir.path(), "[limits]\nfailed_auth_per_second = 0\n");
    let server = Launch::new(dir.path()).arg("--config").arg(config).start();
    let addr = addr_of(&server);
    let cases: [(&str, &str, u16); 3] = [
        ("POST", "/v1/no-such-route", 404),
        ("POST", "/v1/health", 405),
        ("POST", "/v1/vaults", 401),
    ];
    let sizes = [10usize, 100_000, 1_000_000];
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut rounds = 0;
    for round in 0..60 {
        let (method, path, want) = cases[round % cases.len()];
        let size = sizes[(round / cases.len()) % sizes.len()];
        let body = vec![b'x'; size];
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&body).unwrap();
        let (status, headers, _) =
            read_response(&mut reader).unwrap_or_else(|| panic!("round {round}: no answer"));
        assert_eq!(status, want, "round {round}");
        assert!(
            !headers.contains("connection: close"),
            "round {round}: a {size}-byte body is drained, not a reason to close"
        );
        // The next request on the same connection is answered.
        conn.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (status, _, _) = read_response(&mut reader)
            .unwrap_or_else(|| panic!("round {round}: the connection was dropped"));
        assert_eq!(status, 200, "round {round}");
        rounds += 1;
    }
    assert_eq!(rounds, 60);

    // A body over the limit is not read: the answer says the connection closes,
    // and it does, cleanly.
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(
        b"POST /v1/no-such-route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 6000000\r\n\r\nxxxx",
    )
    .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let (status, headers, _) = read_response(&mut reader).expect("an answer");
    assert!(status == 404 || status == 413, "{status}");
    assert!(headers.contains("connection: close"), "{headers}");
    let mut rest = vec![];
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[tokio::test]
async fn junk_bearer_failures_are_counted_in_a_few_rows_flushed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let flooder = client_from(IpAddr::from([127, 0, 0, 9]));
    let (mut unauthorized, mut limited) = (0u64, 0u64);
    for i in 0..300 {
        let r = flooder
            .get(format!("{}/v1/vaults", server.base))
            .bearer_auth(format!("junk-{i}"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                assert!(r.headers().get("retry-after").is_some());
                limited += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(limited > 0, "the flood is rate-limited");
    // Another client is served meanwhile.
    let mut api = server.client();
    api.signup("owner@example.com").await;
    api.get("/v1/vaults").await.expect(200);

    let (status, _) = server.stop();
    assert!(status.success());
    let conn = raw_db(dir.path());
    let mut stmt = conn
        .prepare(
            "SELECT details FROM audit_events WHERE org_id = '00000000-0000-0000-0000-000000000000' \
             AND action = 'auth.failure' AND ip_address = '127.0.0.9'",
        )
        .unwrap();
    let rows: Vec<Value> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
        .collect();
    let counted: u64 = rows.iter().map(|d| d["count"].as_u64().unwrap()).sum();
    eprintln!(
        "{unauthorized} junk requests answered 401, {limited} answered 429; {} audit rows counting {counted}",
        rows.len()
    );
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    assert_eq!(counted, unauthorized, "every failure is counted");
}

#[tokio::test]
async fn metrics_need_the_configured_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("metrics.token"), "m-token-123\n").unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[metrics]\ntoken_file = \"{}\"\n",
            dir.path().join("metrics.token").display()
        ),
    );
    let server = Launch::new(dir.path()).arg("--config").arg(config).start();
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.base);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(
        r.status(),
        401,
        "loopback alone is not enough once a token is set"
    );
    let r = http
        .get(&url)
        .bearer_auth("m-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("strongroom_http_requests_total")
    );
}

#[test]
fn bad_transport_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, needle) in [
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "trusted_proxies",
        ),
        ("[server]\nmax_connections = 0\n", "max_connections"),
        ("[server]\nheader_timeout_secs = 0\n", "header_timeout_secs"),
        (
            "[metrics]\ntoken_file = \"/nonexistent/strongroom-token\"\n",
            "metrics token",
        ),
    ] {
        let cfg = write_config(dir.path(), toml);
        let data = dir.path().join("data");
        let (code, _, stderr) = run_cli(&[
            "serve",
            "--config",
            &cfg,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert_ne!(code, 0, "{toml}");
        assert!(stderr.contains(needle), "{toml}: {stderr}");
    }
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let server = Launch::new(dir.path()).arg("--config").arg(config).start();
    let logs = server.logs();
    let metrics_url = logs
        .lines()
        .find_map(|l| l.split("metrics served at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{logs}"))
        .to_owned();
    let http = reqwest::Client::new();
    // Not on the API's port any more…
    let r = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // …but on its own, and nothing else is there.
    let r = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("strongroom_http_requests_total")
    );
    let other = metrics_url.replace("/metrics", "/v1/health");
    assert_eq!(http.get(other).send().await.unwrap().status(), 404);
    let (status, _) = server.stop();
    assert!(status.success());
}
