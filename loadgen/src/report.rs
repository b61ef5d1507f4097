//! The run's report: throughput, latency percentiles (hdrhistogram), errors, the Redis cost
//! per matched player and the verification verdict, printed as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::monitor::MonitorCounts;
use crate::player::{Outcome, PlayerRecord};
use crate::redis_probe::CommandStat;
use crate::verify::{Finding, Verdict};

/// Largest latency the histograms hold, in microseconds (one hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant digits the histograms keep.
const HISTOGRAM_DIGITS: u8 = 3;
/// Findings listed one by one in the report; the rest are only counted.
const MAX_LISTED_FINDINGS: usize = 20;

/// Latency percentiles of one measurement, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

/// Builds percentiles from samples in microseconds.
pub fn percentiles(samples_us: impl Iterator<Item = u64>) -> Percentiles {
    let Ok(mut histogram) = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, HISTOGRAM_DIGITS)
    else {
        return Percentiles::default();
    };
    for sample in samples_us {
        histogram.saturating_record(sample.max(1));
    }
    if histogram.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1_000.0;
    Percentiles {
        count: histogram.len(),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p95_ms: ms(histogram.value_at_quantile(0.95)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}

/// One command's share of the Redis work.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandCost {
    /// Calls during the run.
    pub calls: u64,
    /// Calls per matched player.
    pub per_matched_player: f64,
    /// Mean microseconds Redis spent per call.
    pub usec_per_call: f64,
}

/// What the run cost Redis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedisCost {
    /// Every command Redis ran (scripts' inner commands included) per matched player.
    pub commands_per_matched_player: f64,
    /// Command name -> its cost.
    pub by_command: BTreeMap<String, CommandCost>,
    /// CPU time of the Redis process per matched player, in microseconds.
    pub cpu_us_per_matched_player: f64,
    /// Whether every players entry was gone before the counters were read.
    pub drained: bool,
    /// With `--monitor`: commands clients sent per matched player (`evalsha:<script>`).
    pub top_level_per_matched_player: Option<BTreeMap<String, f64>>,
    /// With `--monitor`: commands scripts ran per matched player.
    pub inner_per_matched_player: Option<BTreeMap<String, f64>>,
}

impl RedisCost {
    /// Divides the run's command counters and Redis CPU time by the matched players.
    pub fn new(
        delta: &BTreeMap<String, CommandStat>,
        cpu_s: f64,
        matched: usize,
        drained: bool,
    ) -> Self {
        let per_player = |value: f64| {
            if matched == 0 {
                0.0
            } else {
                value / matched as f64
            }
        };
        let by_command: BTreeMap<String, CommandCost> = delta
            .iter()
            .map(|(name, stat)| {
                let usec_per_call = if stat.calls == 0 {
                    0.0
                } else {
                    stat.usec as f64 / stat.calls as f64
                };
                let cost = CommandCost {
                    calls: stat.calls,
                    per_matched_player: per_player(stat.calls as f64),
                    usec_per_call,
                };
                (name.clone(), cost)
            })
            .collect();
        let total: u64 = delta.values().map(|stat| stat.calls).sum();
        Self {
            commands_per_matched_player: per_player(total as f64),
            by_command,
            cpu_us_per_matched_player: per_player(cpu_s * 1e6),
            drained,
            top_level_per_matched_player: None,
            inner_per_matched_player: None,
        }
    }

