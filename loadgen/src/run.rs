//! One whole run: stub game server and registry, Redis counters before, the players, Redis
//! clean-up and counters after, verification, report.

use redis::aio::MultiplexedConnection;

use crate::cli::Plan;
use crate::drive::{Driven, drive};
use crate::monitor::Monitor;
use crate::redis_probe::{self, Snapshot};
use crate::report::{RedisCost, Report, VerdictSummary, tallies, timings};
use crate::stub_gs::{self, StubGameServer};
use crate::verify::{Evidence, Verdict, verify};

/// Why a run could not be carried out (as opposed to a run that found problems).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Redis could not be reached or answered an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The stub game server could not bind.
    #[error("stub game server: {0}")]
    Stub(std::io::Error),
    /// The MONITOR tap could not start.
    #[error("redis MONITOR: {0}")]
    Monitor(std::io::Error),
}

/// The Redis side of a run.
struct RedisSide {
    /// The connection for counters and checks.
    connection: MultiplexedConnection,
    /// Registry keys this run created.
    registry_keys: Vec<String>,
}

/// Carries out the plan; the report says whether the verification passed.
pub async fn run(plan: &Plan) -> Result<Report, RunError> {
    let stub = match plan.stub_gs {
        Some(bind) => Some(StubGameServer::start(bind).await.map_err(RunError::Stub)?),
        None => None,
    };
    let mut redis = match &plan.redis_url {
        Some(url) => Some(connect_redis(url, plan, stub.as_ref()).await?),
        None => None,
    };
    let before = match &mut redis {
        Some(side) => Some(redis_probe::snapshot(&mut side.connection).await?),
        None => None,
    };
    let tap = match plan.monitor {
        Some(addr) => Some(Monitor::start(addr).await.map_err(RunError::Monitor)?),
        None => None,
    };
    let driven = drive(plan).await;
    let (cost_inputs, leftovers) = match (&mut redis, before) {
        (Some(side), Some(before)) => {
            let (after, drained) = settle(side, plan).await?;
            let tapped = match tap {
                Some(tap) => Some(tap.finish().await),
                None => None,
            };
            let leftovers = redis_probe::leftovers(
                &mut side.connection,
                &plan.key_prefix,
                std::slice::from_ref(&plan.mode),
            )
            .await?;
            stub_gs::unregister(&mut side.connection, &side.registry_keys).await?;
            (Some((before, after, drained, tapped)), leftovers)
        }
        _ => (None, Vec::new()),
    };
    let evidence = Evidence {
        players_per_match: plan.players_per_match,
        game_server_sessions: stub.as_ref().map(StubGameServer::sessions),
        redis_leftovers: leftovers,
    };
    let verdict = verify(&driven.records, &evidence);
    let redis_cost = cost_inputs.map(|(before, after, drained, tapped)| {
        let delta = redis_probe::delta(&before, &after);
        let mut cost = RedisCost::new(
            &delta,
            after.cpu_s - before.cpu_s,
            verdict.matched_players,
            drained,
        );
        cost.add_monitor(tapped.as_ref(), verdict.matched_players);
        cost
    });
    let stub_sessions = evidence.game_server_sessions.as_ref().map(|s| s.len());
    Ok(build_report(
        plan,
        &driven,
        &verdict,
        redis_cost,
        stub_sessions,
    ))
}

/// Connects to Redis and registers the stub game server, if any.
async fn connect_redis(
    url: &str,
    plan: &Plan,
    stub: Option<&StubGameServer>,
) -> Result<RedisSide, RunError> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let registry_keys = match stub {
        Some(stub) => {
            let keys = stub_gs::registry_keys(&plan.registry_prefix, plan.stub_gs_servers);
            stub_gs::register(&mut connection, &keys, stub.addr).await?;
            keys
        }
        None => Vec::new(),
    };
    Ok(RedisSide {
        connection,
        registry_keys,
    })
}

/// Waits for the server's clean-up, then reads the counters.
async fn settle(side: &mut RedisSide, plan: &Plan) -> Result<(Snapshot, bool), RunError> {
    let drained = redis_probe::wait_until_drained(
        &mut side.connection,
        &plan.key_prefix,
        plan.settle_timeout,
    )
    .await?;
    let after = redis_probe::snapshot(&mut side.connection).await?;
    Ok((after, drained))
}

fn build_report(
    plan: &Plan,
    driven: &Driven,
    verdict: &Verdict,
    redis: Option<RedisCost>,
    stub_sessions_created: Option<usize>,
) -> Report {
    let timings = timings(&driven.records);
    let (errors_by_code, outcomes, failure_samples) = tallies(&driven.records);
    let matched_players_per_s = if timings.window_s > 0.0 {
        verdict.matched_players as f64 / timings.window_s
    } else {
        0.0
    };
    Report {
        servers: plan.targets.iter().map(|t| t.url.clone()).collect(),
        mode: plan.mode.clone(),
        rate_per_s: plan.rate_per_s,
        players_started: driven.records.len() + driven.task_failures,
        start_rate_per_s: timings.start_rate_per_s,
        matched_players: verdict.matched_players,
        window_s: timings.window_s,
        matched_players_per_s,
        start_lag: timings.start_lag,
        connect: timings.connect,
        enqueue_to_start_loading: timings.enqueue_to_start_loading,
        enqueue_to_match_found: timings.enqueue_to_match_found,
        errors_by_code,
        outcomes,
        failure_samples,
        player_task_failures: driven.task_failures,
        verdict: VerdictSummary::from(verdict),
        redis,
        stub_sessions_created,
    }
}
