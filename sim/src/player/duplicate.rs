//! A player's second connection: opened on another server while the first is live, it
//! must be refused with `session_exists`. It may also legitimately be given the player,
//! when the first connection's lease is gone by then (its server shut down or crashed).
//!
//! What the client concludes is only written to the trace: a refusal may never arrive (the
//! refusing server crashes first), and silence proves nothing. Invariant 10 judges what the
//! servers did instead - every act for the player under the acting session's own lease
//! (see `one_session`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use match_server::protocol::{ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use super::{Ws, connect_ws, describe};
use crate::oracle::{ClientEvent, Oracle};
use crate::seams::sim_elapsed_ms;
use crate::trace::{Source, TraceLog};

/// How long the client waits for a refusal: longer than the slowest Redis reply a seed
/// draws plus a retry.
const VERDICT_WAIT_MS: u64 = 4_000;

/// How long a second connection that heard no refusal stays open: longer than a heartbeat
/// interval, so a server that gave it the player has time to act on it.
const ACCEPTED_HOLD_MS: u64 = 3_000;

/// What the second connection needs.
pub struct Duplicate {
    /// The player's index, for the trace.
    pub index: usize,
    /// The client host it runs on, for the trace.
    pub client_host: String,
    /// The player's token (the same as the first connection's).
    pub token: String,
    /// The server to open it on.
    pub host: String,
    /// The run's trace.
    pub log: TraceLog,
    /// The player (the oracle judges the refusal code it hears).
    pub player: uuid::Uuid,
    /// The run's oracle.
    pub oracle: Rc<RefCell<Oracle>>,
}

/// How the server treated the second connection.
enum Verdict {
    /// `session_exists`: the first connection keeps the player.
    Refused,
    /// Another answer (the lease could not be taken, the server shuts down): no session.
    NoSession(String),
    /// Silence: the server may have given this connection the player's session (or its
    /// refusal was lost).
    Silent,
}

impl Duplicate {
    fn note(&self, text: String) {
        let text = format!("P{} (second connection) {text}", self.index);
        self.log.note(&self.client_host, Source::Client, text);
    }

    /// Opens the connection, waits for the verdict, records it, closes.
    pub async fn run(self) {
        self.note(format!("opens on {}", self.host));
        let Some(mut ws) = connect_ws(&self.host, &self.token).await else {
            self.note("cannot connect".into());
            return;
        };
        let opened_ms = sim_elapsed_ms();
        let wait = Duration::from_millis(VERDICT_WAIT_MS);
        let heard = |message: &ServerMessage| {
            let event = ClientEvent::DuplicateReceived {
                server: self.host.clone(),
                opened_ms,
                message: message.clone(),
            };
            self.oracle
                .borrow_mut()
                .client_event(self.player, sim_elapsed_ms(), event);
        };
        let verdict = tokio::time::timeout(wait, verdict(&mut ws, heard))
            .await
            .unwrap_or(Verdict::Silent);
        match verdict {
            Verdict::Refused => self.note("refused: session_exists".into()),
            Verdict::NoSession(what) => self.note(format!("no session: {what}")),
            Verdict::Silent => {
                self.note("hears no refusal; keeps the connection open".into());
                let hold = Duration::from_millis(ACCEPTED_HOLD_MS);
                let _ = tokio::time::timeout(hold, drain(&mut ws)).await;
                self.note("closes".into());
            }
        }
        let _ = ws.close(None).await;
    }
}

/// Reads (and so answers pings) until the connection ends.
async fn drain(ws: &mut Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// Reads until the server says something that decides the connection's fate; `heard` is
/// told the frame that decided it.
async fn verdict(ws: &mut Ws, heard: impl Fn(&ServerMessage)) -> Verdict {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let message = serde_json::from_str::<ServerMessage>(text.as_str());
                if let Ok(message) = &message {
                    heard(message);
                }
                return match message {
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
