//! The real side of the conformance suite: which redis-server to use, a plain connection
//! that keeps every reply as Redis sent it, snapshots of one key namespace, and pattern
//! subscribers that make PUBLISH counts non-trivial.
//!
//! The server comes from `match-testkit`, as for the integration tests:
//! `MATCH_TEST_REDIS_URL` when set, otherwise one private redis-server per test binary.
//! Every test keeps to its own key namespace and never flushes, so a shared server is fine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::Duration;

use match_server::store::Reply;
use match_server::store::redis_store::{self, server_error_text};
use match_sim::conformance::recorder::{decode_log, recording_source};
use match_sim::conformance::{Data, KeyState, Outcome, Snapshot};
use match_sim::fake_redis::Recorded;
pub use match_testkit::redis_server::redis_url;
use redis::{ConnectionLike, Value};

/// How long one command may take before the suite gives up on the server.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Keys asked for per SCAN page while taking a snapshot.
const SNAPSHOT_SCAN_COUNT: &str = "1000";

/// A connection to the real Redis that reports replies exactly as sent.
pub struct RealRedis {
    /// One plain RESP2 connection; commands run one at a time.
    connection: redis::Connection,
}

impl RealRedis {
    /// Connects to the suite's Redis and checks that it is a Redis 7.
    pub fn connect() -> Self {
        let url = redis_url();
        let client = redis::Client::open(url.as_str())
            .unwrap_or_else(|error| panic!("bad Redis URL {url}: {error}"));
        let connection = client
            .get_connection()
            .unwrap_or_else(|error| panic!("cannot connect to Redis at {url}: {error}"));
        connection
            .set_read_timeout(Some(COMMAND_TIMEOUT))
            .unwrap_or_else(|error| panic!("cannot set a read timeout: {error}"));
        let mut real = Self { connection };
        let info = real.run(&[b"INFO".to_vec(), b"server".to_vec()]);
        let version = match &info {
            Ok(Reply::Bulk(text)) => String::from_utf8_lossy(text)
                .lines()
                .find_map(|line| line.strip_prefix("redis_version:").map(str::to_owned)),
            _ => None,
        };
        assert!(
            version.as_deref().is_some_and(|v| v.starts_with("7.")),
            "the fake imitates Redis 7, but {url} runs {version:?}"
        );
        real
    }

    /// Runs one command; a top-level error reply is `Err(text)`, nested ones stay
    /// [`Reply::Error`] elements. A broken connection fails the test.
    pub fn run(&mut self, argv: &[Vec<u8>]) -> Outcome {
        let mut command = redis::Cmd::new();
        for arg in argv {
            command.arg(arg.as_slice());
        }
        match self.connection.req_command(&command) {
            Ok(Value::ServerError(error)) => Err(server_error_text(&error)),
            Ok(value) => Ok(to_reply(value)),
            Err(error) => match (error.code(), error.detail()) {
                (Some(code), Some(detail)) => Err(format!("{code} {detail}")),
                (Some(code), None) => Err(code.to_owned()),
                _ => panic!("the connection to Redis failed on {argv:?}: {error}"),
            },
        }
    }

    /// Runs `EVAL source numkeys ...` with the recorder in front of the source (see
    /// `match_sim::conformance::recorder`), logging to the list at `log_key`; returns the
    /// outcome and the choices Redis made inside the script, in call order.
    pub fn run_recorded(&mut self, argv: &[Vec<u8>], log_key: &[u8]) -> (Outcome, Vec<Recorded>) {
        let mut recording = argv.to_vec();
        if let Some(source) = recording.get_mut(1) {
            *source = recording_source(&String::from_utf8_lossy(source), log_key).into_bytes();
        }
        let outcome = self.run(&recording);
        let log = self.run(&[
            b"LRANGE".to_vec(),
            log_key.to_vec(),
            b"0".to_vec(),
            b"-1".to_vec(),
        ]);
        let _ = self.run(&[b"DEL".to_vec(), log_key.to_vec()]);
        let items: Vec<Vec<u8>> = match log {
            Ok(Reply::Array(items)) => items.into_iter().map(bytes_of).collect(),
            other => panic!("the recorder's log could not be read: {other:?}"),
        };
        let recorded = decode_log(&items)
            .unwrap_or_else(|error| panic!("the recorder's log is damaged: {error}"));
        (outcome, recorded)
    }

    /// [`run`](Self::run) for text arguments.
    pub fn cmd(&mut self, args: &[&str]) -> Outcome {
        let argv: Vec<Vec<u8>> = args.iter().map(|arg| arg.as_bytes().to_vec()).collect();
        self.run(&argv)
    }

    /// Every key under `namespace` with its value and TTL.
    pub fn snapshot(&mut self, namespace: &str) -> Snapshot {
        let mut keys = BTreeMap::new();
        for key in self.keys(namespace) {
            if let Some(state) = self.key_state(&key) {
                keys.insert(key, state);
            }
        }
        Snapshot { keys }
    }

