//! A loading session nobody completes times out; its players are requeued and told.

use crate::common;

use std::time::Duration;

use common::{Behaviour, Client, MODE_1V1, StubGameServer, TestEnv, TestServer};

/// Goal: when nobody sends loading_complete, both players get `error loading_timeout` after
/// the loading timeout, are back in the queue, and are matched again into a new loading
/// session that can finish with match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_timeout_requeues_both_players() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let mut settings = env.settings();
    settings.timing.loading_timeout_ms = 1_000;
    // The rematch must come after the timeout's notice: a match round racing that notice
    // turns `loading_timeout` into `loading_cancelled` (a service bug, pinned down by
    // `notice_loss.rs`). With a 2 s match interval, the round after the sweep at ~1.1 s
    // comes at ~2 s; the pair created by the enqueue trigger needs no round.
    settings.timing.match_interval_ms = 2_000;
    let loading_timeout = Duration::from_millis(settings.timing.loading_timeout_ms);
    let server = TestServer::start(settings).await;

    let (mut a, a_id) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    // The loading session, and its deadline, can only start after this instant.
    let started = tokio::time::Instant::now();
    let (mut b, b_id) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let first = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, first);

    a.expect_error("loading_timeout").await;
    b.expect_error("loading_timeout").await;
    let waited = started.elapsed();
    assert!(waited >= loading_timeout, "timed out after only {waited:?}");
    assert!(
        redis.ready_flag(first, a_id).await.is_none(),
        "the timed out loading session is gone"
    );

    // Back in the queue - or already in the next loading session, which only queued
    // players can enter; the entry and the queue are read atomically.
    for player in [a_id, b_id] {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
        let entry = entry.expect("the player still has an entry");
        let requeued = (entry.state == "queued" && queued)
            || (entry.state == "loading" && entry.loading != first.to_string());
        assert!(
            requeued,
            "{player} is not back in the queue: {entry:?}, queued={queued}"
        );
    }

    let second = a.expect_start_loading().await;
    assert_ne!(second, first);
    assert_eq!(b.expect_start_loading().await, second);
    a.loading_complete(second).await;
    b.loading_complete(second).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);
    redis.wait_settled(true).await;
}
