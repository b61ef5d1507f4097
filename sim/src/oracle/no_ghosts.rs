//! Invariant 5, no ghosts: a player whose disconnect has been processed is in no queue and
//! is never put into a later loading session; nor is a player whose session is gone (its
//! entry's lease ran out). Judged on every Redis snapshot, each loading session once when
//! first seen; and exactly where `try_match` grouped players: none of them may hold an
//! entry whose lease had run out by the script's own clock (R4: the sweep removes such
//! entries within a sweep interval, so a snapshot, with its slack for skewed clocks,
//! rarely sees one).
//!
//! A session that ends gracefully - its client closed the socket, or its server drained
//! it for a shutdown (R20, the client told `shutting_down`) - cleans up what its state
//! implies before it goes: within `disconnect_grace` its entry is out of the queue and out
//! of any loading session, unless a fault on its path (its instance, its Redis path, its
//! link) explains why not. Only a crash leaves the entry to its lease.

use std::collections::BTreeSet;

use match_server::matchmaker::entry::Place;
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use super::history::SERVER_SHUTDOWN;
use super::{Bounds, Check, ClientEvent, Cx, Findings, Path, RedisView, Scope};

/// Invariant 5, with the loading sessions already judged and the graceful ends to judge.
#[derive(Debug)]
pub struct NoGhosts {
    /// Loading sessions seen in an earlier snapshot.
    seen: BTreeSet<Uuid>,
    /// Sessions that ended gracefully and are not judged yet.
    graceful: Vec<GracefulEnd>,
}

/// A session that ended gracefully, whose entry must be gone within the grace.
#[derive(Debug)]
struct GracefulEnd {
    /// The player.
    player: Uuid,
    /// When the client saw the end (its close, or `shutting_down`).
    at_ms: u64,
    /// How it ended, for the violation.
    how: &'static str,
    /// When the server may have begun the cleanup: the shutdown, or a grace before the
    /// client closed (the window for an excusing fault starts here).
    since_ms: u64,
    /// What the cleanup depends on: the server, and for a close the link it travels.
    path: Path,
    /// The session tokens that held the player's lease on that connection.
    owners: Vec<Uuid>,
}

impl NoGhosts {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self {
            seen: BTreeSet::new(),
            graceful: Vec::new(),
        }
    }

    /// Judges the graceful ends whose grace is over by `at_ms` (each once, on the first
    /// snapshot after it): a live entry of the ended session still queued or loading is a
    /// ghost its session left behind.
    fn judge_graceful(
        &mut self,
        cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        out: &mut Findings<'_>,
    ) {
        let grace_ms = cx.bounds.disconnect_grace_ms;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.graceful)
            .into_iter()
            .partition(|end| end.at_ms.saturating_add(grace_ms) < at_ms);
        self.graceful = later;
        for end in due {
            out.checked(1);
            let Some(entry) = view.live_entry(end.player) else {
                continue;
            };
            let left_behind = end.owners.contains(&entry.owner)
                && matches!(entry.place, Place::Queued | Place::Loading { .. });
            // The shutdown is the cause being judged, not a fault that excuses it.
            let excused = cx
                .history
                .excuses(&end.path, end.since_ms, at_ms)
                .any(|fault| !fault.what.starts_with(SERVER_SHUTDOWN));
            if !left_behind || excused {
                continue;
            }
            out.violate(
                at_ms,
                format!(
                    "player {}'s session ended gracefully at {} ms ({}) but its entry is still {:?} at {at_ms} ms; no fault hit its path ({})",
                    end.player, end.at_ms, end.how, entry.place, end.path
                ),
            );
        }
    }
}

/// The graceful end `event` stands for, if any: how, and whether the server ended it.
fn graceful_how(event: &ClientEvent) -> Option<(&'static str, bool)> {
    match event {
        ClientEvent::Disconnected { closed: true, .. } => {
            Some(("its client closed the socket", false))
        }
        ClientEvent::Received(ServerMessage::Error {
            code: ErrorCode::ShuttingDown,
            ..
        }) => Some(("its server shut down", true)),
        _ => None,
    }
}

