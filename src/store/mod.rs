//! The Redis seam: every command the service sends to Redis, as one trait.
//!
//! Production uses [`RedisStore`](redis_store::RedisStore); the simulation plugs in an
//! in-memory fake that runs the same `lua/` scripts. The seam sits at the command level so
//! that raw script replies, garbled or not, always reach the service's own parsers.

pub mod redis_store;

use std::fmt;

use async_trait::async_trait;

use crate::scripts::Script;

/// One reply as Redis's RESP2 protocol shapes it, before the service interprets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The nil bulk or nil array reply (a Lua `false` or a missing key).
    Nil,
    /// An integer reply (a Lua number, truncated toward zero).
    Int(i64),
    /// A bulk string reply; binary safe.
    Bulk(Vec<u8>),
    /// A status reply such as `OK` (a Lua `{ok = ...}` table).
    Status(String),
    /// An error reply nested in an array (a Lua `{err = ...}` table inside a table).
    Error(String),
    /// An array reply.
    Array(Vec<Reply>),
}

impl Reply {
    /// Builds a bulk reply from text; handy for fakes and tests.
    pub fn bulk(text: &str) -> Self {
        Self::Bulk(text.as_bytes().to_vec())
    }

    /// The reply as UTF-8 text when it is a bulk or status string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Bulk(bytes) => std::str::from_utf8(bytes).ok(),
            Self::Status(text) => Some(text),
            _ => None,
        }
    }
}

impl fmt::Display for Reply {
    /// A compact, bounded rendering used in logs when a reply cannot be parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nil => write!(f, "nil"),
            Self::Int(value) => write!(f, "{value}"),
            Self::Bulk(bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            Self::Status(text) => write!(f, "+{text}"),
            Self::Error(text) => write!(f, "-{text}"),
            Self::Array(items) => {
                write!(f, "[")?;
                for (index, item) in items.iter().enumerate().take(MAX_LOGGED_ELEMENTS) {
                    if index > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                if items.len() > MAX_LOGGED_ELEMENTS {
                    write!(f, ", ... {} more", items.len() - MAX_LOGGED_ELEMENTS)?;
                }
                write!(f, "]")
            }
        }
    }
}

/// How many array elements a logged reply shows before it is cut short.
const MAX_LOGGED_ELEMENTS: usize = 16;

/// Why a command did not produce a reply the service can use.
///
/// `Unavailable` and `Timeout` leave the effect unknown: the command may have run.
/// Callers must treat them that way (retry idempotently or reconcile later).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The connection failed or was lost; the command may or may not have run.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error reply (script error, wrong type, ...).
    #[error("redis error reply: {0}")]
    Server(String),
    /// No reply within the configured command timeout; the command may have run.
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
    /// The reply had a shape this command never returns.
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
}

/// One message received on a pub/sub subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubSubMessage {
    /// The channel the message was published to.
    pub channel: String,
    /// The published payload.
    pub payload: Vec<u8>,
}

/// A live pattern subscription. It ends (returns `None`) when its connection drops; what is
/// published while no subscription is live is lost, exactly as in Redis.
#[async_trait]
pub trait Subscription: Send {
    /// The next message, or `None` once the subscription's connection is gone.
    async fn next_message(&mut self) -> Option<PubSubMessage>;
}

/// Every Redis command the service uses. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait Store: Send + Sync {
    /// Runs a script (EVALSHA, loading it on NOSCRIPT) and returns its raw reply.
    /// A top-level error reply is `Err(StoreError::Server)`.
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError>;

    /// `SET key value NX PX ttl_ms`: true when the key was set, false when it already existed.
    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError>;

    /// `GET key`: the value, or `None` when the key does not exist.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// `HGET key field`: the field's value, or `None`.
    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// `SMEMBERS key`: the members, in no particular order.
    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError>;

    /// `SCARD key`: the number of members.
    async fn scard(&self, key: &str) -> Result<u64, StoreError>;

    /// `SCAN cursor MATCH pattern COUNT count`: the next cursor (0 when done) and a page of
    /// keys. A key may appear twice over one iteration and a page may be empty.
    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError>;

    /// `PUBLISH channel payload`: how many subscribers received it.
    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError>;

    /// `PSUBSCRIBE pattern` on a dedicated connection.
    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError>;
}
