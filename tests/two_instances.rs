//! Several instances share one Redis: players on different instances match together.

use crate::common;

use std::collections::BTreeSet;

use common::{Behaviour, Client, MODE_1V1, MODE_2V2, StubGameServer, TestEnv, TestServer};

/// Goal: two instances on one Redis with the same key_prefix: a player on each is matched
/// with the other; both get the same start_loading and the same match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_two_instances_match_together() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let one = TestServer::start(env.settings()).await;
    let two = TestServer::start(env.settings()).await;

    let (mut a, a_id) = Client::enqueued(one.addr, "a@one", MODE_1V1).await;
    let (mut b, b_id) = Client::enqueued(two.addr, "b@two", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);

    let requests = stub.requests();
    assert_eq!(requests.len(), 1, "one game server session for the match");
    assert_eq!(
        requests[0].players.iter().copied().collect::<BTreeSet<_>>(),
        [a_id, b_id].into_iter().collect()
    );
    redis.wait_settled(true).await;
}

/// Goal: a Normal_2v2 group split over two instances (two players each) forms one loading
/// session and one match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2v2_group_split_over_two_instances_matches() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let one = TestServer::start(env.settings()).await;
    let two = TestServer::start(env.settings()).await;

    let mut clients = Vec::new();
    for (index, server) in [&one, &two, &one, &two].into_iter().enumerate() {
        let (client, _) = Client::enqueued(server.addr, &format!("p{index}"), MODE_2V2).await;
        clients.push(client);
    }
    let mut loadings = BTreeSet::new();
    for client in &mut clients {
        loadings.insert(client.expect_start_loading().await);
    }
    assert_eq!(loadings.len(), 1, "one loading session across instances");
    let loading = loadings.into_iter().next().unwrap();
    for client in &mut clients {
        client.loading_complete(loading).await;
    }
    let mut found = BTreeSet::new();
    for client in &mut clients {
        found.insert(client.expect_match_found().await);
    }
    assert_eq!(found.len(), 1);
    assert_eq!(stub.requests().len(), 1);
    redis.wait_settled(true).await;
}

/// Goal: a player on one instance who disconnects during loading cancels the session for
/// the player on the other instance, who gets `error loading_cancelled` and stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_on_one_instance_reaches_the_other() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let one = TestServer::start(env.settings()).await;
    let two = TestServer::start(env.settings()).await;

    let (mut leaver, _) = Client::enqueued(one.addr, "leaver@one", MODE_1V1).await;
    let (mut stayer, stayer_id) = Client::enqueued(two.addr, "stayer@two", MODE_1V1).await;
    let loading = leaver.expect_start_loading().await;
    assert_eq!(stayer.expect_start_loading().await, loading);
    leaver.close().await;
    stayer.expect_error("loading_cancelled").await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, stayer_id).await;
    assert_eq!(entry.map(|e| e.state).as_deref(), Some("queued"));
    assert!(queued);
}
