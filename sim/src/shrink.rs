//! Shrinking a failing scenario, and the signature that groups failures.
//!
//! Three passes, all deterministic and bounded in runs (and, as a safety net, in wall time):
//! proptest's own shrinking of the seed's value tree, then dropping every fault kind the
//! failure does not need, then turning every behaviour the failure does not need into
//! `normal`.
//!
//! The signature of a failure is the invariant plus the shape of the violation its shrunk
//! scenario produces: the violation's text with ids, numbers and times masked. What the
//! shrunk scenario still needs (fault kinds, behaviours) is kept beside it for people, but
//! not in the signature: which kinds a shrink can drop depends on the seed's interleaving
//! (dropping a kind shifts every later random draw), so seeds of one bug often keep
//! different kinds, while the violation they end in reads the same.

use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;

use crate::oracle::Violation;
use crate::records::{ShrunkRecord, fnv_hex};
use crate::scenario::{self, Behavior, ClockFaultKind, ProcessFaultKind, Scenario, Shape};
use crate::world::{self, RunConfig};

/// How much shrinking may cost.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most candidate runs of proptest's shrinking (the fault and behaviour passes add at
    /// most one run per fault kind and behaviour).
    pub max_runs: usize,
    /// Wall time after which shrinking stops where it is.
    pub max_wall: Duration,
}

/// A shrunk failure.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found.
    pub scenario: Scenario,
    /// Its violations.
    pub violations: Vec<Violation>,
    /// The invariant it must keep breaking.
    pub invariant: String,
    /// Candidate runs spent.
    pub runs: usize,
    /// Whether the wall-time bound cut it short.
    pub cut_by_time: bool,
}

impl Shrunk {
    /// `(signature, description)` of the failure; see [`signature`].
    pub fn signature(&self) -> (String, String) {
        signature(&self.invariant, &self.violations)
    }

    /// The record of this shrink.
    pub fn record(&self) -> ShrunkRecord {
        let (signature, description) = self.signature();
        ShrunkRecord {
            signature,
            description,
            needs: needs(&self.scenario),
            players: self.scenario.players.len(),
            servers: self.scenario.servers,
            scenario_hash: scenario_hash(&self.scenario),
            runs: self.runs,
            cut_by_time: self.cut_by_time,
        }
    }
}

/// Hash of a scenario's JSON, hex.
pub fn scenario_hash(scenario: &Scenario) -> String {
    fnv_hex(
        serde_json::to_string(scenario)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// `(signature, description)` of a failure of `invariant` ending in `violations`: the
/// description is the invariant and the first violation of it with ids, numbers and times
/// masked; the signature is 8 hex digits of its hash.
pub fn signature(invariant: &str, violations: &[Violation]) -> (String, String) {
    let shape = violations
        .iter()
        .find(|v| v.invariant.name() == invariant)
        .map(|v| mask(&v.detail))
        .unwrap_or_default();
    let description = format!("{invariant}: {shape}");
    let signature = fnv_hex(description.as_bytes()).chars().take(8).collect();
    (signature, description)
}

/// `text` with every UUID replaced by `<id>` and every run of digits by `<n>`.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = crate::trace::find_uuid(rest) {
        let (before, after) = rest.split_at(start);
        out.push_str(&mask_digits(before));
        out.push_str("<id>");
        rest = after.get(UUID_TEXT_LEN..).unwrap_or_default();
    }
    out.push_str(&mask_digits(rest));
    out
}

/// Length of a hyphenated UUID.
const UUID_TEXT_LEN: usize = 36;

fn mask_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("<n>");
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// What a (shrunk) scenario has on: its fault kinds and its behaviours other than `normal`.
pub fn needs(scenario: &Scenario) -> String {
    let faults = scenario.fault_kinds();
    let mut behaviors: Vec<&str> = scenario
        .players
        .iter()
        .filter(|p| p.behavior != Behavior::Normal)
        .map(|p| p.behavior.name())
        .collect();
    behaviors.sort_unstable();
    behaviors.dedup();
    let list = |items: &[&str]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    format!(
        "faults: {}; behaviours: {}",
        list(&faults),
        list(&behaviors)
    )
}

/// Shrinks the scenario of a failing `seed`; `None` when it passes. `progress` sees each
/// candidate.
pub fn shrink_seed(
    seed: u64,
    shape: Shape,
    config: &RunConfig,
    budget: Budget,
    progress: impl FnMut(usize, &Scenario),
) -> Option<Shrunk> {
    let tree = scenario::tree(seed, shape)?;
    let first = world::run(&tree.current(), config);
    let invariant = first.violations.first()?.invariant;
    shrink_failure(
        tree,
        first.violations,
        invariant.name(),
        config,
        budget,
        progress,
    )
}

