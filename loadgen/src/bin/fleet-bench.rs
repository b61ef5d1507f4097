//! `fleet-bench`: Redis commands and Redis microseconds per allocation of the fleet index,
//! for fleets of several sizes with most servers busy, plus the cost of one step of the
//! registry sweep that keeps the index in step (the upkeep). Runs the production code
//! (`FleetIndex`, its Lua scripts) against a Redis on this machine; BENCHMARKS.md has the
//! table and the command that reproduces it.
//!
//! One allocation here is what `RegistryAllocator::allocate` sends to Redis before the HTTP
//! call: the `fleet_claim` script and the GET that checks the claimed registration. To keep
//! the fleet at its busy share, each batch of claims is given back afterwards (unmeasured).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use match_server::allocator::fleet::FleetIndex;
use match_server::check::Checks;
use match_server::clock::SystemClock;
use match_server::keys::Keys;
use match_server::metrics::Metrics;
use match_server::probe::NoProbe;
use match_server::scripts::ScriptRunner;
use match_server::scripts::fleet_claim::ClaimReply;
use match_server::store::redis_store::RedisStore;
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

/// Measures the fleet index's cost per allocation against fleet size.
#[derive(Parser, Debug)]
#[command(about)]
struct Cli {
    /// Redis to measure on (loopback; a private one: its command counters are read).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Fleet sizes (registered servers), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,10000,100000")]
    servers: Vec<usize>,
    /// Share of the fleet registered busy, in percent.
    #[arg(long, default_value_t = 90)]
    busy_percent: usize,
    /// Measured allocations per fleet size.
    #[arg(long, default_value_t = 2_000)]
    allocations: usize,
}

/// The counters of the commands a client sends (script time includes its inner commands).
const CLIENT_COMMANDS: [&str; 4] = ["evalsha", "eval", "get", "scan"];
/// Registrations written per pipeline while setting a fleet up.
const SETUP_BATCH: usize = 1_000;

/// Calls and microseconds summed over [`CLIENT_COMMANDS`].
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    calls: u64,
    usec: u64,
}

/// `INFO commandstats`, summed over the client commands.
async fn client_cost(conn: &mut MultiplexedConnection) -> Result<Cost, String> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut stats: BTreeMap<String, Cost> = BTreeMap::new();
    for line in text.lines() {
        let Some((name, fields)) = line
            .trim()
            .strip_prefix("cmdstat_")
            .and_then(|r| r.split_once(':'))
        else {
            continue;
        };
        let mut cost = Cost::default();
        for field in fields.split(',') {
            match field.split_once('=') {
                Some(("calls", v)) => cost.calls = v.parse().unwrap_or(0),
                Some(("usec", v)) => cost.usec = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        stats.insert(name.to_ascii_lowercase(), cost);
    }
    Ok(CLIENT_COMMANDS
        .iter()
        .filter_map(|name| stats.get(*name))
        .fold(Cost::default(), |sum, c| Cost {
            calls: sum.calls + c.calls,
            usec: sum.usec + c.usec,
        }))
}

/// One fleet size's results.
struct Row {
    servers: usize,
    commands_per_allocation: f64,
    redis_usec_per_allocation: f64,
    client_usec_per_allocation: f64,
    sweep_commands_per_step: f64,
    sweep_redis_usec_per_step: f64,
    sweep_steps_per_round: usize,
}

/// Writes `servers` legacy registrations, `busy_percent` of them busy.
async fn register_fleet(
    conn: &mut MultiplexedConnection,
    registry_prefix: &str,
    servers: usize,
    busy_percent: usize,
) -> Result<(), String> {
    let busy = servers * busy_percent / 100;
    let mut index = 0;
    while index < servers {
        let mut pipe = redis::pipe();
        for i in index..servers.min(index + SETUP_BATCH) {
            let status = if i < busy { "busy" } else { "idle" };
            let json = format!(
                r#"{{"address":"10.0.{}.{}:7777","status":"{status}"}}"#,
                i / 250 % 250,
                i % 250
            );
            pipe.cmd("SET")
                .arg(format!("{registry_prefix}gs-{i}"))
                .arg(json)
                .ignore();
        }
        let () = pipe.query_async(conn).await.map_err(|e| e.to_string())?;
        index += SETUP_BATCH;
    }
    Ok(())
}

/// Deletes every key under `prefix`.
async fn delete_prefix(conn: &mut MultiplexedConnection, prefix: &str) -> Result<(), String> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1_000)
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Sweeps one full round (building the index) and returns the round's cost per step.
async fn sweep_round(
    fleet: &FleetIndex,
    conn: &mut MultiplexedConnection,
) -> Result<(Cost, usize), String> {
    let before = client_cost(conn).await?;
    let mut steps = 0;
    loop {
        steps += 1;
        let step = fleet.sweep_step().await.map_err(|e| e.to_string())?;
        if step.round_done {
            break;
        }
    }
    let after = client_cost(conn).await?;
    Ok((
        Cost {
            calls: after.calls - before.calls,
            usec: after.usec - before.usec,
        },
        steps,
    ))
}

