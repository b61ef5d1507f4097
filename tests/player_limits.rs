//! Limits a player runs into: a player another session still holds, the queue length, the
//! message rate (while other players keep playing).

use crate::common;

use common::{Behaviour, Client, MODE_1V1, MODE_2V2, Msg, StubGameServer, TestEnv, TestServer};

/// Goal: an entry that a session of another instance still holds with a live lease (its
/// player lease already gone, as after a clock skew between instances) makes the enqueue
/// answer `player_busy` without touching that entry; the connection stays usable and
/// enqueues once the stale entry's lease has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_entry_of_another_session_makes_the_player_busy() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let player = common::new_player();
    let other_session = common::new_player();
    let deadline_ms = common::env::now_ms() + 2_000;
    redis
        .plant_queued_entry(player, MODE_2V2, other_session, deadline_ms)
        .await;
    let mut client = Client::connect_as(server.addr, "late", player).await;
    client.enqueue(player, MODE_1V1).await;
    client.expect_error("player_busy").await;
    assert!(
        redis.in_queue(MODE_2V2, player).await,
        "the stale entry stays"
    );
    assert!(!redis.in_queue(MODE_1V1, player).await);
    let left_ms = deadline_ms.saturating_sub(common::env::now_ms());
    tokio::time::sleep(std::time::Duration::from_millis(left_ms + 100)).await;
    client.enqueue(player, MODE_1V1).await;
    client.expect(Msg::Enqueued).await;
    assert!(redis.in_queue(MODE_1V1, player).await);
    assert!(
        !redis.in_queue(MODE_2V2, player).await,
        "the dead entry is replaced"
    );
}

/// Goal: the entry a loading timeout left for a player who did not load (`removed`, still
/// within its lease, owned by the session that was playing then) holds no place: a new
/// session of the player enqueues at once instead of meeting `player_busy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_entry_of_another_session_does_not_make_the_player_busy() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let player = common::new_player();
    let (old_session, old_loading) = (common::new_player(), common::new_player());
    let deadline_ms = common::env::now_ms() + 60_000;
    redis
        .plant_removed_entry(player, MODE_1V1, old_session, deadline_ms, old_loading)
        .await;
    let mut client = Client::connect_as(server.addr, "back", player).await;
    client.enqueue(player, MODE_1V1).await;
    client.expect(Msg::Enqueued).await;
    assert!(redis.in_queue(MODE_1V1, player).await);
    let entry = redis.entry(player).await.expect("the new entry");
    assert_eq!(entry.state, "queued");
}

/// Goal: with limits.max_queue_len = 1, a second player of the mode gets `error
/// queue_full` and is not queued; another mode's queue is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_further_players() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    settings.limits.max_queue_len = 1;
    let server = TestServer::start(settings).await;
    let (_first, first_id) = Client::enqueued(server.addr, "first", MODE_2V2).await;
    let mut second = Client::connect(server.addr, "second").await;
    let second_id = second.player;
    second.enqueue(second_id, MODE_2V2).await;
    second.expect_error("queue_full").await;
    assert_eq!(
        redis.queue(MODE_2V2).await,
        [first_id.to_string()].into_iter().collect()
    );
    assert!(redis.entry(second_id).await.is_none());
    second.enqueue(second_id, MODE_1V1).await;
    second.expect(Msg::Enqueued).await;
}

/// Goal: messages over the rate limit get `error rate_limited` (the connection stays
/// open), and a client that keeps flooding is closed with 1008 and leaves the queue, while
/// two other players in a loading session play on to match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_client_is_rate_limited_then_closed() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let mut settings = env.settings();
    settings.limits.messages_per_second = 1;
    settings.limits.message_burst = 3;
    let server = TestServer::start(settings).await;
    let (mut flooder, player) = Client::enqueued(server.addr, "flooder", MODE_2V2).await;
    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);

    // The enqueue took one token: two more are allowed, then the limit applies.
    let dequeue = r#"{"type":"dequeue"}"#.to_owned();
    let junk = "junk".to_owned();
    let burst: Vec<String> = std::iter::repeat_n(junk, 5).collect();
    flooder.send_burst(&burst).await;
    flooder.expect_error("invalid_message").await;
    flooder.expect_error("invalid_message").await;
    let mut limited = 0;
    for _ in 0..3 {
        if let Msg::Error { code, .. } = flooder.recv().await
            && code == "rate_limited"
        {
            limited += 1;
        }
    }
    // At one token per second, at most one more frame may have been allowed meanwhile.
    assert!(
        limited >= 2,
        "only {limited} of 3 frames over the limit were refused"
    );
    assert!(redis.in_queue(MODE_2V2, player).await, "still queued");

    let flood: Vec<String> = std::iter::repeat_n(dequeue, 40).collect();
    flooder.send_burst(&flood).await;
    limited = 0;
    let reason = loop {
        match flooder.next_or_close().await {
            Ok(Msg::Error { code, .. }) if code == "rate_limited" => limited += 1,
            Ok(other) => panic!("unexpected {other:?} during the flood"),
            Err((code, reason)) => {
                assert_eq!(code, 1008, "closed with {code} {reason:?}");
                break reason;
            }
        }
    };
    assert!(limited >= 1, "no rate_limited before the close");
    assert!(reason.contains("rate"), "close reason {reason:?}");
    common::eventually("the flooder leaves the queue", || async {
        (!redis.in_queue(MODE_2V2, player).await && redis.entry(player).await.is_none())
            .then_some(())
    })
    .await;
    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);
}
