//! The world: one turmoil simulation running real match-server instances on a shared fake
//! Redis, client hosts full of players, and a driver that injects the scenario's faults,
//! heals them, and asks the oracle along the way.
//!
//! - this file: the public API (`run`, its configuration and report, the sim settings).
//! - `build`: servers, client hosts, fault plan, oracle bounds.
//! - `events`: the scenario's faults as timed world events, and how each is applied.
//! - `driver`: the step loop.

mod build;
mod driver;
mod events;
mod marks;
mod observe;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use match_server::config::{AuthSettings, Settings, Timing};
use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

use crate::oracle::{Invariant, Violation};
use crate::panics;
use crate::player::SERVER_PORT;
use crate::scenario::Scenario;
use crate::trace::{self, CaptureLayer, TraceEvent, TraceLog};

/// Unix time at the start of every simulation: fixed, so runs repeat to the byte.
pub const EPOCH_SECS: u64 = 1_700_000_000;

/// The largest clock jump a scenario draws (instances are assumed NTP-synchronised within
/// this bound; leases rely on it).
pub const MAX_CLOCK_SKEW_MS: u64 = 1_500;

/// The module whose debug events record lock acquisitions and releases: kept in every
/// timeline (the oracle reads locks from the probe, but replays read better with them).
const LOCK_EVENTS_TARGET: &str = "match_server::matchmaker::lock";

/// How a run is driven.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// turmoil's step, in ms of sim time.
    pub tick_ms: u64,
    /// How often the oracle inspects Redis, in ms of sim time.
    pub check_every_ms: u64,
    /// The most detailed service events the trace keeps.
    pub trace_level: Level,
    /// Record structured events (arrows, fault windows) for the HTML timeline; off in
    /// campaigns. Never changes the text trace or its hash.
    pub structured: bool,
    /// Whether the service's facts get their witnesses read from the fake Redis (what
    /// invariants 10 and 11 judge). Always on in runs; a test turns it off to show that
    /// reading them changes nothing in a run.
    pub witnesses: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tick_ms: 20,
            check_every_ms: 100,
            trace_level: Level::INFO,
            structured: false,
            witnesses: true,
        }
    }
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// What ran.
    pub scenario: Scenario,
    /// Broken invariants, in order.
    pub violations: Vec<Violation>,
    /// The event log.
    pub trace: Vec<TraceEvent>,
    /// Hash of the full log, for the determinism check.
    pub trace_hash: u64,
    /// Individual invariant checks performed.
    pub checks: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Sim time covered, in ms.
    pub sim_ms: u64,
    /// Matches that got a game server.
    pub matches: u64,
    /// Structured events for the HTML timeline (empty unless `RunConfig::structured`).
    pub structured: crate::flow::Structured,
    /// How often the run reached each row of the rule catalogue, by row id (see
    /// [`crate::coverage`]); rows never reached are absent.
    pub coverage: BTreeMap<String, u64>,
}

impl RunReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the driver hands back.
#[derive(Debug, Default)]
struct Outcome {
    violations: Vec<Violation>,
    checks: u64,
    faults: BTreeMap<String, u64>,
    sim_ms: u64,
    matches: u64,
    coverage: BTreeMap<String, u64>,
}

impl Outcome {
    fn failed(detail: String) -> Self {
        let violation = Violation {
            invariant: Invariant::NoPanic,
            at_ms: 0,
            detail,
        };
        Self {
            violations: vec![violation],
            ..Self::default()
        }
    }
}

/// The oracle's bounds for the simulation's settings and `config`'s timing.
pub fn oracle_bounds(config: &RunConfig) -> crate::oracle::Bounds {
    build::bounds(&sim_settings(), config)
}

