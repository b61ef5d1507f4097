//! The wire protocol: JSON text frames tagged by `type`, the names of the system this
//! service replaces so its clients keep working.
//!
//! Client to server: `enqueue {player_id, game_mode}`, `dequeue {}`,
//! `loading_complete {loading_session_id}`. Server to client: `enqueued`, `dequeued`,
//! `start_loading {loading_session_id}`, `match_found {session_id, server_address}`,
//! `error {code, message}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A request from a client, after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    /// Join the queue of `game_mode` as `player_id`.
    Enqueue {
        /// The player to enqueue.
        player_id: Uuid,
        /// The game mode's name, as configured.
        game_mode: String,
    },
    /// Leave the queue.
    Dequeue,
    /// The client finished loading the given loading session.
    LoadingComplete {
        /// The loading session the client says it finished.
        loading_session_id: Uuid,
    },
}

/// The raw shape of a client frame, before ids are validated.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawClientMessage {
    Enqueue {
        player_id: String,
        game_mode: String,
    },
    Dequeue {},
    LoadingComplete {
        loading_session_id: String,
    },
}

/// A frame the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The player is in the queue.
    Enqueued {},
    /// The player left the queue.
    Dequeued {},
    /// A match formed: load the game and answer `loading_complete`.
    StartLoading {
        /// The loading session to report completion for.
        loading_session_id: Uuid,
    },
    /// Every player loaded and a game server is ready.
    MatchFound {
        /// The game server's session for this match.
        session_id: Uuid,
        /// Where to connect, `host:port`.
        server_address: String,
    },
    /// A request failed or something happened to the player; `code` is stable.
    Error {
        /// Stable identifier a client can branch on.
        code: ErrorCode,
        /// Human-readable explanation; never leaks internals.
        message: String,
    },
}

impl ServerMessage {
    /// An error frame with the code's standard message.
    pub fn error(code: ErrorCode) -> Self {
        Self::Error {
            code,
            message: code.message().to_owned(),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain enums cannot fail; fall back to a fixed frame regardless.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal_error","message":"internal error"}"#.to_owned()
        })
    }
}

/// Stable error codes, serialized in snake_case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON or not a known message.
    InvalidMessage,
    /// A binary frame; the protocol is text only.
    BinaryNotSupported,
    /// `player_id` is not a UUID.
    InvalidPlayerId,
    /// `loading_session_id` is not a UUID.
    InvalidLoadingSessionId,
    /// `game_mode` is not configured.
    UnknownGameMode,
    /// `enqueue` while already queued, loading or enqueuing.
    AlreadyQueued,
    /// `dequeue` while not in a queue.
    NotInQueue,
    /// `loading_complete` while not loading.
    NotLoading,
    /// `loading_complete` names another loading session.
    WrongLoadingSession,
    /// `loading_complete` sent twice for one loading session.
    AlreadyLoaded,
    /// Another live session acts for this player.
    PlayerBusy,
    /// `enqueue` names another player than the one this connection acts for (the token's,
    /// or in dev mode the one of its first `enqueue`).
    PlayerMismatch,
    /// Another connection already plays as this player; this one is closed (4009).
    SessionExists,
    /// This connection lost its hold on the player (its player lease ran out or was taken,
    /// e.g. after the service lost Redis for too long); it is closed (4010): reconnect.
    SessionLost,
    /// The mode's queue is at its length limit.
    QueueFull,
    /// Another player of the loading session left; the player is back in the queue.
    LoadingCancelled,
    /// Not every player loaded in time; the player is back in the queue.
    LoadingTimeout,
    /// No idle game server; the player is back in the queue.
    NoServerAvailable,
    /// The game server refused or answered badly; the player is back in the queue.
    AllocationFailed,
    /// The game server did not answer in time; the player is back in the queue.
    AllocationTimeout,
    /// The player did not report `loading_complete` before the loading session timed out:
    /// it is out of the queue (not back in it) and must enqueue again to play. The players
    /// who loaded are requeued with `loading_timeout`.
    LoadingNotCompleted,
    /// The client sends messages faster than allowed.
    RateLimited,
    /// Redis could not be reached; the request had no effect, try again.
    ServiceUnavailable,
    /// The server is shutting down; reconnect elsewhere.
    ShuttingDown,
    /// Something unexpected failed inside the service.
    InternalError,
}

