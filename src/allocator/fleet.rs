//! The fleet index in Redis: a record per registered server and a set of the servers with
//! a free slot, claimed from in O(1) and kept in step with the `dedicated_server:<name>`
//! registrations by a bounded sweep (see docs/design.md, "The fleet index").

use std::sync::Arc;

use uuid::Uuid;

use super::registration::read_report;
use crate::clock::Clock;
use crate::keys::Keys;
use crate::limits;
use crate::scripts::fleet_claim::{ClaimReply, FleetClaim};
use crate::scripts::fleet_release::{FleetRelease, ReleaseReply};
use crate::scripts::fleet_sync::{FleetSync, ServerReport, SyncReply};
use crate::scripts::{CallError, ScriptRunner};
use crate::store::{Store, StoreError};

/// Why an index operation gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// Redis failed, or a script's reply was unusable.
    #[error("fleet index unavailable: {0:?}")]
    Script(CallError),
    /// A plain command failed.
    #[error("fleet index unavailable: {0}")]
    Store(#[from] StoreError),
    /// The clock seam failed.
    #[error("cannot read the unix time")]
    Clock,
}

/// One instance's handle on the fleet index.
pub struct FleetIndex {
    /// Where the index and the registry live.
    store: Arc<dyn Store>,
    /// Runs the index scripts.
    scripts: ScriptRunner,
    /// `now_ms` for the scripts (scripts never read TIME).
    clock: Arc<dyn Clock>,
    /// Index key names.
    keys: Keys,
    /// `dedicated_server:` by default.
    registry_prefix: String,
    /// How long a claim holds its slot (`allocator.claim_ttl_ms`).
    claim_ttl_ms: u64,
    /// Where the sweep of the registry goes on (a SCAN cursor; 0 starts a new round).
    sweep_cursor: std::sync::Mutex<u64>,
}

/// What one sweep step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepStep {
    /// Registrations read.
    pub servers: usize,
    /// Whether this step ended a full round over the registry.
    pub round_done: bool,
    /// Servers with a free slot afterwards.
    pub free_servers: u64,
}

impl FleetIndex {
    /// The index of the registry under `registry_prefix`.
    pub fn new(
        store: Arc<dyn Store>,
        scripts: ScriptRunner,
        clock: Arc<dyn Clock>,
        keys: Keys,
        registry_prefix: String,
        claim_ttl_ms: u64,
    ) -> Self {
        Self {
            store,
            scripts,
            clock,
            keys,
            registry_prefix,
            claim_ttl_ms,
            sweep_cursor: std::sync::Mutex::new(0),
        }
    }

    fn now_ms(&self) -> Result<u64, FleetError> {
        self.clock.now_unix_ms().map_err(|_| FleetError::Clock)
    }

    /// Claims a slot of some free server for the allocation `token` (one EVAL).
    pub async fn claim(&self, token: Uuid) -> Result<ClaimReply, FleetError> {
        let call = FleetClaim {
            token,
            now_ms: self.now_ms()?,
            claim_ttl_ms: self.claim_ttl_ms,
        };
        self.scripts.call(&call).await.map_err(FleetError::Script)
    }

    /// Gives back the slot claimed with `token` (idempotent; one EVAL).
    pub async fn release(&self, token: Uuid) -> Result<ReleaseReply, FleetError> {
        let call = FleetRelease { token };
        self.scripts.call(&call).await.map_err(FleetError::Script)
    }

    /// Writes what the registrations in `reports` say into the index (one EVAL).
    pub async fn sync(&self, reports: &[ServerReport]) -> Result<SyncReply, FleetError> {
        let call = FleetSync {
            now_ms: self.now_ms()?,
            reports,
        };
        self.scripts.call(&call).await.map_err(FleetError::Script)
    }

    /// The registration of `name` as it reads now (one GET).
    pub async fn read(&self, name: &str) -> Result<ServerReport, FleetError> {
        Ok(read_report(self.store.as_ref(), &self.registry_prefix, name).await?)
    }

    /// How many servers have a free slot (one SCARD): for metrics and operators.
    pub async fn free_servers(&self) -> Result<u64, FleetError> {
        Ok(self.store.scard(&self.keys.fleet_free()).await?)
    }

    /// One bounded step of the sweep that follows registrations the index has not been
    /// told about (legacy servers flipping their own `status`, new servers): one SCAN page
    /// of at most [`limits::REGISTRY_SWEEP_PAGE_KEYS`] keys, a GET per registration found
    /// on it and one sync. Its cost does not depend on the fleet's size; a full round over
    /// the registry takes (keys in the database / page) steps.
    pub async fn sweep_step(&self) -> Result<SweepStep, FleetError> {
        let cursor = self.sweep_cursor.lock().map(|c| *c).unwrap_or(0);
        let pattern = format!("{}*", self.registry_prefix);
        let (next, keys) = self
            .store
            .scan(cursor, &pattern, limits::REGISTRY_SWEEP_PAGE_KEYS)
            .await?;
        let names: std::collections::BTreeSet<&str> = keys
            .iter()
            .filter_map(|key| key.strip_prefix(&self.registry_prefix))
            .filter(|name| !name.is_empty())
            .collect();
        let mut reports = Vec::with_capacity(names.len());
        for name in names {
            reports.push(self.read(name).await?);
        }
        let free_servers = if reports.is_empty() {
            self.free_servers().await?
        } else {
            self.sync(&reports).await?.free_servers
        };
        if let Ok(mut at) = self.sweep_cursor.lock() {
            *at = next;
        }
        Ok(SweepStep {
            servers: reports.len(),
            round_done: next == 0,
            free_servers,
        })
    }
}
