//! One simulated player: connect, enqueue, answer every `start_loading` with
//! `loading_complete` at once, and close after `match_found`. Everything the server sends
//! is recorded with its time, so the verification can spot duplicates and losses.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use match_server::protocol::ServerMessage;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

/// How long a player keeps reading after its own close, to catch frames sent after
/// `match_found` (a duplicate would arrive there).
const LINGER_AFTER_MATCH_MS: u64 = 1_000;

/// Connection attempts per player: a refused or reset connect (listen backlog overflow
/// under a burst) is retried, as a real client would, since nothing was sent yet.
const MAX_CONNECT_ATTEMPTS: u32 = 3;
/// Pause between connection attempts.
const CONNECT_RETRY_MS: u64 = 20;

/// Read buffer per player connection. tungstenite's default (128 KiB) is zero-filled on
/// every read; server frames here are a few hundred bytes, and thousands of players share
/// the machine with the server under test.
const READ_BUFFER_BYTES: usize = 4_096;

/// A server instance the players connect to.
#[derive(Clone, Debug)]
pub struct Target {
    /// The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// Its loopback socket address, checked at start-up.
    pub addr: SocketAddr,
}

/// What one player is asked to do.
#[derive(Clone, Debug)]
pub struct PlayerPlan {
    /// The player's id, sent in `enqueue`.
    pub player_id: Uuid,
    /// The player's token, sent as `Authorization: Bearer` at the upgrade, if any.
    pub token: Option<String>,
    /// Index into the run's targets.
    pub target_index: usize,
    /// The game mode to enqueue for.
    pub mode: String,
    /// When the whole player (connect to match) must be done.
    pub deadline: Instant,
    /// The run's time origin; every `*_us` field counts from it.
    pub origin: Instant,
    /// When the schedule wanted this player to start, from the origin.
    pub scheduled_us: u64,
}

/// How a player ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It received `match_found`.
    Matched,
    /// The deadline passed first.
    TimedOut,
    /// The TCP or WebSocket connection could not be opened.
    ConnectFailed,
    /// The server closed the connection, or a read or write failed, before a match.
    Disconnected,
    /// The server refused the enqueue with an error (it never got `enqueued`).
    Refused,
}

/// A `start_loading` as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadingSeen {
    /// The loading session it names.
    pub loading_session_id: Uuid,
    /// When it arrived, from the origin.
    pub at_us: u64,
}

/// A `match_found` as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatchSeen {
    /// The game server's session id.
    pub session_id: Uuid,
    /// The game server's address.
    pub server_address: String,
    /// When it arrived, from the origin.
    pub at_us: u64,
}

/// Everything one player saw.
#[derive(Clone, Debug, Serialize)]
pub struct PlayerRecord {
    /// The player's id.
    pub player_id: Uuid,
    /// Which target it used.
    pub target_index: usize,
    /// When the schedule wanted it to start, from the origin.
    pub scheduled_us: u64,
    /// When it really started connecting, from the origin.
    pub started_us: u64,
    /// When the WebSocket was open, from the origin.
    pub connected_us: Option<u64>,
    /// When `enqueue` was sent, from the origin.
    pub enqueue_sent_us: Option<u64>,
    /// How many `enqueued` frames arrived.
    pub enqueued_acks: u32,
    /// Every `start_loading`, in arrival order.
    pub start_loadings: Vec<LoadingSeen>,
    /// Every `match_found`, in arrival order.
    pub matches: Vec<MatchSeen>,
    /// The code of every `error` frame, in arrival order.
    pub error_codes: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Details of a failure, for the report.
    pub failure: Option<String>,
}

impl PlayerRecord {
    fn new(plan: &PlayerPlan) -> Self {
        Self {
            player_id: plan.player_id,
            target_index: plan.target_index,
            scheduled_us: plan.scheduled_us,
            started_us: since_us(plan.origin),
            connected_us: None,
            enqueue_sent_us: None,
            enqueued_acks: 0,
            start_loadings: Vec::new(),
            matches: Vec::new(),
            error_codes: Vec::new(),
            outcome: Outcome::TimedOut,
            failure: None,
        }
    }

    /// Whether the server accepted this player's enqueue.
    pub fn was_enqueued(&self) -> bool {
        self.enqueued_acks > 0
    }

    /// Microseconds from `enqueue` to the first `start_loading`.
    pub fn enqueue_to_start_loading_us(&self) -> Option<u64> {
        let sent = self.enqueue_sent_us?;
        let first = self.start_loadings.first()?;
        Some(first.at_us.saturating_sub(sent))
    }