/// Measures `allocations` claims (+ checking GET) in batches, giving each batch back.
async fn measure_claims(
    fleet: &FleetIndex,
    conn: &mut MultiplexedConnection,
    allocations: usize,
    batch: usize,
) -> Result<(Cost, Duration, usize), String> {
    let mut cost = Cost::default();
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < allocations {
        let mut tokens = Vec::with_capacity(batch);
        let before = client_cost(conn).await?;
        let started = Instant::now();
        for _ in 0..batch.min(allocations - done) {
            let token = Uuid::new_v4();
            match fleet.claim(token).await.map_err(|e| e.to_string())? {
                ClaimReply::Claimed { name, .. } => {
                    fleet.read(&name).await.map_err(|e| e.to_string())?;
                    tokens.push(token);
                }
                ClaimReply::None { .. } => return Err("the fleet ran out of free servers".into()),
            }
        }
        elapsed += started.elapsed();
        let after = client_cost(conn).await?;
        cost.calls += after.calls - before.calls;
        cost.usec += after.usec - before.usec;
        done += tokens.len();
        for token in tokens {
            fleet.release(token).await.map_err(|e| e.to_string())?;
        }
    }
    Ok((cost, elapsed, done))
}

async fn bench_one(
    cli: &Cli,
    servers: usize,
    conn: &mut MultiplexedConnection,
) -> Result<Row, String> {
    let run = Uuid::new_v4().simple().to_string();
    let key_prefix = format!("{{fleetbench-{run}}}");
    let registry_prefix = format!("fleetbench-{run}:dedicated_server:");
    register_fleet(conn, &registry_prefix, servers, cli.busy_percent).await?;
    let store = Arc::new(
        RedisStore::connect(&cli.redis, 5_000)
            .await
            .map_err(|e| e.to_string())?,
    );
    let keys = Keys::new(&key_prefix);
    let metrics = Arc::new(Metrics::default());
    let checks = Checks::new(metrics.clone(), Arc::new(NoProbe));
    let scripts = ScriptRunner::new(store.clone(), keys.clone(), metrics, checks);
    let fleet = FleetIndex::new(
        store,
        scripts,
        Arc::new(SystemClock),
        keys,
        registry_prefix.clone(),
        30_000,
    );
    let (round, steps) = sweep_round(&fleet, conn).await?;
    let idle = servers - servers * cli.busy_percent / 100;
    // Claim at most half the idle servers per batch: the fleet stays >= busy_percent busy.
    let batch = (idle / 2).max(1);
    let (cost, elapsed, done) = measure_claims(&fleet, conn, cli.allocations, batch).await?;
    delete_prefix(conn, &registry_prefix).await?;
    delete_prefix(conn, &key_prefix).await?;
    let per = |value: f64, count: usize| value / count.max(1) as f64;
    Ok(Row {
        servers,
        commands_per_allocation: per(cost.calls as f64, done),
        redis_usec_per_allocation: per(cost.usec as f64, done),
        client_usec_per_allocation: per(elapsed.as_secs_f64() * 1e6, done),
        sweep_commands_per_step: per(round.calls as f64, steps),
        sweep_redis_usec_per_step: per(round.usec as f64, steps),
        sweep_steps_per_round: steps,
    })
}

async fn run(cli: &Cli) -> Result<(), String> {
    let client = redis::Client::open(cli.redis.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "| registered servers | busy | client commands / allocation | Redis µs / allocation | round trip µs / allocation | sweep step: commands | sweep step: Redis µs | sweep steps / round |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &servers in &cli.servers {
        let row = bench_one(cli, servers, &mut conn).await?;
        println!(
            "| {} | {} % | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {} |",
            row.servers,
            cli.busy_percent,
            row.commands_per_allocation,
            row.redis_usec_per_allocation,
            row.client_usec_per_allocation,
            row.sweep_commands_per_step,
            row.sweep_redis_usec_per_step,
            row.sweep_steps_per_round
        );
    }
    Ok(())
}

/// Whether `url` names a Redis on this machine: the bench writes and deletes keys there.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = host_port.split('/').next().unwrap_or_default();
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !is_loopback_url(&cli.redis) {
        eprintln!("fleet-bench: --redis must be a Redis on this machine (loopback)");
        return ExitCode::from(2);
    }
    if cli.busy_percent >= 100 || cli.servers.contains(&0) {
        eprintln!("fleet-bench: --busy-percent must be below 100 and every size positive");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fleet-bench: cannot start the runtime: {error}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fleet-bench: {error}");
            ExitCode::from(3)
        }
    }
}
