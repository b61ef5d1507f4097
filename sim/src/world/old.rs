//! The world: one turmoil simulation running real match-server instances on a shared fake
//! Redis, client hosts full of players, and a driver that injects the scenario's faults,
//! heals them, and asks the oracle along the way.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use match_server::config::{Settings, Timing};
use match_server::matchmaker::Deps;
use match_server::server;
use match_server::store::Store;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tracing::Level;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

use crate::fake_redis::{FakeRedis, FaultPlan};
use crate::oracle::{Bounds, Invariant, Oracle, Violation};
use crate::panics;
use crate::player::{Player, SERVER_PORT};
use crate::redis_view;
use crate::scenario::{ClockFaultKind, ProcessFaultKind, Scenario};
use crate::seams::{SimAllocator, SimClock, SimIds, TurmoilListener};
use crate::trace::{self, CaptureLayer, Source, TraceEvent, TraceLog};

/// Unix time at the start of every simulation: fixed, so runs repeat to the byte.
pub const EPOCH_SECS: u64 = 1_700_000_000;

/// The largest clock jump a scenario draws (instances are assumed NTP-synchronised within
/// this bound; leases rely on it).
pub const MAX_CLOCK_SKEW_MS: u64 = 1_500;

/// How a run is driven.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// turmoil's step, in ms of sim time.
    pub tick_ms: u64,
    /// How often the oracle inspects Redis, in ms of sim time.
    pub check_every_ms: u64,
    /// The most detailed service events the trace keeps.
    pub trace_level: Level,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            tick_ms: 5,
            check_every_ms: 100,
            trace_level: Level::DEBUG,
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
}

impl RunReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
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
            heartbeat_interval_ms: 5_000,
            idle_timeout_ms: 20_000,
            shutdown_timeout_ms: 3_000,
            subscriber_retry_ms: 100,
        },
        ..Settings::default()
    }
}

/// The fake's clock: sim unix time, never going backwards (hosts within one step may read
/// times up to a tick apart).
#[derive(Clone, Default)]
struct RedisTime(Arc<AtomicU64>);

impl RedisTime {
    fn now_ms(&self) -> u64 {
        let now = crate::seams::sim_unix_ms();
        self.0.fetch_max(now, Ordering::Relaxed).max(now)
    }

    fn advance_to(&self, unix_ms: u64) {
        self.0.fetch_max(unix_ms, Ordering::Relaxed);
    }
}

/// What the driver holds for each server instance.
struct ServerHandle {
    name: String,
    clock: SimClock,
    shutdown: Arc<Notify>,
}

/// A world event the driver applies at a time.
#[derive(Clone, Debug)]
enum WorldEvent {
    Partition { client: String, server: String },
    Repair { client: String, server: String },
    ClockFail { server: usize },
    ClockRecover { server: usize },
    ClockJump { server: usize, offset_ms: i32 },
    Crash { server: usize },
    Shutdown { server: usize },
    Restart { server: usize },
    Heal,
}

/// Runs `scenario` to its end and judges it.
pub fn run(scenario: &Scenario, config: &RunConfig) -> RunReport {
    let log = TraceLog::default();
    // turmoil's own events are noise, but its `node` span names the host of every event.
    let max_level = config.trace_level;
    let filter = tracing_subscriber::filter::filter_fn(move |meta| {
        if meta.target().starts_with("turmoil") {
            meta.is_span() && meta.name() == "node"
        } else {
            *meta.level() <= max_level
        }
    });
    let subscriber = tracing_subscriber::registry()
        .with(CaptureLayer::new(log.clone(), config.trace_level).with_filter(filter));
    let outcome = tracing::subscriber::with_default(subscriber, || {
        panics::catch(|| drive(scenario, config, &log))
    });
    let trace = log.events();
    let (mut violations, checks, faults, sim_ms, matches) = match outcome {
        Ok(result) => result,
        Err(message) => {
            let violation = Violation {
                invariant: Invariant::NoPanic,
                at_ms: 0,
                detail: format!("the run panicked: {message}"),
            };
            (vec![violation], 0, BTreeMap::new(), 0, 0)
        }
    };
    for (at_ms, message) in panics::take() {
        violations.push(Violation {
            invariant: Invariant::NoPanic,
            at_ms,
            detail: message,
        });
    }
    RunReport {
        scenario: scenario.clone(),
        violations,
        trace_hash: trace::hash(&trace),
        trace,
        checks,
        faults,
        sim_ms,
        matches,
    }
}

type Outcome = (Vec<Violation>, u64, BTreeMap<String, u64>, u64, u64);

