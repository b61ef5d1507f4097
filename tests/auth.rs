//! Player authentication at the WebSocket upgrade: a signed token names the player; without
//! a valid one the upgrade gets HTTP 401 and nothing reaches Redis; a connection acts for
//! its own player only; dev mode accepts unauthenticated clients.

use crate::common;

use std::sync::Arc;

use common::env::{now_s, token, token_until};
use common::{Client, Credentials, MODE_1V1, Msg, TestEnv, TestServer};
use match_server::clock::{Clock, ClockError};
use match_server::config::AuthSettings;
use tokio_tungstenite::tungstenite;
use uuid::Uuid;

/// Connects as `player` with `credentials`; the refusal's HTTP status and body, or `None`
/// when the upgrade succeeded (the connection is closed again).
async fn refusal(
    addr: std::net::SocketAddr,
    player: Uuid,
    credentials: Credentials,
) -> Option<(u16, String)> {
    match Client::try_connect_with(addr, "client", player, credentials).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            if response.status() == 401 {
                assert_eq!(
                    response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "a 401 names the scheme"
                );
            }
            Some((response.status().as_u16(), body))
        }
        Err(error) => panic!("unexpected handshake error: {error}"),
        Ok(client) => {
            client.close().await;
            None
        }
    }
}

/// Goal: an upgrade without a token, with a token signed by another key, with a tampered
/// or garbage token, or with an expired one - in the header or the query - gets HTTP 401
/// with a short text body, and not a single Redis command mentions the player or a player
/// lease; Redis holds nothing of those players; /metrics counts the refusals by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_tokens_get_401_and_touch_nothing_in_redis() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let (server, recorder) = TestServer::start_recording(env.settings()).await;
    let player = common::new_player();
    let foreign_key = match_server::auth::mint(
        "someone-elses-secret-someone-elses-secret",
        player,
        now_s() + 600,
    )
    .unwrap();
    let good = token(player);
    let (head, _) = good.rsplit_once('.').unwrap();
    let bad_signature = format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let expired = token_until(player, now_s() - 5);
    let cases = [
        ("no token", Credentials::Anonymous, "required"),
        (
            "foreign key",
            Credentials::Header(foreign_key.clone()),
            "invalid",
        ),
        (
            "foreign key in the query",
            Credentials::Query(foreign_key),
            "invalid",
        ),
        (
            "bad signature",
            Credentials::Header(bad_signature),
            "invalid",
        ),
        (
            "garbage",
            Credentials::Header("garbage".to_owned()),
            "invalid",
        ),
        ("expired", Credentials::Header(expired.clone()), "expired"),
        (
            "expired in the query",
            Credentials::Query(expired),
            "expired",
        ),
    ];
    for (what, credentials, needle) in cases {
        let (status, body) = refusal(server.addr, player, credentials)
            .await
            .unwrap_or_else(|| panic!("{what}: the upgrade was accepted"));
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(needle), "{what}: body {body:?}");
        assert!(body.len() < 100, "{what}: a short body");
    }
    assert_eq!(
        recorder.mentioning(&player.to_string()),
        Vec::<String>::new()
    );
    assert_eq!(recorder.mentioning(":session:"), Vec::<String>::new());
    assert!(redis.session_keys().await.is_empty());
    assert!(redis.entry(player).await.is_none());
    let (_, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    for sample in [
        "match_auth_rejected_total{reason=\"missing\"} 1\n",
        "match_auth_rejected_total{reason=\"invalid\"} 4\n",
        "match_auth_rejected_total{reason=\"expired\"} 2\n",
    ] {
        assert!(metrics.contains(sample), "no {sample:?} in:\n{metrics}");
    }
    assert!(
        !metrics.contains("match_connections "),
        "no session was ever started:\n{metrics}"
    );
}

