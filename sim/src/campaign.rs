//! Campaigns: many seeds on every core, a summary of what was exercised, the determinism
//! check, replay output and shrinking of a failing scenario.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;

use crate::oracle::{Invariant, Violation};
use crate::scenario::{self, Behavior, Scenario, Shape};
use crate::trace::{self, Aliases, LevelName, Source};
use crate::world::{self, RunConfig, RunReport};

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// How many seeds.
    pub seeds: u64,
    /// The first seed.
    pub start: u64,
    /// Worker threads.
    pub jobs: usize,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// World sizes drawn.
    pub shape: Shape,
    /// How each run is driven.
    pub config: RunConfig,
}

/// The result of one seed, without its trace.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Checks performed.
    pub checks: u64,
    /// Faults injected by kind.
    pub faults: BTreeMap<String, u64>,
    /// Players by behavior.
    pub behaviors: BTreeMap<&'static str, u64>,
    /// Sim time covered.
    pub sim_ms: u64,
    /// Matches made.
    pub matches: u64,
    /// The two hashes when the determinism check found them different.
    pub nondeterministic: Option<(u64, u64)>,
}

impl SeedResult {
    fn from_report(report: &RunReport) -> Self {
        let mut behaviors = BTreeMap::new();
        for player in &report.scenario.players {
            *behaviors.entry(player.behavior.name()).or_insert(0) += 1;
        }
        Self {
            seed: report.scenario.seed,
            violations: report.violations.clone(),
            checks: report.checks,
            faults: report.faults.clone(),
            behaviors,
            sim_ms: report.sim_ms,
            matches: report.matches,
            nondeterministic: None,
        }
    }

    /// Whether the seed passed every check.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.nondeterministic.is_none()
    }
}

/// Runs one seed (twice when checking determinism).
pub fn run_seed(
    seed: u64,
    shape: Shape,
    config: &RunConfig,
    check_determinism: bool,
) -> SeedResult {
    let Some(scenario) = scenario::generate(seed, shape) else {
        let violation = Violation {
            invariant: Invariant::NoPanic,
            at_ms: 0,
            detail: "no scenario for this seed".into(),
        };
        return SeedResult {
            seed,
            violations: vec![violation],
            checks: 0,
            faults: BTreeMap::new(),
            behaviors: BTreeMap::new(),
            sim_ms: 0,
            matches: 0,
            nondeterministic: None,
        };
    };
    let report = world::run(&scenario, config);
    let mut result = SeedResult::from_report(&report);
    if check_determinism {
        let again = world::run(&scenario, config);
        if again.trace_hash != report.trace_hash {
            result.nondeterministic = Some((report.trace_hash, again.trace_hash));
        }
    }
    result
}

/// Aggregated results of a campaign.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed, in seed order.
    pub failures: Vec<SeedResult>,
    /// Wall time.
    pub wall: Duration,
    /// Total sim time.
    pub sim_ms: u64,
    /// Total invariant checks.
    pub checks: u64,
    /// Faults injected: (seeds with the kind, total count).
    pub faults: BTreeMap<String, (u64, u64)>,
    /// Behaviors: (seeds with it, players).
    pub behaviors: BTreeMap<&'static str, (u64, u64)>,
    /// Matches made.
    pub matches: u64,
    /// Seeds run twice for determinism.
    pub determinism_checked: u64,
}

impl Summary {
    fn add(&mut self, result: SeedResult, determinism: bool) {
        self.seeds += 1;
        self.sim_ms += result.sim_ms;
        self.checks += result.checks;
        self.matches += result.matches;
        if determinism {
            self.determinism_checked += 1;
        }
        for (kind, count) in &result.faults {
            if *count > 0 {
                let entry = self.faults.entry(kind.clone()).or_default();
                entry.0 += 1;
                entry.1 += count;
            }
        }
        for (behavior, count) in &result.behaviors {
            let entry = self.behaviors.entry(behavior).or_default();
            entry.0 += 1;
            entry.1 += count;
        }
        if !result.passed() {
            self.failures.push(result);
        }
    }

    /// Seeds per wall second.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs a campaign on `jobs` threads; `progress` is called once per finished seed.
pub fn fuzz(options: &FuzzOptions, mut progress: impl FnMut(&SeedResult)) -> Summary {
    let started = Instant::now();
    let next = AtomicU64::new(options.start);
    let end = options.start.saturating_add(options.seeds);
    let (sender, receiver) = mpsc::channel();
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let result = run_seed(
                        seed,
                        options.shape,
                        &options.config,
                        options.check_determinism,
                    );
                    if sender.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for result in receiver {
            progress(&result);
            summary.add(result, options.check_determinism);
        }
    });
    summary.failures.sort_by_key(|failure| failure.seed);
    summary.wall = started.elapsed();
    summary
}

