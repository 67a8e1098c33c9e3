//! `strongroom-loadgen`: the load generator of the Strongroom/OpenBao benchmark
//! (`bench/run.sh`), and the trivial axum server that serves as the ceiling.
//!
//! `run` is a closed loop: `--concurrency` workers, each with its own keep-alive
//! HTTP/1.1 connection, send one request, read the whole answer, record the
//! latency, and send the next, for `--duration` seconds after `--warmup` seconds
//! that are not recorded. It prints one JSON object: requests/s, latency
//! percentiles (from an HDR histogram, microsecond resolution), errors by status
//! and the load generator's own CPU time (getrusage).
//!
//! The same request shapes are used for every server that speaks the same API:
//! `--api strongroom` (the 1claw `/v1` vault API, agent token), `--api openbao`
//! (KV v2 + AppRole) and `--api ceiling` (Strongroom's shapes, sent to
//! `serve-ceiling`, which answers every request with one fixed secret-sized body).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(name = "strongroom-loadgen", about = "HTTP load generator for bench/")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive a server with one workload and print a JSON result.
    Run(Box<RunArgs>),
    /// Serve the ceiling: one axum handler answering a fixed secret-sized JSON body.
    ServeCeiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Api {
    Strongroom,
    Openbao,
    Ceiling,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Workload {
    /// New 64-byte secrets at distinct paths `{write-prefix}{worker}-{seq}`.
    Write,
    /// Uniformly random reads among `{read-prefix}{0..keys}`.
    Read,
    /// Lists of `{list-prefix}`.
    List,
    /// Logins: AppRole (OpenBao) / agent-token exchange (Strongroom).
    Login,
    /// Preload: write exactly `--count` secrets `{read-prefix}{start..start+count}`.
    Fill,
    /// A mix of the four above, weighted by `--mix` (the soak test, bench/soak.sh).
    Mix,
}

/// The request kinds a `mix` draws from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Write,
    Read,
    List,
    Login,
}

/// `read=70,write=20,list=5,login=5`: cumulative weights, in that order.
fn parse_mix(spec: &str) -> Result<Vec<(Kind, u64)>> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .with_context(|| format!("--mix: {part:?} is not name=weight"))?;
        let kind = match name.trim() {
            "write" => Kind::Write,
            "read" => Kind::Read,
            "list" => Kind::List,
            "login" => Kind::Login,
            other => bail!("--mix: unknown request kind {other:?}"),
        };
        let weight: u64 = weight
            .trim()
            .parse()
            .with_context(|| format!("--mix: weight of {name}"))?;
        total += weight;
        out.push((kind, total));
    }
    if total == 0 {
        bail!("--mix needs at least one positive weight");
    }
    Ok(out)
}

