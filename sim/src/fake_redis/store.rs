//! The [`Store`] seam on the fake: every method becomes a plain command (or a script run)
//! through the same code as [`FakeRedis::execute`], wrapped in fault injection. Replies
//! reach the service as `RedisStore` hands them over (nested errors lifted).

use std::time::Duration;

use async_trait::async_trait;
use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError, Subscription};

use super::faults::{Decision, FaultKind};
use super::{FakeRedis, State, server_error};

/// One request from the service.
enum Request<'a> {
    /// A command, name first.
    Command(Vec<Vec<u8>>),
    /// A script run (EVALSHA falling back to the source).
    Script {
        /// The script, with its source and SHA1.
        script: &'a Script,
        /// KEYS.
        keys: Vec<Vec<u8>>,
        /// ARGV.
        args: Vec<Vec<u8>>,
    },
}

impl Request<'_> {
    /// The name scheduled faults aim at: the script's name, or the command's.
    fn target(&self) -> String {
        match self {
            Self::Command(args) => args
                .first()
                .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
                .unwrap_or_default(),
            Self::Script { script, .. } => script.name.to_owned(),
        }
    }
}

/// The text of an injected connection failure.
fn injected(kind: FaultKind) -> StoreError {
    StoreError::Unavailable(format!("injected fault: {}", kind.name()))
}

/// Text arguments as a command.
fn command(args: &[&str]) -> Request<'static> {
    Request::Command(args.iter().map(|arg| arg.as_bytes().to_vec()).collect())
}

impl FakeRedis {
    /// Runs a request with faults: decides them, applies the effect (or not), corrupts or
    /// delays the reply. The lock is released before any delay.
    async fn request(&self, request: Request<'_>) -> Result<Reply, StoreError> {
        let (result, delay) = self.request_now(&request);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result
    }

    /// The synchronous part of [`request`](Self::request).
    fn request_now(&self, request: &Request<'_>) -> (Result<Reply, StoreError>, Option<Duration>) {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        state.commands_executed += 1;
        let target = request.target();
        let scheduled = state.faults.scheduled_for(&target);
        let mut element = scheduled.as_ref().and_then(|fault| fault.element);
        let mut decision = match scheduled.map(|fault| fault.kind) {
            Some(FaultKind::SubscriberDrop) => Decision {
                kind: None,
                drop_subscribers: true,
            },
            Some(kind) => Decision {
                kind: Some(kind),
                drop_subscribers: false,
            },
            None => state
                .faults
                .decide(matches!(request, Request::Script { .. })),
        };
        state.apply_subscriber_drop(decision);
        if decision.kind == Some(FaultKind::ErrorBeforeEffect) {
            state.faults.record(FaultKind::ErrorBeforeEffect);
            return (Err(injected(FaultKind::ErrorBeforeEffect)), None);
        }
        let result = match request {
            Request::Command(args) => state.execute(args, now_ms),
            Request::Script { script, keys, args } => {
                state.run_script(&script.sha1, script.source.as_bytes(), keys, args, now_ms)
            }
        }
        .map_err(server_error)
        .and_then(lift_nested_error);
        if let Ok(reply) = &result
            && let Some(fault) = state.faults.scheduled_for_reply(&target, reply)
        {
            decision.kind = Some(fault.kind);
            element = fault.element;
        }
        state.strike(decision.kind, element, result)
    }

