//! Invariant 2: a player is in at most one place - once in one queue, or in one loading
//! session - judged on every Redis snapshot.

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
            let places = view.places(player);
            if places.len() > 1 {
                out.violate(
                    at_ms,
                    format!("player {player} is in {}", places.join(" and ")),
                );
            }
        }
    }
}