    /// Adds the MONITOR split, divided by the matched players.
    pub fn add_monitor(&mut self, counts: Option<&MonitorCounts>, matched: usize) {
        let Some(counts) = counts else {
            return;
        };
        let divide = |map: &BTreeMap<String, u64>| -> BTreeMap<String, f64> {
            map.iter()
                .map(|(name, calls)| (name.clone(), *calls as f64 / matched.max(1) as f64))
                .collect()
        };
        self.top_level_per_matched_player = Some(divide(&counts.top_level));
        self.inner_per_matched_player = Some(divide(&counts.inner));
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The WebSocket URLs players were spread over.
    pub servers: Vec<String>,
    /// Game mode played.
    pub mode: String,
    /// Players started per second as asked (0: as fast as the concurrency allows).
    pub rate_per_s: f64,
    /// Players started.
    pub players_started: usize,
    /// Players started per second as achieved.
    pub start_rate_per_s: f64,
    /// Players that got exactly one `match_found`.
    pub matched_players: usize,
    /// From the first `enqueue` to the last `match_found`, in seconds.
    pub window_s: f64,
    /// `matched_players / window_s`.
    pub matched_players_per_s: f64,
    /// How late players started against the open-loop schedule.
    pub start_lag: Percentiles,
    /// TCP connect plus WebSocket handshake.
    pub connect: Percentiles,
    /// `enqueue` sent to first `start_loading` received.
    pub enqueue_to_start_loading: Percentiles,
    /// `enqueue` sent to `match_found` received.
    pub enqueue_to_match_found: Percentiles,
    /// Error frames by code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// How players ended.
    pub outcomes: BTreeMap<String, u64>,
    /// A few failure details, for diagnosis.
    pub failure_samples: Vec<String>,
    /// Player tasks that panicked (a load generator bug).
    pub player_task_failures: usize,
    /// The duplicate/lost verification.
    pub verdict: VerdictSummary,
    /// What the run cost Redis, when `--redis` was given.
    pub redis: Option<RedisCost>,
    /// Game server sessions the stub created, when it ran.
    pub stub_sessions_created: Option<usize>,
}

/// The verdict with its findings counted and the first few listed.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictSummary {
    /// Whether the run passed.
    pub passed: bool,
    /// Players the server accepted.
    pub enqueued_players: usize,
    /// Distinct game sessions players were told about.
    pub matches: usize,
    /// Findings by kind.
    pub finding_counts: BTreeMap<String, usize>,
    /// The first findings.
    pub findings: Vec<Finding>,
}

impl From<&Verdict> for VerdictSummary {
    fn from(verdict: &Verdict) -> Self {
        Self {
            passed: verdict.passed(),
            enqueued_players: verdict.enqueued_players,
            matches: verdict.matches,
            finding_counts: verdict.counts(),
            findings: verdict
                .findings
                .iter()
                .take(MAX_LISTED_FINDINGS)
                .cloned()
                .collect(),
        }
    }
}

/// The timing part of the report, computed from the records alone.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    /// Players started per second as achieved.
    pub start_rate_per_s: f64,
    /// From the first `enqueue` to the last `match_found`, in seconds.
    pub window_s: f64,
    /// Lateness against the schedule.
    pub start_lag: Percentiles,
    /// Connect plus handshake.
    pub connect: Percentiles,
    /// `enqueue` to first `start_loading`.
    pub enqueue_to_start_loading: Percentiles,
    /// `enqueue` to `match_found`.
    pub enqueue_to_match_found: Percentiles,
}

/// Computes throughput windows and latency percentiles.
pub fn timings(records: &[PlayerRecord]) -> Timings {
    let first_start = records.iter().map(|r| r.started_us).min().unwrap_or(0);
    let last_start = records.iter().map(|r| r.started_us).max().unwrap_or(0);
    let first_enqueue = records.iter().filter_map(|r| r.enqueue_sent_us).min();
    let last_match = records
        .iter()
        .filter_map(|r| r.matches.first().map(|m| m.at_us))
        .max();
    let window_us = match (first_enqueue, last_match) {
        (Some(first), Some(last)) => last.saturating_sub(first),
        _ => 0,
    };
    let start_span_s = last_start.saturating_sub(first_start) as f64 / 1e6;
    Timings {
        start_rate_per_s: if start_span_s > 0.0 {
            records.len().saturating_sub(1) as f64 / start_span_s
        } else {
            0.0
        },
        window_s: window_us as f64 / 1e6,
        start_lag: percentiles(
            records
                .iter()
                .map(|r| r.started_us.saturating_sub(r.scheduled_us)),
        ),
        connect: percentiles(records.iter().filter_map(|r| {
            r.connected_us
                .map(|connected| connected.saturating_sub(r.started_us))
        })),
        enqueue_to_start_loading: percentiles(
            records
                .iter()
                .filter_map(PlayerRecord::enqueue_to_start_loading_us),
        ),
        enqueue_to_match_found: percentiles(
            records
                .iter()
                .filter_map(PlayerRecord::enqueue_to_match_found_us),
        ),
    }
}

