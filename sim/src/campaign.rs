//! Campaigns: many seeds on every core (optionally one shard of a seed window), a record
//! per seed, the summary built from those records, and replay output.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::oracle::{Invariant, Violation};
use crate::records::{self, Outcome, SeedRecord, Shard, Summary, ViolationRecord};
use crate::scenario::{self, Behavior, Scenario, Shape};
use crate::shrink::{self, Budget};
use crate::trace::{self, Aliases, LevelName, Source};
use crate::world::{self, RunConfig, RunReport};

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// How many seeds the window holds.
    pub seeds: u64,
    /// The first seed of the window.
    pub start: u64,
    /// Which part of the window this campaign runs.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: usize,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// World sizes drawn.
    pub shape: Shape,
    /// How each run is driven.
    pub config: RunConfig,
    /// How much shrinking a failing seed may cost; `None`: failures are not shrunk.
    pub shrink: Option<Budget>,
    /// The commit of this binary, for the records.
    pub commit: String,
}

/// One seed's result: its record, and the shrunk scenario when it failed and was shrunk.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    /// The record (one JSON line).
    pub record: SeedRecord,
    /// The smallest failing scenario found.
    pub shrunk: Option<Scenario>,
}

/// Runs one seed (twice when checking determinism) and shrinks it when it fails.
pub fn run_seed(seed: u64, options: &FuzzOptions) -> SeedOutcome {
    let started = Instant::now();
    let Some(tree) = scenario::tree(seed, options.shape) else {
        let violation = Violation {
            invariant: Invariant::NoPanic,
            at_ms: 0,
            detail: "no scenario for this seed".into(),
        };
        let record = failed_record(seed, &options.commit, violation);
        return SeedOutcome {
            record,
            shrunk: None,
        };
    };
    let scenario = tree.current();
    let report = world::run(&scenario, &options.config);
    let mut nondeterministic = None;
    if options.check_determinism {
        let again = world::run(&scenario, &options.config);
        if again.trace_hash != report.trace_hash {
            nondeterministic = Some((
                format!("{:016x}", report.trace_hash),
                format!("{:016x}", again.trace_hash),
            ));
        }
    }
    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut record = record_of(&report, &options.commit, wall_ms);
    record.determinism_checked = options.check_determinism;
    if nondeterministic.is_some() && record.passed() {
        record.outcome = Outcome::Nondeterministic;
    }
    record.nondeterministic = nondeterministic;
    let mut shrunk = None;
    if let (Some(budget), Some(first)) = (options.shrink, report.violations.first()) {
        let invariant = first.invariant.name();
        let violations = report.violations.clone();
        if let Some(found) = shrink::shrink_failure(
            tree,
            violations,
            invariant,
            &options.config,
            budget,
            |_, _| {},
        ) {
            record.shrunk = Some(found.record());
            shrunk = Some(found.scenario);
        }
    }
    SeedOutcome { record, shrunk }
}

/// The record of a run.
pub fn record_of(report: &RunReport, commit: &str, wall_ms: u64) -> SeedRecord {
    let scenario = &report.scenario;
    let mut behaviors = std::collections::BTreeMap::new();
    for player in &scenario.players {
        *behaviors
            .entry(player.behavior.name().to_owned())
            .or_insert(0) += 1;
    }
    let violations: Vec<ViolationRecord> = report.violations.iter().map(violation_record).collect();
    let mut broken: Vec<String> = violations.iter().map(|v| v.invariant.clone()).collect();
    broken.sort();
    broken.dedup();
    SeedRecord {
        seed: scenario.seed,
        commit: commit.to_owned(),
        scenario_hash: shrink::scenario_hash(scenario),
        trace_hash: format!("{:016x}", report.trace_hash),
        outcome: if violations.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        first_violation: violations.first().cloned(),
        violations: violations
            .into_iter()
            .take(records::MAX_RECORDED_VIOLATIONS)
            .collect(),
        broken,
        sim_ms: report.sim_ms,
        wall_ms,
        faults_drawn: scenario
            .fault_kinds()
            .iter()
            .map(|k| (*k).to_owned())
            .collect(),
        faults: report.faults.clone(),
        behaviors,
        checks: report.checks,
        matches: report.matches,
        coverage: report.coverage.clone(),
        determinism_checked: false,
        nondeterministic: None,
        shrunk: None,
    }
}

fn violation_record(violation: &Violation) -> ViolationRecord {
    ViolationRecord {
        invariant: violation.invariant.name().to_owned(),
        at_ms: violation.at_ms,
        detail: violation.detail.clone(),
    }
}