    /// Microseconds from `enqueue` to the first `match_found`.
    pub fn enqueue_to_match_found_us(&self) -> Option<u64> {
        let sent = self.enqueue_sent_us?;
        let first = self.matches.first()?;
        Some(first.at_us.saturating_sub(sent))
    }
}

/// Microseconds since `origin`.
pub fn since_us(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX)
}

type Socket = WebSocketStream<TcpStream>;

/// Runs one player to its end; never fails, every problem is in the record.
pub async fn run(plan: PlayerPlan, target: &Target) -> PlayerRecord {
    let mut record = PlayerRecord::new(&plan);
    let connected = tokio::time::timeout_at(
        plan.deadline,
        connect_with_retry(target, plan.token.as_deref()),
    )
    .await;
    let mut socket = match connected {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            record.outcome = Outcome::ConnectFailed;
            record.failure = Some(error);
            return record;
        }
        Err(_) => {
            record.outcome = Outcome::ConnectFailed;
            record.failure = Some("connect timed out".to_owned());
            return record;
        }
    };
    record.connected_us = Some(since_us(plan.origin));
    record.outcome = converse(&mut socket, &plan, &mut record).await;
    if record.outcome == Outcome::Matched {
        linger(&mut socket, &plan, &mut record).await;
    } else {
        let _ = socket.close(None).await;
    }
    record
}

/// [`connect`], retried up to [`MAX_CONNECT_ATTEMPTS`] times; the last error otherwise.
async fn connect_with_retry(target: &Target, token: Option<&str>) -> Result<Socket, String> {
    let mut attempt = 1;
    loop {
        match connect(target, token).await {
            Ok(socket) => return Ok(socket),
            Err(error) if attempt >= MAX_CONNECT_ATTEMPTS => {
                return Err(format!("{error} (after {attempt} attempts)"));
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(CONNECT_RETRY_MS)).await;
            }
        }
    }
}

/// Opens the TCP connection (no Nagle: frames are small) and the WebSocket on it, with
/// the player's token if any.
async fn connect(target: &Target, token: Option<&str>) -> Result<Socket, String> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|error| format!("websocket request: {error}"))?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|error| format!("token header: {error}"))?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|error| format!("tcp connect: {error}"))?;
    stream
        .set_nodelay(true)
        .map_err(|error| format!("set_nodelay: {error}"))?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|error| format!("websocket handshake: {error}"))?;
    Ok(socket)
}