impl ErrorCode {
    /// Every code, for lookups and exhaustive tests.
    pub const ALL: [Self; 25] = [
        Self::InvalidMessage,
        Self::BinaryNotSupported,
        Self::InvalidPlayerId,
        Self::InvalidLoadingSessionId,
        Self::UnknownGameMode,
        Self::AlreadyQueued,
        Self::NotInQueue,
        Self::NotLoading,
        Self::WrongLoadingSession,
        Self::AlreadyLoaded,
        Self::PlayerBusy,
        Self::PlayerMismatch,
        Self::SessionExists,
        Self::SessionLost,
        Self::QueueFull,
        Self::LoadingCancelled,
        Self::LoadingTimeout,
        Self::NoServerAvailable,
        Self::AllocationFailed,
        Self::AllocationTimeout,
        Self::LoadingNotCompleted,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::ShuttingDown,
        Self::InternalError,
    ];

    /// The code whose wire name is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == name)
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMessage => "invalid_message",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::InvalidPlayerId => "invalid_player_id",
            Self::InvalidLoadingSessionId => "invalid_loading_session_id",
            Self::UnknownGameMode => "unknown_game_mode",
            Self::AlreadyQueued => "already_queued",
            Self::NotInQueue => "not_in_queue",
            Self::NotLoading => "not_loading",
            Self::WrongLoadingSession => "wrong_loading_session",
            Self::AlreadyLoaded => "already_loaded",
            Self::PlayerBusy => "player_busy",
            Self::PlayerMismatch => "player_mismatch",
            Self::SessionExists => "session_exists",
            Self::SessionLost => "session_lost",
            Self::QueueFull => "queue_full",
            Self::LoadingCancelled => "loading_cancelled",
            Self::LoadingTimeout => "loading_timeout",
            Self::NoServerAvailable => "no_server_available",
            Self::AllocationFailed => "allocation_failed",
            Self::AllocationTimeout => "allocation_timeout",
            Self::LoadingNotCompleted => "loading_not_completed",
            Self::RateLimited => "rate_limited",
            Self::ServiceUnavailable => "service_unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::InternalError => "internal_error",
        }
    }

    /// The standard human-readable message for this code.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidMessage => "the message is not valid JSON or not a known message type",
            Self::BinaryNotSupported => "binary frames are not supported; send JSON text",
            Self::InvalidPlayerId => "player_id must be a UUID",
            Self::InvalidLoadingSessionId => "loading_session_id must be a UUID",
            Self::UnknownGameMode => "this game mode does not exist",
            Self::AlreadyQueued => "already in a queue or a loading session",
            Self::NotInQueue => "not in a queue",
            Self::NotLoading => "not in a loading session",
            Self::WrongLoadingSession => "this is not your current loading session",
            Self::AlreadyLoaded => "loading_complete was already received for this session",
            Self::PlayerBusy => "another connection is playing as this player",
            Self::PlayerMismatch => "player_id is not the player this connection plays as",
            Self::SessionExists => "another connection is already playing as this player",
            Self::SessionLost => "this connection lost its hold on the player; reconnect",
            Self::QueueFull => "the queue for this game mode is full, try again later",
            Self::LoadingCancelled => "a player left the match; you are back in the queue",
            Self::LoadingTimeout => "not every player loaded in time; you are back in the queue",
            Self::NoServerAvailable => "no game server is available; you are back in the queue",
            Self::AllocationFailed => "the game server could not start; you are back in the queue",
            Self::AllocationTimeout => "the game server did not answer; you are back in the queue",
            Self::LoadingNotCompleted => {
                "you did not finish loading in time; you are out of the queue, enqueue again to play"
            }
            Self::RateLimited => "too many messages; slow down",
            Self::ServiceUnavailable => "the service is temporarily unavailable, try again",
            Self::ShuttingDown => "the server is shutting down; reconnect",
            Self::InternalError => "internal error",
        }
    }
}

