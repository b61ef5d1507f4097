//! Builds the world: server hosts running the real service on the fakes, client hosts
//! running players, the fake Redis's fault plan and the oracle's bounds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use match_server::config::Settings;
use match_server::matchmaker::Deps;
use match_server::server;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;

use super::{MAX_CLOCK_SKEW_MS, RunConfig};
use crate::fake_redis::{FakeRedis, FaultPlan};
use crate::oracle::{Bounds, Oracle, WorldTiming};
use crate::player::{Player, SERVER_PORT};
use crate::probe::FactLog;
use crate::scenario::Scenario;
use crate::seams::{SimAllocator, SimClock, SimIds, TurmoilListener};
use crate::trace::TraceLog;

/// What the driver holds for each server instance.
pub struct ServerHandle {
    /// Its host name.
    pub name: String,
    /// Its clock, for clock faults.
    pub clock: SimClock,
    /// Wakes its graceful shutdown.
    pub shutdown: Arc<Notify>,
}

/// The oracle's bounds for the simulation's settings.
pub fn bounds(settings: &Settings, config: &RunConfig) -> Bounds {
    Bounds::new(
        settings,
        WorldTiming {
            tick_ms: config.tick_ms,
            check_every_ms: config.check_every_ms,
            max_latency_ms: u64::from(crate::scenario::MAX_LATENCY_MS),
            max_clock_skew_ms: MAX_CLOCK_SKEW_MS,
        },
    )
}

/// The fake Redis's fault plan from the scenario's per-mille rates.
pub fn fault_plan(scenario: &Scenario) -> FaultPlan {
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

/// Registers the server hosts; each (re)start runs `server::run` on the shared fakes.
pub fn start_servers(
    sim: &mut turmoil::Sim<'_>,
    scenario: &Scenario,
    settings: &Arc<Settings>,
    fake: &FakeRedis,
    allocator: &Arc<SimAllocator>,
    facts: &FactLog,
    log: &TraceLog,
) -> Vec<ServerHandle> {
    let mut handles = Vec::new();
    for index in 0..usize::from(scenario.servers.max(1)) {
        let name = format!("server-{index}");
        let clock = SimClock::default();
        let shutdown = Arc::new(Notify::new());
        let ids = Arc::new(SimIds::new(scenario.seed.wrapping_add(index as u64 + 1)));
        let (settings, allocator) = (settings.clone(), allocator.clone());
        let fake = fake.for_client(&name);
        let (log, host_name) = (log.clone(), name.clone());
        let (host_clock, host_shutdown) = (clock.clone(), shutdown.clone());
        let probe = Arc::new(facts.probe(&name));
        sim.host(name.as_str(), move || {
            let deps = Deps {
                store: crate::recording::store(Arc::new(fake.clone()), &host_name, &log),
                clock: Arc::new(host_clock.clone()),
                ids: ids.clone(),
                allocator: crate::recording::allocator(allocator.clone(), &host_name, &log),
                probe: probe.clone(),
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

/// Registers the client hosts; each runs its players as local tasks and never finishes.
pub fn start_clients(
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
            let other_mode = modes
                .get((usize::from(plan.mode) + 1) % modes.len().max(1))
                .cloned()
                .unwrap_or_default();
            oracle
                .borrow_mut()
                .add_player(*id, &mode, &name, plan.behavior.completes_loading());
            players.push(Player {
                index,
                id: *id,
                token: super::player_token(*id),
                plan: plan.clone(),
                host: name.clone(),
                servers: servers.clone(),
                mode,
                other_mode,
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
