//! Coverage evidence only the fake Redis can see: what a request found right before its
//! effect (a dead entry it replaced or dropped, a renewal that came late, a completion
//! repeated after a lost reply) and what it answered (a refused lock or lease, a corrupted
//! reply). The world's
//! Redis observer feeds every request through here; the counts join the run's coverage.

use std::collections::BTreeMap;
use std::sync::Mutex;

use match_server::matchmaker::entry::{Place, PlayerEntry};
use match_server::store::Reply;

use crate::fake_redis::{DataView, FaultKind, Served};

/// Counts of coverage rows reached inside the fake Redis, by row id.
#[derive(Debug)]
pub struct RedisMarks {
    /// `<prefix>:lock:`, to recognise a match lock's SET NX.
    lock_key: String,
    /// `<prefix>:session:`, to recognise a player lease's SET NX.
    lease_key: String,
    /// How long an instance waits for a reply: a request held longer lost its reply.
    response_timeout_ms: u64,
    /// The counts and the evidence read before the request in progress.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counts: BTreeMap<&'static str, u64>,
    /// What the request in progress found before its effect (the fake serves one request
    /// at a time under its lock, so `before` and `served` pair up).
    pending: Vec<&'static str>,
}

/// Script names; every other target is a command (upper case).
fn is_script(target: &str) -> bool {
    target.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Bytes as text (empty when not UTF-8).
pub(crate) fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn arg(args: &[Vec<u8>], index: usize) -> &str {
    args.get(index).map(|a| text(a)).unwrap_or_default()
}

/// Argument `index` as a number (0 when absent or not a number).
pub(crate) fn number(args: &[Vec<u8>], index: usize) -> u64 {
    arg(args, index).parse().unwrap_or(0)
}

/// The entry of `player` in the players hash `players_key`.
pub(crate) fn entry(data: &DataView<'_>, players_key: &[u8], player: &str) -> Option<PlayerEntry> {
    data.hash(text(players_key))
        .and_then(|fields| fields.get(player.as_bytes()))
        .and_then(|raw| PlayerEntry::decode(raw))
}

/// The players (ids as text) the loading session under `loading_key` lists.
pub(crate) fn loading_players<'a>(
    data: &DataView<'a>,
    loading_key: &[u8],
) -> impl Iterator<Item = &'a str> + use<'a> {
    data.hash(text(loading_key))
        .and_then(|fields| fields.get(b"players".as_slice()))
        .map(|raw| text(raw))
        .unwrap_or_default()
        .split(',')
        .filter(|player| !player.is_empty())
}

/// The first element of an array reply, as text.
fn tag(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Array(items) => items.first().and_then(Reply::as_text),
        other => other.as_text(),
    }
}

/// Element `index` of an array reply, as a number.
fn item(reply: &Reply, index: usize) -> u64 {
    match reply {
        Reply::Array(items) => match items.get(index) {
            Some(Reply::Int(n)) => u64::try_from(*n).unwrap_or(0),
            Some(other) => other.as_text().and_then(|t| t.parse().ok()).unwrap_or(0),
            None => 0,
        },
        _ => 0,
    }
}

impl RedisMarks {
    /// Marks for keys under `prefix`, with the instances' Redis command timeout.
    pub fn new(prefix: &str, response_timeout_ms: u64) -> Self {
        Self {
            lock_key: format!("{prefix}:lock:"),
            lease_key: format!("{prefix}:session:"),
            response_timeout_ms,
            inner: Mutex::default(),
        }
    }

