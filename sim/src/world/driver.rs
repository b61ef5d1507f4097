//! The step loop: applies world events when they are due, lets the oracle inspect Redis,
//! stops at the end of the quiet phase (or earlier once the healed world is at rest), then
//! judges liveness and the lock history.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use match_server::config::Settings;

use super::build::{self, ServerHandle};
use super::events::{WorldEvent, schedule};
use super::observe::RedisLog;
use super::{EPOCH_SECS, Outcome, RedisTime, RunConfig, sim_settings};
use crate::fake_redis::FakeRedis;
use crate::oracle::history::SERVER_SHUTDOWN;
use crate::oracle::{Invariant, Oracle, Scope};
use crate::panics;
use crate::probe::FactLog;
use crate::redis_view::{self, RedisWitness};
use crate::scenario::Scenario;
use crate::seams::SimAllocator;
use crate::trace::{Source, TraceLog};

/// How long no client may act before a settled world counts as at rest.
const REST_MS: u64 = 2_000;

/// When the run's budget ends while some client's view differs from Redis, how long the
/// run goes on at most so notices already sent can arrive before invariant 7 judges the
/// views. A healed world delivers a notice in a few ms (no Redis faults, links of at most
/// 2 ms), so a view still off after this is stuck, not in flight. Shorter than a resync
/// interval, so it gives a lost notice no time to be repaired. Invariant 8 is judged when
/// the budget ends, before this grace: a late match cannot hide a stuck queue.
const IN_FLIGHT_GRACE_MS: u64 = 500;

/// Everything the step loop works with.
struct Driver<'a> {
    sim: turmoil::Sim<'a>,
    settings: Arc<Settings>,
    fake: FakeRedis,
    redis_time: RedisTime,
    allocator: Arc<SimAllocator>,
    servers: Vec<ServerHandle>,
    clients: Vec<String>,
    oracle: Rc<RefCell<Oracle>>,
    log: TraceLog,
    facts: FactLog,
    faults: BTreeMap<String, u64>,
    heal_ms: u64,
    /// How many fact records the oracle has been handed.
    facts_seen: usize,
    /// What the fake served, not handed to the oracle yet.
    redis_log: Arc<RedisLog>,
    /// How long each server's armed stall past a lease holds at most once it strikes (ms).
    past_lease_holds: BTreeMap<usize, u64>,
    /// The struck stalls past a lease, with when each resumes at the latest (sim ms).
    past_lease_resumes: BTreeMap<usize, u64>,
}

/// The network between a client host and a server, as a fault's scope.
fn link(client: &str, server: &str) -> Scope {
    Scope::Link {
        client_host: client.to_owned(),
        server: server.to_owned(),
    }
}

/// Builds the world for `scenario`, runs it and returns the verdict.
pub(super) fn drive(scenario: &Scenario, config: &RunConfig, log: &TraceLog) -> Outcome {
    let mut driver = match Driver::new(scenario, config, log) {
        Ok(driver) => driver,
        Err(detail) => return Outcome::failed(detail),
    };
    let mut events = schedule(scenario, &driver.servers);
    let end_ms = driver.heal_ms + u64::from(scenario.quiet_phase_ms);
    let mut next_check_ms = 0;
    let mut budget_over = false;
    loop {
        let now_ms = driver.now_ms();
        driver.redis_time.advance_to(EPOCH_SECS * 1_000 + now_ms);
        driver.crash_struck(now_ms);
        driver.stalls_past_lease(now_ms);
        while events.first().is_some_and(|(at, _)| *at <= now_ms) {
            let (_, event) = events.remove(0);
            driver.apply(&event, now_ms);
        }
        if now_ms >= next_check_ms {
            next_check_ms = now_ms + config.check_every_ms;
            if driver.inspect(now_ms) {
                break;
            }
        }
        if now_ms >= end_ms && !budget_over {
            budget_over = true;
            driver.oracle.borrow_mut().at_budget_end(now_ms);
        }
        if budget_over && (now_ms >= end_ms + IN_FLIGHT_GRACE_MS || !driver.in_flight()) {
            break;
        }
        if panics::any() || !driver.step(now_ms) {
            break;
        }
    }
    driver.finish(scenario)
}

