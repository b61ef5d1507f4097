//! A player's second connection: opened on another server while the first is live, it
//! must be refused with `session_exists`. If a server accepts it instead (it says nothing
//! and keeps the connection), the oracle is told, and the first connection may then hear
//! nothing but its own retirement.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use match_server::protocol::{ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::{Ws, connect_ws, describe};
use crate::oracle::{ClientEvent, Oracle};
use crate::seams::sim_elapsed_ms;
use crate::trace::{Source, TraceLog};

/// How long a server has to refuse: longer than the slowest Redis reply a seed draws plus
/// a retry, so a silent server really did accept.
const VERDICT_WAIT_MS: u64 = 4_000;

/// How long an accepted second connection stays open: longer than a heartbeat interval, so
/// a first session that still acts is heard doing so (a ping at least) meanwhile.
const ACCEPTED_HOLD_MS: u64 = 3_000;

/// What the second connection needs.
pub struct Duplicate {
    /// The player's index, for the trace.
    pub index: usize,
    /// The client host it runs on, for the trace.
    pub client_host: String,
    /// The player.
    pub player: Uuid,
    /// The player's token (the same as the first connection's).
    pub token: String,
    /// The server to open it on.
    pub host: String,
    /// The run's trace.
    pub log: TraceLog,
    /// The run's oracle.
    pub oracle: Rc<RefCell<Oracle>>,
}

/// How the server treated the second connection.
enum Verdict {
    /// `session_exists`: the first connection keeps the player.
    Refused,
    /// Another answer (the lease could not be taken, the server shuts down): no session.
    NoSession(String),
    /// Silence: the server gave this connection the player's session.
    Accepted,
}

impl Duplicate {
    fn note(&self, text: String) {
        let text = format!("P{} (second connection) {text}", self.index);
        self.log.note(&self.client_host, Source::Client, text);
    }

    fn tell(&self, event: ClientEvent) {
        self.oracle
            .borrow_mut()
            .client_event(self.player, sim_elapsed_ms(), event);
    }

    /// Opens the connection, waits for the verdict, records it, closes.
    pub async fn run(self) {
        self.note(format!("opens on {}", self.host));
        let Some(mut ws) = connect_ws(&self.host, &self.token).await else {
            self.note("cannot connect".into());
            return;
        };
        let wait = Duration::from_millis(VERDICT_WAIT_MS);
        let verdict = tokio::time::timeout(wait, verdict(&mut ws))
            .await
            .unwrap_or(Verdict::Accepted);
        match verdict {
            Verdict::Refused => self.note("refused: session_exists".into()),
            Verdict::NoSession(what) => self.note(format!("no session: {what}")),
            Verdict::Accepted => {
                self.note("accepted".into());
                self.tell(ClientEvent::DuplicateAccepted);
                let hold = Duration::from_millis(ACCEPTED_HOLD_MS);
                let _ = tokio::time::timeout(hold, drain(&mut ws)).await;
                self.note("closes".into());
                self.tell(ClientEvent::DuplicateClosed);
            }
        }
        let _ = ws.close(None).await;
    }
}

/// Reads (and so answers pings) until the connection ends.
async fn drain(ws: &mut Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// Reads until the server says something that decides the connection's fate.
async fn verdict(ws: &mut Ws) -> Verdict {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match serde_json::from_str::<ServerMessage>(text.as_str()) {
                    Ok(ServerMessage::Error {
                        code: ErrorCode::SessionExists,
                        ..
                    }) => Verdict::Refused,
                    Ok(message) => Verdict::NoSession(describe(&message)),
                    Err(_) => Verdict::NoSession("a malformed frame".into()),
                };
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                return Verdict::NoSession("closed".into());
            }
            Some(Ok(_)) => {}
        }
    }
}
