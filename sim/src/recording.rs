//! Wrappers around a server instance's seams that record structured events for the HTML
//! timeline: every Redis call (script or command) with its reply, PUBLISH and each pub/sub
//! message delivered, and every allocation with its answer. They are installed only when
//! the run records structure, so a campaign runs the bare seams.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use match_server::allocator::{Allocation, AllocationError, Allocator};
use match_server::scripts::Script;
use match_server::store::{PubSubMessage, Reply, Store, StoreError, Subscription};
use uuid::Uuid;

use crate::flow::{Flow, FlowKind, Lane, Reply as FlowReply, uuids_in};
use crate::seams::sim_elapsed_ms;
use crate::trace::TraceLog;

/// The store `host` uses: `store` itself, or a recording wrapper when `log` records
/// structure.
pub fn store(store: Arc<dyn Store>, host: &str, log: &TraceLog) -> Arc<dyn Store> {
    if !log.is_structured() {
        return store;
    }
    Arc::new(RecordingStore {
        inner: store,
        host: host.to_owned(),
        log: log.clone(),
    })
}

/// The allocator `host` uses: `allocator` itself, or a recording wrapper when `log` records
/// structure.
pub fn allocator(allocator: Arc<dyn Allocator>, host: &str, log: &TraceLog) -> Arc<dyn Allocator> {
    if !log.is_structured() {
        return allocator;
    }
    Arc::new(RecordingAllocator {
        inner: allocator,
        host: host.to_owned(),
        log: log.clone(),
    })
}

/// A [`Store`] that records each call as an arrow from its server to Redis.
struct RecordingStore {
    /// The real (fake) store.
    inner: Arc<dyn Store>,
    /// The server instance it serves.
    host: String,
    /// Where the events go.
    log: TraceLog,
}

impl RecordingStore {
    /// Runs `call`, recording it as `kind` with `text`, and its reply as `show` renders it.
    async fn call<T>(
        &self,
        kind: FlowKind,
        text: String,
        call: impl Future<Output = Result<T, StoreError>>,
        show: impl FnOnce(&T) -> String,
    ) -> Result<T, StoreError> {
        let index = self.log.flow(|| Flow {
            at_ms: sim_elapsed_ms(),
            kind,
            from: Lane::Server(self.host.clone()),
            to: Some(Lane::Redis),
            ids: uuids_in(&text),
            text,
            reply: None,
        });
        let result = call.await;
        self.log.answer(index, || {
            let (text, error) = match &result {
                Ok(value) => (show(value), false),
                Err(error) => (error.to_string(), true),
            };
            FlowReply {
                at_ms: sim_elapsed_ms(),
                text,
                error,
            }
        });
        result
    }

    fn command(&self, words: &[&str]) -> String {
        words.join(" ")
    }
}

/// A reply's text, bounded.
fn show_reply(reply: &Reply) -> String {
    reply.to_string()
}

fn show_bytes(value: &Option<Vec<u8>>) -> String {
    value.as_ref().map_or_else(
        || "nil".to_owned(),
        |bytes| format!("{:?}", String::from_utf8_lossy(bytes)),
    )
}

