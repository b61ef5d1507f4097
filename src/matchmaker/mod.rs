//! The matchmaker: every Redis effect of the service, and the background tasks that form
//! matches, sweep stale state and renew leases.
//!
//! - [`effects`]: what sessions ask for (enqueue, leave, loading_complete, resync).
//! - [`rounds`]: match attempts under the per-mode lock.
//! - [`allocation`]: game server allocation for a fully loaded session.
//! - [`sweep`]: stale loading sessions, dead entries, lease renewal.
//! - [`player_lease`]: one live session per player across instances.
//! - [`replies`], [`entry`]: total parsers of script replies and player entries.
//! - [`lock`]: the distributed lock.

pub mod allocation;
pub mod effects;
pub mod entry;
pub mod lock;
pub mod player_lease;
pub mod replies;
pub mod rounds;
pub mod sweep;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::allocator::Allocator;
use crate::auth::Verifier;
use crate::clock::{Clock, Ids};
use crate::config::{AuthMode, Settings};
use crate::keys::Keys;
use crate::metrics::{Family, Metrics};
use crate::notify::{Publisher, Router};
use crate::probe::{Fact, Probe};
use crate::scripts::Script;
use crate::store::{Reply, Store, StoreError};

/// The seams an instance runs on: production passes Redis, the system clock, random ids,
/// the registry allocator and no probe; the simulation passes its fakes and its oracle's probe.
#[derive(Clone)]
pub struct Deps {
    /// The Redis seam.
    pub store: Arc<dyn Store>,
    /// Unix time.
    pub clock: Arc<dyn Clock>,
    /// Fresh identifiers.
    pub ids: Arc<dyn Ids>,
    /// Game server allocation.
    pub allocator: Arc<dyn Allocator>,
    /// Where the service's decisions are reported: [`crate::probe::NoProbe`] in
    /// production, the oracle's probe in the simulation.
    pub probe: Arc<dyn Probe>,
}

/// One instance's matchmaking state, shared by its sessions and background tasks.
pub struct Matchmaker {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Key names.
    pub keys: Keys,
    /// The seams.
    pub deps: Deps,
    /// This instance's metrics.
    pub metrics: Arc<Metrics>,
    /// Local sessions, for notice delivery and lease renewal.
    pub router: Arc<Router>,
    /// Publishes notices to every instance.
    pub publisher: Publisher,
    /// Checks player tokens at the upgrade; `None` in dev mode (no token asked for).
    pub verifier: Option<Verifier>,
    /// Modes whose queue just reached a full group: attempt a match now.
    triggers: mpsc::Sender<String>,
    /// Background work (allocations) that shutdown waits for.
    pub tasks: TaskTracker,
}

/// Why an effect gave no usable outcome after its retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// Redis failed or answered garbage; the effect may or may not have happened.
    #[error("redis unavailable or replied badly")]
    Unavailable,
    /// The unix time could not be read; nothing was sent.
    #[error("clock unavailable")]
    Clock,
}

/// Capacity of the trigger queue; a full queue just means a round is already due.
const TRIGGER_CAPACITY: usize = 64;

impl Matchmaker {
    /// Builds the matchmaker and the receiver its match loop consumes.
    pub fn new(settings: Arc<Settings>, deps: Deps) -> (Arc<Self>, mpsc::Receiver<String>) {
        let keys = Keys::new(&settings.key_prefix);
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher::new(deps.store.clone(), keys.clone(), metrics.clone());
        let (triggers, trigger_rx) = mpsc::channel(TRIGGER_CAPACITY);
        let verifier = match settings.auth.mode {
            AuthMode::Required => Some(Verifier::new(settings.auth.secret.as_deref())),
            AuthMode::Dev => None,
        };
        let matchmaker = Self {
            settings,
            keys,
            deps,
            metrics,
            router: Arc::new(Router::default()),
            publisher,
            verifier,
            triggers,
            tasks: TaskTracker::new(),
        };
        (Arc::new(matchmaker), trigger_rx)
    }

    /// The unix time, or `EffectError::Clock` after logging and counting the failure.
    pub fn now_ms(&self, context: &'static str) -> Result<u64, EffectError> {
        self.deps.clock.now_unix_ms().map_err(|error| {
            self.metrics.incr(Family::ClockErrors, "");
            tracing::error!(%error, context, "cannot read the unix time; operation skipped");
            EffectError::Clock
        })
    }

    /// Runs a script, counting and logging a failure with its context.
    pub async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, StoreError> {
        let result = self.deps.store.eval(script, keys, args).await;
        if let Err(error) = &result {
            self.metrics.incr(Family::StoreErrors, script.name);
            tracing::warn!(%error, script = script.name, ?keys, "script failed");
        }
        result
    }

    /// Counts and logs a reply that did not parse.
    pub fn bad_reply(&self, error: &replies::ReplyError) {
        self.metrics.incr(Family::BadScriptReplies, error.script);
        tracing::error!(script = error.script, reason = %error.reason, reply = %error.reply, "bad script reply");
    }

    /// Asks the match loop for an immediate attempt on `mode`.
    pub fn trigger_match(&self, mode: &str) {
        // A full queue means attempts are already pending; the periodic tick is the net.
        let _ = self.triggers.try_send(mode.to_owned());
    }

    /// Players per match of `mode`, or `None` for an unknown mode.
    pub fn players_per_match(&self, mode: &str) -> Option<usize> {
        self.settings
            .mode(mode)
            .and_then(|m| usize::try_from(m.players).ok())
    }

    /// Reports a decision to the probe seam.
    pub fn record(&self, fact: Fact) {
        self.deps.probe.record(fact);
    }

    /// A fresh id from the seam.
    pub fn new_id(&self) -> Uuid {
        self.deps.ids.new_id()
    }
}
