//! Invariant 3: every loading session holds exactly the mode's player count, all distinct,
//! all of that mode - judged on every Redis snapshot.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings, RedisView};

/// Invariant 3.
#[derive(Debug)]
pub struct LoadingComposition;

impl LoadingComposition {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for LoadingComposition {
    fn on_snapshot(
        &mut self,
        cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        _settled: bool,
        out: &mut Findings<'_>,
    ) {
        for (id, loading) in &view.loadings {
            out.checked(1);
            let expected = cx.bounds.players_per_mode.get(&loading.mode).copied();
            let distinct: BTreeSet<&Uuid> = loading.players.iter().collect();
            let wrong_mode = loading
                .players
                .iter()
                .any(|p| view.entries.get(p).is_some_and(|e| e.mode != loading.mode));
            if expected != Some(loading.players.len())
                || distinct.len() != loading.players.len()
                || wrong_mode
            {
                out.violate(
                    at_ms,
                    format!(
                        "loading session {id} of mode {} holds {:?} (expected {expected:?} distinct players of that mode)",
                        loading.mode, loading.players
                    ),
                );
            }
        }
    }
}