    /// The counts so far, by row id.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.inner
            .lock()
            .map(|inner| inner.counts.clone())
            .unwrap_or_default()
    }

    /// Reads what a request is about to replace or drop.
    pub fn before(&self, target: &str, keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) {
        let found = match target {
            "enqueue" => replaced_entry(keys, args, data),
            "try_match" => queue_holds_dead_entry(keys, args, data)
                .then_some("R4")
                .into_iter()
                .collect(),
            "cancel_loading" => loading_holds_dead_entry(keys, args, data)
                .then_some("R4")
                .into_iter()
                .collect(),
            "loading_complete" => repeats_completion(keys, args, data)
                .then_some("R6")
                .into_iter()
                .collect(),
            "renew_leases" => renews_dead_entry(keys, args, data)
                .then_some("W5")
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        if let Ok(mut inner) = self.inner.lock() {
            inner.pending = found;
        }
    }

    /// Counts what a served request shows.
    pub fn served(&self, served: &Served<'_>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let pending = std::mem::take(&mut inner.pending);
        let mut reached: Vec<&'static str> = Vec::new();
        let script = is_script(served.target);
        if script && served.fault.is_some_and(FaultKind::is_reply_fault) {
            reached.push("R18");
        }
        let lost_reply = served.fault == Some(FaultKind::ErrorAfterEffect)
            || served.held_ms > self.response_timeout_ms;
        if script && lost_reply && served.result.is_some() {
            reached.push("W1");
        }
        if let Some(Ok(reply)) = served.result {
            reached.extend(self.rows_of_reply(served, reply, pending));
        }
        for id in reached {
            *inner.counts.entry(id).or_default() += 1;
        }
    }

    /// The rows a request's reply shows reached.
    fn rows_of_reply(
        &self,
        served: &Served<'_>,
        reply: &Reply,
        pending: Vec<&'static str>,
    ) -> Vec<&'static str> {
        let tag = tag(reply).unwrap_or_default();
        let confirmed = |ok: bool| if ok { pending.clone() } else { Vec::new() };
        match served.target {
            "enqueue" => confirmed(tag == "enqueued"),
            "try_match" if tag == "lock_lost" => vec!["R11", "W6"],
            "loading_complete" => confirmed(tag == "all_ready"),
            "try_match" => confirmed(item(reply, 2) > 0),
            "cancel_loading" => confirmed(tag == "cancelled" && item(reply, 1) > 0),
            "renew_leases" => confirmed(tag == "renewed"),
            "SET" if matches!(reply, Reply::Nil) => {
                let key = arg(served.args, 0);
                if key.starts_with(&self.lock_key) {
                    vec!["R11"]
                } else if key.starts_with(&self.lease_key) {
                    vec!["R15"]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }
}

/// The counter of R3's hardest window: the replaced dead entry was queued in *another*
/// mode, so the script must take it out of that mode's queue (what
/// `enqueue-keeps-old-mode-queue` breaks). Listed after the table, not gated.
pub const R3_OTHER_MODE: &str = "R3 other mode";

/// enqueue.lua (KEYS: queue, players; ARGV: player, owner, mode, now_ms): the player's
/// entry is dead (its lease ran out) or `removed`, and not the caller's own live claim, so
/// the script replaces it (R3) - and, when it was queued in another mode, must take it out
/// of that mode's queue (the R3 other-mode counter).
fn replaced_entry(keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) -> Vec<&'static str> {
    let Some(p) = keys
        .get(1)
        .and_then(|players_key| entry(data, players_key, arg(args, 0)))
    else {
        return Vec::new();
    };
    let dead = p.lease_deadline_ms < number(args, 3);
    let removed = matches!(p.place, Place::Removed { .. });
    let queued = p.place == Place::Queued;
    let mut found = Vec::new();
    if (dead && queued) || removed {
        found.push("R3");
    }
    if dead && queued && p.mode != arg(args, 2) {
        found.push(R3_OTHER_MODE);
    }
    found
}

/// try_match.lua (KEYS: queue, players; ARGV: mode, .., now_ms at 4): the queue holds a
/// queued entry of the mode whose lease ran out.
fn queue_holds_dead_entry(keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) -> bool {
    let (Some(queue_key), Some(players_key)) = (keys.first(), keys.get(1)) else {
        return false;
    };
    let (mode, now_ms) = (arg(args, 0), number(args, 3));
    data.set(text(queue_key)).is_some_and(|members| {
        members.iter().any(|member| {
            entry(data, players_key, text(member)).is_some_and(|p| {
                p.place == Place::Queued && p.mode == mode && p.lease_deadline_ms < now_ms
            })
        })
    })
}

/// cancel_loading.lua (KEYS: loading, players; ARGV: loading id, .., now_ms at 3): a
/// player of the session is still loading it with a lease that ran out.
fn loading_holds_dead_entry(keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) -> bool {
    let (Some(loading_key), Some(players_key)) = (keys.first(), keys.get(1)) else {
        return false;
    };
    let now_ms = number(args, 3);
    loading_players(data, loading_key).any(|player| {
        entry(data, players_key, player).is_some_and(|p| {
            matches!(p.place, Place::Loading { .. }) && p.lease_deadline_ms < now_ms
        })
    })
}

/// loading_complete.lua (KEYS: loading; ARGV: player, owner): the caller already completed
/// the group (the session is allocating with it as the allocator): this is a retry after
/// its reply was lost, which must get `all_ready` again (R6, the idempotent answer).
fn repeats_completion(keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) -> bool {
    let Some(fields) = keys.first().and_then(|key| data.hash(text(key))) else {
        return false;
    };
    let field = |name: &str| fields.get(name.as_bytes()).map(|v| text(v));
    field("state") == Some("allocating") && field("allocator") == Some(arg(args, 1))
}

/// renew_leases.lua (KEYS: players; ARGV: deadline, then player/owner pairs): a pair's
/// entry is its own and already past its deadline as Redis's clock reads it - the renewal
/// lost the race to the expiry (the script renews it anyway; others may have judged it
/// dead meanwhile).
fn renews_dead_entry(keys: &[Vec<u8>], args: &[Vec<u8>], data: &DataView<'_>) -> bool {
    let Some(players_key) = keys.first() else {
        return false;
    };
    let now_ms = data.now_ms();
    args.get(1..)
        .unwrap_or_default()
        .chunks(2)
        .any(|pair| match pair {
            [player, owner] => entry(data, players_key, text(player)).is_some_and(|p| {
                p.owner.to_string() == text(owner) && p.lease_deadline_ms < now_ms
            }),
            _ => false,
        })
}