/// Error codes and outcomes counted, plus a few failure details.
pub fn tallies(
    records: &[PlayerRecord],
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>, Vec<String>) {
    const MAX_FAILURE_SAMPLES: usize = 5;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples = Vec::new();
    for record in records {
        for code in &record.error_codes {
            *errors.entry(code.clone()).or_insert(0) += 1;
        }
        *outcomes.entry(outcome_name(record.outcome)).or_insert(0) += 1;
        if let Some(failure) = &record.failure
            && record.outcome != Outcome::Matched
            && samples.len() < MAX_FAILURE_SAMPLES
        {
            samples.push(format!("{}: {failure}", record.player_id));
        }
    }
    (errors, outcomes, samples)
}

fn outcome_name(outcome: Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{outcome:?}"))
}

/// Renders the report for people.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "servers            {}", report.servers.join(", "));
    let _ = writeln!(
        out,
        "players started    {} ({:.0}/s achieved, {} asked)",
        report.players_started,
        report.start_rate_per_s,
        if report.rate_per_s > 0.0 {
            format!("{:.0}/s", report.rate_per_s)
        } else {
            "max".to_owned()
        }
    );
    let _ = writeln!(
        out,
        "matched players    {} in {:.2} s = {:.0} matched players/s",
        report.matched_players, report.window_s, report.matched_players_per_s
    );
    let row = |name: &str, p: &Percentiles| {
        format!(
            "{name:<34} p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  (n={})\n",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.count
        )
    };
    out.push_str(&row("start lag (vs schedule)", &report.start_lag));
    out.push_str(&row("connect + handshake", &report.connect));
    out.push_str(&row(
        "enqueue -> start_loading",
        &report.enqueue_to_start_loading,
    ));
    out.push_str(&row(
        "enqueue -> match_found",
        &report.enqueue_to_match_found,
    ));
    let _ = writeln!(out, "outcomes           {:?}", report.outcomes);
    let _ = writeln!(out, "errors by code     {:?}", report.errors_by_code);
    for sample in &report.failure_samples {
        let _ = writeln!(out, "  failure: {sample}");
    }
    render_redis(&mut out, report.redis.as_ref());
    render_verdict(&mut out, report);
    out
}

fn render_redis(out: &mut String, redis: Option<&RedisCost>) {
    let Some(redis) = redis else {
        return;
    };
    let _ = writeln!(
        out,
        "redis              {:.2} commands/matched player (inner script commands included), {:.1} us CPU/matched player, drained: {}",
        redis.commands_per_matched_player, redis.cpu_us_per_matched_player, redis.drained
    );
    for (name, cost) in &redis.by_command {
        let _ = writeln!(
            out,
            "  {name:<20} {:>10} calls  {:>7.3}/matched player  {:>7.2} us/call",
            cost.calls, cost.per_matched_player, cost.usec_per_call
        );
    }
    let split = [
        (
            "sent by clients (MONITOR)",
            &redis.top_level_per_matched_player,
        ),
        (
            "run inside scripts (MONITOR)",
            &redis.inner_per_matched_player,
        ),
    ];
    for (title, map) in split {
        if let Some(map) = map {
            let total: f64 = map.values().sum();
            let _ = writeln!(out, "  {title}: {total:.3}/matched player");
            for (name, per_player) in map {
                let _ = writeln!(out, "    {name:<28} {per_player:>7.3}/matched player");
            }
        }
    }
}

fn render_verdict(out: &mut String, report: &Report) {
    let verdict = &report.verdict;
    let _ = writeln!(
        out,
        "verification       {} ({} enqueued, {} matched in {} matches; findings {:?}; player task failures {})",
        if verdict.passed && report.player_task_failures == 0 {
            "PASSED"
        } else {
            "FAILED"
        },
        verdict.enqueued_players,
        report.matched_players,
        verdict.matches,
        verdict.finding_counts,
        report.player_task_failures
    );
    for finding in &verdict.findings {
        let _ = writeln!(out, "  {finding:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: percentiles come out in milliseconds from microsecond samples.
    #[test]
    fn percentiles_in_ms() {
        let p = percentiles((1..=100).map(|i| i * 1_000));
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(percentiles(std::iter::empty()).count, 0);
    }
}
