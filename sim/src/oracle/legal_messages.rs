//! Invariant 4: each client sees a legal message sequence - at most one `start_loading`
//! per loading session, at most one `match_found` per match, `enqueued` only for a pending
//! `enqueue`, "back in the queue" codes only while loading. Judged on every frame, against
//! the client's view before it.

use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use super::clients::{ClientModel, REQUEUE_CODES};
use super::{Bounds, Check, ClientEvent, ClientState, Cx, Findings};

/// Invariant 4.
#[derive(Debug)]
pub struct LegalMessages;

impl LegalMessages {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for LegalMessages {
    fn on_client(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
        out: &mut Findings<'_>,
    ) {
        out.checked(1);
        let (ClientEvent::Received(message), Some(model)) = (event, cx.clients.get(player)) else {
            return;
        };
        for what in illegal(model, message) {
            out.violate(at_ms, format!("player {player}: {what}"));
        }
    }
}

/// Why `message` is illegal for a client whose view is `model` (every reason found).
fn illegal(model: &ClientModel, message: &ServerMessage) -> Vec<String> {
    let mut why = Vec::new();
    match message {
        ServerMessage::Enqueued {} => {
            if model.pending_enqueues == 0 {
                why.push("enqueued without a pending enqueue".into());
            }
            if model.state != ClientState::Idle {
                why.push(format!("enqueued while {:?} (enqueued twice)", model.state));
            }
        }
        ServerMessage::StartLoading { loading_session_id } => {
            if model.announced.contains(loading_session_id) {
                why.push(format!(
                    "second start_loading for loading session {loading_session_id}"
                ));
            }
            if model.state != ClientState::Waiting {
                why.push(format!(
                    "start_loading {loading_session_id} while {:?}",
                    model.state
                ));
            }
        }
        ServerMessage::MatchFound { session_id, .. } => {
            if model.matches.contains(session_id) {
                why.push(format!("second match_found for game session {session_id}"));
            }
            if !matches!(
                model.state,
                ClientState::Loading {
                    completed: true,
                    ..
                }
            ) {
                why.push(format!("match_found {session_id} while {:?}", model.state));
            }
        }
        ServerMessage::Dequeued {} => {}
        ServerMessage::Error { code, .. } => why.extend(illegal_error(model, *code)),
    }
    why
}

fn illegal_error(model: &ClientModel, code: ErrorCode) -> Option<String> {
    let loading = matches!(model.state, ClientState::Loading { .. });
    if REQUEUE_CODES.contains(&code) && !loading {
        return Some(format!("{} while {:?}", code.as_str(), model.state));
    }
    // Out of the queue: legal for a loading session, or for one whose start_loading
    // never reached this client (it still waits).
    if code == ErrorCode::LoadingNotCompleted && !loading && model.state != ClientState::Waiting {
        return Some(format!("loading_not_completed while {:?}", model.state));
    }
    None
}
