//! Invariant 2: a player is in at most one place - once in one queue, or in one loading
//! session - judged on every Redis snapshot. A player with a live entry counts in every
//! queue set that holds it, not only its entry's mode's: a member left behind in another
//! mode's queue (an enqueue that replaced a dead entry of that mode and did not take it out)
//! is a second place, even though a round of that mode would drop it.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings, RedisView};

/// Invariant 2.
#[derive(Debug)]
pub struct OnePlace;

impl OnePlace {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for OnePlace {
    fn on_snapshot(
        &mut self,
        _cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        _settled: bool,
        out: &mut Findings<'_>,
    ) {
        let mut players: BTreeSet<Uuid> = view.queues.values().flatten().copied().collect();
        players.extend(
            view.loadings
                .values()
                .flat_map(|l| l.players.iter().copied()),
        );
        out.checked(players.len() as u64);
        for player in players {
            let mut places = view.places(player);
            if view.live_entry(player).is_some() {
                places.extend(left_behind(view, player, &places));
            }
            if places.len() > 1 {
                out.violate(
                    at_ms,
                    format!("player {player} is in {}", places.join(" and ")),
                );
            }
        }
    }
}

/// The queue sets that hold `player` besides the place its entry names (its live entry is
/// queued in another mode, or is not queued at all).
fn left_behind(view: &RedisView, player: Uuid, places: &[String]) -> Vec<String> {
    view.queues
        .iter()
        .filter(|(_, queue)| queue.contains(&player))
        .map(|(mode, _)| format!("queue {mode}"))
        .filter(|place| !places.contains(place))
        .map(|place| format!("{place} (left behind)"))
        .collect()
}
