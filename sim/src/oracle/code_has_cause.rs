//! Invariant 13, every error code has its documented cause:
//!
//! - `loading_timeout` / `loading_not_completed` to a client loading session X: the stale
//!   sweep tried to end X for its timeout (an attempt that found X in Redis), and not before
//!   X's deadline as Redis held it then, less the allowed clock skew (bound `clock_skew`).
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
        for told in &self.timeouts {
            // Without the session's witnessed creation, nothing to judge it by.
            let Some(record) = loadings
                .get(&told.loading)
                .filter(|r| r.deadline_unix_ms.is_some())
            else {
                continue;
            };
            out.checked(1);
            let timeout = record.endings.iter().rev().find(|e| {
                e.cause == EndCause::TimedOut && e.at_ms <= told.at_ms + cx.bounds.tick_ms
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
