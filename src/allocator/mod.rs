//! Dedicated game server allocation: the seam, its outcomes and the game server's answer.
//!
//! Game servers register as `dedicated_server:<name>` = `{"address": "host:port",
//! "status": "idle"}` ([`registry`]) and answer `POST http://<address>/session/create` with
//! body `{"players": [uuid, ...]}` by `{"server_address": "...", "session_id": uuid}`
//! ([`session_create`]).

pub mod agones;
pub mod fleet;
pub mod registration;
pub mod registry;
pub mod session_create;

use async_trait::async_trait;
use serde::Deserialize;
use uuid::Uuid;

use crate::limits;
use crate::protocol::ErrorCode;
use crate::store::StoreError;

pub use registry::RegistryAllocator;
pub use session_create::SessionCreator;

/// A game server ready for the match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The game server's session id, sent to players as `session_id`.
    pub session_id: Uuid,
    /// Where players connect, sent as `server_address`.
    pub server_address: String,
}

/// Why no game server could be allocated; each maps to an error code players receive.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// No registered server is idle and unreserved.
    #[error("no idle game server")]
    NoIdleServer,
    /// The game server answered with a non-success HTTP status.
    #[error("game server answered HTTP {0}")]
    HttpStatus(u16),
    /// The game server did not answer within the allocation timeout.
    #[error("game server did not answer in time")]
    Timeout,
    /// The game server's answer is not the documented JSON.
    #[error("game server answered a malformed body: {0}")]
    MalformedBody(String),
    /// The game server could not be reached.
    #[error("game server unreachable: {0}")]
    Unreachable(String),
    /// The registry could not be read.
    #[error("registry unavailable: {0}")]
    Store(#[from] StoreError),
}

impl AllocationError {
    /// The error code players receive for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoIdleServer => ErrorCode::NoServerAvailable,
            Self::Timeout => ErrorCode::AllocationTimeout,
            Self::HttpStatus(_) | Self::MalformedBody(_) | Self::Unreachable(_) => {
                ErrorCode::AllocationFailed
            }
            Self::Store(_) => ErrorCode::ServiceUnavailable,
        }
    }
}

/// The allocation seam: production asks real game servers, the simulation a fake.
#[async_trait]
pub trait Allocator: Send + Sync {
    /// Finds a game server for `players` and starts their session on it.
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError>;
}

/// The answer to `POST /session/create`.
#[derive(Deserialize)]
struct CreatedSession {
    server_address: String,
    session_id: Uuid,
}

/// Parses and checks the game server's answer.
pub fn parse_created_session(body: &[u8]) -> Result<Allocation, AllocationError> {
    let created: CreatedSession =
        serde_json::from_slice(body).map_err(|e| AllocationError::MalformedBody(e.to_string()))?;
    if !is_host_port(&created.server_address) {
        return Err(AllocationError::MalformedBody(format!(
            "server_address {:?} is not host:port",
            created.server_address
        )));
    }
    Ok(Allocation {
        session_id: created.session_id,
        server_address: created.server_address,
    })
}

/// A plausible `host:port`: bounded, printable, no separators the entry encoding uses.
pub fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && address.len() <= limits::MAX_SERVER_ADDRESS_BYTES
        && port.parse::<u16>().is_ok()
        && address
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '|' | ',' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: only the documented answer is accepted; anything else is a malformed body.
    #[test]
    fn created_session_is_validated() {
        let id = "6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a11";
        let good = format!(r#"{{"server_address":"10.0.0.7:7777","session_id":"{id}"}}"#);
        assert_eq!(
            parse_created_session(good.as_bytes())
                .unwrap()
                .server_address,
            "10.0.0.7:7777"
        );
        let bad = [
            "".to_owned(),
            "{}".to_owned(),
            format!(r#"{{"server_address":"no-port","session_id":"{id}"}}"#),
            format!(r#"{{"server_address":"a|b:1","session_id":"{id}"}}"#),
            r#"{"server_address":"h:1","session_id":"nope"}"#.to_owned(),
        ];
        for body in bad {
            assert!(
                matches!(
                    parse_created_session(body.as_bytes()),
                    Err(AllocationError::MalformedBody(_))
                ),
                "{body}"
            );
        }
    }

    /// Goal: each failure maps to the error code the issue names.
    #[test]
    fn failures_map_to_codes() {
        assert_eq!(
            AllocationError::NoIdleServer.code(),
            ErrorCode::NoServerAvailable
        );
        assert_eq!(
            AllocationError::HttpStatus(500).code(),
            ErrorCode::AllocationFailed
        );
        assert_eq!(
            AllocationError::Timeout.code(),
            ErrorCode::AllocationTimeout
        );
        assert_eq!(
            AllocationError::MalformedBody(String::new()).code(),
            ErrorCode::AllocationFailed
        );
    }
}
