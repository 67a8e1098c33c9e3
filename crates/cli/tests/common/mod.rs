//! Test harness: runs the real `strongroom` binary on loopback and talks to it
//! over real HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "Correct-Horse-42!";

/// A running server process.
pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<String>>,
}

/// What to start.
pub struct Launch<'a> {
    pub data_dir: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A command the binary runs under (`unshare … sh -c '…; exec "$@"'`):
    /// its arguments come first, then the binary and its own.
    pub wrapper: Vec<String>,
}

impl<'a> Launch<'a> {
    pub fn new(data_dir: &'a Path) -> Self {
        Launch {
            data_dir,
            args: vec![],
            env: vec![],
            wrapper: vec![],
        }
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn start(self) -> Server {
        Server::launch(self, "127.0.0.1:0")
    }
    pub fn start_on(self, listen: &str) -> Server {
        Server::launch(self, listen)
    }
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Launch::new(data_dir).start()
    }

    fn launch(l: Launch<'_>, listen: &str) -> Server {
        let bin = env!("CARGO_BIN_EXE_strongroom");
        let mut cmd = match l.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(l.data_dir);
        cmd.args(&l.args);
        cmd.env_remove("STRONGROOM_ROOT_KEY")
            .env("STRONGROOM_LOG", "debug");
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning strongroom");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on ") {
                        let url = line[i + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        let _ = tx.send(url);
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child,
            base,
            data_dir: l.data_dir.to_path_buf(),
            log,
        }
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(30))
            .expect("server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        (status, self.logs())
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    pub fn client(&self) -> Api {
        Api::new(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(child: &mut Child, d: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < d {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A JSON response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl Resp {
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }
    #[track_caller]
    pub fn expect_problem(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "not problem+json: {}",
            self.content_type
        );
        for k in ["type", "title", "status", "detail"] {
            assert!(
                self.body.get(k).is_some(),
                "problem without {k}: {}",
                self.text
            );
        }
        assert_eq!(self.body["status"], json!(status));
        self.body
    }
}

/// A small client for the `/v1` API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Signs up (first user: owner) and keeps the token.
    pub async fn signup(&mut self, email: &str) {
        let b = self
            .post(
                "/v1/auth/signup",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect(201);
        self.token = Some(b["access_token"].as_str().unwrap().to_owned());
    }

    /// Signs up through an invitation: `invite` is the answer of `POST /v1/org/invite`.
    pub async fn signup_invited(&mut self, email: &str, invite: &Value) {
        let b = self
            .post(
                "/v1/auth/signup",
                json!({"email": email, "password": PASSWORD, "invite_token": invite["invite_token"]}),
            )
            .await
            .expect(201);
        self.token = Some(b["access_token"].as_str().unwrap().to_owned());
    }

    pub async fn login(&mut self, email: &str) {
        let b = self
            .post(
                "/v1/auth/token",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect(200);
        self.token = Some(b["access_token"].as_str().unwrap().to_owned());
    }

    pub async fn create_vault(&self, name: &str) -> String {
        let b = self
            .post("/v1/vaults", json!({"name": name}))
            .await
            .expect(201);
        b["id"].as_str().unwrap().to_owned()
    }

    pub async fn put_secret(&self, vault: &str, path: &str, value: &str) -> Value {
        self.put(
            &format!("/v1/vaults/{vault}/secrets/{path}"),
            json!({"value": value}),
        )
        .await
        .expect(201)
    }

    pub async fn get_secret(&self, vault: &str, path: &str) -> Resp {
        self.get(&format!("/v1/vaults/{vault}/secrets/{path}"))
            .await
    }
}

/// Every file below `dir`, with its bytes.
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Copies a directory tree (a data directory) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A connection to a data directory's database, for tests that play attacker.
/// Foreign keys are enforced, as the previous driver did by default.
pub fn raw_db(data_dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data_dir.join("strongroom.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn
}

/// Runs the binary with arguments and returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a throwaway SoftHSM2 token under `dir` (with `scripts/softhsm-token.sh`)
/// and returns the environment that points the `pkcs11` provider at it.
pub fn softhsm_env(dir: &Path, label: &str) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/softhsm-token.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(label)
        .arg("1234")
        .output()
        .expect("running softhsm-token.sh");
    assert!(
        out.status.success(),
        "could not create a SoftHSM2 token (install softhsm2): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    env.push(("STRONGROOM_KMS_PROVIDER".into(), "pkcs11".into()));
    env.push(("STRONGROOM_PKCS11_TOKEN_LABEL".into(), label.into()));
    env
}

impl<'a> Launch<'a> {
    /// Adds several environment variables.
    pub fn envs(mut self, vars: &[(String, String)]) -> Self {
        self.env.extend(vars.iter().cloned());
        self
    }
}

/// Checks that the client's token is an EdDSA JWT whose signature verifies with
/// the key published at `/.well-known/jwks.json`, and that a token signed by any
/// other key is refused.
pub async fn assert_token_verifies_with_jwks(api: &Api) {
    use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = api.get("/.well-known/jwks.json").await.expect(200);
    let key = b64.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let token = api.token.clone().unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let header: Value =
        serde_json::from_slice(&b64.decode(input.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(input.as_bytes(), &b64.decode(sig).unwrap())
        .expect("the token verifies with the published key");
    // The same claims signed by another Ed25519 key are refused.
    let other = Ed25519KeyPair::generate().unwrap();
    assert_ne!(other.public_key().as_ref(), key.as_slice());
    let forged = format!(
        "{input}.{}",
        b64.encode(other.sign(input.as_bytes()).as_ref())
    );
    let mut f = api.clone();
    f.token = Some(forged);
    f.get("/v1/vaults").await.expect_problem(401);
}

pub mod load;

/// Writes a `strongroom.toml` that selects the `gcp` provider on a Cloud KMS
/// stand-in at `endpoint` (no credentials), with key ring `strongroom` of
/// `project` and the JWT signing key version `signing`.
pub fn write_gcp_config(path: &Path, project: &str, signing: &str, endpoint: &str) {
    std::fs::write(
        path,
        format!(
            r#"[kms]
provider = "gcp"

[kms.gcp]
project = "{project}"
location = "global"
key_ring = "strongroom"
signing_key_version = "{signing}"
endpoint = "{endpoint}"
anonymous = true
timeout_ms = 5000
max_retries = 2
"#
        ),
    )
    .unwrap();
}
