//! Which node signs audit checkpoints: the one holding a session-level
//! advisory lock on a connection of its own. When that node dies its session
//! ends, the lock is free, and the next node that asks takes it over.

use tokio::sync::Mutex;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The advisory lock key of the checkpoint signer ("strongroom checkpoints").
const CHECKPOINT_LOCK: i64 = 0x5354_524f_4e47_4350;

pub(crate) struct Lease {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// This node's lease connection, if it has one open.
    client: Option<tokio_postgres::Client>,
    /// Whether that session holds the lock.
    held: bool,
}

impl Lease {
    pub(crate) fn new(config: tokio_postgres::Config, tls: MakeRustlsConnect) -> Self {
        Lease {
            config,
            tls,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether this node holds the lease now, taking it if it is free.
    pub(crate) async fn hold(&self) -> bool {
        let mut st = self.state.lock().await;
        if st.client.as_ref().is_some_and(|c| c.is_closed()) {
            // A session that is gone holds no lock.
            *st = State::default();
        }
        if st.client.is_none() {
            let Ok((client, connection)) = self.config.connect(self.tls.clone()).await else {
                return false;
            };
            tokio::spawn(async move {
                let _ = connection.await;
            });
            st.client = Some(client);
        }
        let client = st.client.as_ref().expect("connected above");
        let answer = if st.held {
            // Still the same session, so still the holder, if it answers.
            client.simple_query("SELECT 1").await.map(|_| true)
        } else {
            client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&CHECKPOINT_LOCK])
                .await
                .and_then(|r| r.try_get::<_, bool>(0))
        };
        match answer {
            Ok(held) => {
                if held && !st.held {
                    tracing::info!("this node signs audit checkpoints now");
                }
                st.held = held;
                held
            }
            Err(_) => {
                *st = State::default();
                false
            }
        }
    }

    /// Gives the lease up (at shutdown), so another node takes it at once.
    pub(crate) async fn release(&self) {
        let mut st = self.state.lock().await;
        if let Some(c) = st.client.take()
            && st.held
        {
            let _ = c
                .query_one("SELECT pg_advisory_unlock($1)", &[&CHECKPOINT_LOCK])
                .await;
        }
        st.held = false;
    }
}