fn drive(scenario: &Scenario, config: &RunConfig, log: &TraceLog) -> Outcome {
    let settings = Arc::new(sim_settings());
    let heal_ms = u64::from(scenario.fault_phase_ms);
    let end_ms = heal_ms + u64::from(scenario.quiet_phase_ms);
    let mut sim = turmoil::Builder::new()
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
        .simulation_duration(Duration::from_millis(end_ms + 60_000))
        .tick_duration(Duration::from_millis(config.tick_ms))
        .min_message_latency(Duration::from_millis(0))
        .max_message_latency(Duration::from_millis(u64::from(
            scenario.faults.latency_max_ms.max(2),
        )))
        .rng_seed(scenario.seed)
        .build();
    let redis_time = RedisTime::default();
    let fake = match FakeRedis::new(scenario.seed, {
        let time = redis_time.clone();
        move || time.now_ms()
    }) {
        Ok(fake) => fake,
        Err(error) => {
            let violation = Violation {
                invariant: Invariant::NoPanic,
                at_ms: 0,
                detail: format!("fake Redis failed to start: {error}"),
            };
            return (vec![violation], 0, BTreeMap::new(), 0, 0);
        }
    };
    fake.set_fault_plan(fault_plan(scenario));
    for fault in &scenario.faults.scheduled {
        fake.schedule_fault(fault.clone());
    }
    let allocator = Arc::new(SimAllocator::new(
        scenario.faults.allocator,
        scenario.seed ^ 0xa11c,
    ));
    let servers = start_servers(&mut sim, scenario, &settings, &fake, &allocator);
    let oracle = Rc::new(RefCell::new(Oracle::new(bounds(&settings, config))));
    start_clients(&mut sim, scenario, &settings, log, &oracle);
    let mut events = schedule(scenario, &servers);
    let mut next_check_ms = 0;
    let mut world_faults: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let now_ms = elapsed_ms(&sim);
        redis_time.advance_to(EPOCH_SECS * 1_000 + now_ms);
        while events.first().is_some_and(|(at, _)| *at <= now_ms) {
            let (_, event) = events.remove(0);
            apply(
                &mut sim,
                &event,
                &servers,
                &fake,
                &allocator,
                log,
                now_ms,
                &mut world_faults,
            );
        }
        if now_ms >= next_check_ms {
            let view = redis_view::from_fake(&fake, &settings.key_prefix);
            let settled = now_ms >= heal_ms + settle_ms(&settings);
            oracle.borrow_mut().check_redis(now_ms, &view, settled);
            next_check_ms = now_ms + config.check_every_ms;
        }
        if now_ms >= end_ms || panics::any() {
            break;
        }
        if let Err(error) = sim.step() {
            oracle.borrow_mut().violate(
                Invariant::NoPanic,
                now_ms,
                format!("a host failed: {error}"),
            );
            break;
        }
    }
    let now_ms = elapsed_ms(&sim);
    let view = redis_view::from_fake(&fake, &settings.key_prefix);
    let mut oracle = oracle.borrow_mut();
    oracle.check_liveness(now_ms, &view);
    oracle.check_locks(&redis_view::lock_events(&log.events()));
    for (kind, count) in fake.fault_counts() {
        *world_faults.entry(format!("redis_{kind}")).or_default() += count;
    }
    if let Ok(injected) = allocator.injected.lock() {
        for (kind, count) in injected.iter() {
            *world_faults.entry(format!("alloc_{kind}")).or_default() += count;
        }
    }
    if scenario.faults.latency_max_ms > 0 {
        *world_faults.entry("network_latency".into()).or_default() += 1;
    }
    let matches = allocator.allocations.load(Ordering::Relaxed);
    (
        oracle.violations().to_vec(),
        oracle.checks,
        world_faults,
        now_ms,
        matches,
    )
}

