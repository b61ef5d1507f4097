//! Error replies with Redis 7's exact texts, so callers can compare them with a real server.

use match_server::store::Reply;

/// An error reply, holding the full text Redis sends after the `-` (code first, e.g.
/// `WRONGTYPE Operation against ...` or `ERR syntax error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdError(pub String);

/// What every command returns: a reply or an error reply.
pub type CmdResult = Result<Reply, CmdError>;

impl CmdError {
    /// An error with the given text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// A command used a key holding another type.
    pub fn wrong_type() -> Self {
        Self::new("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    /// Options that do not parse or do not go together.
    pub fn syntax() -> Self {
        Self::new("ERR syntax error")
    }

    /// An argument that must be a 64-bit integer is not one.
    pub fn not_integer() -> Self {
        Self::new("ERR value is not an integer or out of range")
    }

    /// A count that must be positive is not.
    pub fn not_positive() -> Self {
        Self::new("ERR value is out of range, must be positive")
    }

    /// The command got a number of arguments its arity forbids.
    pub fn arity(command: &str) -> Self {
        Self(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_lowercase()
        ))
    }

    /// An expiry that is not positive or overflows.
    pub fn invalid_expire(command: &str) -> Self {
        Self(format!(
            "ERR invalid expire time in '{}' command",
            command.to_lowercase()
        ))
    }

    /// A SCAN-family cursor that is not an unsigned integer.
    pub fn invalid_cursor() -> Self {
        Self::new("ERR invalid cursor")
    }
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `OK` status reply.
pub fn ok() -> Reply {
    Reply::Status("OK".to_owned())
}
