//! The registry of game servers in Redis: find an idle one, reserve it, ask it for a session.

use async_trait::async_trait;
use serde::Deserialize;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Allocation, AllocationError, Allocator, SessionCreator, is_host_port};
use crate::clock::Ids;
use crate::keys::Keys;
use crate::limits;
use crate::store::{Store, StoreError};

/// A registry entry as game servers write it.
#[derive(Deserialize)]
struct RegistryEntry {
    address: String,
    status: String,
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
    /// Asks the reserved game server for a session.
    sessions: SessionCreator,
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
            sessions: SessionCreator::new(),
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
}

/// `keys` starting at `start` and wrapping around.
fn rotated(keys: &[String], start: usize) -> Vec<String> {
    let start = start.min(keys.len());
    let (head, tail) = keys.split_at(start);
    tail.iter().chain(head).cloned().collect()
}

#[async_trait]
impl Allocator for RegistryAllocator {
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError> {
        let address = self.reserve_idle_server().await?;
        self.sessions.create(&address, players).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