/// The enqueue-to-match conversation; returns how it ended.
async fn converse(socket: &mut Socket, plan: &PlayerPlan, record: &mut PlayerRecord) -> Outcome {
    let enqueue = serde_json::json!({
        "type": "enqueue",
        "player_id": plan.player_id,
        "game_mode": plan.mode,
    });
    record.enqueue_sent_us = Some(since_us(plan.origin));
    if let Err(error) = socket.send(Message::Text(enqueue.to_string().into())).await {
        record.failure = Some(format!("send enqueue: {error}"));
        return Outcome::Disconnected;
    }
    loop {
        let frame = match tokio::time::timeout_at(plan.deadline, socket.next()).await {
            Err(_) => return Outcome::TimedOut,
            Ok(None) => {
                record.failure = Some("server closed the connection".to_owned());
                return Outcome::Disconnected;
            }
            Ok(Some(Err(error))) => {
                record.failure = Some(format!("read: {error}"));
                return Outcome::Disconnected;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Some(outcome) = on_frame(socket, frame, plan, record).await {
            return outcome;
        }
    }
}

/// Handles one frame; `Some` when the conversation is over.
async fn on_frame(
    socket: &mut Socket,
    frame: Message,
    plan: &PlayerPlan,
    record: &mut PlayerRecord,
) -> Option<Outcome> {
    let text = match frame {
        Message::Text(text) => text,
        Message::Close(_) => {
            record.failure = Some("server sent close".to_owned());
            return Some(Outcome::Disconnected);
        }
        _ => return None,
    };
    let Ok(message) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
        record.failure = Some(format!("unparsable frame: {}", text.as_str()));
        record
            .error_codes
            .push("loadgen_unparsable_frame".to_owned());
        return None;
    };
    let before_ack = !record.was_enqueued();
    match record_message(message, plan, record) {
        Reaction::Wait => None,
        Reaction::Matched => Some(Outcome::Matched),
        Reaction::Refused if before_ack => Some(Outcome::Refused),
        Reaction::Refused => None,
        Reaction::Complete(loading_session_id) => {
            let complete = serde_json::json!({
                "type": "loading_complete",
                "loading_session_id": loading_session_id,
            });
            match socket
                .send(Message::Text(complete.to_string().into()))
                .await
            {
                Ok(()) => None,
                Err(error) => {
                    record.failure = Some(format!("send loading_complete: {error}"));
                    Some(Outcome::Disconnected)
                }
            }
        }
    }
}

/// What the player does after a message.
#[derive(Debug, PartialEq, Eq)]
enum Reaction {
    /// Keep waiting.
    Wait,
    /// Answer `loading_complete` for this loading session.
    Complete(Uuid),
    /// The match is found.
    Matched,
    /// An error that ends the player if it comes before `enqueued`.
    Refused,
}

/// Records one parsed message and says how to react.
fn record_message(
    message: ServerMessage,
    plan: &PlayerPlan,
    record: &mut PlayerRecord,
) -> Reaction {
    let at_us = since_us(plan.origin);
    match message {
        ServerMessage::Enqueued {} => {
            record.enqueued_acks = record.enqueued_acks.saturating_add(1);
            Reaction::Wait
        }
        ServerMessage::StartLoading { loading_session_id } => {
            record.start_loadings.push(LoadingSeen {
                loading_session_id,
                at_us,
            });
            Reaction::Complete(loading_session_id)
        }
        ServerMessage::MatchFound {
            session_id,
            server_address,
        } => {
            record.matches.push(MatchSeen {
                session_id,
                server_address,
                at_us,
            });
            Reaction::Matched
        }
        ServerMessage::Error { code, .. } => {
            record.error_codes.push(code.as_str().to_owned());
            if is_requeue(code) {
                Reaction::Wait
            } else {
                Reaction::Refused
            }
        }
        ServerMessage::Dequeued {} => Reaction::Wait,
    }
}

/// Errors after which the server has put the player back in the queue by itself.
fn is_requeue(code: match_server::protocol::ErrorCode) -> bool {
    use match_server::protocol::ErrorCode as C;
    matches!(
        code,
        C::LoadingCancelled
            | C::LoadingTimeout
            | C::NoServerAvailable
            | C::AllocationFailed
            | C::AllocationTimeout
    )
}

/// After `match_found`: starts the close handshake and records anything that still
/// arrives before the server's close, bounded by [`LINGER_AFTER_MATCH_MS`].
async fn linger(socket: &mut Socket, plan: &PlayerPlan, record: &mut PlayerRecord) {
    if socket.close(None).await.is_err() {
        return;
    }
    let until = Instant::now() + Duration::from_millis(LINGER_AFTER_MATCH_MS);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, socket.next()).await {
        if let Message::Text(text) = frame
            && let Ok(message) = serde_json::from_str::<ServerMessage>(text.as_str())
        {
            let _ = record_message(message, plan, record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlayerPlan {
        let now = Instant::now();
        PlayerPlan {
            player_id: Uuid::new_v4(),
            token: None,
            target_index: 0,
            mode: "Normal_1v1".to_owned(),
            deadline: now,
            origin: now,
            scheduled_us: 0,
        }
    }

    /// Goal: each server frame is recorded and answered as the protocol says.
    #[test]
    fn messages_are_recorded_and_answered() {
        let plan = plan();
        let mut record = PlayerRecord::new(&plan);
        let loading = Uuid::new_v4();
        assert_eq!(
            record_message(ServerMessage::Enqueued {}, &plan, &mut record),
            Reaction::Wait
        );
        assert_eq!(
            record_message(
                ServerMessage::StartLoading {
                    loading_session_id: loading
                },
                &plan,
                &mut record
            ),
            Reaction::Complete(loading)
        );
        let requeued = ServerMessage::error(match_server::protocol::ErrorCode::LoadingCancelled);
        assert_eq!(record_message(requeued, &plan, &mut record), Reaction::Wait);
        let found = ServerMessage::MatchFound {
            session_id: Uuid::new_v4(),
            server_address: "127.0.0.1:1".to_owned(),
        };
        assert_eq!(record_message(found, &plan, &mut record), Reaction::Matched);
        assert!(record.was_enqueued());
        assert_eq!(record.start_loadings.len(), 1);
        assert_eq!(record.matches.len(), 1);
        assert_eq!(record.error_codes, vec!["loading_cancelled".to_owned()]);
    }
}
