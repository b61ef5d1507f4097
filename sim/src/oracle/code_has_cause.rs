//! Invariant 13, every error code has its documented cause:
//!
//! - `loading_timeout` / `loading_not_completed` to a client loading session X: the stale
//!   sweep tried to end X for its timeout (an attempt that found X in Redis), and not before
//!   X's deadline as Redis held it then, less the allowed clock skew (bound `clock_skew`).
//!   That deadline is itself judged: at least `loading_timeout_ms` after the creator took
//!   the mode's lock for the round that created X (it reads its clock after the lock), less
//!   a tick - less the allowed clock skew when a clock jump was open on the creator.
//! - The frame that decides a player's second connection (`duplicate_session`): a refusal
//!   is `session_exists` (the lease is held elsewhere); `service_unavailable` (the lease could
//!   not be read) and `shutting_down` are legal; `session_lost` only if that connection's
//!   server took the lease for it and lost it again; any other code is wrong.
//!
//! Judged at the end, over the facts' witnesses; a run without witnesses (a test that turns
//! them off) judges only the refusals.

use match_server::probe::{EndCause, Fact, LeaseChange};
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use super::history::{Ending, LoadingRecord, Scope};
use super::{Bounds, Check, ClientEvent, Cx, Findings, RedisView};
use crate::world::EPOCH_SECS;

/// A timeout code a loading client was told.
#[derive(Debug)]
struct Told {
    /// The player.
    player: Uuid,
    /// When (sim ms).
    at_ms: u64,
    /// The loading session the client believed it loaded.
    loading: Uuid,
    /// The code.
    code: ErrorCode,
}

/// The code that decided a second connection.
#[derive(Debug)]
struct Refusal {
    /// The player.
    player: Uuid,
    /// When (sim ms).
    at_ms: u64,
    /// The second connection's server host.
    server: String,
    /// When it opened (sim ms).
    opened_ms: u64,
    /// The code.
    code: ErrorCode,
}

/// Invariant 13, with the codes it saw.
#[derive(Debug, Default)]
pub struct CodeHasCause {
    /// Timeout codes told to loading clients.
    timeouts: Vec<Told>,
    /// Codes that decided second connections.
    refusals: Vec<Refusal>,
}

impl CodeHasCause {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self::default()
    }
}

impl Check for CodeHasCause {
    fn on_client(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
        _out: &mut Findings<'_>,
    ) {
        match event {
            ClientEvent::Received(ServerMessage::Error { code, .. })
                if matches!(
                    code,
                    ErrorCode::LoadingTimeout | ErrorCode::LoadingNotCompleted
                ) =>
            {
                if let Some(loading) = cx.clients.get(player).and_then(|m| m.loading()) {
                    self.timeouts.push(Told {
                        player,
                        at_ms,
                        loading,
                        code: *code,
                    });
                }
            }
            ClientEvent::DuplicateReceived {
                server,
                opened_ms,
                message: ServerMessage::Error { code, .. },
            } => self.refusals.push(Refusal {
                player,
                at_ms,
                server: server.clone(),
                opened_ms: *opened_ms,
                code: *code,
            }),
            _ => {}
        }
    }

    fn at_end(&mut self, cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        let loadings = cx.history.loadings();
        for (loading, record) in &loadings {
            judge_deadline(cx, *loading, record, out);
        }
        for told in &self.timeouts {
            // Without the session's witnessed creation, nothing to judge it by.
            let Some(record) = loadings
                .get(&told.loading)
                .filter(|r| r.deadline_unix_ms.is_some())
            else {
                continue;
            };
            out.checked(1);
            let by_ms = told.at_ms + cx.bounds.tick_ms;
            let timed_out = |record| timed_out_by(record, by_ms);
            // A session that missed a later loading session of its player (a stall held
            // its `start_loading`) names the one its client knows; the code is for the
            // latest session that held the player and timed out by then.
            let timeout = timed_out(record).or_else(|| {
                loadings
                    .values()
                    .filter(|later| {
                        later.created_ms > record.created_ms
                            && later.created_ms <= told.at_ms
                            && later.players.contains(&told.player)
                    })
                    .filter_map(timed_out)
                    .max_by_key(|ending| ending.at_ms)
            });
            let Some(timeout) = timeout else {
                out.violate(
                    told.at_ms,
                    format!(
                        "player {} was told {:?} for loading session {} which no timeout tried to end",
                        told.player, told.code, told.loading
                    ),
                );
                continue;
            };
            let deadline_ms = timeout.state.deadline_ms.saturating_sub(EPOCH_SECS * 1_000);
            if told.at_ms + cx.bounds.clock_skew_ms < deadline_ms {
                out.violate(
                    told.at_ms,
                    format!(
                        "player {} was told {:?} for loading session {} at {} ms, before its deadline {} ms less the clock skew {} ms ({} ended it at {} ms)",
                        told.player,
                        told.code,
                        told.loading,
                        told.at_ms,
                        deadline_ms,
                        cx.bounds.clock_skew_ms,
                        timeout.host,
                        timeout.at_ms
                    ),
                );
            }
        }
        for refusal in &self.refusals {
            out.checked(1);
            if let Some(why) = wrong_refusal(cx, refusal) {
                out.violate(refusal.at_ms, why);
            }
        }
    }
}

