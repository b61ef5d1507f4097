//! Redis inspection: what the service left in Redis for one test's key prefix.

use std::collections::{BTreeMap, BTreeSet};

use match_server::keys::Keys;
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

use super::env::TestEnv;

/// A connection to the test's Redis, with the test's key names.
#[derive(Clone)]
pub struct Inspector {
    /// Multiplexed, so clones share it and polls may run from closures.
    conn: MultiplexedConnection,
    /// The service's own key naming, under the test's prefix.
    keys: Keys,
    /// The test's key prefix, for pattern scans.
    key_prefix: String,
    /// The test's game server registry prefix.
    registry_prefix: String,
}

/// Where a player's entry
/// (`state|mode|owner|lease|loading|session|address|ended|reason`) says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `queued`, `loading`, `matched` or `removed`.
    pub state: String,
    /// The game mode.
    pub mode: String,
    /// The loading session (empty unless loading or matched).
    pub loading: String,
    /// The game server session (empty unless matched).
    pub session: String,
    /// The game server address (empty unless matched).
    pub address: String,
    /// The last loading session the player was requeued or removed from (may be empty).
    pub ended: String,
    /// The code the player was told when that session ended (may be empty).
    pub reason: String,
}

impl Entry {
    fn parse(raw: &str) -> Self {
        let fields: Vec<&str> = raw.split('|').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or("").to_owned();
        Self {
            state: field(0),
            mode: field(1),
            loading: field(4),
            session: field(5),
            address: field(6),
            ended: field(7),
            reason: field(8),
        }
    }
}

impl Inspector {
    /// Connects to the test's Redis.
    pub async fn connect(env: &TestEnv) -> Self {
        let mut inspector = Self::connect_to(&env.redis_url, &env.key_prefix).await;
        inspector.registry_prefix.clone_from(&env.registry_prefix);
        inspector
    }

