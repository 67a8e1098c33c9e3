//! Writers and readers run against a server while a fault is injected, and
//! the checks afterwards: every acknowledged write reads back, no version
//! exists without a readable value, and failures were clean 503s.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::Api;

/// What one request was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub problem: bool,
    pub detail: String,
    pub retry_after: bool,
}

/// One write attempt: its path, its (unique) value and how it was answered.
#[derive(Debug, Clone)]
pub struct Write {
    pub path: String,
    pub value: String,
    pub answer: Option<Answer>,
    /// The version the server acknowledged (a 201).
    pub version: Option<u64>,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub writes: Vec<Write>,
    pub reads: Vec<Answer>,
}

impl Seen {
    pub fn acked(&self) -> impl Iterator<Item = &Write> {
        self.writes.iter().filter(|w| w.version.is_some())
    }
    pub fn count(&self, status: u16) -> (usize, usize) {
        let w = self
            .writes
            .iter()
            .filter(|w| w.answer.as_ref().is_some_and(|a| a.status == status))
            .count();
        let r = self.reads.iter().filter(|a| a.status == status).count();
        (w, r)
    }
}

/// Writers and readers in the background until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

async fn answer(r: reqwest::Response) -> (Answer, serde_json::Value) {
    let status = r.status().as_u16();
    let problem = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/problem+json"));
    let retry_after = r.headers().get("retry-after").is_some();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (
        Answer {
            status,
            problem,
            detail: body["detail"].as_str().unwrap_or("").to_owned(),
            retry_after,
        },
        body,
    )
}

impl Load {
    /// `writers` tasks writing to `prefix{w}/k{0..5}` (so paths gain versions)
    /// and `readers` tasks reading `seed` paths, each request with `timeout`.
    pub fn start(
        api: &Api,
        vault: &str,
        prefix: &str,
        writers: usize,
        readers: usize,
        seed: Vec<(String, String)>,
        timeout: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap();
        let token = api.token.clone().unwrap();
        let mut tasks = vec![];
        for w in 0..writers {
            let (http, token, stop) = (http.clone(), token.clone(), stop.clone());
            let url = format!("{}/v1/vaults/{vault}/secrets/", api.base);
            let prefix = prefix.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("{prefix}{w}/k{}", i % 5);
                    let value = format!("{prefix}{w}-value-{i}");
                    let r = http
                        .put(format!("{url}{path}"))
                        .bearer_auth(&token)
                        .json(&json!({"value": value}))
                        .send()
                        .await;
                    let (answer, version) = match r {
                        Ok(r) => {
                            let (a, body) = answer(r).await;
                            let v = (a.status == 201)
                                .then(|| body["version"].as_u64())
                                .flatten();
                            (Some(a), v)
                        }
                        Err(_) => (None, None),
                    };
                    if answer.is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    seen.writes.push(Write {
                        path,
                        value,
                        answer,
                        version,
                    });
                    i += 1;
                }
                seen
            }));
        }
        for r in 0..readers {
            let (http, token, stop) = (http.clone(), token.clone(), stop.clone());
            let url = format!("{}/v1/vaults/{vault}/secrets/", api.base);
            let seed = seed.clone();
            tasks.push(tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    let (path, value) = &seed[i % seed.len()];
                    if let Ok(resp) = http
                        .get(format!("{url}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        let (a, body) = answer(resp).await;
                        if a.status == 200 {
                            assert_eq!(body["value"], value.as_str(), "{path} read back wrong");
                        }
                        seen.reads.push(a);
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    i += 1;
                }
                seen
            }));
        }
        Load { stop, tasks }
    }

    /// Stops every task and gathers what they saw.
    pub async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        for t in self.tasks {
            let s = t.await.expect("a load task panicked");
            all.writes.extend(s.writes);
            all.reads.extend(s.reads);
        }
        all
    }
}

/// Every answer is one of `ok` or a 503 problem that names `detail` and says
/// when to retry.
#[track_caller]
pub fn assert_clean_failures(seen: &Seen, write_ok: u16, detail: &str) {
    for a in seen
        .writes
        .iter()
        .filter_map(|w| w.answer.as_ref())
        .chain(seen.reads.iter())
    {
        if a.status == write_ok || a.status == 200 {
            continue;
        }
        assert_eq!(a.status, 503, "a failure that is not a 503: {a:?}");
        assert!(a.problem, "a 503 that is not problem+json: {a:?}");
        assert_eq!(a.detail, detail, "{a:?}");
        assert!(a.retry_after, "a 503 without Retry-After: {a:?}");
    }
}

/// Every acknowledged write reads back its value at its version; for every
/// path written, the versions are contiguous from 1 and each one reads back
/// a value some writer sent to that path (nothing half-written). Answers the
/// number of versions checked.
pub async fn assert_nothing_lost(api: &Api, vault: &str, seen: &Seen) -> usize {
    for w in seen.acked() {
        let v = w.version.unwrap();
        let r = api
            .get(&format!("/v1/vaults/{vault}/secret-version/{}/{v}", w.path))
            .await;
        assert_eq!(
            r.status, 200,
            "acknowledged {} v{v} lost: {}",
            w.path, r.text
        );
        assert_eq!(r.body["value"], w.value.as_str(), "{} v{v}", w.path);
    }
    let mut sent: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for w in &seen.writes {
        sent.entry(&w.path).or_default().insert(&w.value);
    }
    let mut checked = 0;
    for (path, values) in sent {
        let r = api
            .get(&format!("/v1/vaults/{vault}/secret-versions/{path}"))
            .await;
        if r.status == 404 {
            // Nothing ever committed here: then nothing was acknowledged.
            assert!(
                seen.acked().all(|w| w.path != path),
                "{path}: acknowledged but not found"
            );
            continue;
        }
        let body = r.expect(200);
        let mut nums: Vec<u64> = body["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect();
        nums.sort_unstable();
        let want: Vec<u64> = (1..=nums.len() as u64).collect();
        assert_eq!(nums, want, "{path}: versions are not contiguous");
        for n in nums {
            let r = api
                .get(&format!("/v1/vaults/{vault}/secret-version/{path}/{n}"))
                .await;
            assert_eq!(r.status, 200, "{path} v{n} does not read back: {}", r.text);
            let value = r.body["value"].as_str().unwrap();
            assert!(values.contains(value), "{path} v{n}: a value nobody sent");
            checked += 1;
        }
    }
    checked
}

/// Retries `f` until it answers true, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A write to `{vault}/probe` succeeds within `within` (service is back).
pub async fn await_writes_resume(api: &Api, vault: &str, within: Duration, what: &str) {
    eventually(within, what, || async {
        api.put(
            &format!("/v1/vaults/{vault}/secrets/probe"),
            serde_json::json!({"value": "probe"}),
        )
        .await
        .status
            == 201
    })
    .await;
}

/// The online audit verifier says the chain is intact.
pub async fn assert_audit_verifies(api: &Api) {
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
}

/// The server's count of errors of `kind` (`strongroom_errors_total{kind=…}`
/// at `/metrics`, open to loopback when no metrics token is set).
pub async fn errors_of_kind(api: &Api, kind: &str) -> u64 {
    let text = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("strongroom_errors_total") && l.contains(&format!("kind=\"{kind}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