/// Goal: a valid token is accepted in the `Authorization: Bearer` header and in the
/// `token` query parameter alike; each connection plays as its token's player and takes
/// that player's lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_token_in_header_or_query_is_accepted() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    for (what, query) in [("header", false), ("query", true)] {
        let player = common::new_player();
        let credentials = if query {
            Credentials::Query(token(player))
        } else {
            Credentials::Header(token(player))
        };
        let mut client = Client::try_connect_with(server.addr, what, player, credentials)
            .await
            .unwrap_or_else(|error| panic!("{what}: refused: {error}"));
        client.enqueue(player, MODE_1V1).await;
        client.expect(Msg::Enqueued).await;
        assert!(redis.lease(player).await.is_some(), "{what}: lease taken");
        client.dequeue().await;
        client.expect(Msg::Dequeued).await;
    }
}

/// Goal: an `enqueue` for another player than the token's gets `error player_mismatch`,
/// writes nothing for that player in Redis, and the connection stays usable: it then
/// enqueues its own player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_as_someone_else_is_refused_with_player_mismatch() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let server = TestServer::start(env.settings()).await;
    let mut client = Client::connect(server.addr, "spoofer").await;
    let victim = common::new_player();
    client.enqueue(victim, MODE_1V1).await;
    client.expect_error("player_mismatch").await;
    let (entry, queued) = redis.entry_and_queued(MODE_1V1, victim).await;
    assert!(entry.is_none() && !queued, "nothing for the victim");
    assert!(redis.lease(victim).await.is_none());
    client.enqueue_self(MODE_1V1).await;
    client.expect(Msg::Enqueued).await;
    assert!(redis.in_queue(MODE_1V1, client.player).await);
    client.enqueue(victim, MODE_1V1).await;
    client.expect_error("player_mismatch").await;
}

/// Goal: in dev mode unauthenticated clients connect and play to a shared loading
/// session; each connection is bound to the player of its first enqueue (another player
/// then gets `player_mismatch`), and a second connection enqueuing a bound player gets
/// `session_exists` and close 4009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_accepts_unauthenticated_clients() {
    let env = TestEnv::new();
    let mut settings = env.settings();
    settings.auth = AuthSettings::dev();
    let server = TestServer::start(settings).await;
    let mut a = Client::connect_anonymous(server.addr, "a").await;
    let mut b = Client::connect_anonymous(server.addr, "b").await;
    a.enqueue_self(MODE_1V1).await;
    a.expect(Msg::Enqueued).await;
    a.enqueue(b.player, MODE_1V1).await;
    a.expect_error("player_mismatch").await;
    b.enqueue_self(MODE_1V1).await;
    b.expect(Msg::Enqueued).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);

    let mut copycat = Client::connect_anonymous(server.addr, "copycat").await;
    copycat.enqueue(a.player, MODE_1V1).await;
    copycat.expect_error("session_exists").await;
    copycat.expect_close(4009).await;
    a.expect_silence(common::QUIET).await;
}

/// A clock that cannot be read, as on a host whose time is before 1970.
struct BrokenClock;

impl Clock for BrokenClock {
    fn now_unix_ms(&self) -> Result<u64, ClockError> {
        Err(ClockError::BeforeEpoch)
    }
}

/// Goal: when the instance cannot read the time, a valid token cannot be checked for
/// expiry: the upgrade gets HTTP 503 (try again), not 401 (the token is fine), and the
/// failure is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_failure_at_the_upgrade_is_503() {
    let env = TestEnv::new();
    let server = TestServer::start_with_clock(env.settings(), Arc::new(BrokenClock)).await;
    let player = common::new_player();
    let (status, body) = refusal(server.addr, player, Credentials::of(player))
        .await
        .expect("the upgrade was accepted without a clock");
    assert_eq!(status, 503, "{body}");
    let (_, metrics) = common::http::get(server.addr, "/metrics").await.unwrap();
    assert!(
        !metrics.contains("match_auth_rejected_total{"),
        "not an auth refusal:\n{metrics}"
    );
    assert!(metrics.contains("match_clock_errors_total "), "{metrics}");
}
