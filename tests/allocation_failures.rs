//! Game server allocation failures: every player is requeued and told why, and is matched
//! again once a healthy game server is available.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Behaviour, Client, Inspector, MODE_1V1, StubGameServer, TestEnv, TestServer};
use uuid::Uuid;

/// Checks that `player` is back in the queue after `old` ended: queued, or already in a
/// newer loading session (only queued players enter one). Read atomically.
async fn assert_requeued(redis: &Inspector, player: Uuid, old: Uuid) {
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
    let entry = entry.unwrap_or_else(|| panic!("{player} has no entry after the failure"));
    let requeued = (entry.state == "queued" && queued)
        || (entry.state == "loading" && entry.loading != old.to_string());
    assert!(
        requeued,
        "{player} is not back in the queue: {entry:?}, queued={queued}"
    );
}

/// Two players load; allocation fails the way `failing` (or an empty registry) makes it
/// fail; both get `error <code>` and are requeued; then a healthy game server appears and
/// they are matched on it.
async fn allocation_fails_then_recovers(failing: Option<Behaviour>, code: &str) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    // The rematch after the failure comes from the periodic round; one racing the failure's
    // notice turns its code into `loading_cancelled` (a service bug, see `notice_loss.rs`):
    // a longer interval makes that race rare.
    settings.timing.match_interval_ms = 1_000;
    if failing == Some(Behaviour::Hang) {
        // Wait less for the silent server; the healthy one still answers well within it.
        settings.timing.allocation_timeout_ms = 1_000;
    }
    let allocation_timeout = Duration::from_millis(settings.timing.allocation_timeout_ms);
    let server = TestServer::start(settings).await;
    let bad = match failing {
        Some(behaviour) => Some(StubGameServer::start(&env, behaviour).await),
        None => None,
    };

    let (mut a, a_id) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, b_id) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let first = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, first);
    // The allocation, and its timeout, can only start after this instant.
    let completing = tokio::time::Instant::now();
    a.loading_complete(first).await;
    b.loading_complete(first).await;
    a.expect_error(code).await;
    b.expect_error(code).await;
    if failing == Some(Behaviour::Hang) {
        let waited = completing.elapsed();
        assert!(
            waited >= allocation_timeout,
            "gave up on the game server after only {waited:?}"
        );
    }
    assert_requeued(&redis, a_id, first).await;
    assert_requeued(&redis, b_id, first).await;
    let players: BTreeSet<Uuid> = [a_id, b_id].into_iter().collect();
    if let Some(bad) = &bad {
        let requests = bad.requests();
        assert_eq!(requests.len(), 1, "the failing game server was asked once");
        assert_eq!(
            requests[0].players.iter().copied().collect::<BTreeSet<_>>(),
            players
        );
    }

    let good = StubGameServer::start(&env, Behaviour::Ok).await;
    let second = a.expect_start_loading().await;
    assert_ne!(second, first, "a new loading session");
    assert_eq!(b.expect_start_loading().await, second);
    a.loading_complete(second).await;
    b.loading_complete(second).await;
    let (session_id, address) = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, (session_id, address.clone()));
    assert_eq!(address, good.address, "matched on the healthy game server");
    let requests = good.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].session_id, Some(session_id));
    if let Some(bad) = &bad {
        assert_eq!(
            bad.requests().len(),
            1,
            "the failing server was not asked again"
        );
    }
    redis.wait_settled(true).await;
}

/// Goal: with no game server registered, both players get `error no_server_available`,
/// are requeued, and are matched once a healthy server registers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_idle_server_requeues_with_no_server_available() {
    allocation_fails_then_recovers(None, "no_server_available").await;
}

/// Goal: a game server answering HTTP 500 gives `error allocation_failed`, players are
/// requeued and later matched on a healthy server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_requeues_with_allocation_failed() {
    allocation_fails_then_recovers(Some(Behaviour::Http500), "allocation_failed").await;
}

/// Goal: a game server that never answers gives `error allocation_timeout` after the
/// allocation timeout; players are requeued and later matched on a healthy server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_requeues_with_allocation_timeout() {
    allocation_fails_then_recovers(Some(Behaviour::Hang), "allocation_timeout").await;
}

/// Goal: a game server answering a malformed body gives `error allocation_failed`; players
/// are requeued and later matched on a healthy server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answer_requeues_with_allocation_failed() {
    allocation_fails_then_recovers(Some(Behaviour::Malformed), "allocation_failed").await;
}
