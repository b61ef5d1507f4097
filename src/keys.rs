//! Redis key names. Every matchmaking key starts with the configured prefix, whose
//! `{hash tag}` keeps all keys of every script in one Redis Cluster slot.

use uuid::Uuid;

/// Builds key names from the configured prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    /// The configured prefix, e.g. `{mm}`.
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Set of player ids waiting in `mode`.
    pub fn queue(&self, mode: &str) -> String {
        format!("{}:queue:{mode}", self.prefix)
    }

    /// Hash: player id -> encoded entry (see `lua/lib.lua`).
    pub fn players(&self) -> String {
        format!("{}:players", self.prefix)
    }

    /// The player lease: the owner token of the one live session acting for `player`, with
    /// a TTL its instance renews (see `matchmaker::lease_keeper`). The key is named
    /// `session:<player>` for compatibility with deployed instances.
    pub fn player_lease(&self, player: Uuid) -> String {
        format!("{}:session:{player}", self.prefix)
    }

    /// Hash describing one loading session.
    pub fn loading(&self, loading_id: Uuid) -> String {
        format!("{}:loading:{loading_id}", self.prefix)
    }

    /// Set of the loading session ids of `mode`, for the stale sweep.
    pub fn loading_index(&self, mode: &str) -> String {
        format!("{}:loading_index:{mode}", self.prefix)
    }

    /// The per-mode match lock.
    pub fn lock(&self, mode: &str) -> String {
        format!("{}:lock:{mode}", self.prefix)
    }

    /// Hash of the fleet index: server name -> `address|capacity|in_use|held_until_ms|status`
    /// (see `lua/lib.lua`), kept in step with the `dedicated_server:<name>` registrations.
    pub fn fleet_servers(&self) -> String {
        format!("{}:fleet:servers", self.prefix)
    }

    /// Set of the indexed servers with a free slot: allocation picks from it in O(1).
    pub fn fleet_free(&self) -> String {
        format!("{}:fleet:free", self.prefix)
    }

    /// One allocation's claim of a slot: the server's name, with the claim TTL.
    pub fn fleet_claim(&self, token: Uuid) -> String {
        format!("{}:fleet:claim:{token}", self.prefix)
    }

    /// The pub/sub channel that carries notices of `mode`.
    pub fn notice_channel(&self, mode: &str) -> String {
        format!("{}:notify:{mode}", self.prefix)
    }

    /// The pattern every instance subscribes to.
    pub fn notice_pattern(&self) -> String {
        format!("{}:notify:*", self.prefix)
    }
}
