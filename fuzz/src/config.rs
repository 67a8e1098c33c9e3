//! `config`: the configuration file (`strongroom.toml`), read and resolved
//! as `strongroom serve` does (`Config::resolve` with `--config FILE`).
//!
//! Properties, for any file content: resolving returns a configuration or a
//! clean error (never a panic), and an accepted configuration keeps the
//! bounds `resolve` promises: a token lifetime of 60 s to 24 h, at least one
//! event per checkpoint, at least one hashing permit, transport timeouts of
//! at least a second, at least one connection, a failure-aggregation window
//! of 1 s to 1 h.
//!
//! A file naming `[metrics] token_file` is skipped: resolving reads that file,
//! and the fuzzer must not make the harness read `/dev/zero`.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use strongroom::config::{Config, ServeArgs};

/// A scratch directory holding the file under test.
pub struct Harness {
    dir: crate::Scratch,
    lock: Mutex<()>,
}

impl Harness {
    /// A harness with its own directory.
    pub fn new() -> Self {
        Harness {
            dir: crate::Scratch::new("config"),
            lock: Mutex::new(()),
        }
    }

    /// Checks one input.
    pub fn check(&self, data: &[u8]) {
        if let Ok(t) = std::str::from_utf8(data).map(str::parse::<toml::Table>)
            && let Ok(t) = t
            && t.get("metrics").and_then(|m| m.get("token_file")).is_some()
        {
            return;
        }
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let file = self.dir.path().join("strongroom.toml");
        std::fs::write(&file, data).expect("writing the config file");
        let args = ServeArgs {
            listen: None,
            data_dir: None,
            dev: false,
            config: Some(file),
            tls_cert: None,
            tls_key: None,
            allow_plain_http: false,
            kms_provider: None,
            open_signup: false,
            log_format: None,
            database_url: None,
        };
        let Ok(c) = Config::resolve(args) else {
            return;
        };
        assert!((60..=86_400).contains(&c.user_token_ttl_secs));
        assert!(c.checkpoints.every_events >= 1);
        assert!(c.hashing.permits >= 1);
        let second = Duration::from_secs(1);
        assert!(c.transport.header_timeout >= second);
        assert!(c.transport.body_timeout >= second);
        assert!(c.transport.idle_timeout >= second);
        assert!(c.transport.max_connections >= 1);
        assert!((second..=Duration::from_secs(3600)).contains(&c.auth_failure_window));
        assert!(c.data_dir.is_some(), "not in dev mode: a data directory");
        if let strongroom::store::StoreConfig::Postgres(o) = &c.store {
            assert!((2..=1000).contains(&o.pool_size));
            assert!(o.connect_timeout >= second);
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// The target.
pub fn run(data: &[u8]) {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new).check(data);
}