    /// Deletes every key under `namespace`.
    pub fn delete_namespace(&mut self, namespace: &str) {
        let keys: Vec<Vec<u8>> = self.keys(namespace).into_iter().collect();
        for chunk in keys.chunks(100) {
            let mut argv = vec![b"DEL".to_vec()];
            argv.extend(chunk.iter().cloned());
            let _ = self.run(&argv);
        }
    }

    /// Every key whose name starts with `namespace` (which holds no glob character).
    fn keys(&mut self, namespace: &str) -> BTreeSet<Vec<u8>> {
        assert!(
            !namespace.contains(['*', '?', '[', ']', '\\']),
            "namespace {namespace:?} must be a literal glob prefix"
        );
        let pattern = format!("{namespace}*");
        let mut cursor = "0".to_owned();
        let mut keys = BTreeSet::new();
        loop {
            let page = self.cmd(&[
                "SCAN",
                &cursor,
                "MATCH",
                &pattern,
                "COUNT",
                SNAPSHOT_SCAN_COUNT,
            ]);
            let Ok(Reply::Array(parts)) = page else {
                panic!("SCAN failed while taking a snapshot: {page:?}");
            };
            let [Reply::Bulk(next), Reply::Array(found)] = parts.as_slice() else {
                panic!("odd SCAN reply: {parts:?}");
            };
            for key in found {
                if let Reply::Bulk(key) = key {
                    keys.insert(key.clone());
                }
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                return keys;
            }
        }
    }

    /// One key's type, value and TTL; `None` when it vanished meanwhile.
    fn key_state(&mut self, key: &[u8]) -> Option<KeyState> {
        let on = |name: &str| vec![name.as_bytes().to_vec(), key.to_vec()];
        let type_name = match self.run(&on("TYPE")) {
            Ok(Reply::Status(name)) => name,
            other => panic!("TYPE answered {other:?}"),
        };
        let data = match (type_name.as_str(), self.value_of(&type_name, key)) {
            ("none", _) => return None,
            ("string", Ok(Reply::Bulk(bytes))) => Data::String(bytes),
            ("set", Ok(Reply::Array(members))) => {
                Data::Set(members.into_iter().map(bytes_of).collect())
            }
            ("hash", Ok(Reply::Array(flat))) => Data::Hash(
                flat.chunks_exact(2)
                    .map(|pair| (bytes_of(pair[0].clone()), bytes_of(pair[1].clone())))
                    .collect(),
            ),
            (other, _) => Data::Other(other.to_owned()),
        };
        let ttl_ms = match self.run(&on("PTTL")) {
            Ok(Reply::Int(-2)) => return None,
            Ok(Reply::Int(-1)) => None,
            Ok(Reply::Int(ms)) => Some(ms),
            other => panic!("PTTL answered {other:?}"),
        };
        Some(KeyState { data, ttl_ms })
    }

    /// The command that reads a whole value of `type_name`.
    fn value_of(&mut self, type_name: &str, key: &[u8]) -> Outcome {
        let command = match type_name {
            "string" => "GET",
            "set" => "SMEMBERS",
            "hash" => "HGETALL",
            _ => return Ok(Reply::Nil),
        };
        self.run(&[command.as_bytes().to_vec(), key.to_vec()])
    }
}

/// The bytes of a bulk reply (anything else is a broken server and fails the test).
fn bytes_of(reply: Reply) -> Vec<u8> {
    match reply {
        Reply::Bulk(bytes) => bytes,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// `value` as the seam's reply, through the service's own conversion; a RESP3 shape on
/// this RESP2 connection is a broken client and fails the test.
fn to_reply(value: Value) -> Reply {
    assert_resp2(&value);
    redis_store::to_reply(value)
}

/// Fails the test on any value a RESP2 connection cannot carry.
fn assert_resp2(value: &Value) {
    match value {
        Value::Array(items) | Value::Set(items) => items.iter().for_each(assert_resp2),
        Value::Nil
        | Value::Int(_)
        | Value::BulkString(_)
        | Value::SimpleString(_)
        | Value::Okay
        | Value::ServerError(_) => {}
        other => panic!("a RESP2 connection sent a RESP3 value: {other:?}"),
    }
}

/// Subscribes one connection to each of `patterns` and drains what it receives on a
/// thread for the rest of the process, so PUBLISH on the real server counts subscribers
/// the way the fake's [`subscribe_pattern`](match_sim::fake_redis::FakeRedis) ones count.
pub fn subscribe_forever(patterns: &[String]) {
    let url = redis_url();
    let patterns = patterns.to_vec();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let client = redis::Client::open(url.as_str()).expect("Redis URL");
        let mut connection = client.get_connection().expect("subscriber connection");
        let mut pubsub = connection.as_pubsub();
        for pattern in &patterns {
            pubsub.psubscribe(pattern).expect("PSUBSCRIBE");
        }
        let _ = ready_tx.send(());
        while pubsub.get_message().is_ok() {}
    });
    ready_rx
        .recv_timeout(COMMAND_TIMEOUT)
        .expect("the real subscriber did not subscribe");
}
