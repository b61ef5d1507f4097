//! Invariant 9: Redis holds no loading session past its deadline and no lock without an
//! expiry. Judged on the snapshots taken once the faults healed and the sweeps had time.

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
        for (mode, ttl) in &view.locks {
            out.checked(1);
            if ttl.is_none() {
                out.violate(at_ms, format!("lock of {mode} has no expiry"));
            }
        }
    }
}
