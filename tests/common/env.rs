//! Per-test isolation on the shared Redis: a unique key prefix and a unique game server
//! registry prefix, so tests run in parallel without seeing each other's keys.

use std::time::Duration;

use match_server::clock::{Clock, SystemClock};
use match_server::config::{AllocatorSettings, AuthSettings, Limits, Settings, Timing};
use uuid::Uuid;

use super::inspect::Inspector;
use super::redis_server::redis_url;

/// The shared secret every test server verifies tokens with (auth mode `required`, as in
/// production) and every test client signs with.
pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Lifetime of the tokens the harness mints: longer than any test.
const TOKEN_TTL_S: u64 = 3_600;

/// The unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemClock
        .now_unix_ms()
        .unwrap_or_else(|error| panic!("cannot read the clock: {error}"))
}

/// The unix time in seconds.
pub fn now_s() -> u64 {
    now_ms() / 1_000
}

/// A valid token for `player`, signed with [`TEST_SECRET`].
pub fn token(player: Uuid) -> String {
    token_until(player, now_s() + TOKEN_TTL_S)
}

/// A token for `player` that expires at `exp_s` (unix seconds), signed with [`TEST_SECRET`].
pub fn token_until(player: Uuid, exp_s: u64) -> String {
    match_server::auth::mint(TEST_SECRET, player, exp_s)
        .unwrap_or_else(|error| panic!("cannot mint a token: {error}"))
}

/// One test's corner of Redis; its keys are deleted when it is dropped, so a shared Redis
/// (`MATCH_TEST_REDIS_URL`) does not fill up with old tests. Not `Clone`: one owner deletes.
#[derive(Debug)]
pub struct TestEnv {
    /// The Redis URL (shared by every test of the binary).
    pub redis_url: String,
    /// `{t-<uuid>}`: every matchmaking key of this test starts with it.
    pub key_prefix: String,
    /// `t-<uuid>:dedicated_server:`: where this test's game servers register.
    pub registry_prefix: String,
}

impl TestEnv {
    /// A fresh, empty corner of Redis; starts the Redis of this binary on first use.
    pub fn new() -> Self {
        super::init_tracing();
        let id = Uuid::new_v4();
        Self {
            redis_url: redis_url(),
            key_prefix: format!("{{t-{id}}}"),
            registry_prefix: format!("t-{id}:dedicated_server:"),
        }
    }

    /// Settings for an in-process instance of this test: the default modes, auth required
    /// with [`TEST_SECRET`] (the production path), and short timings so sweeps and retries
    /// happen within a test's time budget.
    ///
    /// The loading and allocation timeouts leave room for a slow CI machine; the tests of
    /// those timeouts shorten them. The resync interval is longer than the rest: resync is
    /// the safety net for lost notices, and each resync that lands between a requeue and
    /// its notice turns the notice's error code into `loading_cancelled` (a service bug,
    /// pinned down in `tests/notice_loss.rs`), which would make unrelated tests flaky.
    pub fn settings(&self) -> Settings {
        Settings {
            bind: "127.0.0.1:0".to_owned(),
            redis_url: self.redis_url.clone(),
            key_prefix: self.key_prefix.clone(),
            timing: Timing {
                match_interval_ms: 100,
                loading_timeout_ms: 3_000,
                allocation_timeout_ms: 1_500,
                sweep_interval_ms: 100,
                lease_ttl_ms: 3_000,
                lease_renew_interval_ms: 1_000,
                resync_interval_ms: 2_000,
                lock_ttl_ms: 2_000,
                redis_command_timeout_ms: 1_000,
                // No ping within a test unless it asks for one: a ping read after the
                // server closed makes the client's automatic pong fail with a broken pipe
                // before the close frame can be read.
                heartbeat_interval_ms: 10_000,
                idle_timeout_ms: 20_000,
                shutdown_timeout_ms: 3_000,
                subscriber_retry_ms: 50,
            },
            limits: Limits {
                max_frame_bytes: 1_024,
                ..Limits::default()
            },
            allocator: AllocatorSettings {
                registry_prefix: self.registry_prefix.clone(),
                // Longer than any test: a game server that was called once is not picked
                // again, so a failing stub never shadows the healthy one added after it.
                claim_ttl_ms: 30_000,
                // Short, so the registry sweep finds a stub registered a moment ago
                // within a few steps even when other tests' keys fill the shared Redis.
                sweep_interval_ms: 20,
                ..AllocatorSettings::default()
            },
            auth: AuthSettings::required(TEST_SECRET),
            ..Settings::default()
        }
    }

    /// The test's Redis URL with another `host:port` and, if given, other credentials
    /// (`user:password`); the database path is kept.
    pub fn redis_url_with(&self, host_port: Option<&str>, credentials: Option<&str>) -> String {
        let rest = self
            .redis_url
            .strip_prefix("redis://")
            .unwrap_or_else(|| panic!("{} is not a redis:// URL", self.redis_url));
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => (Some(userinfo), rest),
            None => (None, rest),
        };
        let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host_port = host_port.unwrap_or(address);
        match credentials.or(userinfo) {
            Some(userinfo) => format!("redis://{userinfo}@{host_port}{path}"),
            None => format!("redis://{host_port}{path}"),
        }
    }

    /// The socket address of the test's Redis.
    pub async fn redis_addr(&self) -> std::net::SocketAddr {
        let url = self.redis_url_with(None, Some(""));
        let host_port = url
            .trim_start_matches("redis://@")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        tokio::net::lookup_host(host_port.as_str())
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("cannot resolve the Redis address {host_port}"))
    }

    /// A Redis connection scoped to this test's keys.
    pub async fn inspector(&self) -> Inspector {
        Inspector::connect(self).await
    }

    /// Deletes every key of this test, best effort (a server still draining may write after).
    fn delete_keys(&self) -> redis::RedisResult<()> {
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut conn = client.get_connection_with_timeout(CLEANUP_TIMEOUT)?;
        conn.set_read_timeout(Some(CLEANUP_TIMEOUT))?;
        conn.set_write_timeout(Some(CLEANUP_TIMEOUT))?;
        for prefix in [&self.key_prefix, &self.registry_prefix] {
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1_000)
                .clone()
                .iter(&mut conn)?
                .collect::<Result<_, _>>()?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut conn)?;
            }
        }
        Ok(())
    }
}

/// Bound on the clean-up at the end of a test.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(2);

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Err(error) = self.delete_keys() {
            eprintln!("could not delete the keys of {}: {error}", self.key_prefix);
        }
    }
}
