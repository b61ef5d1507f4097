//! The Redis data model the invariants read: the matchmaking keys at one instant, decoded
//! (`redis_view` reads them from the fake).

use std::collections::{BTreeMap, BTreeSet};

use match_server::matchmaker::entry::{Place, PlayerEntry};
use uuid::Uuid;

/// A loading session as Redis holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadingView {
    /// Its mode.
    pub mode: String,
    /// `loading` or `allocating`.
    pub state: String,
    /// Its deadline (unix ms of the server clock that set it).
    pub deadline_ms: u64,
    /// Its players, in stored order.
    pub players: Vec<Uuid>,
}

/// Redis's matchmaking data at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisView {
    /// Redis's unix time (ms).
    pub now_ms: u64,
    /// Queue members by mode.
    pub queues: BTreeMap<String, BTreeSet<Uuid>>,
    /// Player entries (decodable ones).
    pub entries: BTreeMap<Uuid, PlayerEntry>,
    /// Loading sessions by id.
    pub loadings: BTreeMap<Uuid, LoadingView>,
    /// Locks by mode: remaining time to live (ms), `None` for no expiry.
    pub locks: BTreeMap<String, Option<u64>>,
}

impl RedisView {
    /// The live entry of `player` (a dead entry is garbage no script acts on).
    pub fn live_entry(&self, player: Uuid) -> Option<&PlayerEntry> {
        self.entries
            .get(&player)
            .filter(|entry| entry.lease_deadline_ms >= self.now_ms)
    }

    /// Where Redis says `player` is, counting only live entries.
    pub fn places(&self, player: Uuid) -> Vec<String> {
        let mut places = Vec::new();
        if let Some(entry) = self.live_entry(player)
            && entry.place == Place::Queued
            && self
                .queues
                .get(&entry.mode)
                .is_some_and(|queue| queue.contains(&player))
        {
            places.push(format!("queue {}", entry.mode));
        }
        for (id, loading) in &self.loadings {
            if loading.players.contains(&player) {
                places.push(format!("loading {id}"));
            }
        }
        places
    }

    /// Whether `player` waits in a queue with a live entry.
    pub fn is_queued(&self, player: Uuid) -> bool {
        self.places(player)
            .iter()
            .any(|place| place.starts_with("queue"))
    }
}