#[derive(Parser, Clone)]
struct RunArgs {
    #[arg(long, value_enum)]
    api: Api,
    /// Base URL, `http://127.0.0.1:PORT` (loopback only, plain HTTP); several,
    /// comma-separated, spread the workers over them (nodes behind a balancer).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    workload: Workload,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds (not for `fill`).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unrecorded seconds before the measurement.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Strongroom bearer token / OpenBao `X-Vault-Token`.
    #[arg(long, default_value = "")]
    token: String,
    /// Strongroom vault id.
    #[arg(long, default_value = "ceiling")]
    vault: String,
    /// OpenBao KV v2 mount.
    #[arg(long, default_value = "secret")]
    mount: String,
    /// Number of pre-loaded keys the `read` workload picks from.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Key names are `{read-prefix}{index:07}` (read and fill).
    #[arg(long, default_value = "bench/read/k")]
    read_prefix: String,
    #[arg(long, default_value = "bench/list/")]
    list_prefix: String,
    #[arg(long, default_value = "bench/write/")]
    write_prefix: String,
    /// fill: first index.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// fill: number of secrets.
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Strongroom agent `ocv_` key (login).
    #[arg(long, default_value = "")]
    api_key: String,
    /// OpenBao AppRole role_id / secret_id (login).
    #[arg(long, default_value = "")]
    role_id: String,
    #[arg(long, default_value = "")]
    secret_id: String,
    /// Secret value length in bytes.
    #[arg(long, default_value_t = 64)]
    value_len: usize,
    /// Also write the JSON result here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Free-form label copied into the result.
    #[arg(long, default_value = "")]
    label: String,
    /// `mix`: weights of the request kinds, e.g. `read=70,write=20,list=5,login=5`.
    #[arg(long, default_value = "read=70,write=20,list=5,login=5")]
    mix: String,
    /// Writes go to `{write-prefix}{0..write-keys}` (new versions of a bounded set of
    /// secrets) instead of a fresh path each time; 0 = a fresh path each time.
    #[arg(long, default_value_t = 0)]
    write_keys: u64,
    /// Open loop: start this many requests per second in total, on schedule, and
    /// measure each latency from its scheduled start (no coordinated omission).
    /// 0 = closed loop (each worker sends its next request when the last is answered).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Also report every window of this many seconds (latencies, errors), under `windows`.
    #[arg(long, default_value_t = 0.0)]
    window: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::ServeCeiling { listen } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve_ceiling(listen)),
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let out = rt.block_on(run((*args).clone()))?;
            let text = serde_json::to_string(&out)?;
            if let Some(p) = &args.json {
                std::fs::write(p, format!("{text}\n"))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            println!("{text}");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- ceiling ---

/// About the size of Strongroom's answer to a secret read (64-byte value).
const CEILING_BODY: &str = concat!(
    r#"{"id":"0194f3a2-6c1e-7c3b-9a52-0d7f3e1b2c4d","vault_id":"0194f3a2-6b00-7000-8000-000000000001","#,
    r#""path":"bench/read/k0001234","type":"api_key","#,
    r#""value":"6f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d","#,
    r#""version":1,"metadata":{},"created_at":"2026-01-01T00:00:00Z","expires_at":null}"#
);

async fn ceiling(_body: Bytes) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        CEILING_BODY,
    )
}

async fn serve_ceiling(listen: SocketAddr) -> Result<()> {
    let app = axum::Router::new().fallback(ceiling);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        })
        .await?;
    Ok(())
}

// -------------------------------------------------------------------- run ---

struct Shared {
    args: RunArgs,
    /// The servers driven (`--url`, comma-separated): worker w uses `servers[w % n]`.
    servers: Vec<(String, SocketAddr)>,
    auth: Option<(&'static str, String)>,
    next_fill: AtomicU64,
    stop: AtomicBool,
    /// When the run began (the open loop's schedule starts here).
    start: Instant,
    measure_from: Instant,
    end: Option<Instant>,
    mix: Vec<(Kind, u64)>,
    /// Open loop: the index of the next scheduled request.
    next_slot: AtomicU64,
    windows: std::sync::Mutex<Vec<Window>>,
}

/// One reporting window (`--window`).
struct Window {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    statuses: std::collections::BTreeMap<String, u64>,
    first_error: Option<String>,
}

impl Shared {
    /// The window a request started at `t0` belongs to, if windows are on.
    fn window_of(&self, t0: Instant) -> Option<usize> {
        (self.args.window > 0.0 && t0 >= self.measure_from).then(|| {
            (t0.duration_since(self.measure_from).as_secs_f64() / self.args.window) as usize
        })
    }

    fn record_window(&self, t0: Instant, latency: Duration, status: &str, error: Option<&str>) {
        let Some(i) = self.window_of(t0) else { return };
        let mut ws = self.windows.lock().expect("windows lock");
        while ws.len() <= i {
            ws.push(Window {
                hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
                ok: 0,
                errors: 0,
                statuses: Default::default(),
                first_error: None,
            });
        }
        let w = &mut ws[i];
        *w.statuses.entry(status.to_string()).or_default() += 1;
        match error {
            None => {
                w.ok += 1;
                let _ = w.hist.record(latency.as_micros().max(1) as u64);
            }
            Some(e) => {
                w.errors += 1;
                if w.first_error.is_none() {
                    w.first_error = Some(e.to_string());
                }
            }
        }
    }