/// Shrinks a failing value tree whose first run broke `invariant` with `violations`.
pub fn shrink_failure(
    tree: Box<dyn ValueTree<Value = Scenario>>,
    violations: Vec<Violation>,
    invariant: &str,
    config: &RunConfig,
    budget: Budget,
    mut progress: impl FnMut(usize, &Scenario),
) -> Option<Shrunk> {
    let started = Instant::now();
    let mut runs = 0;
    let mut cut_by_time = false;
    let mut fails = |scenario: &Scenario| {
        if started.elapsed() > budget.max_wall {
            cut_by_time = true;
            return None;
        }
        runs += 1;
        progress(runs, scenario);
        let report = world::run(scenario, config);
        let same = report
            .violations
            .iter()
            .any(|v| v.invariant.name() == invariant);
        same.then_some(report.violations)
    };
    let (scenario, violations) = shrink_tree(tree, violations, &mut fails, budget.max_runs);
    let (scenario, violations) = drop_unneeded(scenario, violations, &mut fails);
    Some(Shrunk {
        scenario,
        violations,
        invariant: invariant.to_owned(),
        runs,
        cut_by_time,
    })
}

/// proptest's shrinking loop over a failing value tree: simplify while the candidate still
/// fails, complicate when it passes, until neither moves or `max_runs` candidates ran.
pub fn shrink_tree<T>(
    mut tree: Box<dyn ValueTree<Value = Scenario>>,
    failure: T,
    mut fails: impl FnMut(&Scenario) -> Option<T>,
    max_runs: usize,
) -> (Scenario, T) {
    let mut best = (tree.current(), failure);
    if !tree.simplify() {
        return best;
    }
    for _ in 1..=max_runs {
        let candidate = tree.current();
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

/// Drops every fault kind, then every behaviour, that the failure does not need: each is
/// tried once, and kept out when the failure remains.
pub fn drop_unneeded<T>(
    mut scenario: Scenario,
    mut failure: T,
    mut fails: impl FnMut(&Scenario) -> Option<T>,
) -> (Scenario, T) {
    for kind in scenario.fault_kinds() {
        let candidate = without_fault_kind(&scenario, kind);
        if let Some(again) = fails(&candidate) {
            (scenario, failure) = (candidate, again);
        }
    }
    for behavior in Behavior::ALL {
        if behavior == Behavior::Normal || !scenario.players.iter().any(|p| p.behavior == behavior)
        {
            continue;
        }
        let mut candidate = scenario.clone();
        for player in &mut candidate.players {
            if player.behavior == behavior {
                player.behavior = Behavior::Normal;
            }
        }
        if let Some(again) = fails(&candidate) {
            (scenario, failure) = (candidate, again);
        }
    }
    (scenario, failure)
}

/// `scenario` with the fault kind `kind` (a name of [`Scenario::fault_kinds`]) turned off.
pub fn without_fault_kind(scenario: &Scenario, kind: &str) -> Scenario {
    let mut s = scenario.clone();
    let f = &mut s.faults;
    match kind {
        "redis_error_before_effect" => f.redis.error_before_effect = 0,
        "redis_error_after_effect" => f.redis.error_after_effect = 0,
        "redis_truncated_reply" => f.redis.truncated_reply = 0,
        "redis_garbled_element" => f.redis.garbled_element = 0,
        "redis_extra_element" => f.redis.extra_element = 0,
        "redis_slow_reply" => f.redis.slow_reply = 0,
        "redis_subscriber_drop" => f.redis.subscriber_drop = 0,
        "network_latency" => f.latency_max_ms = 0,
        "network_partition" => f.partitions.clear(),
        "clock_failure" => f
            .clock
            .retain(|c| !matches!(c.kind, ClockFaultKind::Fail { .. })),
        "clock_jump" => f
            .clock
            .retain(|c| !matches!(c.kind, ClockFaultKind::Jump { .. })),
        "alloc_none_idle" => f.allocator.none_idle = 0,
        "alloc_http_500" => f.allocator.http_500 = 0,
        "alloc_timeout" => f.allocator.timeout = 0,
        "alloc_malformed_body" => f.allocator.malformed = 0,
        "server_crash" => f.process.retain(|p| p.kind != ProcessFaultKind::Crash),
        "server_shutdown" => f.process.retain(|p| p.kind != ProcessFaultKind::Shutdown),
        "server_stall" => f.process.retain(|p| p.kind != ProcessFaultKind::Stall),
        "server_freeze" => f.process.retain(|p| p.kind != ProcessFaultKind::Freeze),
        "server_stall_after_lock" => f
            .process
            .retain(|p| p.kind != ProcessFaultKind::StallAfterLock),
        "server_crash_after_script" => f
            .process
            .retain(|p| p.kind != ProcessFaultKind::CrashAfterScript),
        "server_stall_past_lease" => f
            .process
            .retain(|p| p.kind != ProcessFaultKind::StallPastLease),
        "scheduled_redis_fault" => f.scheduled.clear(),
        _ => {}
    }
    s
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
        let (minimal, ()) = shrink_tree(tree, (), fails, 10_000);
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

    /// Goal: every fault kind a failure does not need is dropped, and every one it needs
    /// stays - including kinds proptest's shrinking keeps (a rate it cannot take to zero).
    #[test]
    fn unneeded_fault_kinds_and_behaviours_are_dropped() {
        let scenario = (0..2_000)
            .filter_map(|seed| scenario::generate(seed, Shape::default()))
            .find(|s| {
                let kinds = s.fault_kinds();
                kinds.len() >= 4 && kinds.contains(&"redis_slow_reply")
            })
            .expect("a scenario with many fault kinds");
        let before = scenario.fault_kinds().len();
        // The "failure" needs slow replies and nothing else.
        let fails = |s: &Scenario| s.fault_kinds().contains(&"redis_slow_reply").then_some(());
        let (shrunk, ()) = drop_unneeded(scenario, (), fails);
        assert_eq!(
            shrunk.fault_kinds(),
            ["redis_slow_reply"],
            "from {before} kinds"
        );
        assert!(
            shrunk
                .players
                .iter()
                .all(|p| p.behavior == Behavior::Normal)
        );
    }

    /// Goal: every fault kind a scenario can draw can be turned off by name (a kind added
    /// to `fault_kinds` without a way to drop it would stay in every signature).
    #[test]
    fn every_fault_kind_can_be_dropped() {
        let mut covered = std::collections::BTreeSet::new();
        for seed in 0..3_000 {
            let Some(scenario) = scenario::generate(seed, Shape::default()) else {
                continue;
            };
            for kind in scenario.fault_kinds() {
                let without = without_fault_kind(&scenario, kind);
                assert!(!without.fault_kinds().contains(&kind), "{kind} stays on");
                covered.insert(kind);
            }
        }
        assert!(covered.len() >= 17, "only {covered:?} seen");
    }

    /// Goal: the signature ignores what does not name the bug (ids, times, counts) and
    /// changes with the invariant or the shape of what went wrong.
    #[test]
    fn signatures_group_the_same_bug() {
        use crate::oracle::Invariant;
        let violation = |invariant, detail: String| Violation {
            invariant,
            at_ms: 23_000,
            detail,
        };
        let lost = |player: u128, deadline: u64| {
            let player = uuid::Uuid::from_u128(player);
            let text = format!("player {player} waits but Redis has it nowhere (lease {deadline})");
            vec![violation(Invariant::NoOneLost, text)]
        };
        let (a, b) = (lost(1, 1_700_000_025_000), lost(2, 1_700_000_031_000));
        assert_eq!(
            signature("7_no_one_lost", &a),
            signature("7_no_one_lost", &b)
        );
        let (_, description) = signature("7_no_one_lost", &a);
        assert_eq!(
            description,
            "7_no_one_lost: player <id> waits but Redis has it nowhere (lease <n>)"
        );
        let other = vec![violation(
            Invariant::NoOneLost,
            "player loads a session Redis does not hold".into(),
        )];
        assert_ne!(
            signature("7_no_one_lost", &a),
            signature("7_no_one_lost", &other)
        );
        let mut both = other.clone();
        both.extend(a.clone());
        assert_eq!(
            signature("8_match_in_time", &both).1,
            "8_match_in_time: ",
            "only violations of the invariant count"
        );
    }

    /// Goal: what a shrunk scenario needs names its fault kinds and unusual behaviours.
    #[test]
    fn needs_name_faults_and_behaviours() {
        let scenario = crate::named::get("loading_timeout").unwrap();
        assert_eq!(
            needs(&scenario),
            "faults: none; behaviours: never_completes"
        );
    }
}
