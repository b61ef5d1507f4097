//! A client that sends `enqueue` several times in one burst is queued once.

use crate::common;

use common::{Behaviour, Client, MODE_1V1, Msg, StubGameServer, TestEnv, TestServer};

/// Goal: three `enqueue` frames in one burst on one connection give exactly one `enqueued`
/// and two `error already_queued`; Redis holds the player once, and with a second player
/// each gets exactly one `start_loading` of the same loading session, then match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_burst_queues_the_player_once() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;

    let mut first = Client::connect(server.addr, "burst").await;
    let player = first.player;
    let frame = Client::enqueue_frame(player, MODE_1V1);
    first
        .send_burst(&[frame.clone(), frame.clone(), frame])
        .await;

    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(first.recv().await);
    }
    let enqueued = replies.iter().filter(|m| **m == Msg::Enqueued).count();
    let already = replies
        .iter()
        .filter(|m| matches!(m, Msg::Error { code, .. } if code == "already_queued"))
        .count();
    assert_eq!(
        (enqueued, already),
        (1, 2),
        "replies to the burst: {replies:?}"
    );
    first.expect_silence(common::QUIET).await;

    assert_eq!(
        redis.queue(MODE_1V1).await,
        [player.to_string()].into_iter().collect(),
        "the player is queued once"
    );
    assert_eq!(redis.players().await.len(), 1, "one entry for the player");
    assert_eq!(redis.entry(player).await.unwrap().state, "queued");

    let (mut second, _) = Client::enqueued(server.addr, "second", MODE_1V1).await;
    let loading = first.expect_start_loading().await;
    assert_eq!(second.expect_start_loading().await, loading);
    let mut clients = [first, second];
    common::expect_silence_all(&mut clients).await;
    assert_eq!(redis.loading_keys().await.len(), 1, "one loading session");
    for client in &mut clients {
        client.loading_complete(loading).await;
    }
    let found = clients[0].expect_match_found().await;
    assert_eq!(clients[1].expect_match_found().await, found);
}
