//! The server: accept loop with a connection cap, background tasks, graceful shutdown.
//!
//! `run` is generic over the listener, so production passes a tokio `TcpListener` and the
//! simulation a turmoil one. Shutdown: stop accepting, tell every session (each cleans up
//! its Redis state and closes with 1001), wait for them and for running allocations, all
//! bounded by `shutdown_timeout_ms`.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::http::{self, Connection};
use crate::limits;
use crate::matchmaker::{Deps, Matchmaker};

/// A source of connections: tokio's `TcpListener` in production, turmoil's in simulation.
pub trait Listener: Send + 'static {
    /// The connection type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection and its peer address.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, String)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Frames are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer.to_string()))
    }
}

/// How a run ended, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Whether every session and allocation finished within the shutdown timeout.
    pub clean: bool,
}

/// Serves on `listener` until `shutdown` completes, then shuts down gracefully.
pub async fn run<L: Listener>(
    mut listener: L,
    settings: Arc<Settings>,
    deps: Deps,
    shutdown: impl Future<Output = ()>,
) -> Ended {
    let (matchmaker, background) = Matchmaker::new(settings.clone(), deps);
    let matchmaker = Arc::new(matchmaker);
    let stop = CancellationToken::new();
    let background = background.spawn(&stop);
    let sessions = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(settings.limits.max_connections));
    tokio::pin!(shutdown);
    tracing::info!(bind = %settings.bind, "serving");
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = Arc::new(Connection {
                    matchmaker: matchmaker.clone(),
                    sessions: sessions.clone(),
                    shutdown: stop.clone(),
                    permit: std::sync::Mutex::new(slots.clone().try_acquire_owned().ok()),
                    peer,
                });
                sessions.spawn(serve_http(stream, connection));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
            }
        }
    }
    drop(listener);
    drain(&matchmaker, &stop, sessions, background).await
}

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY_MS: u64 = 100;

/// Serves HTTP on one connection; a WebSocket upgrade hands it to a session task.
async fn serve_http<S>(stream: S, connection: Arc<Connection>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer.clone();
    let service = service_fn(move |request| http::route(connection.clone(), request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits::HTTP_HEADER_TIMEOUT_MS))
        .max_buf_size(limits::MAX_HTTP_HEADER_BYTES);
    if let Err(error) = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%error, %peer, "http connection ended with an error");
    }
}

/// Tells everything to stop and waits, bounded by the shutdown timeout.
async fn drain(
    matchmaker: &Arc<Matchmaker>,
    stop: &CancellationToken,
    sessions: TaskTracker,
    background: TaskTracker,
) -> Ended {
    let timeout = Duration::from_millis(matchmaker.settings().timing.shutdown_timeout_ms);
    tracing::info!(sessions = matchmaker.live_sessions(), "shutting down");
    stop.cancel();
    sessions.close();
    let allocations = matchmaker.allocation_tasks();
    allocations.close();
    let all = async {
        sessions.wait().await;
        allocations.wait().await;
        background.wait().await;
    };
    let clean = tokio::time::timeout(timeout, all).await.is_ok();
    if clean {
        tracing::info!("shutdown complete");
    } else {
        tracing::warn!(
            left = matchmaker.live_sessions(),
            "shutdown timed out; leases expire what is left"
        );
    }
    Ended { clean }
}
