//! Invariant 10, one live session per player, judged on the servers' acts.
//!
//! A session acts for its player when it runs the enqueue effect, tells its client
//! `enqueued` or `start_loading`, or has a `loading_complete` take effect. Each act is
//! reported through the probe, and the simulation attaches what Redis held at that instant:
//! the player's lease key. The act is legal only if the key held the acting session's own
//! token - then no other connection can hold the player (the lease is taken with `SET NX`
//! and never overwritten). Refusals, closes and the frames of a session's retirement
//! (`session_exists`, `session_lost`, `shutting_down`) are not acts, and a client's silence
//! proves nothing either way: only what servers did is judged.
//!
//! An act is reported when its attempt is sent; a request held by a stalled connection
//! lands later. So a `loading_complete` that marked its caller ready is judged where it
//! landed as well: the player's lease must still have held the caller's token.

use std::collections::BTreeMap;

use match_server::probe::{Act, Fact, LeaseChange};
use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings, Invariant, RedisOp, RedisView, Violation};
use crate::probe::{FactRecord, Witness};

/// Invariant 10 over the facts of a run: every act happened under the acting session's own
/// lease. Returns the checks made and the violations found.
pub fn check(records: &[FactRecord]) -> (u64, Vec<Violation>) {
    let mut checks = 0;
    let mut violations = Vec::new();
    // Who took which player's lease, where and when: for the violations' details.
    let mut taken: BTreeMap<String, (u64, &str)> = BTreeMap::new();
    for record in records {
        match (&record.fact, &record.witness) {
            (
                Fact::Lease {
                    owner,
                    change: LeaseChange::Taken,
                    ..
                },
                _,
            ) => {
                taken.insert(owner.to_string(), (record.at_ms, record.host.as_str()));
            }
            (Fact::Acted { player, owner, act }, Some(Witness::LeaseHolder(holder))) => {
                checks += 1;
                if holder.as_deref() != Some(owner.to_string().as_str()) {
                    let detail = illegal_act(record, *player, *owner, act, holder, &taken);
                    violations.push(Violation {
                        invariant: Invariant::OneSession,
                        at_ms: record.at_ms,
                        detail,
                    });
                }
            }
            _ => {}
        }
    }
    (checks, violations)
}

/// The description of an act without the lease.
fn illegal_act(
    record: &FactRecord,
    player: Uuid,
    owner: Uuid,
    act: &Act,
    holder: &Option<String>,
    taken: &BTreeMap<String, (u64, &str)>,
) -> String {
    let by = |token: &str| match taken.get(token) {
        Some((at_ms, host)) => format!("session {token} (took it at {at_ms} ms on {host})"),
        None => format!("session {token}"),
    };
    let lease = match holder {
        Some(token) => format!("the lease was held by {}", by(token)),
        None => "the player held no lease".to_owned(),
    };
    format!(
        "player {player}: {} on {} acted ({}) while {lease}",
        by(&owner.to_string()),
        record.host,
        describe(act)
    )
}

/// An act, as a violation names it.
fn describe(act: &Act) -> String {
    match act {
        Act::Enqueue { requested: true } => "ran the enqueue the client asked for".to_owned(),
        Act::Enqueue { requested: false } => "re-enqueued the player on its own".to_owned(),
        Act::ToldEnqueued => "told its client enqueued".to_owned(),
        Act::ToldStartLoading { loading } => format!("told its client start_loading {loading}"),
        Act::LoadingCompleted { loading } => format!("had loading_complete {loading} take effect"),
    }
}

/// Invariant 10 as a check of the registry: judged over every fact of the run at its end.
#[derive(Debug)]
pub struct OneSession;

impl OneSession {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for OneSession {
    fn at_end(&mut self, cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        let (checks, violations) = check(&cx.history.facts);
        out.checked(checks);
        for violation in violations {
            out.violate(violation.at_ms, violation.detail);
        }
        for op in &cx.history.ops {
            if let Some(held) = marked_ready(op) {
                out.checked(1);
                if !held {
                    out.violate(op.at_ms, landed_without_lease(op));
                }
            }
        }
    }
}

/// For a `loading_complete` that marked its caller ready (its own reply, whatever the
/// instance heard): whether the caller held the player's lease where it landed.
fn marked_ready(op: &RedisOp) -> Option<bool> {
    let marked = matches!(op.effect_tag.as_deref(), Some("waiting" | "all_ready"));
    (op.target == "loading_complete" && marked)
        .then_some(op.caller_held_lease)
        .flatten()
}

/// The description of a `loading_complete` that landed without its caller's lease.
fn landed_without_lease(op: &RedisOp) -> String {
    let loading = op
        .loading
        .map_or_else(String::new, |loading| format!(" {loading}"));
    let held = if op.held_ms > 0 {
        format!(", held {} ms by a stall", op.held_ms)
    } else {
        String::new()
    };
    format!(
        "loading_complete{loading} from {} took effect at {} ms{held} while its session no longer held the player's lease",
        op.host, op.at_ms
    )
}

#[cfg(test)]
#[path = "one_session_tests.rs"]
mod tests;
