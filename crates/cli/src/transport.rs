//! Connection bounds: how long a client may take, and how many may be connected.
//!
//! Without them, a client opening connections and sending half a request head
//! on each held a task and a file descriptor per connection for ever; 1,100 of
//! them made the server unreachable. Now:
//!
//! - a connection must deliver its first complete request head within
//!   `header_timeout` (`first_request_timeout`; for TLS the handshake too);
//! - a kept-alive connection must start and finish its next request head
//!   within `idle_timeout` (hyper's header-read timer runs from the moment it
//!   waits for the next request);
//! - a request body must arrive within `body_timeout` (the server crate's
//!   `bounded_body` middleware);
//! - at most `max_connections` are open at once ([`ConnectionLimit`]): one
//!   more is closed as soon as it is accepted, so the connections already
//!   served keep their resources, and the timeouts above free slots held by
//!   slow clients.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Transport;

/// Applies the header and idle timeouts to the HTTP builder.
pub fn bound_connections(builder: &mut Builder<TokioExecutor>, t: Transport) {
    // The timer is axum-server's (installed by default).
    builder.http1().header_read_timeout(t.idle_timeout);
    builder
        .http2()
        .keep_alive_interval(t.idle_timeout)
        .keep_alive_timeout(t.header_timeout);
}

/// Connections the kernel queues for `accept` (capped by
/// `net.core.somaxconn`). The standard library's 128 dropped the SYNs of a
/// burst of connects while the accept loop caught up, and each dropped one
/// cost its client a one-second retransmit.
const LISTEN_BACKLOG: u32 = 1024;

/// The listening socket, with [`LISTEN_BACKLOG`]. Call inside the runtime.
pub fn listener(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

/// File descriptors the process keeps for itself (database, keyring, logs,
/// the listener) beside its connections.
const RESERVED_FDS: usize = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as servers that hold
/// one descriptor per connection do (Go's runtime, nginx's
/// `worker_rlimit_nofile`). A login shell or a plain `systemd` unit starts a
/// process at a soft limit of 1024, which capped `max_connections` (4096 by
/// default) at 960 although the hard limit allowed far more.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    // `None` is unlimited; Linux refuses an unlimited descriptor count, so
    // only a finite hard limit is taken.
    let (Some(soft), Some(hard)) = (current, maximum) else {
        return;
    };
    if soft >= hard {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
        Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit"),
    }
}

/// The connection cap, lowered to fit the open-file limit: a cap above it
/// would let connections exhaust the descriptors the database needs.
pub fn connection_cap(configured: usize) -> usize {
    let Some(soft) = open_file_limit() else {
        return configured;
    };
    let fits = soft.saturating_sub(RESERVED_FDS).max(1);
    if configured > fits {
        tracing::warn!(
            configured,
            open_file_limit = soft,
            using = fits,
            "server.max_connections is above what the open-file limit allows; raise `ulimit -n` to use it"
        );
        fits
    } else {
        configured
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits`.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// An acceptor that holds one permit per open connection and closes
/// connections beyond the cap at once.
#[derive(Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
}

impl ConnectionLimit {
    /// At most `max` connections at once.
    pub fn new(max: usize) -> Self {
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimit {
    type Stream = Limited;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Limited, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                // Small responses leave at once rather than after Nagle's delay.
                let _ = stream.set_nodelay(true);
                Ok((
                    Limited {
                        stream,
                        _permit: permit,
                    },
                    service,
                ))
            }
            Err(_) => {
                metrics::counter!("strongroom_connections_refused_total").increment(1);
                // Dropping the stream closes it.
                Err(io::Error::other("connection limit reached"))
            }
        })
    }
}

/// A connection holding its slot until it is dropped.
pub struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
