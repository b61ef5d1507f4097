//! Invariant 7, no one waits forever: at the end of the run every connected client's view
//! has its counterpart in Redis. A client loading a session Redis no longer holds is fine
//! here if its entry has moved on (a requeue or match whose notice is still in flight);
//! invariant 14 (`views_agree`) asks for exact agreement once the world rests.

use match_server::matchmaker::entry::Place;
use uuid::Uuid;

use super::{Bounds, Check, ClientState, Cx, Findings, RedisView};

/// Invariant 7.
#[derive(Debug)]
pub struct NoOneLost;

impl NoOneLost {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for NoOneLost {
    fn unsettled(&self, cx: &Cx<'_>, _now_ms: u64, view: &RedisView) -> bool {
        self.in_flight(cx, view)
    }

    fn in_flight(&self, cx: &Cx<'_>, view: &RedisView) -> bool {
        cx.clients
            .models
            .iter()
            .any(|(player, model)| model.connected && lost(*player, &model.state, view).is_some())
    }

    fn at_end(&mut self, cx: &Cx<'_>, now_ms: u64, view: &RedisView, out: &mut Findings<'_>) {
        for (player, model) in cx.clients.models.iter().filter(|(_, m)| m.connected) {
            out.checked(1);
            if let Some(detail) = lost(*player, &model.state, view) {
                out.violate(now_ms, detail);
            }
        }
    }
}

/// Why a connected client's belief has no counterpart in Redis, if it has none.
fn lost(player: Uuid, state: &ClientState, view: &RedisView) -> Option<String> {
    let entry = view.live_entry(player);
    match state {
        ClientState::Idle => None,
        ClientState::Waiting => {
            let in_loading = entry.is_some_and(|e| matches!(e.place, Place::Loading { .. }));
            (!view.is_queued(player) && !in_loading)
                .then(|| format!("player {player} waits but Redis has it nowhere ({entry:?})"))
        }
        ClientState::Loading { loading, .. } => {
            // A match or requeue whose message is still in flight is consistent too.
            let held = view
                .loadings
                .get(loading)
                .is_some_and(|l| l.players.contains(&player));
            let moved_on = entry.is_some_and(|e| match &e.place {
                Place::Matched { loading: done, .. } | Place::Removed { loading: done, .. } => {
                    done == loading
                }
                Place::Queued => true,
                Place::Loading { .. } => false,
            });
            (!held && !moved_on)
                .then(|| format!("player {player} loads {loading} which Redis does not hold"))
        }
    }
}
