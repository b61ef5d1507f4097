//! Happy path against a real Redis: players enqueue, load together, and get a game server.

use crate::common;

use std::collections::BTreeSet;

use common::{
    Behaviour, Client, Inspector, MODE_1V1, MODE_2V2, StubGameServer, TestEnv, TestServer,
};
use uuid::Uuid;

/// Connects `count` players of `mode`, then runs them through start_loading, loading_complete
/// and match_found; checks what they see, what the game server was asked, what Redis holds
/// and what the metrics count.
async fn play_full_match(mode: &str, count: usize) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;

    let mut clients = Vec::new();
    let mut players = BTreeSet::new();
    for index in 0..count {
        let (client, player) = Client::enqueued(server.addr, &format!("p{index}"), mode).await;
        clients.push(client);
        players.insert(player);
    }

    let mut loadings = BTreeSet::new();
    for client in &mut clients {
        loadings.insert(client.expect_start_loading().await);
    }
    assert_eq!(loadings.len(), 1, "the group shares one loading session");
    let loading = loadings.into_iter().next().unwrap();
    assert_eq!(
        redis.loading_players(loading).await,
        players.iter().map(Uuid::to_string).collect(),
        "the loading session holds exactly the group"
    );

    for client in &mut clients {
        client.loading_complete(loading).await;
    }
    let mut found = BTreeSet::new();
    for client in &mut clients {
        found.insert(client.expect_match_found().await);
    }
    assert_eq!(found.len(), 1, "everyone gets the same game server session");
    let (session_id, server_address) = found.into_iter().next().unwrap();

    let requests = stub.requests();
    assert_eq!(requests.len(), 1, "one game server session is created");
    assert_eq!(requests[0].session_id, Some(session_id));
    assert_eq!(server_address, stub.address);
    assert_eq!(
        requests[0].players.iter().copied().collect::<BTreeSet<_>>(),
        players,
        "the game server is told who plays"
    );

    assert_settled_as_matched(&redis, &players, session_id, &server_address).await;
    common::expect_silence_all(&mut clients).await;

    let (status, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    for family in [
        "match_matches_started_total",
        "match_matches_completed_total",
    ] {
        let sample = format!("{family}{{mode=\"{mode}\"}} 1\n");
        assert!(metrics.contains(&sample), "no {sample:?} in:\n{metrics}");
    }
}

/// After a match: no queue, loading session or lock is left; each entry records the match
/// (until its lease runs out, `lease_ttl_ms` after the match, so check it right away).
async fn assert_settled_as_matched(
    redis: &Inspector,
    players: &BTreeSet<Uuid>,
    session_id: Uuid,
    server_address: &str,
) {
    redis.wait_settled(true).await;
    for player in players {
        let entry = redis.entry(*player).await.expect("matched entry");
        assert_eq!(entry.state, "matched");
        assert_eq!(entry.session, session_id.to_string());
        assert_eq!(entry.address, server_address);
    }
}

/// Goal: two Normal_1v1 players go enqueued -> start_loading (one loading session) ->
/// loading_complete -> match_found with the stub game server's address and session id, and
/// Redis keeps no queue entry, loading session or lock afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_1v1_two_players_get_a_match() {
    play_full_match(MODE_1V1, 2).await;
}

/// Goal: four Normal_2v2 players are grouped into one loading session and all get the same
/// match_found; Redis keeps no queue entry, loading session or lock afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_2v2_four_players_get_a_match() {
    play_full_match(MODE_2V2, 4).await;
}

/// Goal: three Normal_2v2 players are not enough: nobody is matched, all stay queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_2v2_three_players_keep_waiting() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;
    let mut clients = Vec::new();
    let mut players = BTreeSet::new();
    for index in 0..3 {
        let (client, player) = Client::enqueued(server.addr, &format!("p{index}"), MODE_2V2).await;
        clients.push(client);
        players.insert(player.to_string());
    }
    common::expect_silence_all(&mut clients).await;
    assert_eq!(redis.queue(MODE_2V2).await, players);
    assert!(redis.loading_keys().await.is_empty());
}
