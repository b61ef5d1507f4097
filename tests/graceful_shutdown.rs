//! The real `match-server` binary: its HTTP endpoints, and a graceful shutdown on SIGTERM
//! that tells every client, closes with 1001 and leaves Redis clean.

use crate::common;

use std::time::Duration;

use common::binary::{Binary, binary_settings};
use common::{Client, MODE_1V1, MODE_2V2, Msg, TestEnv};

/// Goal: the binary serves `GET /healthz` with `ok` and `GET /metrics` with Prometheus text
/// that counts started matches (`match_matches_started_total`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_healthz_and_metrics() {
    let env = TestEnv::new();
    let mut binary = Binary::start(&binary_settings(&env), &env.redis_url).await;
    let (status, body) = common::http::get(binary.addr, "/healthz").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let (mut a, _) = Client::enqueued(binary.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(binary.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    let (status, metrics) = common::http::get(binary.addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE match_matches_started_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("match_matches_started_total{mode=\"Normal_1v1\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("match_connections 2"), "{metrics}");
    let (status, _) = common::http::get(binary.addr, "/nowhere").await.unwrap();
    assert_eq!(status, 404);
    let (status, _) = common::http::get(binary.addr, "/ws").await.unwrap();
    assert_eq!(status, 426, "a plain GET /ws asks for the upgrade");

    binary.terminate();
    let exit = binary.wait_exit(common::WAIT).await;
    assert!(exit.success(), "exit status {exit}");
}

/// Expects `error shutting_down` then a close frame with 1001 (going away). A player in a
/// loading session may first hear `loading_cancelled` when the other player's cleanup
/// requeued it just before its own shutdown began.
async fn expect_shutdown_goodbye(client: &mut Client, loading: bool) {
    // The server is closing: answer nothing (no pong may hit the closed socket).
    client.mute();
    let mut message = client.recv().await;
    if loading && matches!(&message, Msg::Error { code, .. } if code == "loading_cancelled") {
        message = client.recv().await;
    }
    assert!(
        matches!(&message, Msg::Error { code, .. } if code == "shutting_down"),
        "{}: expected error shutting_down, got {message:?}",
        client.name
    );
    client.expect_close(1001).await;
}

/// Goal: SIGTERM with players idle, queued and in a loading session: every client gets
/// `error shutting_down` and a close frame 1001, the process exits 0 within the shutdown
/// timeout, and Redis keeps no queue entry, player entry, loading session or lock of the
/// instance's key prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_players_and_leaves_redis_clean() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let settings = binary_settings(&env);
    let shutdown_timeout = Duration::from_millis(settings.timing.shutdown_timeout_ms);
    let mut binary = Binary::start(&settings, &env.redis_url).await;

    let mut idle = Client::connect(binary.addr, "idle").await;
    let (mut q1, _) = Client::enqueued(binary.addr, "q1", MODE_2V2).await;
    let (mut q2, _) = Client::enqueued(binary.addr, "q2", MODE_2V2).await;
    let (mut l1, _) = Client::enqueued(binary.addr, "l1", MODE_1V1).await;
    let (mut l2, _) = Client::enqueued(binary.addr, "l2", MODE_1V1).await;
    let loading = l1.expect_start_loading().await;
    assert_eq!(l2.expect_start_loading().await, loading);
    l1.loading_complete(loading).await;
    assert_eq!(redis.queue(MODE_2V2).await.len(), 2);
    assert_eq!(redis.loading_keys().await.len(), 1);
    assert_eq!(redis.players().await.len(), 4);

    binary.terminate();
    let terminated = tokio::time::Instant::now();
    for client in [&mut idle, &mut q1, &mut q2] {
        expect_shutdown_goodbye(client, false).await;
    }
    for client in [&mut l1, &mut l2] {
        expect_shutdown_goodbye(client, true).await;
    }
    let exit = binary
        .wait_exit(shutdown_timeout.saturating_sub(terminated.elapsed()) + common::POLL * 4)
        .await;
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status {exit}:\n{}",
        binary.log()
    );
    let left = redis.matchmaking_keys().await;
    assert!(left.is_empty(), "Redis keeps {left:?}:\n{}", binary.log());
}

/// Goal: an in-process instance shut down while a game server allocation hangs still ends
/// cleanly within its shutdown timeout: both loaded players get `error shutting_down` and
/// close 1001, and Redis keeps nothing of the prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_hanging_allocation_is_clean() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let stub = common::StubGameServer::start(&env, common::Behaviour::Hang).await;
    let mut settings = env.settings();
    // The allocation must still be running when the shutdown begins.
    settings.timing.allocation_timeout_ms = 1_000;
    let server = common::TestServer::start(settings).await;
    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    common::eventually("the game server is asked", || async {
        (!stub.requests().is_empty()).then_some(())
    })
    .await;

    let ended = server.shutdown().await;
    assert!(ended.clean, "shutdown did not finish within its timeout");
    expect_shutdown_goodbye(&mut a, true).await;
    expect_shutdown_goodbye(&mut b, true).await;
    let left = redis.matchmaking_keys().await;
    assert!(left.is_empty(), "Redis keeps {left:?}");
}