    fn windows_json(&self) -> Vec<serde_json::Value> {
        let ws = self.windows.lock().expect("windows lock");
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        ws.iter()
            .enumerate()
            .map(|(i, w)| {
                json!({
                    "index": i,
                    "start_s": i as f64 * self.args.window,
                    "ok": w.ok,
                    "errors": w.errors,
                    "rps": w.ok as f64 / self.args.window,
                    "p50_ms": ms(&w.hist, 0.50),
                    "p99_ms": ms(&w.hist, 0.99),
                    "max_ms": w.hist.max() as f64 / 1000.0,
                    "statuses": w.statuses,
                    "first_error": w.first_error,
                })
            })
            .collect()
    }
}

#[derive(Default)]
struct WorkerOut {
    hist: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    statuses: std::collections::BTreeMap<String, u64>,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

// The load generator's own CPU time, for the report: the one unsafe call of
// the benchmark (the workspace denies `unsafe` elsewhere).
#[allow(unsafe_code)]
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn parse_url(url: &str) -> Result<(String, SocketAddr)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url must be http://HOST:PORT");
    };
    let host = rest.trim_end_matches('/').to_string();
    let addr: SocketAddr = host
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            host.to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))
        })
        .with_context(|| format!("resolving {host}"))?;
    if !addr.ip().is_loopback() {
        bail!("refusing a non-loopback target {addr}: this benchmark only drives local servers");
    }
    Ok((host, addr))
}

async fn run(args: RunArgs) -> Result<serde_json::Value> {
    let servers = args
        .url
        .split(',')
        .map(parse_url)
        .collect::<Result<Vec<_>>>()?;
    if args.workload == Workload::Fill && args.count == 0 {
        bail!("fill needs --count");
    }
    if args.rate < 0.0 || args.window < 0.0 || !args.rate.is_finite() || !args.window.is_finite() {
        bail!("--rate and --window must be finite and >= 0");
    }
    let mix = parse_mix(&args.mix)?;
    let auth = match (args.api, args.token.is_empty()) {
        (_, true) => None,
        (Api::Openbao, false) => Some(("x-vault-token", args.token.clone())),
        (_, false) => Some(("authorization", format!("Bearer {}", args.token))),
    };
    let start = Instant::now();
    let warm = Duration::from_secs_f64(if args.workload == Workload::Fill {
        0.0
    } else {
        args.warmup
    });
    let measure_from = start + warm;
    let end = (args.workload != Workload::Fill)
        .then(|| measure_from + Duration::from_secs_f64(args.duration));
    let shared = Arc::new(Shared {
        servers,
        auth,
        next_fill: AtomicU64::new(args.start),
        stop: AtomicBool::new(false),
        start,
        measure_from,
        end,
        mix,
        next_slot: AtomicU64::new(0),
        windows: std::sync::Mutex::new(Vec::new()),
        args: args.clone(),
    });

    // CPU time at the start of the measured window.
    let cpu0 = {
        let wait = measure_from.saturating_duration_since(Instant::now());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            cpu_seconds()
        })
    };
    let progress = if args.workload == Workload::Fill && args.count >= 50_000 {
        let s = shared.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let done = s
                    .next_fill
                    .load(Ordering::Relaxed)
                    .saturating_sub(s.args.start);
                eprintln!(
                    "  fill: {done}/{} after {:.0}s",
                    s.args.count,
                    s.measure_from.elapsed().as_secs_f64()
                );
            }
        }))
    } else {
        None
    };

    let mut handles = Vec::new();
    for w in 0..args.concurrency {
        let s = shared.clone();
        handles.push(tokio::spawn(async move { worker(s, w).await }));
    }
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.await?);
    }
    let cpu1 = cpu_seconds();
    if let Some(p) = progress {
        p.abort();
    }
    let cpu0 = cpu0.await?;

    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut statuses = std::collections::BTreeMap::<String, u64>::new();
    let mut first_error = None;
    let mut last = measure_from;
    for o in outs {
        if let Some(h) = &o.hist {
            hist.add(h)?;
        }
        ok += o.ok;
        errors += o.errors;
        for (k, v) in o.statuses {
            *statuses.entry(k).or_default() += v;
        }
        if first_error.is_none() {
            first_error = o.first_error;
        }
        if let Some(t) = o.last_done {
            last = last.max(t);
        }
    }
    let elapsed = last
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let cpu = cpu1 - cpu0;
    let windows = shared.windows_json();
    Ok(json!({
        "rate": args.rate,
        "windows": windows,
        "label": args.label,
        "api": format!("{:?}", args.api).to_lowercase(),
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "concurrency": args.concurrency,
        "threads": args.threads,
        "elapsed_s": elapsed,
        "requests": ok + errors,
        "ok": ok,
        "errors": errors,
        "rps": ok as f64 / elapsed,
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": hist.max() as f64 / 1000.0,
        "mean_ms": hist.mean() / 1000.0,
        "statuses": statuses,
        "first_error": first_error,
        "loadgen_cpu_s": cpu,
        "loadgen_cpu_pct": 100.0 * cpu / elapsed,
    }))
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn value(rng: &mut Rng, len: usize) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHA[(rng.next() % ALPHA.len() as u64) as usize] as char)
        .collect()
}

