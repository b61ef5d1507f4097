//! Invariant 9: Redis holds no loading session past its deadline, no lock without an
//! expiry, and no dead player entry (queued, matched or removed) long after its lease ran
//! out: the dead-entry sweep (R14) removes them, or a crashed instance's queued players
//! would stay in their queue until some match round happened to pop them. Judged on the
//! snapshots taken once the faults healed and the sweeps had time.

use match_server::matchmaker::entry::Place;

use super::{Bounds, Check, Cx, Findings, RedisView};

/// Invariant 9.
#[derive(Debug)]
pub struct NoStaleState;

impl NoStaleState {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for NoStaleState {
    fn on_snapshot(
        &mut self,
        cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        settled: bool,
        out: &mut Findings<'_>,
    ) {
        if !settled {
            return;
        }
        for (id, loading) in &view.loadings {
            out.checked(1);
            if view.now_ms > loading.deadline_ms.saturating_add(cx.bounds.stale_slack_ms) {
                out.violate(
                    at_ms,
                    format!(
                        "loading session {id} is {} ms past its deadline",
                        view.now_ms - loading.deadline_ms
                    ),
                );
            }
        }
        for (player, entry) in &view.entries {
            // A loading entry is the stale loading sweep's, judged by its session above.
            if matches!(entry.place, Place::Loading { .. }) {
                continue;
            }
            out.checked(1);
            if view.now_ms
                > entry
                    .lease_deadline_ms
                    .saturating_add(cx.bounds.stale_slack_ms)
            {
                out.violate(
                    at_ms,
                    format!(
                        "the dead entry of player {player} ({:?}) is still in Redis {} ms after its lease ran out",
                        entry.place,
                        view.now_ms - entry.lease_deadline_ms
                    ),
                );
            }
        }
        for (mode, ttl) in &view.locks {
            out.checked(1);
            if ttl.is_none() {
                out.violate(at_ms, format!("lock of {mode} has no expiry"));
            }
        }
    }
}