/// Why the code that decided a second connection is not the documented one, if it is not.
fn wrong_refusal(cx: &Cx<'_>, refusal: &Refusal) -> Option<String> {
    match refusal.code {
        ErrorCode::SessionExists | ErrorCode::ServiceUnavailable | ErrorCode::ShuttingDown => None,
        ErrorCode::SessionLost if lost_lease_there(cx, refusal) => None,
        code => Some(format!(
            "player {}'s second connection (on {}, opened at {} ms) was told {code:?}, not session_exists{}",
            refusal.player,
            refusal.server,
            refusal.opened_ms,
            if code == ErrorCode::SessionLost {
                ", and that server never held the player's lease for it"
            } else {
                ""
            }
        )),
    }
}

/// Whether the second connection's server lost the player's lease (after it opened), so
/// that a `session_lost` on it has a cause.
fn lost_lease_there(cx: &Cx<'_>, refusal: &Refusal) -> bool {
    cx.history.facts.iter().any(|record| {
        record.host == refusal.server
            && (refusal.opened_ms..=refusal.at_ms).contains(&record.at_ms)
            && matches!(
                &record.fact,
                Fact::Lease { player, change: LeaseChange::Lost, .. } if *player == refusal.player
            )
    })
}

/// A loading session's deadline as created is the configured loading timeout after its
/// creator read its clock, which it does after it took the mode's lock for the round: so at
/// least `loading_timeout_ms` after the creator's last `LockAcquired` of that mode before it
/// reported the creation, less a
/// tick (less the allowed clock skew when a clock jump was open on the creator). A session
/// without a witnessed deadline or a lock on record is not judged.
fn judge_deadline(cx: &Cx<'_>, loading: Uuid, record: &LoadingRecord<'_>, out: &mut Findings<'_>) {
    let Some(deadline_unix_ms) = record.deadline_unix_ms else {
        return;
    };
    // The creator's facts are in the order it reported them: its last lock of the mode
    // before it reported the creation is the round's (a later round may take the lock in
    // the same millisecond).
    let facts = &cx.history.facts;
    let created_at = facts.iter().position(
        |fact| matches!(&fact.fact, Fact::LoadingCreated { loading: id, .. } if *id == loading),
    );
    let lock_ms = facts
        .get(..created_at.unwrap_or(0))
        .unwrap_or_default()
        .iter()
        .rev()
        .filter(|fact| fact.host == record.creator)
        .find_map(|fact| match &fact.fact {
            Fact::LockAcquired { mode, .. } if mode == record.mode => Some(fact.at_ms),
            _ => None,
        });
    let Some(lock_ms) = lock_ms else {
        return;
    };
    let creator = Scope::Instance(record.creator.to_owned());
    let jumped = cx.history.faults.iter().any(|fault| {
        fault.scope == creator
            && fault.what == "clock_jump"
            && fault.from_ms <= record.created_ms
            && fault.to_ms >= lock_ms
    });
    let skew_ms = if jumped {
        cx.bounds.clock_skew_ms
    } else {
        cx.bounds.tick_ms
    };
    out.checked(1);
    let deadline_ms = deadline_unix_ms.saturating_sub(EPOCH_SECS * 1_000);
    let earliest_ms = (lock_ms + cx.bounds.loading_timeout_ms).saturating_sub(skew_ms);
    if deadline_ms < earliest_ms {
        out.violate(
            record.created_ms,
            format!(
                "loading session {loading} created by {} at {} ms has its deadline at {deadline_ms} ms, before the loading timeout {} ms after its round took the lock at {lock_ms} ms, less {skew_ms} ms",
                record.creator, record.created_ms, cx.bounds.loading_timeout_ms
            ),
        );
    }
}

/// The last timeout that found `record`'s loading session by `by_ms`, if any.
fn timed_out_by<'r, 'a>(record: &'r LoadingRecord<'a>, by_ms: u64) -> Option<&'r Ending<'a>> {
    record
        .endings
        .iter()
        .rev()
        .find(|e| e.cause == EndCause::TimedOut && e.at_ms <= by_ms)
}
