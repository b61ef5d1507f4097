//! What the fake Redis served each instance, kept for the oracle: the script calls that
//! create, end or repair matchmaking state, every PUBLISH (with its notice) and PSUBSCRIBE
//! (a subscriber back after a drop), and every
//! request a fault struck or a stall held. The driver hands them to the oracle's history.

use std::sync::{Arc, Mutex};

use match_server::keys::Keys;
use match_server::notify::Notice;
use match_server::store::Reply;
use uuid::Uuid;

use super::EPOCH_SECS;
use crate::coverage::RedisMarks;
use crate::coverage::redis;
use crate::fake_redis::{DataView, FaultKind, Observer, Served};
use crate::oracle::RedisOp;

/// Scripts whose calls the oracle reads (the others are kept only when a fault struck).
const SCRIPTS_KEPT: [&str; 8] = [
    "try_match",
    "finish_match",
    "cancel_loading",
    "loading_complete",
    "renew_leases",
    "renew_player_leases",
    "sweep_players",
    "release_lock",
];

/// Records what the fake served, for the driver to hand over.
#[derive(Debug)]
pub struct RedisLog {
    /// Ops not handed over yet.
    ops: Mutex<Vec<RedisOp>>,
    /// `<prefix>:loading:`, to find the loading session a script's keys name.
    loading_key: String,
    /// Key names, to read a player's lease where a script acting for it lands.
    keys: Keys,
    /// Coverage evidence only the fake sees (rows reached before or at an effect).
    pub marks: RedisMarks,
}

impl RedisLog {
    /// A log for keys under `prefix`; requests held past `response_timeout_ms` lost their
    /// reply.
    pub fn new(prefix: &str, response_timeout_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            ops: Mutex::new(Vec::new()),
            loading_key: format!("{prefix}:loading:"),
            keys: Keys::new(prefix),
            marks: RedisMarks::new(prefix, response_timeout_ms),
        })
    }

    /// The ops recorded since the last call.
    pub fn take(&self) -> Vec<RedisOp> {
        self.ops
            .lock()
            .map(|mut ops| std::mem::take(&mut *ops))
            .unwrap_or_default()
    }

    /// For `loading_complete` (ARGV player, owner, ...): whether the player's lease held
    /// the caller's token as the script took effect (the script does not change it).
    fn caller_held_lease(&self, served: &Served<'_>, data: &DataView<'_>) -> Option<bool> {
        if served.target != "loading_complete" || served.result.is_none() {
            return None;
        }
        let player = std::str::from_utf8(served.args.first()?).ok()?;
        let player = Uuid::parse_str(player).ok()?;
        let owner = served.args.get(1)?;
        let holder = data.string(&self.keys.player_lease(player));
        Some(holder == Some(owner.as_slice()))
    }

    /// For `loading_complete` and `enqueue` (ARGV player first): the player the call acts
    /// for.
    fn caller(served: &Served<'_>) -> Option<Uuid> {
        if !matches!(served.target, "loading_complete" | "enqueue") {
            return None;
        }
        Uuid::parse_str(redis::text(served.args.first()?)).ok()
    }

    /// For a `try_match` that created its loading session (KEYS: queue, players, loading;
    /// ARGV now_ms at 3): the grouped players whose entry lease had run out by the
    /// script's own clock. The session's stored player list is read (the loading id is
    /// fresh, so a session under it is this call's), not the reply, which a fault may
    /// have garbled.
    fn grouped_dead(served: &Served<'_>, data: &DataView<'_>) -> Vec<Uuid> {
        let (Some(players_key), Some(loading_key)) = (served.keys.get(1), served.keys.get(2))
        else {
            return Vec::new();
        };
        if served.target != "try_match" {
            return Vec::new();
        }
        let now_ms = redis::number(served.args, 3);
        redis::loading_players(data, loading_key)
            .filter(|player| {
                redis::entry(data, players_key, player)
                    .is_some_and(|entry| entry.lease_deadline_ms < now_ms)
            })
            .filter_map(|player| Uuid::parse_str(player).ok())
            .collect()
    }

    /// The loading session named by one of `keys`, if any.
    fn loading_in(&self, keys: &[Vec<u8>]) -> Option<Uuid> {
        keys.iter().find_map(|key| {
            let key = std::str::from_utf8(key).ok()?;
            Uuid::parse_str(key.strip_prefix(&self.loading_key)?).ok()
        })
    }
}

/// The first element of what the instance got back, as a tag (`matched`, `gone`); `error`
/// for an error.
fn reply_tag(served: &Served<'_>) -> Option<String> {
    match served.result? {
        Ok(reply) => Some(tag_of(reply)),
        Err(_) => Some("error".to_owned()),
    }
}

/// The first element of a reply, as a tag.
fn tag_of(reply: &Reply) -> String {
    match reply {
        Reply::Array(items) => items
            .first()
            .and_then(Reply::as_text)
            .unwrap_or("value")
            .to_owned(),
        reply => reply.as_text().unwrap_or("value").to_owned(),
    }
}

impl Observer for RedisLog {
    fn before(&self, target: &str, keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) {
        self.marks.before(target, keys, args, data);
    }

    fn served(&self, served: &Served<'_>, data: &DataView<'_>) {
        self.marks.served(served);
        let publish = served.target == "PUBLISH";
        let kept =
            publish || served.target == "PSUBSCRIBE" || SCRIPTS_KEPT.contains(&served.target);
        if !kept && served.fault.is_none() && !served.dropped_subscribers && served.held_ms == 0 {
            return;
        }
        let notice = publish
            .then(|| served.args.get(1))
            .flatten()
            .and_then(|payload| serde_json::from_slice::<Notice>(payload).ok());
        let op = RedisOp {
            at_ms: served.now_ms.saturating_sub(EPOCH_SECS * 1_000),
            host: served.client.to_owned(),
            target: served.target.to_owned(),
            loading: self.loading_in(served.keys),
            reply_tag: reply_tag(served),
            effect_tag: served.effect.map(tag_of).or_else(|| reply_tag(served)),
            grouped_dead: Self::grouped_dead(served, data),
            caller_held_lease: self.caller_held_lease(served, data),
            caller: Self::caller(served),
            fault: served.fault.map(FaultKind::name),
            dropped_subscribers: served.dropped_subscribers,
            delay_ms: served.delay_ms,
            notice,
            held_ms: served.held_ms,
        };
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
    }
}
