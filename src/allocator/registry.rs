//! The production allocator: claim a free server from the fleet index, check its
//! registration, ask it for a session; give the slot back when it refuses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use uuid::Uuid;

use super::fleet::{FleetError, FleetIndex, SweepStep};
use super::{Allocation, AllocationError, Allocator, SessionCreator};
use crate::check::Checks;
use crate::clock::{Clock, Ids};
use crate::keys::Keys;
use crate::limits;
use crate::metrics::Metrics;
use crate::probe::NoProbe;
use crate::scripts::ScriptRunner;
use crate::scripts::fleet_claim::ClaimReply;
use crate::store::{Store, StoreError};

/// The production allocator: the fleet index in Redis, game servers over HTTP.
pub struct RegistryAllocator {
    /// Claim tokens.
    ids: Arc<dyn Ids>,
    /// The fleet index and the registry it follows.
    fleet: FleetIndex,
    /// Asks the claimed game server for a session.
    sessions: SessionCreator,
    /// Pause between two sweep steps of [`Self::follow_registry`].
    sweep_interval: Duration,
    /// When an allocation that found no free server last ran a sweep step itself.
    last_inline_sweep: std::sync::Mutex<Option<Instant>>,
}

/// What a claimed server's registration said.
enum Checked {
    /// Registered, idle, at the indexed address: go ahead.
    Usable(String),
    /// Gone, busy or moved: the claim was given back and the index corrected.
    Changed,
}

impl RegistryAllocator {
    /// An allocator on the registry and fleet index in `store`.
    pub fn new(
        store: Arc<dyn Store>,
        ids: Arc<dyn Ids>,
        clock: Arc<dyn Clock>,
        keys: Keys,
        settings: &crate::config::AllocatorSettings,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let checks = Checks::new(metrics.clone(), Arc::new(NoProbe));
        let scripts = ScriptRunner::new(store.clone(), keys.clone(), metrics, checks);
        Self::with_scripts(store, ids, clock, keys, settings, scripts)
    }

    /// [`Self::new`] with the caller's script runner, so that the index scripts' failures
    /// and broken relations reach the instance's metrics and probe (the simulation's oracle).
    pub fn with_scripts(
        store: Arc<dyn Store>,
        ids: Arc<dyn Ids>,
        clock: Arc<dyn Clock>,
        keys: Keys,
        settings: &crate::config::AllocatorSettings,
        scripts: ScriptRunner,
    ) -> Self {
        let fleet = FleetIndex::new(
            store,
            scripts,
            clock,
            keys,
            settings.registry_prefix.clone(),
            settings.claim_ttl_ms,
        );
        Self {
            ids,
            fleet,
            sessions: SessionCreator::new(),
            sweep_interval: Duration::from_millis(settings.sweep_interval_ms),
            last_inline_sweep: std::sync::Mutex::new(None),
        }
    }

    /// The fleet index this allocator claims from.
    pub fn fleet(&self) -> &FleetIndex {
        &self.fleet
    }

    /// How many servers have a free slot (one SCARD), for metrics.
    pub async fn free_servers(&self) -> Result<u64, FleetError> {
        self.fleet.free_servers().await
    }

    /// Follows the registry forever: one bounded sweep step every
    /// `allocator.sweep_interval_ms`, so registrations the index was not told about
    /// (legacy servers that set their own `status`) are picked up. Spawn it once per instance.
    pub async fn follow_registry(&self) {
        loop {
            if let Err(error) = self.fleet.sweep_step().await {
                tracing::warn!(%error, "fleet sweep step failed; next step retries");
            }
            tokio::time::sleep(self.sweep_interval).await;
        }
    }

    /// Runs one sweep step when no free server was found, at most once per sweep interval
    /// per instance, so a server that just became idle is found without waiting for the
    /// background sweep, and exhaustion costs no more than the sweep does.
    async fn inline_sweep(&self) -> Option<SweepStep> {
        let due = self.last_inline_sweep.lock().is_ok_and(|mut last| {
            let due = last.is_none_or(|at| at.elapsed() >= self.sweep_interval);
            if due {
                *last = Some(Instant::now());
            }
            due
        });
        if !due {
            return None;
        }
        match self.fleet.sweep_step().await {
            Ok(step) => Some(step),
            Err(error) => {
                tracing::warn!(%error, "inline fleet sweep step failed");
                None
            }
        }
    }

    /// Claims a free server whose registration still says it is idle at the indexed
    /// address; returns the claim token and the address.
    async fn claim_server(&self) -> Result<(Uuid, String), AllocationError> {
        let mut swept = false;
        for _ in 0..limits::MAX_CLAIM_ATTEMPTS {
            let token = self.ids.new_id();
            match self.fleet.claim(token).await.map_err(store_error)? {
                ClaimReply::Claimed { name, address, .. } => {
                    if let Checked::Usable(address) = self.check(token, &name, &address).await? {
                        return Ok((token, address));
                    }
                }
                ClaimReply::None { .. } => {
                    if swept || self.inline_sweep().await.is_none_or(|s| s.servers == 0) {
                        return Err(AllocationError::NoIdleServer);
                    }
                    swept = true;
                }
            }
        }
        Err(AllocationError::NoIdleServer)
    }

    /// Reads the claimed server's registration (one GET): a server that left, turned busy
    /// or moved since the index last saw it is given back and corrected in the index.
    async fn check(
        &self,
        token: Uuid,
        name: &str,
        indexed_address: &str,
    ) -> Result<Checked, AllocationError> {
        let report = self.fleet.read(name).await.map_err(store_error)?;
        let usable = report
            .registration
            .as_ref()
            .is_some_and(|r| r.status == "idle" && r.address == indexed_address);
        if usable {
            return Ok(Checked::Usable(indexed_address.to_owned()));
        }
        tracing::info!(
            server = name,
            "claimed server's registration changed; claiming another"
        );
        self.fleet.release(token).await.map_err(store_error)?;
        self.fleet.sync(&[report]).await.map_err(store_error)?;
        Ok(Checked::Changed)
    }
}

/// A fleet index failure as the allocation error players see (service unavailable).
fn store_error(error: FleetError) -> AllocationError {
    match error {
        FleetError::Store(error) => AllocationError::Store(error),
        other => AllocationError::Store(StoreError::Unavailable(other.to_string())),
    }
}

#[async_trait]
impl Allocator for RegistryAllocator {
    async fn allocate(&self, players: &[Uuid]) -> Result<Allocation, AllocationError> {
        // The claim is not given back when the game server fails: whether it refused, timed
        // out or garbled its answer, the claim keeps it out of the next allocations until
        // the claim TTL, then its own registration decides (the quarantine the older
        // per-server reservation gave, so a failing server does not take every match).
        let (_token, address) = self.claim_server().await?;
        self.sessions.create(&address, players).await
    }
}