/// The service settings of the simulation: production defaults with timings shortened so a
/// seed covers many loading timeouts, lease expiries and sweeps in a few sim seconds.
pub fn sim_settings() -> Settings {
    Settings {
        bind: format!("0.0.0.0:{SERVER_PORT}"),
        timing: Timing {
            match_interval_ms: 500,
            loading_timeout_ms: 3_000,
            allocation_timeout_ms: 1_000,
            sweep_interval_ms: 500,
            lease_ttl_ms: 3_000,
            lease_renew_interval_ms: 1_000,
            resync_interval_ms: 1_000,
            lock_ttl_ms: 2_000,
            redis_command_timeout_ms: 1_000,
            heartbeat_interval_ms: 2_000,
            idle_timeout_ms: 8_000,
            shutdown_timeout_ms: 3_000,
            subscriber_retry_ms: 100,
        },
        // The production path: every player connects with a signed token.
        auth: AuthSettings::required(SIM_SECRET),
        ..Settings::default()
    }
}

/// The secret the simulated servers verify and the simulated players sign with.
pub const SIM_SECRET: &str = "match-sim: a fixed secret, as deterministic as the rest";

/// When the players' tokens expire: long after any run.
const TOKEN_EXPIRY_S: u64 = EPOCH_SECS + 86_400;

/// The token of `player`, signed with [`SIM_SECRET`]; empty (and refused at the upgrade,
/// so the run fails visibly) if it cannot be minted.
pub fn player_token(player: uuid::Uuid) -> String {
    match_server::auth::mint(SIM_SECRET, player, TOKEN_EXPIRY_S).unwrap_or_default()
}

/// Runs `scenario` to its end and judges it.
pub fn run(scenario: &Scenario, config: &RunConfig) -> RunReport {
    let log = if config.structured {
        TraceLog::with_structure()
    } else {
        TraceLog::default()
    };
    // turmoil's own events are noise, but its `node` span names the host of every event.
    // The lock's debug events always stay: a timeline shows who held which lock when.
    let max_level = config.trace_level;
    let filter = tracing_subscriber::filter::filter_fn(move |meta| {
        if meta.target().starts_with("turmoil") {
            meta.is_span() && meta.name() == "node"
        } else {
            *meta.level() <= max_level || meta.target() == LOCK_EVENTS_TARGET
        }
    });
    let subscriber =
        tracing_subscriber::registry().with(CaptureLayer::new(log.clone()).with_filter(filter));
    let outcome = tracing::subscriber::with_default(subscriber, || {
        panics::catch(|| driver::drive(scenario, config, &log))
    })
    .unwrap_or_else(|message| Outcome::failed(format!("the run panicked: {message}")));
    let mut violations = outcome.violations;
    for (at_ms, detail) in panics::take() {
        violations.push(Violation {
            invariant: Invariant::NoPanic,
            at_ms,
            detail,
        });
    }
    let trace = log.events();
    let mut coverage = outcome.coverage;
    crate::coverage::add_trace_rows(&mut coverage, &trace);
    RunReport {
        scenario: scenario.clone(),
        violations,
        trace_hash: trace::hash(&trace),
        trace,
        checks: outcome.checks,
        faults: outcome.faults,
        sim_ms: outcome.sim_ms,
        matches: outcome.matches,
        structured: log.structured(),
        coverage,
    }
}

/// The fake's clock: sim unix time, never going backwards (hosts within one step may read
/// times up to a tick apart).
#[derive(Clone, Default)]
struct RedisTime {
    /// The latest time any reader saw.
    latest_ms: Arc<AtomicU64>,
    /// Set while the oracle reads a witness: the read sees the latest time without moving
    /// it, so watching the fake never changes what it does next.
    peeking: Arc<AtomicBool>,
}

impl RedisTime {
    fn now_ms(&self) -> u64 {
        if self.peeking.load(Ordering::Relaxed) {
            return self.latest_ms.load(Ordering::Relaxed);
        }
        let now = crate::seams::sim_unix_ms();
        self.latest_ms.fetch_max(now, Ordering::Relaxed).max(now)
    }

    fn advance_to(&self, unix_ms: u64) {
        self.latest_ms.fetch_max(unix_ms, Ordering::Relaxed);
    }
}