#[async_trait]
impl Store for RecordingStore {
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let text = format!(
            "EVALSHA {} keys=[{}] args=[{}]",
            script.name,
            keys.join(" "),
            args.join(" ")
        );
        let call = self.inner.eval(script, keys, args);
        self.call(FlowKind::Script, text, call, show_reply).await
    }

    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let text = self.command(&["SET", key, value, "NX PX", &ttl_ms.to_string()]);
        let call = self.inner.set_nx_px(key, value, ttl_ms);
        self.call(FlowKind::Command, text, call, |set| {
            if *set { "OK" } else { "nil" }.to_owned()
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let text = self.command(&["GET", key]);
        self.call(FlowKind::Command, text, self.inner.get(key), show_bytes)
            .await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let text = self.command(&["HGET", key, field]);
        let call = self.inner.hget(key, field);
        self.call(FlowKind::Command, text, call, show_bytes).await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let text = self.command(&["SMEMBERS", key]);
        let call = self.inner.smembers(key);
        self.call(FlowKind::Command, text, call, |members| {
            format!("[{}]", members.join(", "))
        })
        .await
    }

    async fn scard(&self, key: &str) -> Result<u64, StoreError> {
        let text = self.command(&["SCARD", key]);
        let call = self.inner.scard(key);
        self.call(FlowKind::Command, text, call, u64::to_string)
            .await
    }

    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let (cursor_text, count_text) = (cursor.to_string(), count.to_string());
        let text = self.command(&["SCAN", &cursor_text, "MATCH", pattern, "COUNT", &count_text]);
        let call = self.inner.scan(cursor, pattern, count);
        self.call(FlowKind::Command, text, call, |(next, keys)| {
            format!("cursor {next}: [{}]", keys.join(", "))
        })
        .await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError> {
        let text = format!("PUBLISH {channel} {}", String::from_utf8_lossy(payload));
        let call = self.inner.publish(channel, payload);
        self.call(FlowKind::Publish, text, call, |receivers| {
            format!("{receivers} receivers")
        })
        .await
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError> {
        let text = self.command(&["PSUBSCRIBE", pattern]);
        let call = self.inner.psubscribe(pattern);
        let subscription = self
            .call(FlowKind::Command, text, call, |_| "subscribed".to_owned())
            .await?;
        Ok(Box::new(RecordingSubscription {
            inner: subscription,
            host: self.host.clone(),
            log: self.log.clone(),
        }))
    }
}

/// A subscription that records each delivered message as an arrow from Redis.
struct RecordingSubscription {
    /// The real subscription.
    inner: Box<dyn Subscription>,
    /// The server instance it delivers to.
    host: String,
    /// Where the events go.
    log: TraceLog,
}

#[async_trait]
impl Subscription for RecordingSubscription {
    async fn next_message(&mut self) -> Option<PubSubMessage> {
        let message = self.inner.next_message().await;
        let text = match &message {
            Some(message) => format!(
                "notice on {}: {}",
                message.channel,
                String::from_utf8_lossy(&message.payload)
            ),
            None => "subscription ended (connection dropped)".to_owned(),
        };
        let kind = if message.is_some() {
            FlowKind::Notice
        } else {
            FlowKind::Fault
        };
        self.log.flow(|| Flow {
            at_ms: sim_elapsed_ms(),
            kind,
            from: Lane::Redis,
            to: Some(Lane::Server(self.host.clone())),
            ids: uuids_in(&text),
            text,
            reply: None,
        });
        message
    }
}

/// An [`Allocator`] that records each allocation as an arrow to the allocator lane.
struct RecordingAllocator {
    /// The real (fake) allocator.
    inner: Arc<dyn Allocator>,
    /// The server instance it serves.
    host: String,
    /// Where the events go.
    log: TraceLog,
}

#[async_trait]
impl Allocator for RecordingAllocator {
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError> {
        let index = self.log.flow(|| {
            let names: Vec<String> = players.iter().map(Uuid::to_string).collect();
            Flow {
                at_ms: sim_elapsed_ms(),
                kind: FlowKind::Allocate,
                from: Lane::Server(self.host.clone()),
                to: Some(Lane::Allocator),
                text: format!("POST /session/create players=[{}]", names.join(", ")),
                ids: players.to_vec(),
                reply: None,
            }
        });
        let result = self.inner.allocate(players).await;
        self.log.answer(index, || {
            let (text, error) = match &result {
                Ok(allocation) => (
                    format!(
                        "session {} at {}",
                        allocation.session_id, allocation.server_address
                    ),
                    false,
                ),
                Err(error) => (error.to_string(), true),
            };
            FlowReply {
                at_ms: sim_elapsed_ms(),
                text,
                error,
            }
        });
        result
    }
}
