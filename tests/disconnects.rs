//! Players who disconnect leave no trace: out of the queue, out of loading sessions, and
//! never matched afterwards.

use crate::common;

use std::collections::BTreeSet;

use common::{Behaviour, Client, MODE_1V1, StubGameServer, TestEnv, TestServer};

/// Waits until `player` has neither a queue entry nor an entry in the players hash.
async fn wait_gone(redis: &common::Inspector, player: uuid::Uuid) {
    common::eventually("the disconnected player is gone from Redis", || async {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
        (entry.is_none() && !queued).then_some(())
    })
    .await;
}

/// The disconnect-while-queued scenario; `abrupt` drops the TCP connection instead of
/// closing the WebSocket.
async fn queued_player_disconnects(abrupt: bool) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;

    let (leaver, ghost) = Client::enqueued(server.addr, "leaver", MODE_1V1).await;
    if abrupt {
        leaver.drop_connection();
    } else {
        leaver.close().await;
    }
    wait_gone(&redis, ghost).await;

    let (mut waiter, waiter_id) = Client::enqueued(server.addr, "waiter", MODE_1V1).await;
    waiter.expect_silence(common::QUIET).await;
    assert_eq!(
        redis.queue(MODE_1V1).await,
        [waiter_id.to_string()].into_iter().collect(),
        "the later player waits alone"
    );

    let (mut partner, partner_id) = Client::enqueued(server.addr, "partner", MODE_1V1).await;
    let loading = waiter.expect_start_loading().await;
    assert_eq!(partner.expect_start_loading().await, loading);
    assert_eq!(
        redis.loading_players(loading).await,
        [waiter_id.to_string(), partner_id.to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "the ghost is not in the loading session"
    );
    assert!(redis.entry(ghost).await.is_none());
}

/// Goal: a queued player who closes the WebSocket leaves the queue and is never matched: a
/// later player waits alone, then is matched with someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_player_who_closes_is_never_matched() {
    queued_player_disconnects(false).await;
}

/// Goal: same as a clean close when the TCP connection just drops (crashed client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_player_whose_connection_drops_is_never_matched() {
    queued_player_disconnects(true).await;
}

/// The disconnect-during-loading scenario; `stayer_loaded` makes the remaining player
/// report loading_complete before the other one leaves.
async fn loading_player_disconnects(stayer_loaded: bool) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;

    let (leaver, leaver_id) = Client::enqueued(server.addr, "leaver", MODE_1V1).await;
    let (mut stayer, stayer_id) = Client::enqueued(server.addr, "stayer", MODE_1V1).await;
    let mut leaver = leaver;
    let first = leaver.expect_start_loading().await;
    assert_eq!(stayer.expect_start_loading().await, first);
    if stayer_loaded {
        stayer.loading_complete(first).await;
        common::eventually("the stayer is marked ready", || async {
            (redis.ready_flag(first, stayer_id).await.as_deref() == Some("1")).then_some(())
        })
        .await;
    }

    leaver.drop_connection();
    stayer.expect_error("loading_cancelled").await;
    wait_gone(&redis, leaver_id).await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, stayer_id).await;
    assert_eq!(entry.map(|e| e.state).as_deref(), Some("queued"));
    assert!(queued, "the remaining player is back in the queue");
    assert!(
        redis.loading_keys().await.is_empty(),
        "the loading session is gone"
    );

    let (mut newcomer, newcomer_id) = Client::enqueued(server.addr, "newcomer", MODE_1V1).await;
    let second = stayer.expect_start_loading().await;
    assert_ne!(second, first, "a new loading session");
    assert_eq!(newcomer.expect_start_loading().await, second);
    stayer.loading_complete(second).await;
    newcomer.loading_complete(second).await;
    let found = stayer.expect_match_found().await;
    assert_eq!(newcomer.expect_match_found().await, found);
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].players.iter().copied().collect::<BTreeSet<_>>(),
        [stayer_id, newcomer_id].into_iter().collect(),
        "the leaver is not in the match"
    );
    redis.wait_settled(true).await;
}

/// Goal: when a player disconnects during loading, the other gets `error loading_cancelled`,
/// is requeued, and is matched later with a new player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_during_loading_requeues_the_other_player() {
    loading_player_disconnects(false).await;
}

/// Goal: same when the remaining player had already reported loading_complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_during_loading_requeues_a_player_who_had_loaded() {
    loading_player_disconnects(true).await;
}

/// Goal: `dequeue` takes the player out of the queue with `dequeued`, and a later player is
/// not matched with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dequeued_player_is_never_matched() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let (mut quitter, quitter_id) = Client::enqueued(server.addr, "quitter", MODE_1V1).await;
    quitter.dequeue().await;
    quitter.expect(common::Msg::Dequeued).await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, quitter_id).await;
    assert!(entry.is_none() && !queued, "nothing left of the quitter");
    let (mut waiter, _) = Client::enqueued(server.addr, "waiter", MODE_1V1).await;
    waiter.expect_silence(common::QUIET).await;
    quitter.expect_silence(common::QUIET).await;
}

/// Goal: `dequeue` during loading gives the leaver `dequeued` and the other player
/// `error loading_cancelled`; the leaver is in no queue and the other is requeued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dequeue_during_loading_cancels_for_the_other_player() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let (mut leaver, leaver_id) = Client::enqueued(server.addr, "leaver", MODE_1V1).await;
    let (mut stayer, stayer_id) = Client::enqueued(server.addr, "stayer", MODE_1V1).await;
    let loading = leaver.expect_start_loading().await;
    assert_eq!(stayer.expect_start_loading().await, loading);
    leaver.dequeue().await;
    leaver.expect(common::Msg::Dequeued).await;
    stayer.expect_error("loading_cancelled").await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, leaver_id).await;
    assert!(entry.is_none() && !queued, "the leaver left: {entry:?}");
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, stayer_id).await;
    assert_eq!(entry.map(|e| e.state).as_deref(), Some("queued"));
    assert!(queued);
    leaver.expect_silence(common::QUIET).await;
}

/// Goal: a client that stops answering (no frame, no pong) is closed after the idle
/// timeout with close code 1000, and its player leaves the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_closed_after_the_idle_timeout() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    settings.timing.heartbeat_interval_ms = 200;
    settings.timing.idle_timeout_ms = 1_000;
    let server = TestServer::start(settings).await;
    let (mut sleeper, sleeper_id) = Client::enqueued(server.addr, "sleeper", MODE_1V1).await;
    sleeper.mute();
    let (entry, _) = redis.entry_and_queued(MODE_1V1, sleeper_id).await;
    assert!(entry.is_some(), "still queued right after going silent");
    wait_gone(&redis, sleeper_id).await;
    let reason = sleeper.expect_close(1000).await;
    assert!(reason.contains("idle"), "close reason {reason:?}");
}

/// Goal: a player who closed its connection can enqueue again at once on a new one (the
/// old session's cleanup is done when the close handshake completes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_player_can_enqueue_again() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let player = common::new_player();
    let mut first = Client::connect_as(server.addr, "first", player).await;
    first.enqueue(player, MODE_1V1).await;
    first.expect(common::Msg::Enqueued).await;
    first.close().await;
    let mut second = Client::connect_as(server.addr, "second", player).await;
    second.enqueue(player, MODE_1V1).await;
    second.expect(common::Msg::Enqueued).await;
    assert!(redis.in_queue(MODE_1V1, player).await);
}