fn elapsed_ms(sim: &turmoil::Sim<'_>) -> u64 {
    u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Time after the heal before stale state counts as a violation: a sweep round, a lease and
/// the longest slow reply.
fn settle_ms(settings: &Settings) -> u64 {
    settings.timing.lease_ttl_ms + 2 * settings.timing.sweep_interval_ms + 2_000
}

fn bounds(settings: &Settings, config: &RunConfig) -> Bounds {
    let t = &settings.timing;
    Bounds {
        disconnect_grace_ms: 2_000,
        crash_grace_ms: t.lease_ttl_ms + 2 * t.sweep_interval_ms + 2_000,
        stale_slack_ms: 2 * t.sweep_interval_ms + 2_000,
        tick_ms: config.tick_ms,
        lease_slack_ms: MAX_CLOCK_SKEW_MS + config.check_every_ms + config.tick_ms,
        players_per_mode: settings
            .modes
            .iter()
            .map(|m| (m.name.clone(), m.players as usize))
            .collect(),
        match_bound_ms: t.loading_timeout_ms
            + 2 * t.allocation_timeout_ms
            + 4 * t.match_interval_ms
            + t.lease_ttl_ms,
    }
}

fn fault_plan(scenario: &Scenario) -> FaultPlan {
    let r = &scenario.faults.redis;
    let p = |per_mille: u16| f64::from(per_mille) / 1_000.0;
    FaultPlan {
        error_before_effect: p(r.error_before_effect),
        error_after_effect: p(r.error_after_effect),
        truncated_reply: p(r.truncated_reply),
        garbled_element: p(r.garbled_element),
        extra_element: p(r.extra_element),
        slow_reply: p(r.slow_reply),
        subscriber_drop: p(r.subscriber_drop),
        slow_reply_min_ms: 1,
        slow_reply_max_ms: u64::from(r.slow_reply_max_ms.max(1)),
    }
}

fn start_servers(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    settings: &Arc<Settings>,
    fake: &FakeRedis,
    allocator: &Arc<SimAllocator>,
) -> Vec<ServerHandle> {
    let mut handles = Vec::new();
    for index in 0..usize::from(scenario.servers.max(1)) {
        let name = format!("server-{index}");
        let clock = SimClock::default();
        let shutdown = Arc::new(Notify::new());
        let ids = Arc::new(SimIds::new(scenario.seed.wrapping_add(index as u64 + 1)));
        let (settings, fake, allocator) = (settings.clone(), fake.clone(), allocator.clone());
        let (host_clock, host_shutdown) = (clock.clone(), shutdown.clone());
        sim.host(name.as_str(), move || {
            let deps = Deps {
                store: Arc::new(fake.clone()) as Arc<dyn Store>,
                clock: Arc::new(host_clock.clone()),
                ids: ids.clone(),
                allocator: allocator.clone(),
            };
            let (settings, shutdown) = (settings.clone(), host_shutdown.clone());
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
                server::run(TurmoilListener(listener), settings, deps, async move {
                    shutdown.notified().await
                })
                .await;
                Ok(())
            }
        });
        handles.push(ServerHandle {
            name,
            clock,
            shutdown,
        });
    }
    handles
}

fn start_clients(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    settings: &Settings,
    log: &TraceLog,
    oracle: &Rc<RefCell<Oracle>>,
) {
    let ids = scenario.player_ids();
    let hosts = usize::from(scenario.client_hosts.max(1));
    let servers: Vec<String> = (0..usize::from(scenario.servers.max(1)))
        .map(|i| format!("server-{i}"))
        .collect();
    let modes: Vec<String> = settings.modes.iter().map(|m| m.name.clone()).collect();
    for host in 0..hosts {
        let name = format!("client-{host}");
        let mut players = Vec::new();
        for (index, (plan, id)) in scenario.players.iter().zip(&ids).enumerate() {
            if usize::from(plan.host) % hosts != host {
                continue;
            }
            let mode = modes
                .get(usize::from(plan.mode) % modes.len().max(1))
                .cloned()
                .unwrap_or_default();
            oracle
                .borrow_mut()
                .add_player(*id, &mode, plan.behavior.completes_loading());
            players.push(Player {
                index,
                id: *id,
                plan: plan.clone(),
                host: name.clone(),
                servers: servers.clone(),
                mode,
                heal_at_ms: u64::from(scenario.fault_phase_ms),
                log: log.clone(),
                oracle: oracle.clone(),
                rng: ChaCha8Rng::seed_from_u64(scenario.seed ^ ((index as u64 + 1) << 20)),
            });
        }
        sim.client(name.as_str(), async move {
            for player in players {
                tokio::task::spawn_local(player.run());
            }
            std::future::pending::<()>().await;
            Ok(())
        });
    }
}