    /// Connects to Redis at `url` for the keys under `key_prefix` (no registry).
    pub async fn connect_to(url: &str, key_prefix: &str) -> Self {
        let client =
            redis::Client::open(url).unwrap_or_else(|error| panic!("bad Redis URL {url}: {error}"));
        let conn = super::within(
            super::WAIT,
            "connecting the inspector to Redis",
            // The client's own 500 ms default is too tight for a loaded CI machine; every
            // command is bounded by `WAIT` here instead.
            client.get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(super::WAIT))
                    .set_connection_timeout(Some(super::WAIT)),
            ),
        )
        .await
        .unwrap_or_else(|error| panic!("cannot connect to Redis at {url}: {error}"));
        Self {
            conn,
            keys: Keys::new(key_prefix),
            key_prefix: key_prefix.to_owned(),
            registry_prefix: String::new(),
        }
    }

    /// Runs one command, bounded; panics with the command on failure.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut conn = self.conn.clone();
        let name = match cmd.args_iter().next() {
            Some(redis::Arg::Simple(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "?".to_owned(),
        };
        let what = format!("Redis command {name}");
        super::within(super::WAIT, &what, cmd.query_async(&mut conn))
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error}"))
    }

    /// The players waiting in the queue of `mode`.
    pub async fn queue(&self, mode: &str) -> BTreeSet<String> {
        self.query(redis::cmd("SMEMBERS").arg(self.keys.queue(mode)))
            .await
    }

    /// Whether `player` waits in the queue of `mode`.
    pub async fn in_queue(&self, mode: &str, player: Uuid) -> bool {
        self.query(
            redis::cmd("SISMEMBER")
                .arg(self.keys.queue(mode))
                .arg(player.to_string()),
        )
        .await
    }

    /// Every entry of the players hash: player id -> raw entry.
    pub async fn players(&self) -> BTreeMap<String, String> {
        self.query(redis::cmd("HGETALL").arg(self.keys.players()))
            .await
    }

    /// The entry of `player`, decoded.
    pub async fn entry(&self, player: Uuid) -> Option<Entry> {
        let raw: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.players())
                    .arg(player.to_string()),
            )
            .await;
        raw.as_deref().map(Entry::parse)
    }

    /// The entry of `player` and whether it is in the queue of `mode`, read atomically, so a
    /// concurrent match round cannot make the two disagree.
    pub async fn entry_and_queued(&self, mode: &str, player: Uuid) -> (Option<Entry>, bool) {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HGET")
            .arg(self.keys.players())
            .arg(player.to_string())
            .cmd("SISMEMBER")
            .arg(self.keys.queue(mode))
            .arg(player.to_string());
        let mut conn = self.conn.clone();
        let (raw, queued): (Option<String>, bool) = super::within(
            super::WAIT,
            "reading an entry and its queue",
            pipe.query_async(&mut conn),
        )
        .await
        .unwrap_or_else(|error| panic!("MULTI HGET/SISMEMBER failed: {error}"));
        (raw.as_deref().map(Entry::parse), queued)
    }

    /// Keys of this test matching `<prefix><suffix>` (a glob), sorted.
    pub async fn scan(&self, suffix: &str) -> Vec<String> {
        let pattern = format!("{}{suffix}", self.key_prefix);
        let mut found = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1_000),
                )
                .await;
            found.extend(page);
            if next == 0 {
                return found.into_iter().collect();
            }
            cursor = next;
        }
    }

    /// The loading session hashes of this test.
    pub async fn loading_keys(&self) -> Vec<String> {
        self.scan(":loading:*").await
    }

    /// The players of loading session `loading`, sorted; empty when it does not exist.
    pub async fn loading_players(&self, loading: Uuid) -> BTreeSet<String> {
        let raw: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.keys.loading(loading))
                    .arg("players"),
            )
            .await;
        raw.unwrap_or_default()
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The `ready:<player>` flag of `player` in `loading` (`"0"`, `"1"` or absent).
    pub async fn ready_flag(&self, loading: Uuid, player: Uuid) -> Option<String> {
        self.query(
            redis::cmd("HGET")
                .arg(self.keys.loading(loading))
                .arg(format!("ready:{player}")),
        )
        .await
    }

    /// The player lease keys of this test.
    pub async fn session_keys(&self) -> Vec<String> {
        self.scan(":session:*").await
    }

    /// The value of `player`'s lease (the owner token of the session holding it), if any.
    pub async fn lease(&self, player: Uuid) -> Option<String> {
        self.query(redis::cmd("GET").arg(self.keys.player_lease(player)))
            .await
    }

    /// The remaining time to live of `player`'s lease in milliseconds (-2: no lease).
    pub async fn lease_pttl_ms(&self, player: Uuid) -> i64 {
        self.query(redis::cmd("PTTL").arg(self.keys.player_lease(player)))
            .await
    }

    /// Sets `player`'s lease to `value`, as another session would hold it.
    pub async fn set_lease(&self, player: Uuid, value: &str) {
        let () = self
            .query(
                redis::cmd("SET")
                    .arg(self.keys.player_lease(player))
                    .arg(value),
            )
            .await;
    }

    /// Makes `player`'s lease key a hash, so every command on it as a string fails
    /// (WRONGTYPE): Redis cannot answer whether the lease is held.
    pub async fn break_lease_key(&self, player: Uuid) {
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.player_lease(player))
                    .arg("broken")
                    .arg("1"),
            )
            .await;
    }

    /// The Redis type of `player`'s lease key (`string`, `hash`, or `none`).
    pub async fn lease_key_type(&self, player: Uuid) -> String {
        self.query(redis::cmd("TYPE").arg(self.keys.player_lease(player)))
            .await
    }

    /// Deletes `player`'s lease, as if it had run out.
    pub async fn delete_lease(&self, player: Uuid) {
        let _: i64 = self
            .query(redis::cmd("DEL").arg(self.keys.player_lease(player)))
            .await;
    }

    /// Every key of this test except the fleet index (the game servers' state, which
    /// outlives matches by design; its claims expire with their TTL): queues, players hash,
    /// loading hashes and index, locks, player leases.
    pub async fn matchmaking_keys(&self) -> Vec<String> {
        self.scan(":*")
            .await
            .into_iter()
            .filter(|key| !key.contains(":claim:") && !key.contains(":fleet:"))
            .collect()
    }

    /// Waits until no queue, loading hash, loading index or lock of this test is left;
    /// entries in the players hash and the player leases of connected clients are allowed
    /// when `allow_entries`.
    pub async fn wait_settled(&self, allow_entries: bool) {
        let players_key = self.keys.players();
        let mut last = Vec::new();
        let settled = tokio::time::timeout(super::WAIT, async {
            loop {
                last = self
                    .matchmaking_keys()
                    .await
                    .into_iter()
                    .filter(|key| {
                        !(allow_entries && (*key == players_key || key.contains(":session:")))
                    })
                    .collect();
                if last.is_empty() {
                    return;
                }
                tokio::time::sleep(super::POLL).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "Redis still holds keys of the test after {:?}: {last:?}",
            super::WAIT
        );
    }

    /// Writes a queued entry of `player` in `mode` owned by the session `owner`, with a
    /// lease until `deadline_ms`, and queues it: what a session of another instance leaves.
    pub async fn plant_queued_entry(
        &self,
        player: Uuid,
        mode: &str,
        owner: Uuid,
        deadline_ms: u64,
    ) {
        let entry = format!("queued|{mode}|{owner}|{deadline_ms}|||||");
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.players())
                    .arg(player.to_string())
                    .arg(entry),
            )
            .await;
        let _: i64 = self
            .query(
                redis::cmd("SADD")
                    .arg(self.keys.queue(mode))
                    .arg(player.to_string()),
            )
            .await;
    }

    /// Writes the entry a loading timeout leaves for a player who did not load (`removed`
    /// from `loading`), owned by the session `owner`, with a lease until `deadline_ms`.
    pub async fn plant_removed_entry(
        &self,
        player: Uuid,
        mode: &str,
        owner: Uuid,
        deadline_ms: u64,
        loading: Uuid,
    ) {
        let entry =
            format!("removed|{mode}|{owner}|{deadline_ms}||||{loading}|loading_not_completed");
        let _: i64 = self
            .query(
                redis::cmd("HSET")
                    .arg(self.keys.players())
                    .arg(player.to_string())
                    .arg(entry),
            )
            .await;
    }

    /// Publishes a notice without targets on the channel of `mode` (every instance ignores
    /// it); returns how many subscribers received it, i.e. how many instances of this key
    /// prefix are listening.
    pub async fn probe_subscribers(&self, mode: &str) -> u64 {
        let notice = serde_json::json!({ "targets": [], "event": { "kind": "resync" } });
        self.query(
            redis::cmd("PUBLISH")
                .arg(self.keys.notice_channel(mode))
                .arg(notice.to_string()),
        )
        .await
    }

    /// Registers a game server at `address` as `<registry_prefix><name>`, idle.
    pub async fn register_server(&self, name: &str, address: &str) {
        let value = serde_json::json!({ "address": address, "status": "idle" }).to_string();
        let () = self
            .query(
                redis::cmd("SET")
                    .arg(format!("{}{name}", self.registry_prefix))
                    .arg(value),
            )
            .await;
    }
}