    /// Runs a request and expects a bulk string or nil.
    async fn optional_bulk(&self, request: Request<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        match self.request(request).await? {
            Reply::Bulk(bytes) => Ok(Some(bytes)),
            Reply::Nil => Ok(None),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }

    /// Runs a request and expects a non-negative integer.
    async fn count(&self, request: Request<'_>) -> Result<u64, StoreError> {
        match self.request(request).await? {
            Reply::Int(number) => {
                u64::try_from(number).map_err(|_| StoreError::UnexpectedReply(number.to_string()))
            }
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }
}

impl State {
    /// Applies the fault decided for a request whose effect already happened.
    fn strike(
        &mut self,
        kind: Option<FaultKind>,
        element: Option<usize>,
        mut result: Result<Reply, StoreError>,
    ) -> (Result<Reply, StoreError>, Option<Duration>) {
        match kind {
            Some(FaultKind::ErrorAfterEffect) => {
                self.faults.record(FaultKind::ErrorAfterEffect);
                (Err(injected(FaultKind::ErrorAfterEffect)), None)
            }
            Some(FaultKind::SlowReply) => {
                self.faults.record(FaultKind::SlowReply);
                (result, Some(self.faults.slow_delay()))
            }
            Some(kind) if kind.is_reply_fault() => {
                if let Ok(reply) = &mut result
                    && self.faults.corrupt(kind, reply, element)
                {
                    self.faults.record(kind);
                }
                (result, None)
            }
            _ => (result, None),
        }
    }

    /// Drops live subscriptions when the decision says so, counting it only if any ended.
    fn apply_subscriber_drop(&mut self, decision: Decision) {
        if decision.drop_subscribers && self.core.pubsub.drop_all() > 0 {
            self.faults.record(FaultKind::SubscriberDrop);
        }
    }
}

/// Makes an error element anywhere in a reply the error of the whole request, as the
/// `redis` crate under `RedisStore` does (`Value::extract_error`), so the service meets
/// one behaviour in production and in the simulation.
fn lift_nested_error(reply: Reply) -> Result<Reply, StoreError> {
    match first_error(&reply) {
        Some(text) => Err(StoreError::Server(text.to_owned())),
        None => Ok(reply),
    }
}

/// The first error element of a reply, depth first.
fn first_error(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Error(text) => Some(text),
        Reply::Array(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

/// The text of every element of an array of bulk strings.
fn texts(reply: &Reply) -> Result<Vec<String>, StoreError> {
    let Reply::Array(items) = reply else {
        return Err(StoreError::UnexpectedReply(reply.to_string()));
    };
    items
        .iter()
        .map(|item| match item {
            Reply::Bulk(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        })
        .collect()
}

#[async_trait]
impl Store for FakeRedis {
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let keys = keys.iter().map(|key| key.as_bytes().to_vec()).collect();
        let args = args.iter().map(|arg| arg.as_bytes().to_vec()).collect();
        self.request(Request::Script { script, keys, args }).await
    }

    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let ttl = ttl_ms.to_string();
        match self
            .request(command(&["SET", key, value, "NX", "PX", &ttl]))
            .await?
        {
            Reply::Status(_) => Ok(true),
            Reply::Nil => Ok(false),
            other => Err(StoreError::UnexpectedReply(other.to_string())),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.optional_bulk(command(&["GET", key])).await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.optional_bulk(command(&["HGET", key, field])).await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        texts(&self.request(command(&["SMEMBERS", key])).await?)
    }

    async fn scard(&self, key: &str) -> Result<u64, StoreError> {
        self.count(command(&["SCARD", key])).await
    }

    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let (cursor, count) = (cursor.to_string(), count.to_string());
        let request = command(&["SCAN", &cursor, "MATCH", pattern, "COUNT", &count]);
        let reply = self.request(request).await?;
        let unexpected = || StoreError::UnexpectedReply(reply.to_string());
        let Reply::Array(parts) = &reply else {
            return Err(unexpected());
        };
        let [Reply::Bulk(next), page] = parts.as_slice() else {
            return Err(unexpected());
        };
        let next = std::str::from_utf8(next)
            .ok()
            .and_then(|text| text.parse().ok());
        Ok((next.ok_or_else(unexpected)?, texts(page)?))
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError> {
        let args = vec![
            b"PUBLISH".to_vec(),
            channel.as_bytes().to_vec(),
            payload.to_vec(),
        ];
        self.count(Request::Command(args)).await
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError> {
        let (result, delay) = {
            let mut state = self.lock();
            state.commands_executed += 1;
            let decision = state.faults.decide(false);
            state.apply_subscriber_drop(decision);
            match decision.kind {
                Some(FaultKind::ErrorBeforeEffect) => {
                    state.faults.record(FaultKind::ErrorBeforeEffect);
                    (Err(injected(FaultKind::ErrorBeforeEffect)), None)
                }
                Some(FaultKind::ErrorAfterEffect) => {
                    // Subscribed, but the confirmation is lost: the client end is dropped.
                    drop(state.core.pubsub.psubscribe(pattern.as_bytes()));
                    state.faults.record(FaultKind::ErrorAfterEffect);
                    (Err(injected(FaultKind::ErrorAfterEffect)), None)
                }
                Some(FaultKind::SlowReply) => {
                    state.faults.record(FaultKind::SlowReply);
                    let delay = state.faults.slow_delay();
                    (
                        Ok(state.core.pubsub.psubscribe(pattern.as_bytes())),
                        Some(delay),
                    )
                }
                _ => (Ok(state.core.pubsub.psubscribe(pattern.as_bytes())), None),
            }
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        result.map(|subscription| Box::new(subscription) as Box<dyn Subscription>)
    }
}
