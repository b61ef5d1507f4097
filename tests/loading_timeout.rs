//! The loading timeout policy on real Redis: when a loading session times out, only the
//! players who loaded are requeued (`loading_timeout`); those who did not are taken out of
//! the queue and told `loading_not_completed`, so they cannot hold the others hostage.

use crate::common;

use std::time::Duration;

use common::{Behaviour, Client, MODE_1V1, Msg, QUIET, StubGameServer, TestEnv, TestServer};

/// Goal: one player loads, the other never does. At the timeout the one who loaded gets
/// `loading_timeout` and is back in the queue; the absent one gets `loading_not_completed`,
/// is in no queue, and its entry records the removal (state `removed`, the loading
/// session, the code). The one who loaded is then matched with a newcomer, never with the
/// absent player; the absent player's new `enqueue` is a new attempt and is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_timeout_requeues_only_the_players_who_loaded() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let mut settings = env.settings();
    settings.timing.loading_timeout_ms = 1_000;
    let loading_timeout = Duration::from_millis(settings.timing.loading_timeout_ms);
    let server = TestServer::start(settings).await;

    let (mut loaded, loaded_id) = Client::enqueued(server.addr, "loaded", MODE_1V1).await;
    // The loading session, and its deadline, can only start after this instant.
    let started = tokio::time::Instant::now();
    let (mut afk, afk_id) = Client::enqueued(server.addr, "afk", MODE_1V1).await;
    let first = loaded.expect_start_loading().await;
    assert_eq!(afk.expect_start_loading().await, first);
    loaded.loading_complete(first).await;

    loaded.expect_error("loading_timeout").await;
    afk.expect_error("loading_not_completed").await;
    let waited = started.elapsed();
    assert!(waited >= loading_timeout, "timed out after only {waited:?}");
    assert!(
        redis.loading_players(first).await.is_empty(),
        "{first} is gone"
    );

    let (entry, queued) = redis.entry_and_queued(MODE_1V1, loaded_id).await;
    let entry = entry.expect("the player who loaded keeps its entry");
    assert!(
        entry.state == "queued" && queued,
        "{entry:?}, queued={queued}"
    );
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, afk_id).await;
    let entry = entry.expect("the removal is recorded in the entry");
    assert!(!queued, "the absent player is out of the queue");
    assert_eq!(
        (
            entry.state.as_str(),
            entry.ended.as_str(),
            entry.reason.as_str()
        ),
        (
            "removed",
            first.to_string().as_str(),
            "loading_not_completed"
        )
    );

    // Nobody is grouped with the absent player: the one who loaded waits for a newcomer.
    loaded.expect_silence(QUIET).await;
    let (mut newcomer, _) = Client::enqueued(server.addr, "newcomer", MODE_1V1).await;
    let second = loaded.expect_start_loading().await;
    assert_eq!(newcomer.expect_start_loading().await, second);
    loaded.loading_complete(second).await;
    newcomer.loading_complete(second).await;
    let found = loaded.expect_match_found().await;
    assert_eq!(newcomer.expect_match_found().await, found);
    afk.expect_silence(QUIET).await;

    // A new attempt of the absent player is an ordinary enqueue.
    afk.enqueue_self(MODE_1V1).await;
    afk.expect(Msg::Enqueued).await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, afk_id).await;
    assert!(entry.is_some_and(|e| e.state == "queued") && queued);
    drop(server);
}

/// Goal: when nobody loads, nobody is requeued: both players are told
/// `loading_not_completed` and Redis holds neither in a queue, so no new loading session
/// forms from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_timeout_with_nobody_loaded_removes_everyone() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    settings.timing.loading_timeout_ms = 1_000;
    let server = TestServer::start(settings).await;

    let (mut a, a_id) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, b_id) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let first = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, first);
    a.expect_error("loading_not_completed").await;
    b.expect_error("loading_not_completed").await;
    for player in [a_id, b_id] {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
        assert!(!queued, "{player} is still queued");
        assert_eq!(entry.map(|e| e.state), Some("removed".to_owned()));
    }
    let mut clients = [a, b];
    common::expect_silence_all(&mut clients).await;
    assert!(redis.loading_keys().await.is_empty());

    // Their sessions end cleanly: closing deletes the entries that record the removal.
    let [a, b] = clients;
    a.close().await;
    b.close().await;
    redis.wait_settled(false).await;
    drop(server);
}
