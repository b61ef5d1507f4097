//! What the load generator reads from Redis: `INFO commandstats` and `INFO cpu` before and
//! after a run (commands and Redis CPU per matched player), and what state of the run Redis
//! still holds afterwards.
//!
//! `INFO commandstats` counts the commands scripts run as well as the ones clients send, so
//! the per-command figures include both; the load generator's own polling commands (`INFO`,
//! `HLEN`, which the service never sends) are left out.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

/// Commands only the load generator sends during the measured window; not the service's.
const OWN_COMMANDS: [&str; 2] = ["info", "hlen"];

/// Pause between polls while waiting for the server to clean up.
const POLL_INTERVAL_MS: u64 = 50;

/// Calls and time of one command, as `INFO commandstats` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommandStat {
    /// Times the command ran.
    pub calls: u64,
    /// Microseconds Redis spent in it (scripts include their inner commands).
    pub usec: u64,
}

/// A snapshot of the counters the report needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Command name (lower case, `a|b` for subcommands) -> counters.
    pub commands: BTreeMap<String, CommandStat>,
    /// `used_cpu_user + used_cpu_sys` of the Redis process, in seconds.
    pub cpu_s: f64,
}

/// Parses the `# Commandstats` lines: `cmdstat_get:calls=1,usec=2,usec_per_call=2.00,...`.
pub fn parse_commandstats(text: &str) -> BTreeMap<String, CommandStat> {
    let mut stats = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("cmdstat_") else {
            continue;
        };
        let Some((name, fields)) = rest.split_once(':') else {
            continue;
        };
        let mut stat = CommandStat::default();
        for field in fields.split(',') {
            match field.split_once('=') {
                Some(("calls", value)) => stat.calls = value.parse().unwrap_or(0),
                Some(("usec", value)) => stat.usec = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        stats.insert(name.to_ascii_lowercase(), stat);
    }
    stats
}

/// Parses `used_cpu_sys` + `used_cpu_user` from `INFO cpu`.
pub fn parse_cpu_s(text: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .filter(|(name, _)| *name == "used_cpu_sys" || *name == "used_cpu_user")
        .filter_map(|(_, value)| value.parse::<f64>().ok())
        .sum()
}

/// Counter increases from `before` to `after`, without the load generator's own commands.
pub fn delta(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, CommandStat> {
    after
        .commands
        .iter()
        .filter(|(name, _)| !OWN_COMMANDS.contains(&name.as_str()))
        .filter_map(|(name, stat)| {
            let old = before.commands.get(name).copied().unwrap_or_default();
            let calls = stat.calls.saturating_sub(old.calls);
            (calls > 0).then(|| {
                let usec = stat.usec.saturating_sub(old.usec);
                (name.clone(), CommandStat { calls, usec })
            })
        })
        .collect()
}

/// Reads the counters now.
pub async fn snapshot(redis: &mut MultiplexedConnection) -> redis::RedisResult<Snapshot> {
    let commandstats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(redis)
        .await?;
    let cpu: String = redis::cmd("INFO").arg("cpu").query_async(redis).await?;
    Ok(Snapshot {
        commands: parse_commandstats(&commandstats),
        cpu_s: parse_cpu_s(&cpu),
    })
}

/// Waits until the players hash of `prefix` is empty (every session cleaned up), at most
/// `timeout`; returns whether it got there. Uses HLEN only, which the service never sends.
pub async fn wait_until_drained(
    redis: &mut MultiplexedConnection,
    prefix: &str,
    timeout: Duration,
) -> redis::RedisResult<bool> {
    let players = format!("{prefix}:players");
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let len: u64 = redis::cmd("HLEN").arg(&players).query_async(redis).await?;
        if len == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// How long the player leases of sessions that just ended may take to be released.
const LEASE_RELEASE_WAIT_MS: u64 = 2_000;

/// The player lease keys of `prefix` (sessions still holding their player), waiting up to
/// [`LEASE_RELEASE_WAIT_MS`] for the last sessions to release theirs.
async fn player_leases(
    redis: &mut MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<Vec<String>> {
    let until = tokio::time::Instant::now() + Duration::from_millis(LEASE_RELEASE_WAIT_MS);
    loop {
        let keys = scan_all(redis, &format!("{prefix}:session:*")).await?;
        if keys.is_empty() || tokio::time::Instant::now() >= until {
            return Ok(keys);
        }
        tokio::time::sleep(Duration::from_millis(POLL_INTERVAL_MS)).await;
    }
}

/// Every key matching `pattern`, by a whole SCAN iteration.
async fn scan_all(
    redis: &mut MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(redis)
            .await?;
        found.extend(keys);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// Describes every piece of matchmaking state of `prefix` that Redis still holds: players
/// entries, queue entries and loading sessions of `modes`, and player leases (every player
/// has closed, so every lease must be released). Empty when clean.
pub async fn leftovers(
    redis: &mut MultiplexedConnection,
    prefix: &str,
    modes: &[String],
) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let players = format!("{prefix}:players");
    let fields: u64 = redis::cmd("HLEN").arg(&players).query_async(redis).await?;
    if fields > 0 {
        found.push(format!("{players} has {fields} entries"));
    }
    for mode in modes {
        for key in [
            format!("{prefix}:queue:{mode}"),
            format!("{prefix}:loading_index:{mode}"),
        ] {
            let members: u64 = redis::cmd("SCARD").arg(&key).query_async(redis).await?;
            if members > 0 {
                found.push(format!("{key} has {members} members"));
            }
        }
    }
    let loadings = scan_all(redis, &format!("{prefix}:loading:*")).await?;
    found.extend(
        loadings
            .into_iter()
            .map(|key| format!("loading session {key}")),
    );
    let leases = player_leases(redis, prefix).await?;
    found.extend(leases.into_iter().map(|key| format!("player lease {key}")));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: commandstats lines parse, subcommands included, and the delta drops the load
    /// generator's own commands and unchanged ones.
    #[test]
    fn commandstats_parse_and_delta() {
        let before_text = "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=100,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=1,usec=5,usec_per_call=5.00\r\n";
        let after_text = "# Commandstats\r\ncmdstat_evalsha:calls=30,usec=400,usec_per_call=13.33\r\ncmdstat_info:calls=3,usec=15,usec_per_call=5.00\r\ncmdstat_client|setinfo:calls=2,usec=1\r\ncmdstat_publish:calls=5,usec=50\r\n";
        let before = Snapshot {
            commands: parse_commandstats(before_text),
            cpu_s: 1.0,
        };
        let after = Snapshot {
            commands: parse_commandstats(after_text),
            cpu_s: 2.5,
        };
        let d = delta(&before, &after);
        assert_eq!(
            d.get("evalsha"),
            Some(&CommandStat {
                calls: 20,
                usec: 300
            })
        );
        assert_eq!(d.get("publish").map(|s| s.calls), Some(5));
        assert_eq!(d.get("client|setinfo").map(|s| s.calls), Some(2));
        assert!(!d.contains_key("info"));
    }

    /// Goal: the Redis CPU time is user plus system.
    #[test]
    fn cpu_is_user_plus_sys() {
        let text = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\n";
        assert!((parse_cpu_s(text) - 3.75).abs() < 1e-9);
    }
}