/// Why a client frame was refused, as the error frame to send back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// The code to send.
    pub code: ErrorCode,
}

/// Parses one text frame into a validated request. Total: every input gives a request or
/// an error code, never a panic.
pub fn parse_client_frame(text: &str) -> Result<ClientRequest, FrameError> {
    let raw: RawClientMessage = serde_json::from_str(text).map_err(|_| FrameError {
        code: ErrorCode::InvalidMessage,
    })?;
    match raw {
        RawClientMessage::Enqueue {
            player_id,
            game_mode,
        } => {
            let player_id = Uuid::parse_str(&player_id).map_err(|_| FrameError {
                code: ErrorCode::InvalidPlayerId,
            })?;
            Ok(ClientRequest::Enqueue {
                player_id,
                game_mode,
            })
        }
        RawClientMessage::Dequeue {} => Ok(ClientRequest::Dequeue),
        RawClientMessage::LoadingComplete { loading_session_id } => {
            let loading_session_id =
                Uuid::parse_str(&loading_session_id).map_err(|_| FrameError {
                    code: ErrorCode::InvalidLoadingSessionId,
                })?;
            Ok(ClientRequest::LoadingComplete { loading_session_id })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYER: &str = "6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a11";

    /// Goal: the frames of the replaced system parse into requests.
    #[test]
    fn parses_the_three_client_messages() {
        let enqueue =
            format!(r#"{{"type":"enqueue","player_id":"{PLAYER}","game_mode":"Normal_1v1"}}"#);
        assert_eq!(
            parse_client_frame(&enqueue),
            Ok(ClientRequest::Enqueue {
                player_id: Uuid::parse_str(PLAYER).unwrap(),
                game_mode: "Normal_1v1".into()
            })
        );
        assert_eq!(
            parse_client_frame(r#"{"type":"dequeue"}"#),
            Ok(ClientRequest::Dequeue)
        );
        let complete = format!(r#"{{"type":"loading_complete","loading_session_id":"{PLAYER}"}}"#);
        assert!(matches!(
            parse_client_frame(&complete),
            Ok(ClientRequest::LoadingComplete { .. })
        ));
    }

    /// Goal: bad frames get a precise code a client can act on.
    #[test]
    fn bad_frames_get_specific_codes() {
        let cases = [
            ("not json", ErrorCode::InvalidMessage),
            ("{}", ErrorCode::InvalidMessage),
            (r#"{"type":"fly"}"#, ErrorCode::InvalidMessage),
            (
                r#"{"type":"enqueue","game_mode":"x"}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                r#"{"type":"enqueue","player_id":"bob","game_mode":"x"}"#,
                ErrorCode::InvalidPlayerId,
            ),
            (
                r#"{"type":"loading_complete","loading_session_id":""}"#,
                ErrorCode::InvalidLoadingSessionId,
            ),
        ];
        for (frame, code) in cases {
            assert_eq!(
                parse_client_frame(frame),
                Err(FrameError { code }),
                "{frame}"
            );
        }
    }

    /// Goal: server frames carry the names and fields legacy clients expect.
    #[test]
    fn server_frames_serialize_with_type_tag() {
        let id = Uuid::parse_str(PLAYER).unwrap();
        assert_eq!(
            ServerMessage::Enqueued {}.to_json(),
            r#"{"type":"enqueued"}"#
        );
        assert_eq!(
            ServerMessage::StartLoading {
                loading_session_id: id
            }
            .to_json(),
            format!(r#"{{"type":"start_loading","loading_session_id":"{PLAYER}"}}"#)
        );
        assert_eq!(
            ServerMessage::error(ErrorCode::QueueFull).to_json(),
            r#"{"type":"error","code":"queue_full","message":"the queue for this game mode is full, try again later"}"#
        );
    }

    /// Goal: every code's wire name matches its serde name, so docs and frames agree.
    #[test]
    fn code_names_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::from_name("no_such_code"), None);
    }
}
