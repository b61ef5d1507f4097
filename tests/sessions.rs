//! One live session per player, across instances: a second connection for a player is
//! refused (`session_exists`, close 4009) while the first plays on; the player lease is
//! released when a session ends, expires when its instance crashes, and a session that
//! lost it stops acting (`session_lost`, close 4010).

use crate::common;

use std::time::Duration;

use common::binary::{Binary, binary_settings};
use common::{Behaviour, Client, Credentials, MODE_1V1, Msg, StubGameServer, TestEnv, TestServer};
use tokio_tungstenite::tungstenite;
use uuid::Uuid;

/// Connects as `player`: the connection if the upgrade and the lease succeed, `None` if it
/// is refused with `session_exists` and close 4009 (anything else fails the test). A
/// `dequeue` probes the session: a session that holds the lease answers `not_in_queue`, a
/// refused one never reads it.
async fn connect_unless_refused(
    addr: std::net::SocketAddr,
    name: &str,
    player: Uuid,
) -> Option<Client> {
    let mut client = Client::try_connect_with(addr, name, player, Credentials::of(player))
        .await
        .unwrap_or_else(|error| panic!("{name}: upgrade failed: {error}"));
    client.try_send_text(r#"{"type":"dequeue"}"#).await;
    match client.recv().await {
        Msg::Error { code, .. } if code == "not_in_queue" => Some(client),
        Msg::Error { code, .. } if code == "session_exists" => {
            client.expect_close(4009).await;
            None
        }
        other => panic!("{name}: expected session_exists or not_in_queue, got {other:?}"),
    }
}

/// The refusal scenario: `first` plays as a player, a second connection for that player
/// on `second_addr` is refused, and `first` plays on to match_found with a partner.
async fn second_connection_is_refused(same_instance: bool) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let one = TestServer::start(env.settings()).await;
    let two = if same_instance {
        None
    } else {
        Some(TestServer::start(env.settings()).await)
    };
    let second_addr = two.as_ref().map_or(one.addr, |two| two.addr);

    let (mut first, player) = Client::enqueued(one.addr, "first", MODE_1V1).await;
    let lease = redis
        .lease(player)
        .await
        .expect("the first holds the lease");
    let mut second = Client::connect_as(second_addr, "second", player).await;
    let message = second.expect_error("session_exists").await;
    assert!(message.contains("another connection"), "{message}");
    let reason = second.expect_close(4009).await;
    assert!(!reason.is_empty(), "the close frame says why");
    assert_eq!(
        redis.lease(player).await,
        Some(lease),
        "the lease is untouched"
    );
    assert!(
        redis.in_queue(MODE_1V1, player).await,
        "the first stays queued"
    );

    let (mut partner, _) = Client::enqueued(second_addr, "partner", MODE_1V1).await;
    let loading = first.expect_start_loading().await;
    assert_eq!(partner.expect_start_loading().await, loading);
    first.loading_complete(loading).await;
    partner.loading_complete(loading).await;
    let found = first.expect_match_found().await;
    assert_eq!(partner.expect_match_found().await, found);
}

/// Goal: a second connection for a player on the same instance gets `error
/// session_exists` and close 4009, never touches the player's lease, and the first
/// connection stays queued and plays on to match_found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_on_the_same_instance_is_refused() {
    second_connection_is_refused(true).await;
}

/// Goal: the same refusal when the second connection goes to another instance on the same
/// Redis: the lease is shared, so two instances never act for one player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_on_another_instance_is_refused() {
    second_connection_is_refused(false).await;
}

/// Goal: once a player's connection has closed, a new connection for the player is
/// accepted at once, on the same instance and on another one, and can enqueue: the lease
/// is released before the close handshake ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_reconnects_at_once_after_closing() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let one = TestServer::start(env.settings()).await;
    let two = TestServer::start(env.settings()).await;
    let (first, player) = Client::enqueued(one.addr, "first", MODE_1V1).await;
    first.close().await;
    assert_eq!(redis.lease(player).await, None, "released on close");
    for (name, addr) in [("again@one", one.addr), ("again@two", two.addr)] {
        let mut again = connect_unless_refused(addr, name, player)
            .await
            .unwrap_or_else(|| panic!("{name}: refused after the close"));
        again.enqueue(player, MODE_1V1).await;
        again.expect(Msg::Enqueued).await;
        again.close().await;
    }
    redis.wait_settled(false).await;
}