/// The scenario's faults as timed world events, heal included, sorted by time.
fn schedule(scenario: &Scenario, servers: &[ServerHandle]) -> Vec<(u64, WorldEvent)> {
    let heal = u64::from(scenario.fault_phase_ms);
    let server_count = servers.len().max(1);
    let clients = usize::from(scenario.client_hosts.max(1));
    let mut events = vec![(heal, WorldEvent::Heal)];
    for p in &scenario.faults.partitions {
        let client = format!("client-{}", usize::from(p.client_host) % clients);
        let server = format!("server-{}", usize::from(p.server) % server_count);
        let at = u64::from(p.at_ms);
        let end = (at + u64::from(p.duration_ms)).min(heal);
        events.push((
            at,
            WorldEvent::Partition {
                client: client.clone(),
                server: server.clone(),
            },
        ));
        events.push((end, WorldEvent::Repair { client, server }));
    }
    for c in &scenario.faults.clock {
        let server = usize::from(c.server) % server_count;
        let at = u64::from(c.at_ms);
        match c.kind {
            ClockFaultKind::Fail { duration_ms } => {
                events.push((at, WorldEvent::ClockFail { server }));
                events.push((
                    (at + u64::from(duration_ms)).min(heal),
                    WorldEvent::ClockRecover { server },
                ));
            }
            ClockFaultKind::Jump { offset_ms } => {
                events.push((at, WorldEvent::ClockJump { server, offset_ms }))
            }
        }
    }
    for p in &scenario.faults.process {
        let server = usize::from(p.server) % server_count;
        let at = u64::from(p.at_ms);
        let event = match p.kind {
            ProcessFaultKind::Crash => WorldEvent::Crash { server },
            ProcessFaultKind::Shutdown => WorldEvent::Shutdown { server },
        };
        events.push((at, event));
        events.push((
            (at + u64::from(p.restart_after_ms)).min(heal),
            WorldEvent::Restart { server },
        ));
    }
    events.retain(|(at, event)| {
        *at < heal
            || matches!(
                event,
                WorldEvent::Heal
                    | WorldEvent::Repair { .. }
                    | WorldEvent::ClockRecover { .. }
                    | WorldEvent::Restart { .. }
            )
    });
    events.sort_by_key(|(at, _)| *at);
    events
}

#[allow(clippy::too_many_arguments)]
fn apply(
    sim: &mut turmoil::Sim<'_>,
    event: &WorldEvent,
    servers: &[ServerHandle],
    fake: &FakeRedis,
    allocator: &SimAllocator,
    log: &TraceLog,
    now_ms: u64,
    faults: &mut BTreeMap<String, u64>,
) {
    let mut count = |kind: &str| *faults.entry(kind.to_owned()).or_default() += 1;
    let server = |index: &usize| servers.get(*index);
    let text = match event {
        // A partition that heals within TCP's retransmission window delays data but breaks
        // no connection: turmoil's hold/release models exactly that.
        WorldEvent::Partition { client, server } => {
            sim.hold(client.as_str(), server.as_str());
            count("network_partition");
            format!("partition {client} <-> {server}")
        }
        WorldEvent::Repair { client, server } => {
            sim.release(client.as_str(), server.as_str());
            format!("repair {client} <-> {server}")
        }
        WorldEvent::ClockFail { server: i } => {
            let Some(s) = server(i) else { return };
            s.clock.failing.store(true, Ordering::Relaxed);
            count("clock_failure");
            format!("clock of {} fails (before the epoch)", s.name)
        }
        WorldEvent::ClockRecover { server: i } => {
            let Some(s) = server(i) else { return };
            s.clock.failing.store(false, Ordering::Relaxed);
            format!("clock of {} recovers", s.name)
        }
        WorldEvent::ClockJump {
            server: i,
            offset_ms,
        } => {
            let Some(s) = server(i) else { return };
            s.clock
                .offset_ms
                .store(i64::from(*offset_ms), Ordering::Relaxed);
            count("clock_jump");
            format!("clock of {} jumps to {offset_ms:+} ms", s.name)
        }
        WorldEvent::Crash { server: i } => {
            let Some(s) = server(i) else { return };
            if !sim.is_host_running(s.name.as_str()) {
                return;
            }
            sim.crash(s.name.as_str());
            count("server_crash");
            format!("{} crashes", s.name)
        }
        WorldEvent::Shutdown { server: i } => {
            let Some(s) = server(i) else { return };
            s.shutdown.notify_waiters();
            count("server_shutdown");
            format!("{} shuts down gracefully", s.name)
        }
        WorldEvent::Restart { server: i } => {
            let Some(s) = server(i) else { return };
            sim.bounce(s.name.as_str());
            format!("{} restarts", s.name)
        }
        WorldEvent::Heal => {
            heal(sim, servers, fake, allocator);
            "faults heal: the world runs quiet".to_owned()
        }
    };
    log.note_at(now_ms, "world", Source::World, text);
}

fn heal(
    sim: &mut turmoil::Sim<'_>,
    servers: &[ServerHandle],
    fake: &FakeRedis,
    allocator: &SimAllocator,
) {
    fake.set_faults_enabled(false);
    allocator.heal();
    sim.set_max_message_latency(Duration::from_millis(2));
    for s in servers {
        s.clock.failing.store(false, Ordering::Relaxed);
        s.clock.offset_ms.store(0, Ordering::Relaxed);
        if !sim.is_host_running(s.name.as_str()) {
            sim.bounce(s.name.as_str());
        }
    }
}