/// One request of the workload: method, path-and-query, JSON body.
fn request(
    s: &Shared,
    worker: usize,
    seq: u64,
    rng: &mut Rng,
) -> Option<(Method, String, Option<String>)> {
    let a = &s.args;
    let secret_path = |p: &str| match a.api {
        Api::Openbao => format!("/v1/{}/data/{p}", a.mount),
        _ => format!("/v1/vaults/{}/secrets/{p}", a.vault),
    };
    let write_body = |rng: &mut Rng| match a.api {
        Api::Openbao => json!({"data": {"value": value(rng, a.value_len)}}).to_string(),
        _ => json!({"value": value(rng, a.value_len), "type": "api_key"}).to_string(),
    };
    let write_method = if a.api == Api::Openbao {
        Method::POST
    } else {
        Method::PUT
    };
    let kind = match a.workload {
        Workload::Fill => {
            let i = s.next_fill.fetch_add(1, Ordering::Relaxed);
            if i >= a.start + a.count {
                return None;
            }
            let p = format!("{}{i:07}", a.read_prefix);
            return Some((write_method, secret_path(&p), Some(write_body(rng))));
        }
        Workload::Write => Kind::Write,
        Workload::Read => Kind::Read,
        Workload::List => Kind::List,
        Workload::Login => Kind::Login,
        Workload::Mix => {
            let total = s.mix.last().map_or(1, |&(_, cum)| cum);
            let r = rng.next() % total;
            s.mix
                .iter()
                .find(|&&(_, cum)| r < cum)
                .map_or(Kind::Read, |&(k, _)| k)
        }
    };
    Some(match kind {
        Kind::Write => {
            let p = if a.write_keys > 0 {
                format!("{}{:07}", a.write_prefix, rng.next() % a.write_keys)
            } else {
                format!("{}{worker:03}-{seq:08}", a.write_prefix)
            };
            (write_method, secret_path(&p), Some(write_body(rng)))
        }
        Kind::Read => {
            let i = rng.next() % a.keys.max(1);
            (
                Method::GET,
                secret_path(&format!("{}{i:07}", a.read_prefix)),
                None,
            )
        }
        Kind::List => match a.api {
            Api::Openbao => (
                Method::GET,
                format!("/v1/{}/metadata/{}?list=true", a.mount, a.list_prefix),
                None,
            ),
            _ => (
                Method::GET,
                format!("/v1/vaults/{}/secrets?prefix={}", a.vault, a.list_prefix),
                None,
            ),
        },
        Kind::Login => match a.api {
            Api::Openbao => (
                Method::POST,
                LOGIN_OPENBAO.into(),
                Some(json!({"role_id": a.role_id, "secret_id": a.secret_id}).to_string()),
            ),
            _ => (
                Method::POST,
                LOGIN_STRONGROOM.into(),
                Some(json!({"api_key": a.api_key}).to_string()),
            ),
        },
    })
}