/// Goal: an idle authenticated connection keeps its lease past the lease TTL because its
/// instance renews it, and releases it when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_keeps_its_lease_by_renewal() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    settings.timing.lease_ttl_ms = 800;
    settings.timing.lease_renew_interval_ms = 200;
    let server = TestServer::start(settings).await;
    let mut client = Client::connect(server.addr, "idle").await;
    let player = client.player;
    // The session reads its first frame only once it holds the lease.
    client.dequeue().await;
    client.expect_error("not_in_queue").await;
    let lease = redis.lease(player).await.expect("taken at connect");
    client.expect_silence(Duration::from_millis(2_500)).await;
    assert_eq!(
        redis.lease(player).await,
        Some(lease),
        "still held, by renewal"
    );
    assert!(redis.lease_pttl_ms(player).await > 0, "with a TTL");
    client.close().await;
    assert_eq!(redis.lease(player).await, None);
}

/// Goal: when the instance of a queued player is killed (SIGKILL, nothing cleaned up), a
/// new connection for the player elsewhere is refused with `session_exists` while the dead
/// session's lease lives, and accepted once it has expired - never before - and then
/// enqueues at once (the dead entry has expired with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_instance_holds_the_player_until_its_lease_expires() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = binary_settings(&env);
    settings.timing.lease_ttl_ms = 2_000;
    settings.timing.lease_renew_interval_ms = 500;
    let mut binary = Binary::start(&settings, &env.redis_url).await;
    let (_doomed, player) = Client::enqueued(binary.addr, "doomed", MODE_1V1).await;
    binary.kill();
    binary.wait_exit(common::WAIT).await;
    let left_ms = redis.lease_pttl_ms(player).await;
    assert!(
        left_ms > 1_000,
        "the dead session's lease lives on ({left_ms} ms)"
    );
    let expires = tokio::time::Instant::now() + Duration::from_millis(left_ms.try_into().unwrap());

    settings.redis_url.clone_from(&env.redis_url);
    let survivor = TestServer::start(settings).await;
    assert!(
        connect_unless_refused(survivor.addr, "too early", player)
            .await
            .is_none(),
        "accepted while the dead session's lease lives"
    );
    let mut back = loop {
        if let Some(client) = connect_unless_refused(survivor.addr, "back", player).await {
            break client;
        }
        assert!(
            tokio::time::Instant::now() < expires + common::WAIT,
            "still refused long after the lease expired"
        );
        tokio::time::sleep(common::POLL).await;
    };
    // Redis expires a key within a millisecond of its TTL; the PTTL was read a moment
    // after it was last renewed, so allow that much earlier.
    let early = expires.saturating_duration_since(tokio::time::Instant::now());
    assert!(
        early <= Duration::from_millis(20),
        "accepted {early:?} before the lease expired"
    );
    back.enqueue(player, MODE_1V1).await;
    back.expect(Msg::Enqueued).await;
    assert_eq!(
        redis.queue(MODE_1V1).await,
        [player.to_string()].into_iter().collect(),
        "queued once"
    );
}

/// The stolen-lease scenario: a queued session's lease is overwritten (`steal`) or
/// deleted behind its back, as after a partition from Redis longer than the TTL.
async fn lease_taken_away(steal: bool) {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let settings = env.settings();
    let renew = Duration::from_millis(settings.timing.lease_renew_interval_ms);
    let server = TestServer::start(settings).await;
    let (mut victim, player) = Client::enqueued(server.addr, "victim", MODE_1V1).await;
    let (mut bystander, _) = Client::enqueued(server.addr, "bystander", common::MODE_2V2).await;
    let taken = tokio::time::Instant::now();
    if steal {
        redis.set_lease(player, "another-session").await;
    } else {
        redis.delete_lease(player).await;
    }
    let message = victim.expect_error("session_lost").await;
    assert!(message.contains("reconnect"), "{message}");
    victim.expect_close(4010).await;
    assert!(
        taken.elapsed() <= renew + common::WAIT / 2,
        "closed only after {:?}",
        taken.elapsed()
    );
    common::eventually("the victim's entry is cleaned up", || async {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
        (entry.is_none() && !queued).then_some(())
    })
    .await;
    if steal {
        assert_eq!(
            redis.lease(player).await.as_deref(),
            Some("another-session"),
            "the new holder's lease is neither released nor renewed"
        );
        assert_eq!(redis.lease_pttl_ms(player).await, -1);
    } else {
        assert_eq!(redis.lease(player).await, None, "not recreated");
        let mut again = connect_unless_refused(server.addr, "again", player)
            .await
            .expect("the player can connect again");
        again.enqueue(player, MODE_1V1).await;
        again.expect(Msg::Enqueued).await;
    }
    bystander.expect_silence(common::QUIET).await;
}

