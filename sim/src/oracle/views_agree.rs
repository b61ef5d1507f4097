//! Invariant 14, at rest the views agree: once the healed world rests (no client event for
//! a while, no loading session, nothing any invariant waits for), every connected client's
//! view equals what Redis holds for its player - idle: in no queue; waiting: in its mode's
//! queue with a live entry; loading a session: never (no session is left at rest).
//!
//! Invariant 7 forgives a client that still loads a session Redis already ended ("its
//! notice may be in flight"); at rest no notice is in flight any more, so such a client is
//! stuck: it waits for a notice that will never come (a `match_found` lost without a
//! fault, a requeue told to only some of the players).

use match_server::matchmaker::entry::Place;
use uuid::Uuid;

use super::{Bounds, Check, ClientState, Cx, Findings, RedisView};

/// Invariant 14 (stateless: it judges once, at rest).
#[derive(Debug)]
pub struct ViewsAgree;

impl ViewsAgree {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for ViewsAgree {
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
