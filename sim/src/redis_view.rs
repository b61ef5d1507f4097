//! Reads the fake Redis into the oracle's [`RedisView`], and the witnesses of the
//! service's facts ([`RedisWitness`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use match_server::keys::Keys;
use match_server::matchmaker::entry::PlayerEntry;
use match_server::probe::Fact;
use uuid::Uuid;

use crate::fake_redis::{Entry, FakeRedis, Value};
use crate::oracle::{LoadingView, RedisView};
use crate::probe::{LoadingState, Witness, WitnessReader};

/// Reads the witnesses of facts from the fake Redis, at the instant they are reported.
#[derive(Debug)]
pub struct RedisWitness {
    /// The fake the service runs on.
    fake: FakeRedis,
    /// Its key names.
    keys: Keys,
    /// Raised while reading, so the fake's clock is read without being moved: reading a
    /// witness must not change what the fake does next (which key has expired when).
    peeking: Arc<AtomicBool>,
}

impl RedisWitness {
    /// A reader of `fake`'s keys under `prefix`; `peeking` is the flag of the fake's clock
    /// that makes a read leave it alone.
    pub fn new(fake: FakeRedis, prefix: &str, peeking: Arc<AtomicBool>) -> Self {
        Self {
            fake,
            keys: Keys::new(prefix),
            peeking,
        }
    }

    /// Runs `read` with the fake's clock held still.
    fn peek<R>(&self, read: impl FnOnce(&FakeRedis) -> R) -> R {
        self.peeking.store(true, Ordering::Relaxed);
        let result = read(&self.fake);
        self.peeking.store(false, Ordering::Relaxed);
        result
    }
}

impl WitnessReader for RedisWitness {
    fn witness(&self, fact: &Fact) -> Option<Witness> {
        match fact {
            Fact::Acted { player, .. } => {
                let key = self.keys.player_lease(*player);
                let holder = self.peek(|fake| {
                    fake.with_data(|data| {
                        data.string(&key)
                            .map(|value| String::from_utf8_lossy(value).into_owned())
                    })
                });
                Some(Witness::LeaseHolder(holder))
            }
            Fact::LoadingEnding { loading, .. } => {
                let key = self.keys.loading(*loading);
                let state =
                    self.peek(|fake| fake.with_data(|data| data.hash(&key).map(loading_state)));
                Some(Witness::Loading(state))
            }
            Fact::LoadingCreated { loading, .. } => {
                let key = self.keys.loading(*loading);
                let players_key = self.keys.players();
                let state = self.peek(|fake| {
                    fake.with_data(|data| {
                        let mut state = data.hash(&key).map(loading_state)?;
                        if let Some(entries) = data.hash(&players_key) {
                            state.owners = entry_owners(&state.players, entries);
                        }
                        Some(state)
                    })
                });
                Some(Witness::Loading(state))
            }
            _ => None,
        }
    }
}

/// The owner token of each of `players`' entries in the players hash `entries`.
fn entry_owners(players: &[Uuid], entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<Uuid, Uuid> {
    players
        .iter()
        .filter_map(|player| {
            let raw = entries.get(player.to_string().as_bytes())?;
            Some((*player, PlayerEntry::decode(raw)?.owner))
        })
        .collect()
}

/// A loading hash's players and ready flags.
fn loading_state(fields: &BTreeMap<Vec<u8>, Vec<u8>>) -> LoadingState {
    let view = loading(fields);
    let players = view.players;
    let ready = players
        .iter()
        .filter(|player| {
            fields
                .get(format!("ready:{player}").as_bytes())
                .map(Vec::as_slice)
                == Some(b"1")
        })
        .copied()
        .collect();
    LoadingState {
        players,
        ready,
        deadline_ms: view.deadline_ms,
        allocating: view.state == "allocating",
        owners: BTreeMap::new(),
    }
}

/// The matchmaking data under `prefix` as the oracle needs it, read in place (no copy of
/// the keyspace: the oracle looks every 100 ms of sim time).
pub fn from_fake(fake: &FakeRedis, prefix: &str) -> RedisView {
    fake.with_data(|data| {
        let mut view = RedisView {
            now_ms: data.now_ms(),
            ..RedisView::default()
        };
        for (key, entry) in data.entries() {
            if let Ok(key) = std::str::from_utf8(key)
                && let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix(':'))
            {
                read_key(&mut view, rest, entry);
            }
        }
        view
    })
}

/// Adds one matchmaking key (its name after the prefix) to the view.
fn read_key(view: &mut RedisView, rest: &str, entry: &Entry) {
    match (rest.split_once(':'), &entry.value) {
        (Some(("queue", mode)), Value::Set(members)) => {
            let players: BTreeSet<Uuid> = members.iter().filter_map(|m| parse_uuid(m)).collect();
            view.queues.insert(mode.to_owned(), players);
        }
        (Some(("loading", id)), Value::Hash(fields)) => {
            if let Ok(id) = Uuid::parse_str(id) {
                view.loadings.insert(id, loading(fields));
            }
        }
        (Some(("lock", mode)), Value::String(_)) => {
            let ttl = entry.expires_at_ms.map(|at| at.saturating_sub(view.now_ms));
            view.locks.insert(mode.to_owned(), ttl);
        }
        (None, Value::Hash(fields)) if rest == "players" => {
            for (player, raw) in fields {
                if let (Some(player), Some(decoded)) =
                    (parse_uuid(player), PlayerEntry::decode(raw))
                {
                    view.entries.insert(player, decoded);
                }
            }
        }
        _ => {}
    }
}

fn parse_uuid(bytes: &[u8]) -> Option<Uuid> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| Uuid::parse_str(text).ok())
}

fn loading(fields: &BTreeMap<Vec<u8>, Vec<u8>>) -> LoadingView {
    let text = |name: &str| {
        fields
            .get(name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    LoadingView {
        mode: text("mode"),
        state: text("state"),
        deadline_ms: text("deadline_ms").parse().unwrap_or(0),
        players: text("players")
            .split(',')
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect(),
    }
}