/// The last shutdown of `server` that began by `at_ms`, if any.
fn shutdown_of(cx: &Cx<'_>, server: &str, at_ms: u64) -> Option<u64> {
    cx.history
        .faults
        .iter()
        .filter(|fault| {
            fault.from_ms <= at_ms
                && fault.what.starts_with(SERVER_SHUTDOWN)
                && fault.scope == Scope::Instance(server.to_owned())
        })
        .map(|fault| fault.from_ms)
        .next_back()
}

/// When `player` left for good, if that is longer ago than any processing bound.
fn left_long_ago(cx: &Cx<'_>, player: Uuid, at_ms: u64) -> Option<u64> {
    let left = cx.clients.get(player)?.left_at_ms?;
    (at_ms > left.saturating_add(cx.bounds.crash_grace_ms)).then_some(left)
}

impl Check for NoGhosts {
    fn on_client(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
        _out: &mut Findings<'_>,
    ) {
        let (Some((how, by_server)), Some(model)) = (graceful_how(event), cx.clients.get(player))
        else {
            return;
        };
        let Some((server, opened_ms)) = model.connection_at(at_ms) else {
            return;
        };
        let owners: Vec<Uuid> = cx
            .history
            .lease_takers(player, server, opened_ms, at_ms)
            .collect();
        if owners.is_empty() {
            return;
        }
        // A drained session cleans up on its server, whatever its link does meanwhile; a
        // close must first reach the server over the link.
        let (since_ms, path) = if by_server {
            let since_ms = shutdown_of(cx, server, at_ms).unwrap_or(at_ms);
            (since_ms, Path::instances([server]))
        } else {
            let mut path = Path::default();
            path.add_connection(&model.client_host, server, opened_ms);
            (at_ms.saturating_sub(cx.bounds.disconnect_grace_ms), path)
        };
        self.graceful.push(GracefulEnd {
            player,
            at_ms,
            how,
            since_ms,
            path,
            owners,
        });
    }

    fn at_end(&mut self, cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        for op in cx.history.ops.iter().filter(|op| op.target == "try_match") {
            out.checked(1);
            for player in &op.grouped_dead {
                out.violate(
                    op.at_ms,
                    format!(
                        "{}'s try_match grouped player {player} into loading session {} although its entry's lease had run out by the script's clock",
                        op.host,
                        op.loading.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                    ),
                );
            }
        }
    }

    fn on_snapshot(
        &mut self,
        cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        _settled: bool,
        out: &mut Findings<'_>,
    ) {
        self.judge_graceful(cx, at_ms, view, out);
        for (id, loading) in &view.loadings {
            if !self.seen.insert(*id) {
                continue;
            }
            for player in &loading.players {
                out.checked(1);
                let lease = view.entries.get(player).map(|e| e.lease_deadline_ms);
                if lease.is_none_or(|lease| {
                    lease.saturating_add(cx.bounds.lease_slack_ms) < view.now_ms
                }) {
                    out.violate(
                        at_ms,
                        format!("new loading session {id} holds player {player} whose session is gone (lease {lease:?}, now {})", view.now_ms),
                    );
                }
                if let Some(left) = left_long_ago(cx, *player, at_ms) {
                    out.violate(
                        at_ms,
                        format!(
                            "player {player} left at {left} ms but is in new loading session {id}"
                        ),
                    );
                }
            }
        }
        for player in view.queues.values().flatten() {
            out.checked(1);
            if let Some(left) = left_long_ago(cx, *player, at_ms)
                && view.is_queued(*player)
            {
                out.violate(
                    at_ms,
                    format!("player {player} left at {left} ms but is still queued"),
                );
            }
        }
    }
}
