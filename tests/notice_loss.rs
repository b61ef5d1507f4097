//! Lost and late notices: pub/sub is only a hint, sessions recover from Redis by resync.
//!
//! A pub/sub outage is produced for one instance by an ACL user whose channel permissions
//! are revoked: Redis then drops its subscription and refuses its publishes. A late notice
//! comes from an instance behind a slow link to Redis (a delaying TCP proxy).

use crate::common;

use std::time::Duration;

use common::proxy::DelayProxy;
use common::{Behaviour, Client, Inspector, MODE_1V1, StubGameServer, TestEnv, TestServer};
use match_server::config::Settings;
use uuid::Uuid;

/// A Redis ACL user for one instance, deleted on drop.
struct AclUser {
    name: String,
    password: String,
    redis_url: String,
}

impl AclUser {
    /// Creates a user with every permission.
    async fn create(env: &TestEnv, redis: &Inspector) -> Self {
        let id = Uuid::new_v4();
        let user = Self {
            name: format!("it-{id}"),
            password: format!("pw-{id}"),
            redis_url: env.redis_url.clone(),
        };
        let () = redis
            .query(
                redis::cmd("ACL")
                    .arg("SETUSER")
                    .arg(&user.name)
                    .arg("on")
                    .arg(format!(">{}", user.password))
                    .arg("~*")
                    .arg("&*")
                    .arg("+@all"),
            )
            .await;
        user
    }

    /// The Redis URL that logs in as this user.
    fn url(&self, env: &TestEnv) -> String {
        env.redis_url_with(None, Some(&format!("{}:{}", self.name, self.password)))
    }

    /// Revokes every channel permission: the user's subscriptions are closed by Redis, and
    /// its publishes and subscribes fail with NOPERM.
    async fn cut_pubsub(&self, redis: &Inspector) {
        let () = redis
            .query(
                redis::cmd("ACL")
                    .arg("SETUSER")
                    .arg(&self.name)
                    .arg("resetchannels"),
            )
            .await;
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        if let Ok(client) = redis::Client::open(self.redis_url.as_str())
            && let Ok(mut conn) = client.get_connection()
        {
            let _: redis::RedisResult<i64> = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(&self.name)
                .query(&mut conn);
        }
    }
}

/// An instance logged in as `user`, with a short resync so recovery is quick; once it runs,
/// its pub/sub is cut.
async fn start_cut_off(
    env: &TestEnv,
    settings: Settings,
    user: &AclUser,
    redis: &Inspector,
) -> TestServer {
    let mut settings = settings;
    settings.redis_url = user.url(env);
    settings.timing.resync_interval_ms = 200;
    let server = TestServer::start(settings).await;
    user.cut_pubsub(redis).await;
    common::eventually("the instance's subscription is closed", || async {
        (redis.probe_subscribers(MODE_1V1).await == 0).then_some(())
    })
    .await;
    server
}

/// Goal: during a pub/sub outage of the instance, players still get start_loading and
/// match_found, learned from Redis by resync, exactly once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_match_through_a_pubsub_outage() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let user = AclUser::create(&env, &redis).await;
    let stub = StubGameServer::start(&env, Behaviour::Ok).await;
    let server = start_cut_off(&env, env.settings(), &user, &redis).await;

    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    a.loading_complete(loading).await;
    b.loading_complete(loading).await;
    let (session_id, address) = a.expect_match_found().await;
    assert_eq!(b.expect_match_found().await, (session_id, address.clone()));
    assert_eq!(stub.requests()[0].session_id, Some(session_id));
    let mut clients = [a, b];
    common::expect_silence_all(&mut clients).await;
    drop(server);
}

/// Goal: at a loading timeout the player who loaded is told `loading_timeout` and the one
/// who did not `loading_not_completed`, even when the notices carrying those reasons are
/// lost and the sessions learn of the outcome from their entries in Redis.
///
/// Without an outage the same happens whenever a session's periodic resync lands between
/// the timeout and its notice; the same loss hits `no_server_available`,
/// `allocation_failed` and `allocation_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_timeout_reasons_survive_a_lost_notice() {
    let env = TestEnv::new();
    let redis = env.inspector().await;
    let user = AclUser::create(&env, &redis).await;
    let mut settings = env.settings();
    settings.timing.loading_timeout_ms = 1_000;
    let server = start_cut_off(&env, settings, &user, &redis).await;

    let (mut a, _) = Client::enqueued(server.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(server.addr, "b", MODE_1V1).await;
    let loading = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, loading);
    // Only `a` reports loading_complete: the sweep ends the session at its deadline.
    a.loading_complete(loading).await;
    a.expect_error("loading_timeout").await;
    b.expect_error("loading_not_completed").await;
}

/// Goal: a player requeued by the loading timeout is told `loading_timeout` even when the
/// next match (formed by another instance) reaches it before the timeout's own notice.
///
/// Instance `matcher` holds the players and forms matches; instance `sweeper`, behind a
/// link that delays its commands by 300 ms, is the one whose sweep times the loading
/// session out. Nothing fails; the notices merely arrive out of order. In one instance
/// with the default config (match and sweep intervals equal, so they tick together) the
/// same race happens in about one loading timeout out of three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_timeout_reason_survives_a_faster_rematch() {
    let env = TestEnv::new();
    let mut matcher = env.settings();
    matcher.timing.loading_timeout_ms = 1_000;
    // Sweeps once at start, before any loading session exists.
    matcher.timing.sweep_interval_ms = 60_000;
    let mut sweeper = env.settings();
    sweeper.timing.loading_timeout_ms = 1_000;
    // Matches once at start, before any player is queued.
    sweeper.timing.match_interval_ms = 60_000;
    let slow_link = DelayProxy::start(env.redis_addr().await, Duration::from_millis(300)).await;
    sweeper.redis_url = env.redis_url_with(Some(&slow_link.addr.to_string()), None);
    let matcher = TestServer::start(matcher).await;
    let _sweeper = TestServer::start(sweeper).await;

    let (mut a, _) = Client::enqueued(matcher.addr, "a", MODE_1V1).await;
    let (mut b, _) = Client::enqueued(matcher.addr, "b", MODE_1V1).await;
    let first = a.expect_start_loading().await;
    assert_eq!(b.expect_start_loading().await, first);
    // A third player waits alone meanwhile.
    let (mut c, _) = Client::enqueued(matcher.addr, "c", MODE_1V1).await;
    // Only `a` loads: the sweeper ends the session at its deadline, requeues `a`, removes
    // `b`, and the matcher puts `a` with `c` into a new one within a match interval.
    a.loading_complete(first).await;
    a.expect_error("loading_timeout").await;
    b.expect_error("loading_not_completed").await;
    let second = a.expect_start_loading().await;
    assert_ne!(second, first);
    assert_eq!(c.expect_start_loading().await, second);
}