/// Goal: a session whose lease another session now holds (overwritten in Redis) gets `error
/// session_lost` and close 4010 at its next renewal, cleans up its own entry, and leaves
/// the new holder's lease alone; other sessions are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_whose_lease_was_stolen_closes_at_its_next_renewal() {
    lease_taken_away(true).await;
}

/// Goal: a session whose lease ran out behind its back (deleted in Redis) closes the same
/// way, without recreating the lease, and the player can connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_whose_lease_ran_out_closes_at_its_next_renewal() {
    lease_taken_away(false).await;
}

/// Goal: a refused upgrade (HTTP 401) for a player already playing does not disturb the
/// player's session or lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_attempt_does_not_disturb_the_session() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let (mut first, player) = Client::enqueued(server.addr, "first", MODE_1V1).await;
    let lease = redis.lease(player).await;
    match Client::try_connect_with(server.addr, "spoof", player, Credentials::Anonymous).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(error) => panic!("unexpected error: {error}"),
        Ok(_) => panic!("an unauthenticated upgrade was accepted"),
    }
    assert_eq!(redis.lease(player).await, lease);
    first.expect_silence(common::QUIET).await;
    assert!(redis.in_queue(MODE_1V1, player).await);
}

/// Goal: when Redis cannot say whether the player lease is taken (every lease command
/// fails, here because the key has the wrong type), the connection is not left open
/// without a lease: it gets `error service_unavailable` and close 1013 (try again later),
/// the key is left as it was, and other players keep playing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_whose_lease_cannot_be_taken_ends_with_try_again() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let _stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = TestServer::start(env.settings()).await;
    let player = Uuid::new_v4();
    redis.break_lease_key(player).await;
    let mut client = Client::connect_as(server.addr, "broken", player).await;
    client.expect_error("service_unavailable").await;
    let reason = client.expect_close(1013).await;
    assert!(!reason.is_empty(), "the close frame says why");
    assert_eq!(
        redis.lease_key_type(player).await,
        "hash",
        "nothing was overwritten"
    );

    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
}

/// Goal: a session whose lease renewals keep failing (Redis answers every renewal with an
/// error, here because the lease key became a hash) fences itself: it does not play on,
/// unaware, past its lease's TTL - it gets `error session_lost` and close 4010 before the
/// TTL counted from its last successful renewal runs out, and cleans up its entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_whose_renewals_fail_fences_itself_within_its_ttl() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let mut settings = env.settings();
    settings.timing.lease_ttl_ms = 1_500;
    settings.timing.lease_renew_interval_ms = 300;
    let ttl = Duration::from_millis(1_500 + 300);
    let server = TestServer::start(settings).await;
    let (mut victim, player) = Client::enqueued(server.addr, "victim", MODE_1V1).await;
    let broken = tokio::time::Instant::now();
    redis.delete_lease(player).await;
    redis.break_lease_key(player).await;
    victim.expect_error("session_lost").await;
    victim.expect_close(4010).await;
    assert!(
        broken.elapsed() < ttl,
        "fenced only after {:?}, beyond the lease TTL {ttl:?}",
        broken.elapsed()
    );
    common::eventually("the victim's entry is cleaned up", || async {
        let (entry, queued) = redis.entry_and_queued(MODE_1V1, player).await;
        (entry.is_none() && !queued).then_some(())
    })
    .await;
}