/// The summary table, as `fuzz` prints it.
pub fn render_summary(options: &FuzzOptions, summary: &Summary) -> String {
    let mut out = String::new();
    let wall = summary.wall.as_secs_f64();
    let ratio = summary.sim_ms as f64 / 1_000.0 / wall.max(1e-9);
    let _ = writeln!(
        out,
        "match-sim fuzz: seeds {}..{} on {} jobs",
        options.start,
        options.start + options.seeds,
        options.jobs
    );
    let _ = writeln!(out, "  seeds run            {}", summary.seeds);
    let _ = writeln!(out, "  seeds failed         {}", summary.failures.len());
    let _ = writeln!(out, "  wall time            {wall:.1} s");
    let _ = writeln!(
        out,
        "  seeds/s              {:.1}",
        summary.seeds_per_second()
    );
    let _ = writeln!(
        out,
        "  sim time             {:.0} s ({ratio:.0}x wall)",
        summary.sim_ms as f64 / 1_000.0
    );
    let _ = writeln!(out, "  matches made         {}", summary.matches);
    let _ = writeln!(out, "  invariant checks     {}", summary.checks);
    let _ = writeln!(
        out,
        "  determinism checked  {} seeds",
        summary.determinism_checked
    );
    let _ = writeln!(out, "invariants checked on every seed:");
    for invariant in Invariant::ALL {
        let broken = summary
            .failures
            .iter()
            .filter(|f| f.violations.iter().any(|v| v.invariant == invariant))
            .count();
        let _ = writeln!(
            out,
            "  {:<28} {}",
            invariant.name(),
            if broken == 0 {
                "held".to_owned()
            } else {
                format!("BROKEN in {broken} seeds")
            }
        );
    }
    let _ = writeln!(out, "faults injected:               seeds      total");
    for (kind, (seeds, total)) in &summary.faults {
        let _ = writeln!(out, "  {kind:<28} {seeds:>6} {total:>10}");
    }
    let _ = writeln!(out, "behaviours exercised:          seeds    players");
    for behavior in Behavior::ALL {
        let (seeds, players) = summary
            .behaviors
            .get(behavior.name())
            .copied()
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<28} {seeds:>6} {players:>10}", behavior.name());
    }
    for failure in &summary.failures {
        let _ = writeln!(out, "FAILED seed {}", failure.seed);
        for violation in failure.violations.iter().take(5) {
            let _ = writeln!(out, "  {violation}");
        }
        if let Some((first, second)) = failure.nondeterministic {
            let _ = writeln!(
                out,
                "  not deterministic: trace hash {first:016x} then {second:016x}"
            );
        }
        let _ = writeln!(out, "  replay: match-sim replay --seed {}", failure.seed);
    }
    out
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

/// Shrinks the scenario of a failing seed; `None` when the seed passes. Candidates must
/// break the same invariant as the original run.
pub fn shrink(
    seed: u64,
    shape: Shape,
    config: &RunConfig,
    max_runs: usize,
    progress: impl FnMut(usize, &Scenario),
) -> Option<(Scenario, Vec<Violation>)> {
    let tree = scenario::tree(seed, shape)?;
    let first = world::run(&tree.current(), config);
    let invariant = first.violations.first()?.invariant;
    let fails = |scenario: &Scenario| {
        let report = world::run(scenario, config);
        let same = report.violations.iter().any(|v| v.invariant == invariant);
        same.then_some(report.violations)
    };
    Some(shrink_tree(
        tree,
        first.violations,
        fails,
        max_runs,
        progress,
    ))
}

/// proptest's shrinking loop over a failing value tree: simplify while the candidate still
/// fails, complicate when it passes, until neither moves or `max_runs` candidates ran.
pub fn shrink_tree<T>(
    mut tree: Box<dyn ValueTree<Value = Scenario>>,
    failure: T,
    fails: impl Fn(&Scenario) -> Option<T>,
    max_runs: usize,
    mut progress: impl FnMut(usize, &Scenario),
) -> (Scenario, T) {
    let mut best = (tree.current(), failure);
    if !tree.simplify() {
        return best;
    }
    for runs in 1..=max_runs {
        let candidate = tree.current();
        progress(runs, &candidate);
        if let Some(failure) = fails(&candidate) {
            best = (candidate, failure);
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: shrinking finds the minimal scenario of a failure - here "at least three
    /// players never complete loading" must shrink to exactly three such players and no
    /// faults - and the result still fails.
    #[test]
    fn shrinking_reaches_a_minimal_failing_scenario() {
        let never = |s: &Scenario| {
            s.players
                .iter()
                .filter(|p| p.behavior == Behavior::NeverCompletes)
                .count()
        };
        let fails = |s: &Scenario| (never(s) >= 3).then_some(());
        let seed = (0..500)
            .find(|seed| {
                scenario::generate(*seed, Shape::default())
                    .is_some_and(|s| fails(&s).is_some() && s.players.len() > 4)
            })
            .expect("a seed with three never-completing players");
        let tree = scenario::tree(seed, Shape::default()).unwrap();
        let (minimal, ()) = shrink_tree(tree, (), fails, 10_000, |_, _| {});
        assert_eq!(never(&minimal), 3, "{minimal:?}");
        assert_eq!(
            minimal.players.len(),
            4,
            "the shape keeps at least 4 players"
        );
        assert_eq!(
            minimal.faults.partitions.len()
                + minimal.faults.process.len()
                + minimal.faults.clock.len(),
            0
        );
    }
}
