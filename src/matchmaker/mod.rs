//! The matchmaker: every Redis effect of the service, as services that each own their state.
//!
//! - [`SessionPort`]: the one port a session runs its effects through (enqueue, leave,
//!   loading_complete, resync, its player lease).
//! - [`MatchLoop`]: match rounds (immediate triggers plus a periodic tick), under the
//!   per-mode [`lock`].
//! - [`Allocations`](allocation::Allocations): game server allocation for a fully loaded
//!   session; owns the tasks shutdown waits for.
//! - [`Sweeper`](sweep::Sweeper): stale loading sessions and dead entries.
//! - [`LeaseKeeper`]: the player leases (take, renew, fence, release) and the entries'
//!   leases; owns each lease's fencing deadline.
//! - [`loading_end`]: ending a loading session, for a leaver, the sweep and a failed
//!   allocation alike.
//! - [`entry`]: a player's entry, decoded.
//!
//! The notice router ([`crate::notify::Router`]) owns the local sessions' routes; each
//! session owns its own state and the router reads it through the session's view. The
//! scripts and their typed calls are in [`crate::scripts`].

pub mod allocation;
pub mod entry;
pub mod lease_keeper;
pub mod loading_end;
pub mod lock;
pub mod match_loop;
pub mod session_port;
pub mod sweep;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use self::lease_keeper::LeaseKeeper;
pub use self::match_loop::MatchLoop;
pub use self::session_port::SessionPort;
use crate::allocator::Allocator;
use crate::auth::Verifier;
use crate::check::Checks;
use crate::clock::{Clock, Ids};
use crate::config::{AuthMode, Settings};
use crate::keys::Keys;
use crate::metrics::{Family, Metrics};
use crate::notify::{self, Publisher, Router};
use crate::probe::{Fact, Probe};
use crate::scripts::ScriptRunner;
use crate::store::Store;

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

/// What every service of one instance reads and nobody changes: settings, key names, the
/// seams, the script runner, the notice publisher, metrics and checks.
pub(crate) struct Shared {
    /// Validated settings.
    pub(crate) settings: Arc<Settings>,
    /// Key names.
    pub(crate) keys: Keys,
    /// The seams.
    pub(crate) deps: Deps,
    /// This instance's metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The one path script calls take.
    pub(crate) scripts: ScriptRunner,
    /// Publishes notices to every instance.
    pub(crate) publisher: Publisher,
    /// Where broken relations are reported.
    pub(crate) checks: Checks,
}

impl Shared {
    /// The unix time, or `EffectError::Clock` after logging and counting the failure.
    pub(crate) fn now_ms(&self, context: &'static str) -> Result<u64, EffectError> {
        self.deps.clock.now_unix_ms().map_err(|error| {
            self.metrics.incr(Family::ClockErrors, "");
            tracing::error!(%error, context, "cannot read the unix time; operation skipped");
            EffectError::Clock
        })
    }

    /// Players per match of `mode`, or `None` for an unknown mode.
    pub(crate) fn players_per_match(&self, mode: &str) -> Option<usize> {
        self.settings
            .mode(mode)
            .and_then(|m| usize::try_from(m.players).ok())
    }

    /// Reports a decision to the probe seam.
    pub(crate) fn record(&self, fact: Fact) {
        self.deps.probe.record(fact);
    }

    /// A fresh id from the seam.
    pub(crate) fn new_id(&self) -> Uuid {
        self.deps.ids.new_id()
    }
}

/// One instance's services, assembled: what the HTTP front and the session tasks need.
pub struct Matchmaker {
    /// Settings, seams and the script runner.
    shared: Arc<Shared>,
    /// Local sessions, for shutdown's count.
    router: Arc<Router>,
    /// The port every session of this instance uses.
    port: SessionPort,
    /// Running allocations, which shutdown waits for.
    allocation_tasks: TaskTracker,
    /// Checks player tokens at the upgrade; `None` in dev mode (no token asked for).
    verifier: Option<Verifier>,
}

/// The background tasks of an instance, built with it and started by [`Background::spawn`].
pub struct Background {
    /// Match rounds.
    match_loop: MatchLoop,
    /// Stale loading sessions and dead entries.
    sweeper: sweep::Sweeper,
    /// Lease renewal and fencing.
    leases: Arc<LeaseKeeper>,
    /// Routes pub/sub notices to the local sessions.
    router: Arc<Router>,
    /// Settings and seams, for the subscriber.
    shared: Arc<Shared>,
}

impl Matchmaker {
    /// Builds an instance's services and its background tasks.
    pub fn new(settings: Arc<Settings>, deps: Deps) -> (Self, Background) {
        let keys = Keys::new(&settings.key_prefix);
        let metrics = Arc::new(Metrics::default());
        let checks = Checks::new(metrics.clone(), deps.probe.clone());
        let scripts = ScriptRunner::new(
            deps.store.clone(),
            keys.clone(),
            metrics.clone(),
            checks.clone(),
        );
        let publisher = Publisher::new(deps.store.clone(), keys.clone(), metrics.clone());
        let verifier = match settings.auth.mode {
            AuthMode::Required => Some(Verifier::new(settings.auth.secret.as_deref())),
            AuthMode::Dev => None,
        };
        let shared = Arc::new(Shared {
            settings,
            keys,
            deps,
            metrics,
            scripts,
            publisher,
            checks,
        });
        let router = Arc::new(Router::new(shared.deps.probe.clone()));
        let leases = Arc::new(LeaseKeeper::new(shared.clone(), router.clone()));
        let allocations = allocation::Allocations::new(shared.clone());
        let (match_loop, trigger) = MatchLoop::new(shared.clone());
        let port = SessionPort::new(
            shared.clone(),
            router.clone(),
            leases.clone(),
            allocations.clone(),
            trigger,
        );
        let matchmaker = Self {
            shared: shared.clone(),
            router: router.clone(),
            port,
            allocation_tasks: allocations.tasks(),
            verifier,
        };
        let background = Background {
            match_loop,
            sweeper: sweep::Sweeper::new(shared.clone()),
            leases,
            router,
            shared,
        };
        (matchmaker, background)
    }

    /// The port a new session runs its effects through.
    pub fn session_port(&self) -> SessionPort {
        self.port.clone()
    }

    /// Validated settings.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.shared.settings
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The token verifier; `None` in dev mode.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.verifier.as_ref()
    }

    /// The unix time, or `EffectError::Clock` after logging and counting the failure.
    pub fn now_ms(&self, context: &'static str) -> Result<u64, EffectError> {
        self.shared.now_ms(context)
    }

    /// How many sessions are live on this instance.
    pub fn live_sessions(&self) -> usize {
        self.router.len()
    }

    /// The running allocations, which shutdown closes and waits for.
    pub fn allocation_tasks(&self) -> &TaskTracker {
        &self.allocation_tasks
    }
}

impl Background {
    /// Starts the match loop, the sweeper, the lease keeper and the pub/sub subscriber;
    /// each runs until `stop`.
    pub fn spawn(self, stop: &CancellationToken) -> TaskTracker {
        let tasks = TaskTracker::new();
        tasks.spawn(self.match_loop.run(stop.clone()));
        tasks.spawn(self.sweeper.run(stop.clone()));
        tasks.spawn(self.leases.run(stop.clone()));
        tasks.spawn(notify::run_subscriber(
            self.shared.deps.store.clone(),
            self.shared.keys.clone(),
            self.router,
            self.shared.settings.timing.subscriber_retry_ms,
            stop.clone(),
        ));
        tasks.close();
        tasks
    }
}