/// The record of a seed that could not run at all.
fn failed_record(seed: u64, commit: &str, violation: Violation) -> SeedRecord {
    let violation = violation_record(&violation);
    SeedRecord {
        seed,
        commit: commit.to_owned(),
        scenario_hash: String::new(),
        trace_hash: String::new(),
        outcome: Outcome::Fail,
        first_violation: Some(violation.clone()),
        broken: vec![violation.invariant.clone()],
        violations: vec![violation],
        sim_ms: 0,
        wall_ms: 0,
        faults_drawn: Vec::new(),
        faults: std::collections::BTreeMap::new(),
        behaviors: std::collections::BTreeMap::new(),
        checks: 0,
        matches: 0,
        coverage: std::collections::BTreeMap::new(),
        determinism_checked: false,
        nondeterministic: None,
        shrunk: None,
    }
}

/// Runs the shard's seeds on `jobs` threads; `progress` sees each seed as it finishes (in
/// any order). Returns the summary and the campaign's wall time.
pub fn fuzz(options: &FuzzOptions, mut progress: impl FnMut(&SeedOutcome)) -> (Summary, Duration) {
    let started = Instant::now();
    let seeds: Vec<u64> = options.shard.seeds(options.start, options.seeds).collect();
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            let sender = sender.clone();
            let (next, seeds) = (&next, &seeds);
            scope.spawn(move || {
                while let Some(seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if sender.send(run_seed(*seed, options)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for outcome in receiver {
            progress(&outcome);
            summary.add(&outcome.record);
        }
    });
    (summary, started.elapsed())
}

/// Invariant names for the summary's table.
pub fn invariant_names() -> Vec<String> {
    Invariant::ALL.iter().map(|i| i.name().to_owned()).collect()
}

/// Behaviour names for the summary's table.
pub fn behavior_names() -> Vec<String> {
    Behavior::ALL.iter().map(|b| b.name().to_owned()).collect()
}

/// The header line of a campaign's summary.
pub fn fuzz_header(options: &FuzzOptions) -> String {
    let shard = if options.shard == Shard::ALL {
        String::new()
    } else {
        format!(" shard {}", options.shard)
    };
    format!(
        "match-sim fuzz: seeds {}..{}{shard} on {} jobs",
        options.start,
        options.start.saturating_add(options.seeds),
        options.jobs
    )
}

/// The replay output: scenario header, timeline and verdict, identical on every run.
pub fn render_replay(report: &RunReport, verbose: bool) -> String {
    let scenario = &report.scenario;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {}: {} servers, {} client hosts, {} players, faults: {}",
        scenario.seed,
        scenario.servers,
        scenario.client_hosts,
        scenario.players.len(),
        list_or_none(&scenario.fault_kinds())
    );
    let mut aliases = Aliases::with_players(scenario.player_ids());
    let modes = world::sim_settings().modes;
    for (index, player) in scenario.players.iter().enumerate() {
        let mode = modes
            .get(usize::from(player.mode) % modes.len().max(1))
            .map(|mode| mode.name.as_str())
            .unwrap_or_default();
        let quits = if player.quits_on_loss {
            ", gives up if cut off"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  P{index}: {} in {mode}, starts at {} ms{quits}",
            player.behavior.name(),
            player.start_ms
        );
    }
    let keep = |event: &trace::TraceEvent| {
        verbose
            || !matches!(
                event.source,
                Source::Service(LevelName::Debug | LevelName::Trace)
            )
    };
    out.push_str(&trace::render(&report.trace, &mut aliases, keep));
    out.push_str(&render_verdict(report, &mut aliases));
    out
}

/// The verdict lines of a run.
pub fn render_verdict(report: &RunReport, aliases: &mut Aliases) -> String {
    let mut out = String::new();
    if report.violations.is_empty() {
        let _ = writeln!(
            out,
            "verdict: PASS ({} checks, {} matches)",
            report.checks, report.matches
        );
    } else {
        let _ = writeln!(out, "verdict: FAIL");
        for violation in &report.violations {
            let _ = writeln!(out, "  {}", aliases.apply(&violation.to_string()));
        }
    }
    out
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// What `shrink` prints of a shrunk scenario: replay's header and verdict, with the same
/// P/# aliases as `replay --scenario` of the written file prints.
pub fn render_shrunk(report: &RunReport) -> String {
    let text = render_replay(report, false);
    let header_lines = 1 + report.scenario.players.len();
    let mut out = String::new();
    for line in text.lines().take(header_lines) {
        let _ = writeln!(out, "{line}");
    }
    for line in text
        .lines()
        .skip_while(|line| !line.starts_with("verdict:"))
    {
        let _ = writeln!(out, "{line}");
    }
    out
}
