//! The connection cap: an instance that is full refuses further WebSocket upgrades with
//! HTTP 503, without disturbing the connections it serves.

use crate::common;

use common::{Behaviour, Client, MODE_1V1, StubGameServer, TestEnv, TestServer};
use tokio_tungstenite::tungstenite;

/// Whether a WebSocket upgrade to `addr` is refused with HTTP 503.
async fn refused_with_503(addr: std::net::SocketAddr, name: &str) -> bool {
    match Client::try_connect(addr, name).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503, "refused with another status");
            true
        }
        Err(error) => panic!("{name}: unexpected error: {error}"),
        Ok(client) => {
            client.close().await;
            false
        }
    }
}

/// Goal: with limits.max_connections = 2, a third WebSocket upgrade gets HTTP 503 while the
/// two connected players play on to match_found; /metrics still answers and counts the
/// refusals; once one player leaves, a new connection is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_connection_gets_503_while_two_play_on() {
    let env = TestEnv::new();
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let mut settings = env.settings();
    settings.limits.max_connections = 2;
    let server = TestServer::start(settings).await;

    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let mut b = Client::connect(server.addr, "b").await;
    assert!(
        refused_with_503(server.addr, "third").await,
        "a third connection was accepted"
    );

    b.enqueue_self(MODE_1V1).await;
    b.expect(common::Msg::Enqueued).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    assert!(refused_with_503(server.addr, "fourth").await);
    // Plain HTTP is still served when full (health checks must not fail), and counts the
    // refusals.
    let (status, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("match_connections_rejected_total 2"),
        "{metrics}"
    );
    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let found = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, found);

    a.close().await;
    common::eventually("a freed slot accepts a new connection", || async {
        match Client::try_connect(server.addr, "newcomer").await {
            Ok(client) => Some(client),
            Err(tungstenite::Error::Http(response)) if response.status() == 503 => None,
            Err(error) => panic!("newcomer: unexpected error: {error}"),
        }
    })
    .await
    .close()
    .await;
}
