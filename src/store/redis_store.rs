//! `RedisStore`: the [`Store`] seam on a real Redis, through the `redis` crate.
//!
//! Commands share one auto-reconnecting multiplexed connection; each pattern subscription
//! gets a dedicated connection, as pub/sub requires.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, RedisError, Value};

use super::{PubSubMessage, Reply, StoreError, Subscription};
use crate::scripts::{self, Script};
use crate::store::Store;

/// How long a new connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// The production store.
#[derive(Clone)]
pub struct RedisStore {
    /// Builds the dedicated pub/sub connections.
    client: Client,
    /// The shared, reconnecting command connection.
    connection: ConnectionManager,
    /// One `redis::Script` per service script, so EVALSHA falls back to loading on NOSCRIPT.
    scripts: BTreeMap<String, redis::Script>,
    /// Bound on each command's round trip, so a stuck Redis cannot stall a session forever.
    command_timeout_ms: u64,
}

impl RedisStore {
    /// Connects to `url` (for example `redis://127.0.0.1:6379`).
    pub async fn connect(url: &str, command_timeout_ms: u64) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|error| classify(&error, command_timeout_ms))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(command_timeout_ms)))
            .set_connection_timeout(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|error| classify(&error, command_timeout_ms))?;
        let scripts = scripts::all()
            .iter()
            .map(|script| (script.sha1.clone(), redis::Script::new(&script.source)))
            .collect();
        Ok(Self {
            client,
            connection,
            scripts,
            command_timeout_ms,
        })
    }

    /// Maps a `redis` crate error to the seam's error.
    fn error(&self, error: &RedisError) -> StoreError {
        classify(error, self.command_timeout_ms)
    }
}

/// Sorts a `redis` crate error into: timeout, server error reply, or unavailable.
fn classify(error: &RedisError, command_timeout_ms: u64) -> StoreError {
    if error.is_timeout() {
        StoreError::Timeout(command_timeout_ms)
    } else if error.code().is_some() {
        StoreError::Server(error.to_string())
    } else {
        StoreError::Unavailable(error.to_string())
    }
}

/// The text of an error reply, code first, as Redis sent it after the `-`.
pub fn server_error_text(error: &redis::ServerError) -> String {
    match error.details() {
        Some(details) => format!("{} {details}", error.code()),
        None => error.code().to_owned(),
    }
}

/// Converts a `redis` value to the seam's RESP2-shaped reply. Public so the conformance
/// suite reads real Redis through the very conversion the service uses.
pub fn to_reply(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(number) => Reply::Int(number),
        Value::BulkString(bytes) => Reply::Bulk(bytes),
        Value::Array(items) | Value::Set(items) => {
            Reply::Array(items.into_iter().map(to_reply).collect())
        }
        Value::SimpleString(text) => Reply::Status(text),
        Value::Okay => Reply::Status("OK".to_owned()),
        Value::Map(pairs) => Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(key, value)| [to_reply(key), to_reply(value)])
                .collect(),
        ),
        Value::Attribute { data, .. } => to_reply(*data),
        Value::Double(number) => Reply::Bulk(number.to_string().into_bytes()),
        Value::Boolean(flag) => Reply::Int(i64::from(flag)),
        Value::VerbatimString { text, .. } => Reply::Bulk(text.into_bytes()),
        Value::BigNumber(number) => Reply::Bulk(number),
        Value::Push { data, .. } => Reply::Array(data.into_iter().map(to_reply).collect()),
        Value::ServerError(error) => Reply::Error(server_error_text(&error)),
        // `Value` is non-exhaustive; a future shape is kept visible, never dropped.
        other => Reply::Bulk(format!("{other:?}").into_bytes()),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        // The service's scripts are prepared once; only an unknown script is built here
        // (cloning a prepared one would copy its whole source on every call).
        let built;
        let redis_script = match self.scripts.get(&script.sha1) {
            Some(prepared) => prepared,
            None => {
                built = redis::Script::new(&script.source);
                &built
            }
        };
        let mut invocation = redis_script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        let value: Value = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(to_reply(value))
    }

    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let reply: Value = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.error(&e))?;
        match reply {
            Value::Okay => Ok(true),
            Value::Nil => Ok(false),
            other => Err(StoreError::UnexpectedReply(to_reply(other).to_string())),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection.clone();
        connection.get(key).await.map_err(|e| self.error(&e))
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection.clone();
        connection
            .hget(key, field)
            .await
            .map_err(|e| self.error(&e))
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        connection.smembers(key).await.map_err(|e| self.error(&e))
    }

    async fn scard(&self, key: &str) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        connection.scard(key).await.map_err(|e| self.error(&e))
    }

    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.error(&e))
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        connection
            .publish(channel, payload)
            .await
            .map_err(|e| self.error(&e))
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| self.error(&e))?;
        pubsub
            .psubscribe(pattern)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(Box::new(RedisSubscription {
            stream: pubsub.into_on_message(),
        }))
    }
}

/// A pattern subscription on its own connection.
struct RedisSubscription {
    /// The message stream; it ends when the connection drops.
    stream: redis::aio::PubSubStream,
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next_message(&mut self) -> Option<PubSubMessage> {
        let message = self.stream.next().await?;
        Some(PubSubMessage {
            channel: message.get_channel_name().to_owned(),
            payload: message.get_payload_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: nested error replies keep their code and text, so parsers and logs can see them.
    #[test]
    fn nested_values_convert_to_resp2_shapes() {
        let value = Value::Array(vec![
            Value::BulkString(b"ok".to_vec()),
            Value::Int(3),
            Value::Nil,
            Value::Okay,
        ]);
        assert_eq!(
            to_reply(value),
            Reply::Array(vec![
                Reply::bulk("ok"),
                Reply::Int(3),
                Reply::Nil,
                Reply::Status("OK".to_owned())
            ])
        );
    }
}
