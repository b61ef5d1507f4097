//! The frame size limit: an oversized frame closes only the connection that sent it.

use crate::common;

use common::{Behaviour, Client, MODE_1V1, MODE_2V2, StubGameServer, TestEnv, TestServer};

/// A text frame of exactly `bytes` bytes (not a valid message).
fn junk(bytes: usize) -> String {
    "x".repeat(bytes)
}

/// Goal: a frame larger than limits.max_frame_bytes closes that connection with close code
/// 1009 and removes its player from the queue, while two other players keep playing to
/// match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_its_connection() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let settings = env.settings();
    let max_frame_bytes = settings.limits.max_frame_bytes;
    let server = TestServer::start(settings).await;

    let (mut flooder, flooder_id) = Client::enqueued(server.addr, "flooder", MODE_2V2).await;
    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);

    flooder.send_text(&junk(max_frame_bytes * 16)).await;
    flooder.expect_close(1009).await;
    common::eventually("the closed player leaves the queue", || async {
        let (entry, queued) = redis.entry_and_queued(MODE_2V2, flooder_id).await;
        (entry.is_none() && !queued).then_some(())
    })
    .await;

    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);
}

/// Goal: a frame of exactly limits.max_frame_bytes is still accepted (answered with an
/// error frame for its content, not a close), one byte more is refused with close 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_size_limit_is_inclusive() {
    let env = TestEnv::new();
    let settings = env.settings();
    let max_frame_bytes = settings.limits.max_frame_bytes;
    let server = TestServer::start(settings).await;
    let mut client = Client::connect(server.addr, "edge").await;
    client.send_text(&junk(max_frame_bytes)).await;
    client.expect_error("invalid_message").await;
    client.send_text(&junk(max_frame_bytes + 1)).await;
    client.expect_close(1009).await;
}