impl<'a> Driver<'a> {
    fn new(scenario: &Scenario, config: &RunConfig, log: &TraceLog) -> Result<Self, String> {
        let settings = Arc::new(sim_settings());
        let heal_ms = u64::from(scenario.fault_phase_ms);
        let end_ms = heal_ms + u64::from(scenario.quiet_phase_ms);
        let latency_ms = u64::from(scenario.faults.latency_max_ms.max(2));
        let mut sim = turmoil::Builder::new()
            .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            .simulation_duration(Duration::from_millis(end_ms + 60_000))
            .tick_duration(Duration::from_millis(config.tick_ms))
            .min_message_latency(Duration::from_millis(0))
            .max_message_latency(Duration::from_millis(latency_ms))
            .rng_seed(scenario.seed)
            .build();
        let redis_time = RedisTime::default();
        let time = redis_time.clone();
        let fake = FakeRedis::new(scenario.seed, move || time.now_ms())
            .map_err(|error| format!("fake Redis failed to start: {error}"))?;
        fake.set_fault_plan(build::fault_plan(scenario));
        let redis_log = RedisLog::new(
            &settings.key_prefix,
            settings.timing.redis_command_timeout_ms,
        );
        fake.set_observer(redis_log.clone());
        fake.set_response_timeout_ms(settings.timing.redis_command_timeout_ms);
        for fault in &scenario.faults.scheduled {
            fake.schedule_fault(fault.clone());
        }
        let allocator = Arc::new(SimAllocator::new(
            scenario.faults.allocator,
            scenario.seed ^ 0xa11c,
        ));
        let witness = RedisWitness::new(
            fake.clone(),
            &settings.key_prefix,
            redis_time.peeking.clone(),
        );
        let facts = if config.witnesses {
            FactLog::with_witnesses(Arc::new(witness))
        } else {
            FactLog::default()
        };
        let servers = build::start_servers(
            &mut sim, scenario, &settings, &fake, &allocator, &facts, log,
        );
        let oracle = Rc::new(RefCell::new(Oracle::new(build::bounds(&settings, config))));
        build::start_clients(&mut sim, scenario, &settings, log, &oracle);
        let clients = (0..scenario.client_hosts.max(1))
            .map(|i| format!("client-{i}"))
            .collect();
        Ok(Self {
            sim,
            settings,
            fake,
            redis_time,
            allocator,
            servers,
            clients,
            oracle,
            log: log.clone(),
            facts,
            faults: BTreeMap::new(),
            heal_ms,
            facts_seen: 0,
            redis_log,
            past_lease_holds: BTreeMap::new(),
            past_lease_resumes: BTreeMap::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.sim.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One turmoil step; false when a host failed (recorded as a violation).
    fn step(&mut self, now_ms: u64) -> bool {
        match self.sim.step() {
            Ok(_) => true,
            Err(error) => {
                let detail = format!("a host failed: {error}");
                self.oracle
                    .borrow_mut()
                    .violate(Invariant::NoPanic, now_ms, detail);
                false
            }
        }
    }

    /// Hands the oracle what the fake served and the facts reported since the last time.
    fn hand_over(&mut self) {
        let records = self.facts.records_from(self.facts_seen);
        self.facts_seen += records.len();
        let mut oracle = self.oracle.borrow_mut();
        oracle.redis_ops(self.redis_log.take());
        oracle.facts(records);
    }

    /// Records a fault of the world in the oracle's history: it begins now and lasts until
    /// `to_ms`, or until [`Self::fault_ends`] (or the heal) when `None`.
    fn fault_begins(&self, now_ms: u64, to_ms: Option<u64>, scope: Scope, what: &str) {
        let mut oracle = self.oracle.borrow_mut();
        oracle
            .history_mut()
            .fault(now_ms, to_ms, scope, what.to_owned());
    }

    /// Ends the open faults `what` of `scope`.
    fn fault_ends(&self, now_ms: u64, scope: &Scope, what: &str) {
        let mut oracle = self.oracle.borrow_mut();
        oracle.history_mut().end_fault(now_ms, scope, what);
    }

    /// Lets the oracle look at Redis; true when the healed world is at rest.
    fn inspect(&mut self, now_ms: u64) -> bool {
        self.hand_over();
        let view = redis_view::from_fake(&self.fake, &self.settings.key_prefix);
        let timing = &self.settings.timing;
        let settle_ms = timing.lease_ttl_ms + timing.sweep_interval_ms + 1_000;
        let settled = now_ms >= self.heal_ms + settle_ms;
        let mut oracle = self.oracle.borrow_mut();
        oracle.snapshot(now_ms, &view, settled);
        let at_rest = settled && oracle.is_at_rest(now_ms, &view, REST_MS);
        if at_rest {
            oracle.at_rest(now_ms, &view);
            self.log.note_at(
                now_ms,
                "world",
                Source::World,
                "the world is at rest".into(),
            );
        }
        at_rest
    }

    /// Whether some connected client's view differs from Redis right now in a way a
    /// notice in flight may resolve.
    fn in_flight(&self) -> bool {
        let view = redis_view::from_fake(&self.fake, &self.settings.key_prefix);
        self.oracle.borrow().in_flight(&view)
    }

    /// The oracle's final verdict over the whole run, then the counts for the report.
    fn finish(mut self, scenario: &Scenario) -> Outcome {
        let now_ms = self.now_ms();
        self.hand_over();
        let view = redis_view::from_fake(&self.fake, &self.settings.key_prefix);
        let mut oracle = self.oracle.borrow_mut();
        oracle.finish(now_ms, &view);
        let mut faults = self.faults.clone();
        for (kind, count) in self.fake.fault_counts() {
            *faults.entry(format!("redis_{kind}")).or_default() += count;
        }
        if let Ok(injected) = self.allocator.injected.lock() {
            for (kind, count) in injected.iter() {
                *faults.entry(format!("alloc_{kind}")).or_default() += count;
            }
        }
        if scenario.faults.latency_max_ms > 0 {
            *faults.entry("network_latency".into()).or_default() += 1;
        }
        let redis_marks = self.redis_log.marks.counts();
        let timing = &self.settings.timing;
        let coverage = crate::coverage::detect(&crate::coverage::Evidence {
            history: oracle.history(),
            clients: oracle.clients(),
            redis: &redis_marks,
            lock_ttl_ms: timing.lock_ttl_ms,
            idle_timeout_ms: timing.idle_timeout_ms,
            end_ms: now_ms,
        });
        Outcome {
            violations: oracle.violations().to_vec(),
            checks: oracle.checks_made,
            faults,
            sim_ms: now_ms,
            matches: self.allocator.allocations.load(Ordering::Relaxed),
            coverage,
        }
    }

    fn count(&mut self, kind: &str) {
        *self.faults.entry(kind.to_owned()).or_default() += 1;
    }

    /// Applies one world event and logs it.
    fn apply(&mut self, event: &WorldEvent, now_ms: u64) {
        let text = match event {
            // A partition that heals within TCP's retransmission window delays data but
            // breaks no connection: turmoil's hold/release models exactly that.
            WorldEvent::Partition { client, server } => {
                self.sim.hold(client.as_str(), server.as_str());
                self.count("network_partition");
                let scope = link(client, server);
                self.fault_begins(now_ms, None, scope, "network_partition");
                Some(format!("partition {client} <-> {server}"))
            }
            WorldEvent::Repair { client, server } => {
                self.sim.release(client.as_str(), server.as_str());
                self.fault_ends(now_ms, &link(client, server), "network_partition");
                Some(format!("repair {client} <-> {server}"))
            }
            WorldEvent::ClockFail { server } => self.clock(*server, Some(true), None),
            WorldEvent::ClockRecover { server } => self.clock(*server, Some(false), None),
            WorldEvent::ClockJump { server, offset_ms } => {
                self.clock(*server, None, Some(*offset_ms))
            }
            WorldEvent::Crash { server } => self.crash(*server),
            WorldEvent::Shutdown { server } => self.shutdown(*server),
            WorldEvent::Restart { server } => self.restart(*server),
            WorldEvent::Stall { server } => self.stall(*server, true),
            WorldEvent::Freeze { server } => self.freeze(*server),
            WorldEvent::StallAfterLock { server } => self.stall_after_lock(*server),
            WorldEvent::CrashAfterScript { server } => self.arm_crash(*server),
            WorldEvent::StallPastLease { server, hold_ms } => {
                self.arm_stall_past_lease(*server, *hold_ms)
            }
            WorldEvent::StallStruck { server } => self.servers.get(*server).map(|s| {
                format!(
                    "{} stalls at its loading_complete: its Redis requests are held",
                    s.name
                )
            }),
            WorldEvent::RestartIfCrashed { server } => {
                if self.is_down(*server) {
                    self.apply(&WorldEvent::Restart { server: *server }, now_ms);
                    return;
                }
                self.disarm_crash(*server)
            }
            WorldEvent::Resume { server } => self.stall(*server, false),
            WorldEvent::Heal => {
                self.heal();
                Some("faults heal: the world runs quiet".to_owned())
            }
        };
        self.record_fault(event, now_ms, text.is_some());
        super::marks::record(&self.log, now_ms, event, text.as_deref());
        if let Some(text) = text {
            self.log.note_at(now_ms, "world", Source::World, text);
        }
    }

    /// Records the fault windows of an instance-wide event in the oracle's history
    /// (partitions record their own); `applied` is false for an event that changed nothing.
    fn record_fault(&self, event: &WorldEvent, now_ms: u64, applied: bool) {
        let instance = |index: &usize| Scope::Instance(format!("server-{index}"));
        match event {
            _ if !applied => {}
            WorldEvent::ClockFail { server } => {
                self.fault_begins(now_ms, None, instance(server), "clock_failure")
            }
            WorldEvent::ClockRecover { server } => {
                self.fault_ends(now_ms, &instance(server), "clock_failure")
            }
            WorldEvent::ClockJump { server, .. } => {
                self.fault_begins(now_ms, None, instance(server), "clock_jump")
            }
            WorldEvent::Crash { server } => {
                self.fault_begins(now_ms, None, instance(server), "server_crash")
            }
            WorldEvent::Shutdown { server } => {
                self.fault_begins(now_ms, None, instance(server), SERVER_SHUTDOWN)
            }
            WorldEvent::Restart { server } => {
                self.fault_ends(now_ms, &instance(server), "server_");
            }
            WorldEvent::Stall { server }
            | WorldEvent::Freeze { server }
            | WorldEvent::StallAfterLock { server }
            | WorldEvent::StallStruck { server } => {
                self.fault_begins(now_ms, None, instance(server), "server_stall")
            }
            WorldEvent::Resume { server } => {
                self.fault_ends(now_ms, &instance(server), "server_stall")
            }
            WorldEvent::Heal => self.oracle.borrow_mut().history_mut().heal(now_ms),
            // An armed crash is recorded when it strikes (as a crash); its end only when
            // it struck (as a restart).
            WorldEvent::Partition { .. }
            | WorldEvent::Repair { .. }
            | WorldEvent::CrashAfterScript { .. }
            | WorldEvent::StallPastLease { .. }
            | WorldEvent::RestartIfCrashed { .. } => {}
        }
    }

    /// Stalls the server `index` (its Redis requests are held) or resumes it (they take
    /// effect now, in order).
    fn stall(&mut self, index: usize, stalled: bool) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        if stalled {
            self.fake.stall(&name);
            self.count("server_stall");
            Some(format!("stall {name}: its Redis requests are held"))
        } else {
            let held = self.fake.release(&name);
            Some(format!(
                "resume {name}: {held} held Redis requests take effect"
            ))
        }
    }

    /// Arms the freeze of the server `index`: right after it next takes a match lock, its
    /// Redis requests are held with no timeout until it resumes.
    fn freeze(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        self.fake.freeze_after_lock(&name);
        self.count("server_freeze");
        Some(format!(
            "freeze {name} once it takes a match lock: its Redis requests are then held, with no timeout"
        ))
    }

    /// Arms a stall of the server `index` right after it next takes a match lock.
    fn stall_after_lock(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        self.fake.stall_after_lock(&name);
        self.count("server_stall_after_lock");
        Some(format!(
            "stall {name} once it takes a match lock: its Redis requests are then held"
        ))
    }

    /// Arms a crash of the server `index` right after its next script that owes a notice.
    fn arm_crash(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        self.fake.crash_after_notice_script(&name);
        self.count("server_crash_after_script");
        Some(format!(
            "crash {name} right after its next script that owes a notice"
        ))
    }

    /// Arms a stall of the server `index` right after its next `enqueue` that queued a
    /// player, lasting `hold_ms` from then (recorded as a fault when it strikes).
    fn arm_stall_past_lease(&mut self, index: usize, hold_ms: u64) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        self.fake.stall_past_lease(&name);
        self.past_lease_holds.insert(index, hold_ms);
        self.count("server_stall_past_lease");
        Some(format!(
            "{name}'s player-lease renewals fail; it stalls at its next loading_complete until that call's lease ran out (at most {hold_ms} ms)"
        ))
    }

    /// Follows the stalls past a lease: one that struck since the last step is recorded
    /// and given its latest resume (its hold, the heal at the latest); a struck one resumes
    /// as soon as the lease of the `loading_complete` it holds ran out, or at that latest.
    fn stalls_past_lease(&mut self, now_ms: u64) {
        for name in self.fake.take_struck_stalls() {
            let Some(server) = self.servers.iter().position(|s| s.name == name) else {
                continue;
            };
            self.apply(&WorldEvent::StallStruck { server }, now_ms);
            let hold_ms = self.past_lease_holds.get(&server).copied().unwrap_or(0);
            let latest_ms = (now_ms + hold_ms).min(self.heal_ms);
            self.past_lease_resumes.insert(server, latest_ms);
        }
        let due: Vec<usize> = self
            .past_lease_resumes
            .iter()
            .filter(|(server, latest_ms)| {
                now_ms >= **latest_ms
                    || self
                        .servers
                        .get(**server)
                        .is_some_and(|s| self.fake.held_lease_lapsed(&s.name))
            })
            .map(|(server, _)| *server)
            .collect();
        for server in due {
            self.past_lease_resumes.remove(&server);
            self.apply(&WorldEvent::Resume { server }, now_ms);
        }
    }

    /// Disarms a crash that never struck.
    fn disarm_crash(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        self.fake
            .disarm_crash(&name)
            .then(|| format!("crash of {name} disarmed: no script owing a notice ran"))
    }

    /// Crashes the servers whose armed crash struck (their Redis requests are held since):
    /// what they sent after the script dies with them.
    fn crash_struck(&mut self, now_ms: u64) {
        for name in self.fake.take_struck_crashes() {
            let Some(index) = self.servers.iter().position(|s| s.name == name) else {
                continue;
            };
            self.apply(&WorldEvent::Crash { server: index }, now_ms);
            self.fake.forget_crashed(&name);
        }
    }

    /// Whether the server `index` is down (crashed and not restarted).
    fn is_down(&mut self, index: usize) -> bool {
        let Some(name) = self.servers.get(index).map(|server| server.name.clone()) else {
            return false;
        };
        !self.sim.is_host_running(name.as_str())
    }

    /// A clock fault: `failing` and/or a jump to `offset_ms`.
    fn clock(
        &mut self,
        index: usize,
        failing: Option<bool>,
        offset_ms: Option<i32>,
    ) -> Option<String> {
        let server = self.servers.get(index)?;
        let name = server.name.clone();
        if let Some(failing) = failing {
            server.clock.failing.store(failing, Ordering::Relaxed);
        }
        if let Some(offset_ms) = offset_ms {
            server
                .clock
                .offset_ms
                .store(i64::from(offset_ms), Ordering::Relaxed);
        }
        let text = match (failing, offset_ms) {
            (Some(true), _) => {
                self.count("clock_failure");
                format!("clock of {name} fails (before the epoch)")
            }
            (Some(false), _) => format!("clock of {name} recovers"),
            (None, Some(offset_ms)) => {
                self.count("clock_jump");
                format!("clock of {name} jumps to {offset_ms:+} ms")
            }
            (None, None) => return None,
        };
        Some(text)
    }

    /// A machine failure: the host vanishes from the network first (a dead machine sends no
    /// FIN or RST; its peers find out by silence), then its process dies. Cutting the links
    /// first also keeps the run deterministic: the order in which tokio drops a dead
    /// runtime's tasks follows global task ids.
    fn crash(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        if !self.sim.is_host_running(name.as_str()) {
            return None;
        }
        for client in &self.clients {
            self.sim.partition(client.as_str(), name.as_str());
        }
        self.sim.crash(name.as_str());
        self.count("server_crash");
        Some(format!("{name} crashes"))
    }

    fn shutdown(&mut self, index: usize) -> Option<String> {
        let server = self.servers.get(index)?;
        server.shutdown.notify_waiters();
        let text = format!("{} shuts down gracefully", server.name);
        self.count("server_shutdown");
        Some(text)
    }

    /// Brings a server back: its links come back and its process starts again.
    fn restart(&mut self, index: usize) -> Option<String> {
        let name = self.servers.get(index)?.name.clone();
        for client in &self.clients {
            self.sim.repair(client.as_str(), name.as_str());
        }
        self.sim.bounce(name.as_str());
        Some(format!("{name} restarts"))
    }

    fn heal(&mut self) {
        self.fake.set_faults_enabled(false);
        for server in &self.servers {
            self.fake.disarm_lease_stall(&server.name);
        }
        self.allocator.heal();
        self.sim.set_max_message_latency(Duration::from_millis(2));
        for index in 0..self.servers.len() {
            if let Some(server) = self.servers.get(index) {
                server.clock.failing.store(false, Ordering::Relaxed);
                server.clock.offset_ms.store(0, Ordering::Relaxed);
                let name = server.name.clone();
                if !self.sim.is_host_running(name.as_str()) {
                    self.restart(index);
                }
            }
        }
    }
}
