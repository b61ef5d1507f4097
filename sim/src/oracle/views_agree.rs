//! Invariant 14, at rest the views agree: once the healed world rests (no client event for
//! a while, no loading session, nothing any invariant waits for), every connected client's
//! view equals what Redis holds for its player - idle: in no queue; waiting: in its mode's
//! queue with a live entry; loading a session: never (no session is left at rest).
//!
//! Invariant 7 forgives a client that still loads a session Redis already ended ("its
//! notice may be in flight"); at rest no notice is in flight any more, so such a client is
//! stuck: it waits for a notice that will never come (a `match_found` lost without a
//! fault, a requeue told to only some of the players).

use std::collections::BTreeMap;

use match_server::matchmaker::entry::Place;
use uuid::Uuid;

use super::{Bounds, Check, ClientState, Cx, Findings, RedisView};

/// Invariant 14, with when each current disagreement was first seen.
#[derive(Debug)]
pub struct ViewsAgree {
    /// Players whose view differs from Redis, since when (sim ms of the first snapshot
    /// that showed it): a notice published right before may still be on its way.
    since: BTreeMap<Uuid, u64>,
    /// How long a notice may take (the `prompt` bound).
    prompt_ms: u64,
}

impl ViewsAgree {
    /// The check.
    pub fn new(bounds: &Bounds) -> Self {
        Self {
            since: BTreeMap::new(),
            prompt_ms: bounds.prompt_ms,
        }
    }
}

impl Check for ViewsAgree {
    fn on_snapshot(
        &mut self,
        cx: &Cx<'_>,
        at_ms: u64,
        view: &RedisView,
        _settled: bool,
        _out: &mut Findings<'_>,
    ) {
        let mut since = BTreeMap::new();
        for (player, model) in cx.clients.models.iter().filter(|(_, m)| m.connected) {
            if disagreement(*player, &model.state, view).is_some() {
                let first = self.since.get(player).copied().unwrap_or(at_ms);
                since.insert(*player, first);
            }
        }
        self.since = since;
    }

    /// A disagreement younger than a notice's bound may be a notice in flight: the world
    /// is not at rest yet.
    fn unsettled(&self, _cx: &Cx<'_>, now_ms: u64, _view: &RedisView) -> bool {
        self.since
            .values()
            .any(|first| first.saturating_add(self.prompt_ms) > now_ms)
    }

    fn at_rest(&mut self, cx: &Cx<'_>, now_ms: u64, view: &RedisView, out: &mut Findings<'_>) {
        for (player, model) in cx.clients.models.iter().filter(|(_, m)| m.connected) {
            out.checked(1);
            if let Some(detail) = disagreement(*player, &model.state, view) {
                out.violate(now_ms, detail);
            }
        }
    }
}

/// How a connected client's view differs from Redis, if it does.
fn disagreement(player: Uuid, state: &ClientState, view: &RedisView) -> Option<String> {
    let place = view.live_entry(player).map(|entry| &entry.place);
    let places = view.places(player);
    match state {
        ClientState::Idle => (!places.is_empty()).then(|| {
            format!("player {player} believes it is idle but Redis has it in {places:?} (entry {place:?})")
        }),
        ClientState::Waiting => (!view.is_queued(player)).then(|| {
            format!("player {player} believes it is queued but Redis has it in {places:?} (entry {place:?})")
        }),
        ClientState::Loading { loading, .. } => {
            let held = matches!(place, Some(Place::Loading { loading: l }) if l == loading)
                && view
                    .loadings
                    .get(loading)
                    .is_some_and(|l| l.players.contains(&player));
            (!held).then(|| {
                format!("player {player} still believes it loads {loading} but Redis has it in {places:?} (entry {place:?})")
            })
        }
    }
}