const LOGIN_OPENBAO: &str = "/v1/auth/approle/login";
const LOGIN_STRONGROOM: &str = "/v1/auth/agent-token";

async fn worker(s: Arc<Shared>, w: usize) -> WorkerOut {
    let mut out = WorkerOut {
        hist: Some(Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")),
        ..Default::default()
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15
        ^ ((w as u64 + 1) * 0x1000_0000_01B3)
        ^ std::process::id() as u64);
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let is_fill = s.args.workload == Workload::Fill;
    let mut seq = 0u64;
    let mut retry: Option<(Method, String, Option<String>)> = None;
    let mut attempts = 0u32;
    loop {
        if s.stop.load(Ordering::Relaxed) {
            break;
        }
        if s.end.is_some_and(|end| Instant::now() >= end) {
            break;
        }
        let (method, path, body) = match retry.take() {
            Some(r) => r,
            None => {
                attempts = 0;
                seq += 1;
                match request(&s, w, seq, &mut rng) {
                    Some(r) => r,
                    None => break,
                }
            }
        };
        let t0 = if s.args.rate > 0.0 && attempts == 0 {
            // Open loop: wait for this request's slot; its latency counts from there.
            let slot = s.next_slot.fetch_add(1, Ordering::Relaxed);
            let due = s.start + Duration::from_secs_f64(slot as f64 / s.args.rate);
            if s.end.is_some_and(|end| due >= end) {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            due
        } else {
            Instant::now()
        };
        let server = &s.servers[w % s.servers.len()];
        let result = send(&s, server, &mut conn, method.clone(), &path, body.clone()).await;
        let t1 = Instant::now();
        let record = t0 >= s.measure_from;
        match result {
            Ok((status, text)) if (200..300).contains(&status) => {
                if record {
                    out.ok += 1;
                    let _ = out
                        .hist
                        .as_mut()
                        .unwrap()
                        .record((t1 - t0).as_micros().max(1) as u64);
                    *out.statuses.entry(status.to_string()).or_default() += 1;
                    out.last_done = Some(t1);
                    s.record_window(t0, t1 - t0, &status.to_string(), None);
                }
                let _ = text;
            }
            other => {
                let (key, detail) = match &other {
                    Ok((status, text)) => (
                        status.to_string(),
                        format!("HTTP {status} {method} {path}: {}", trunc(text)),
                    ),
                    Err(e) => ("io".to_string(), format!("{method} {path}: {e:#}")),
                };
                if is_fill && attempts < 5 {
                    // A preload must be complete: retry the same key.
                    attempts += 1;
                    retry = Some((method, path, body));
                    tokio::time::sleep(Duration::from_millis(50 * attempts as u64)).await;
                    continue;
                }
                if record {
                    out.errors += 1;
                    s.record_window(t0, t1 - t0, &key, Some(&detail));
                    *out.statuses.entry(key).or_default() += 1;
                    out.last_done = Some(t1);
                    if out.first_error.is_none() {
                        out.first_error = Some(detail);
                    }
                }
                if other.is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    out
}

fn trunc(s: &str) -> String {
    s.chars().take(300).collect()
}

async fn send(
    s: &Shared,
    (host, addr): &(String, SocketAddr),
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String)> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = Some(connect(*addr).await?);
    }
    let sender = conn.as_mut().unwrap();
    if let Err(e) = sender.ready().await {
        *conn = None;
        return Err(e.into());
    }
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::ACCEPT, "application/json");
    // Logins present their own credential, not the run's token.
    if let Some((name, value)) = &s.auth
        && path != LOGIN_STRONGROOM
        && path != LOGIN_OPENBAO
    {
        req = req.header(*name, value);
    }
    let req = match body {
        Some(b) => req
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(b)))?,
        None => req.body(Full::new(Bytes::new()))?,
    };
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            *conn = None;
            return Err(e.into());
        }
    };
    let status = resp.status().as_u16();
    let bytes = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            *conn = None;
            return Err(e.into());
        }
    };
    let text = if (200..300).contains(&status) {
        String::new()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((status, text))
}
