//! Throwaway PostgreSQL clusters for tests: `initdb` and `pg_ctl` in a
//! temporary directory, listening on loopback on a free port, stopped (and
//! the directory removed) when the [`Cluster`] is dropped. Hermetic: no system
//! service, no fixed port, nothing left behind.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (CI
//! containers), the cluster runs as the `postgres` account that Debian's
//! package creates (`runuser -u postgres`), and its directory is handed to
//! that account.
//!
//! The server binaries are found in `STRONGROOM_PG_BINDIR`, else in the
//! newest `/usr/lib/postgresql/<major>/bin`, else on `PATH`.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running throwaway cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
    databases: AtomicU32,
}

/// The account a cluster runs as when the tests run as root.
const SERVICE_USER: &str = "postgres";

impl Cluster {
    /// Starts a new cluster, or panics with what went wrong (the tests can't
    /// run without it; `.ci/run` installs the `postgresql` package).
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    /// Starts a new cluster with TLS on, serving this certificate chain and
    /// key (PEM).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Cluster {
        Self::start_with_files(
            &[
                ("ssl", "on"),
                ("ssl_cert_file", "'server.crt'"),
                ("ssl_key_file", "'server.key'"),
            ],
            &[("server.crt", cert_pem), ("server.key", key_pem)],
        )
    }

    /// Starts a new cluster with extra server settings (`name = value` lines
    /// of `postgresql.conf`).
    pub fn start_with(settings: &[(&str, &str)]) -> Cluster {
        Self::start_with_files(settings, &[])
    }

    /// Starts a new cluster with extra settings and files written into its
    /// data directory first (mode 0600, owned by the server's account).
    fn start_with_files(settings: &[(&str, &str)], files: &[(&str, &str)]) -> Cluster {
        let bin = bindir();
        let as_user = is_root().then_some(SERVICE_USER);
        let dir = tempfile::Builder::new()
            .prefix("strongroom-pg-")
            .tempdir()
            .expect("a temporary directory");
        if let Some(user) = as_user {
            run(Command::new("chown").arg(user).arg(dir.path()));
        }
        let data = dir.path().join("data");
        let mut initdb = service_command(as_user, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .arg("--locale=C");
        run(&mut initdb);
        let mut conf = String::from(
            "listen_addresses = '127.0.0.1'\n\
             fsync = on\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n\
             log_min_messages = warning\n",
        );
        conf.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            dir.path().display()
        ));
        for (k, v) in settings {
            conf.push_str(&format!("{k} = {v}\n"));
        }
        append(&data.join("postgresql.conf"), &conf);
        for (name, text) in files {
            use std::os::unix::fs::PermissionsExt;
            let path = data.join(name);
            std::fs::write(&path, text).expect("a file in the data directory");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("file mode");
            if let Some(user) = as_user {
                run(Command::new("chown").arg(user).arg(&path));
            }
        }
        let cluster = Cluster {
            port: 0,
            dir,
            bin,
            as_user,
            databases: AtomicU32::new(0),
        }
        .start_on_free_port();
        cluster.reap_after_exit();
        cluster
    }

    /// One cluster for the whole test binary, started on first use; each test
    /// takes a [`Cluster::fresh_database`] of it. Stopped and removed when the
    /// test process exits (statics are never dropped: a reaper does it).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(Cluster::start)
    }

    /// A detached watcher that stops the server and removes its directory
    /// once this process is gone, however it ends (a panic, `abort`, a
    /// signal), so no cluster outlives its tests.
    fn reap_after_exit(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.as_user {
            Some(u) => format!("runuser -u {u} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn start_on_free_port(mut self) -> Cluster {
        // A port found free may be taken before the server binds it: retry.
        for _ in 0..5 {
            self.port = free_port();
            if self.pg_ctl_start() {
                return self;
            }
        }
        panic!(
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn pg_ctl_start(&self) -> bool {
        let mut c = service_command(self.as_user, &self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start");
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The TCP port it listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` (plain TCP on loopback: TLS off, as
    /// the throwaway cluster has no certificate).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}_{}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL with `psql` as the superuser; panics if it fails. Returns
    /// what it printed (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// [`Cluster::psql`], answering the error instead of panicking.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .arg("-c")
            .arg(sql)
            .output()
            .expect("psql runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Stops the server (fast shutdown: sessions are ended, in-flight
    /// transactions roll back). [`Cluster::restart`] brings it back on the
    /// same port.
    pub fn stop(&self) {
        let mut c = service_command(self.as_user, &self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60", "-m", "fast", "stop"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pg_ctl_start() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not restart; its log:\n{}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut c = service_command(self.as_user, &self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-m", "immediate", "stop"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn service_command(as_user: Option<&str>, program: &Path) -> Command {
    match as_user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .expect("postgresql.conf written");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Where `initdb` and `pg_ctl` are.
fn bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("STRONGROOM_PG_BINDIR") {
        return d.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .max();
    if let Some((_, bin)) = newest {
        return bin;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match found.as_deref().and_then(Path::parent) {
        Some(dir) => dir.to_owned(),
        None => panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
             `apt-get install postgresql`, or set STRONGROOM_PG_BINDIR"
        ),
    }
}
