//! A `Store` that records every command an instance sends before passing it on to Redis,
//! so a test can show that something (a refused upgrade) sent no command at all.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError, Subscription};

/// The recorded commands, one line each: the command, its keys and its arguments.
#[derive(Clone, Default)]
pub struct Recorder {
    /// Shared by the store that records and the test that reads.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, line: String) {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(line);
    }

    /// Every command recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The recorded commands whose keys or arguments contain `text`.
    pub fn mentioning(&self, text: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.contains(text))
            .collect()
    }
}

/// Records, then delegates to `inner`.
pub struct RecordingStore {
    /// The real store.
    pub inner: Arc<dyn Store>,
    /// Where commands are recorded.
    pub recorder: Recorder,
}

#[async_trait]
impl Store for RecordingStore {
    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        self.recorder
            .push(format!("EVAL {} {keys:?} {args:?}", script.name));
        self.inner.eval(script, keys, args).await
    }

    async fn set_nx_px(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.recorder
            .push(format!("SET {key} {value} NX PX {ttl_ms}"));
        self.inner.set_nx_px(key, value, ttl_ms).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.recorder.push(format!("GET {key}"));
        self.inner.get(key).await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.recorder.push(format!("HGET {key} {field}"));
        self.inner.hget(key, field).await
    }

    async fn smembers(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.recorder.push(format!("SMEMBERS {key}"));
        self.inner.smembers(key).await
    }

    async fn scard(&self, key: &str) -> Result<u64, StoreError> {
        self.recorder.push(format!("SCARD {key}"));
        self.inner.scard(key).await
    }

    async fn scan(
        &self,
        cursor: u64,
        pattern: &str,
        count: u32,
    ) -> Result<(u64, Vec<String>), StoreError> {
        self.recorder
            .push(format!("SCAN {cursor} MATCH {pattern} COUNT {count}"));
        self.inner.scan(cursor, pattern, count).await
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<u64, StoreError> {
        self.recorder.push(format!(
            "PUBLISH {channel} {}",
            String::from_utf8_lossy(payload)
        ));
        self.inner.publish(channel, payload).await
    }

    async fn psubscribe(&self, pattern: &str) -> Result<Box<dyn Subscription>, StoreError> {
        self.recorder.push(format!("PSUBSCRIBE {pattern}"));
        self.inner.psubscribe(pattern).await
    }
}
