//! Invariant 5, no ghosts: a player whose disconnect has been processed is in no queue and
//! is never put into a later loading session; nor is a player whose session is gone (its
//! entry's lease ran out). Judged on every Redis snapshot, each loading session once when
//! first seen; and exactly where `try_match` grouped players: none of them may hold an
//! entry whose lease had run out by the script's own clock (R4: the sweep removes such
//! entries within a sweep interval, so a snapshot, with its slack for skewed clocks,
//! rarely sees one).

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings, RedisView};

/// Invariant 5, with the loading sessions already judged.
#[derive(Debug)]
pub struct NoGhosts {
    /// Loading sessions seen in an earlier snapshot.
    seen: BTreeSet<Uuid>,
}

impl NoGhosts {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self {
            seen: BTreeSet::new(),
        }
    }
}

/// When `player` left for good, if that is longer ago than any processing bound.
fn left_long_ago(cx: &Cx<'_>, player: Uuid, at_ms: u64) -> Option<u64> {
    let left = cx.clients.get(player)?.left_at_ms?;
    (at_ms > left.saturating_add(cx.bounds.crash_grace_ms)).then_some(left)
}

impl Check for NoGhosts {
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
