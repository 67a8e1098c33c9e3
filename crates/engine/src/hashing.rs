//! Bounded password work.
//!
//! Argon2id costs `m_cost` KiB (19 MiB by default) and tens of milliseconds of
//! CPU per hash. Run in unbounded `spawn_blocking`, a burst of wrong logins from
//! a few addresses (each under its rate limit) multiplied both: hundreds of
//! concurrent hashes, and glibc kept their freed buffers in per-thread arenas,
//! so resident memory never came back. Here at most `permits` hashes run at once
//! (one per core by default), each in one of a fixed set of [`HashMemory`]
//! buffers that are reused, so password memory is `permits × m_cost` whatever
//! the load. A request that can't get a permit within `wait` is refused with
//! 503 and `Retry-After` rather than queued without end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strongroom_core::{Dependency, Error, Result, Unavailable};
use strongroom_crypto::password::HashMemory;
use tokio::sync::Semaphore;

/// How much password work may run at once.
#[derive(Debug, Clone, Copy)]
pub struct HashingLimits {
    /// Hashes running at once (each holds one buffer of `m_cost` KiB).
    pub permits: usize,
    /// How long a request waits for a permit before it is refused (503).
    pub wait: Duration,
}

impl Default for HashingLimits {
    fn default() -> Self {
        HashingLimits {
            permits: std::thread::available_parallelism().map_or(2, |n| n.get()),
            wait: Duration::from_secs(2),
        }
    }
}

/// The permits and the reusable buffers of password work.
pub(crate) struct PasswordWork {
    permits: Arc<Semaphore>,
    /// Idle buffers. At most `permits` exist: one is taken with a permit.
    buffers: Arc<Mutex<Vec<HashMemory>>>,
    capacity_kib: u32,
    wait: Duration,
}

impl PasswordWork {
    /// Password work for hashes of up to `capacity_kib` KiB.
    pub(crate) fn new(limits: HashingLimits, capacity_kib: u32) -> Self {
        PasswordWork {
            permits: Arc::new(Semaphore::new(limits.permits.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            capacity_kib,
            wait: limits.wait,
        }
    }

    /// Runs `f` on a blocking thread with a permit and a buffer, or refuses
    /// with `Unavailable` when every permit stays taken for `wait`.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut HashMemory) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    metrics::counter!("strongroom_password_work_refused_total").increment(1);
                    return Err(Unavailable::new(Dependency::PasswordHashing).into());
                }
            };
        let buffers = self.buffers.clone();
        let capacity = self.capacity_kib;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut memory = pop(&buffers).unwrap_or_else(|| HashMemory::new(capacity));
            let out = f(&mut memory);
            push(&buffers, memory);
            out
        })
        .await
        .map_err(Error::internal)
    }
}

fn pop(buffers: &Mutex<Vec<HashMemory>>) -> Option<HashMemory> {
    buffers.lock().unwrap_or_else(|p| p.into_inner()).pop()
}

fn push(buffers: &Mutex<Vec<HashMemory>>, memory: HashMemory) {
    buffers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(memory);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_are_reused_and_bounded_by_the_permits() {
        let work = Arc::new(PasswordWork::new(
            HashingLimits {
                permits: 2,
                wait: Duration::from_secs(30),
            },
            64,
        ));
        let mut tasks = vec![];
        for _ in 0..16 {
            let w = work.clone();
            tasks.push(tokio::spawn(async move {
                w.run(|_m| std::thread::sleep(Duration::from_millis(5)))
                    .await
            }));
        }
        for t in tasks {
            t.await.expect("joins").expect("runs");
        }
        let n = work.buffers.lock().expect("not poisoned").len();
        assert!((1..=2).contains(&n), "{n} buffers for 2 permits");
    }

    #[tokio::test]
    async fn a_request_that_cannot_get_a_permit_is_refused() {
        let work = Arc::new(PasswordWork::new(
            HashingLimits {
                permits: 1,
                wait: Duration::from_millis(50),
            },
            64,
        ));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let w = work.clone();
        let busy = tokio::spawn(async move {
            w.run(move |_m| {
                let _ = rx.recv();
            })
            .await
        });
        // Wait until the first holds the permit.
        while work.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = work.run(|_m| ()).await;
        assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
        tx.send(()).expect("the first is waiting");
        busy.await.expect("joins").expect("runs");
        work.run(|_m| ()).await.expect("free again");
    }
}
