//! The harness shared by the integration tests: a real redis-server, per-test isolation on
//! it, in-process match-server instances (auth required, as in production, with the
//! harness's own secret), player tokens, a stub game server, a WebSocket test client and
//! Redis inspection helpers.
//!
//! Every wait here is bounded, so a broken service fails a test instead of hanging it.
//!
//! Running: `cargo test --test integration` (one module: `... integration sessions::`). The
//! test binary starts its own `redis-server` (Redis 6+ on PATH) on a free loopback port,
//! killed when the binary exits; `MATCH_TEST_REDIS_URL=redis://host:port` uses a running
//! Redis instead (tests isolate themselves by key prefix and delete their keys).
//! `RUST_LOG=match_server=debug` shows the service's logs of a failing test.

pub mod agones;
pub mod binary;
pub mod client;
pub mod env;
pub mod http;
pub mod inspect;
pub mod proxy;
pub mod recording;
pub mod redis_server;
pub mod server;
pub mod stub;

use std::future::Future;
use std::time::Duration;

pub use client::{Client, Credentials, Msg};
pub use env::TestEnv;
pub use inspect::Inspector;
pub use server::TestServer;
pub use stub::{Behaviour, StubGameServer};

/// The two-player mode of the default configuration.
pub const MODE_1V1: &str = "Normal_1v1";
/// The four-player mode of the default configuration.
pub const MODE_2V2: &str = "Normal_2v2";

/// Longest wait for a message or a Redis state the test expects: generous against a loaded
/// CI machine, yet short enough that a missing message fails fast.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched: several match and sweep intervals.
pub const QUIET: Duration = Duration::from_millis(800);
/// Pause between two polls of Redis while waiting for a state.
pub const POLL: Duration = Duration::from_millis(25);

/// Logs of the service, shown by the test runner for a failing test when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Polls `probe` until it returns `Some`, at most [`WAIT`]; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {WAIT:?} waiting until {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `future` with a bound; panics with `what` when it takes longer.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Expects every client to receive nothing for [`QUIET`], watching all at once.
pub async fn expect_silence_all(clients: &mut [Client]) {
    futures_util::future::join_all(
        clients
            .iter_mut()
            .map(|client| client.expect_silence(QUIET)),
    )
    .await;
}

/// A fresh random player id.
pub fn new_player() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}
