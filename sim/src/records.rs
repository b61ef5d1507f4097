//! Campaign records: one JSON line per seed (`fuzz --jsonl`), a header line per shard, and
//! the summary `fuzz` prints, built from records only - so `match-sim merge` of the shards'
//! files prints the same summary as one unsharded run of the same seeds.
//!
//! A record carries everything the summary needs (counts of faults, behaviours, checks,
//! coverage counters, the failure and its signature). New fields are added with
//! `#[serde(default)]`, so older files still merge; unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the record format written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// How many violations of a seed its record keeps (the summary prints as many).
pub const MAX_RECORDED_VIOLATIONS: usize = 5;

/// How many seeds of one failure group the summary lists before "and N more".
const MAX_LISTED_SEEDS: usize = 10;

/// Which part of a seed window a campaign runs: seeds whose offset in the window is
/// `index - 1` modulo `count` (1-based, like `--shard 2/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `1..=count`.
    pub index: u64,
    /// How many shards split the window.
    pub count: u64,
}

impl Shard {
    /// The whole window.
    pub const ALL: Self = Self { index: 1, count: 1 };

    /// Parses `K/N` with `1 <= K <= N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("shard {text:?} is not K/N"))?;
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("shard index {index:?} is not a number"))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| format!("shard count {count:?} is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {index}/{count}: need 1 <= K <= N"));
        }
        Ok(Self { index, count })
    }

    /// Whether `seed` of the window starting at `start` belongs to this shard.
    pub fn contains(self, start: u64, seed: u64) -> bool {
        seed >= start && (seed - start) % self.count.max(1) == self.index - 1
    }

    /// The seeds of this shard in the window `start..start + seeds`, in order.
    pub fn seeds(self, start: u64, seeds: u64) -> impl Iterator<Item = u64> {
        let end = start.saturating_add(seeds);
        let first = start.saturating_add(self.index.saturating_sub(1));
        let step = usize::try_from(self.count.max(1)).unwrap_or(usize::MAX);
        (first..end).step_by(step)
    }

    /// How many seeds of the window `start..start + seeds` are this shard's.
    pub fn len(self, seeds: u64) -> u64 {
        let before = self.index.saturating_sub(1);
        seeds.saturating_sub(before).div_ceil(self.count.max(1))
    }

    /// Whether this shard has no seed in a window of `seeds` seeds.
    pub fn is_empty(self, seeds: u64) -> bool {
        self.len(seeds) == 0
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The first line of a shard's file: what the campaign set out to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignHeader {
    /// Record format version.
    pub format: u32,
    /// The commit of the binary that ran.
    pub commit: String,
    /// The first seed of the window.
    pub start: u64,
    /// How many seeds the window holds (all shards together).
    pub seeds: u64,
    /// Which part of the window this file covers.
    pub shard: Shard,
    /// Non-default world options, as `fuzz`/`replay` arguments (empty for defaults).
    #[serde(default)]
    pub args: String,
    /// Whether each seed ran twice for the determinism check.
    #[serde(default)]
    pub check_determinism: bool,
}

/// A broken invariant, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// The invariant's name (`7_no_one_lost`).
    pub invariant: String,
    /// Sim time (ms).
    pub at_ms: u64,
    /// What happened, with raw ids.
    pub detail: String,
}

impl std::fmt::Display for ViolationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant {} violated at {} ms: {}",
            self.invariant, self.at_ms, self.detail
        )
    }
}

/// How a seed ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every invariant held.
    Pass,
    /// An invariant broke.
    Fail,
    /// Two runs of the seed gave different traces.
    Nondeterministic,
}

/// What shrinking a failing seed found: the basis of its failure group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShrunkRecord {
    /// Short id of the failure group (hex of a hash of `description`).
    pub signature: String,
    /// The failure group in words: the invariant and the shape of the violation the shrunk
    /// scenario ends in (ids, numbers and times masked).
    pub description: String,
    /// What the shrunk scenario still has on: fault kinds and behaviours other than normal.
    #[serde(default)]
    pub needs: String,
    /// Players in the shrunk scenario.
    pub players: usize,
    /// Servers in the shrunk scenario.
    pub servers: u8,
    /// Hash of the shrunk scenario.
    pub scenario_hash: String,
    /// Candidate runs spent.
    pub runs: usize,
    /// Whether the wall-time bound stopped shrinking before the run bound (then the
    /// signature may differ between machines).
    pub cut_by_time: bool,
}

/// One seed's record: one line of `fuzz --jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRecord {
    /// The seed.
    pub seed: u64,
    /// The commit of the binary that ran it.
    pub commit: String,
    /// Hash of the scenario the seed drew (FNV-1a of its JSON, hex).
    pub scenario_hash: String,
    /// Hash of the run's trace (hex; empty when the seed could not run): equal hashes of
    /// one seed on two commits mean the service behaved identically, event for event.
    #[serde(default)]
    pub trace_hash: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The first broken invariant.
    pub first_violation: Option<ViolationRecord>,
    /// The first few broken invariants ([`MAX_RECORDED_VIOLATIONS`]).
    #[serde(default)]
    pub violations: Vec<ViolationRecord>,
    /// Every invariant broken at least once.
    #[serde(default)]
    pub broken: Vec<String>,
    /// Sim time covered (ms).
    pub sim_ms: u64,
    /// Wall time spent on the seed, shrinking excluded (ms).
    pub wall_ms: u64,
    /// Fault kinds the scenario drew (turned on).
    #[serde(default)]
    pub faults_drawn: Vec<String>,
    /// Faults injected, by kind.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
    /// Players by behaviour.
    #[serde(default)]
    pub behaviors: BTreeMap<String, u64>,
    /// Invariant checks performed.
    #[serde(default)]
    pub checks: u64,
    /// Matches made.
    #[serde(default)]
    pub matches: u64,
    /// Coverage counters (recovery rules, race windows, ...), summed by the summary.
    #[serde(default)]
    pub coverage: BTreeMap<String, u64>,
    /// Whether the seed ran twice for the determinism check.
    #[serde(default)]
    pub determinism_checked: bool,
    /// The two trace hashes (hex) when they differed.
    #[serde(default)]
    pub nondeterministic: Option<(String, String)>,
    /// The failure's shrunk form and signature (failing seeds that were shrunk).
    #[serde(default)]
    pub shrunk: Option<ShrunkRecord>,
}

impl SeedRecord {
    /// Whether the seed passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// The failure group this seed belongs to: its signature, or (unshrunk) its first
    /// invariant.
    pub fn group(&self) -> String {
        if let Some(shrunk) = &self.shrunk {
            return shrunk.signature.clone();
        }
        match (&self.outcome, &self.first_violation) {
            (Outcome::Nondeterministic, _) => "nondeterministic".to_owned(),
            (_, Some(violation)) => format!("unshrunk {}", violation.invariant),
            (_, None) => "unknown".to_owned(),
        }
    }
}

/// One line of a records file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// A shard's header.
    Campaign(CampaignHeader),
    /// A seed.
    Seed(Box<SeedRecord>),
}

/// A line as JSON text (no newline).
pub fn to_line(line: &Line) -> String {
    serde_json::to_string(line).unwrap_or_default()
}

/// Reads the lines of a records file; blank lines are skipped, a bad line is an error
/// naming its number.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", number + 1))
        })
        .collect()
}

/// FNV-1a over `bytes`, as 16 hex digits: stable across builds and machines.
pub fn fnv_hex(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Aggregated records of a campaign (one run, or merged shards).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Failing seeds, in seed order.
    pub failures: Vec<SeedRecord>,
    /// Total sim time (ms).
    pub sim_ms: u64,
    /// Sum of the seeds' wall times (ms).
    pub seed_wall_ms: u64,
    /// Total invariant checks.
    pub checks: u64,
    /// Matches made.
    pub matches: u64,
    /// Seeds run twice for determinism.
    pub determinism_checked: u64,
    /// Faults injected: (seeds with the kind, total count).
    pub faults: BTreeMap<String, (u64, u64)>,
    /// Behaviours: (seeds with it, players).
    pub behaviors: BTreeMap<String, (u64, u64)>,
    /// Coverage counters: (seeds with it, total).
    pub coverage: BTreeMap<String, (u64, u64)>,
}

impl Summary {
    /// Adds one seed's record.
    pub fn add(&mut self, record: &SeedRecord) {
        self.seeds += 1;
        self.sim_ms += record.sim_ms;
        self.seed_wall_ms += record.wall_ms;
        self.checks += record.checks;
        self.matches += record.matches;
        self.determinism_checked += u64::from(record.determinism_checked);
        add_counts(&mut self.faults, &record.faults);
        add_counts(&mut self.behaviors, &record.behaviors);
        add_counts(&mut self.coverage, &record.coverage);
        if !record.passed() {
            let at = self.failures.partition_point(|f| f.seed < record.seed);
            self.failures.insert(at, record.clone());
        }
    }

    /// The failures grouped by signature, the group of the smallest seed first.
    pub fn groups(&self) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for failure in &self.failures {
            let key = failure.group();
            match groups.iter_mut().find(|group| group.key == key) {
                Some(group) => group.seeds.push(failure.seed),
                None => groups.push(Group {
                    key,
                    first: failure,
                    seeds: vec![failure.seed],
                }),
            }
        }
        groups
    }
}

/// Adds a seed's counts: one more seed for each kind with a non-zero count.
fn add_counts(into: &mut BTreeMap<String, (u64, u64)>, counts: &BTreeMap<String, u64>) {
    for (kind, count) in counts {
        if *count > 0 {
            let entry = into.entry(kind.clone()).or_default();
            entry.0 += 1;
            entry.1 += count;
        }
    }
}

/// Failing seeds that share a signature: one bug, one row.
#[derive(Clone, Debug)]
pub struct Group<'a> {
    /// The signature (or fallback key).
    pub key: String,
    /// The record of the smallest seed.
    pub first: &'a SeedRecord,
    /// Every seed of the group, ascending.
    pub seeds: Vec<u64>,
}

/// What the summary's header line says and what its rows refer to.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// The header line (`match-sim fuzz: seeds 0..2000 on 2 jobs`).
    pub header: String,
    /// Campaign wall time in seconds, when known (merged summaries only know the seeds').
    pub wall_secs: Option<f64>,
    /// Invariant names listed as "held" or "BROKEN".
    pub invariants: Vec<String>,
    /// Behaviour names listed even at zero.
    pub behaviors: Vec<String>,
    /// World options added to every replay command.
    pub replay_args: String,
    /// Where timelines of failures are (a directory name), if written.
    pub timelines: Option<String>,
}

/// The summary as `fuzz` and `merge` print it. Everything but the header, `wall time` and
/// `seeds/s` lines depends only on the records.
pub fn render(summary: &Summary, options: &RenderOptions) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(options.header.clone());
    line(format!("  seeds run            {}", summary.seeds));
    line(format!("  seeds failed         {}", summary.failures.len()));
    let sim_s = summary.sim_ms as f64 / 1_000.0;
    match options.wall_secs {
        Some(wall) => {
            line(format!("  wall time            {wall:.1} s"));
            let rate = summary.seeds as f64 / wall.max(1e-9);
            let ratio = sim_s / wall.max(1e-9);
            line(format!(
                "  seeds/s              {rate:.1} ({ratio:.0}x sim/wall)"
            ));
        }
        None => {
            let seed_wall = summary.seed_wall_ms as f64 / 1_000.0;
            line(format!(
                "  wall time            {seed_wall:.1} s in seeds, summed over shards"
            ));
            line("  seeds/s              n/a (merged)".to_owned());
        }
    }
    line(format!("  sim time             {sim_s:.0} s"));
    line(format!("  matches made         {}", summary.matches));
    line(format!("  invariant checks     {}", summary.checks));
    line(format!(
        "  determinism checked  {} seeds",
        summary.determinism_checked
    ));
    out.push_str(&render_tables(summary, options));
    out.push_str(&render_failures(summary, options));
    out
}

/// The invariant, fault, behaviour and coverage tables.
fn render_tables(summary: &Summary, options: &RenderOptions) -> String {
    let mut out = String::from("invariants checked on every seed:\n");
    for invariant in &options.invariants {
        let broken = summary
            .failures
            .iter()
            .filter(|f| f.broken.iter().any(|name| name == invariant))
            .count();
        let state = if broken == 0 {
            "held".to_owned()
        } else {
            format!("BROKEN in {broken} seeds")
        };
        out.push_str(&format!("  {invariant:<28} {state}\n"));
    }
    out.push_str("faults injected:               seeds      total\n");
    for (kind, (seeds, total)) in &summary.faults {
        out.push_str(&format!("  {kind:<28} {seeds:>6} {total:>10}\n"));
    }
    out.push_str("behaviours exercised:          seeds    players\n");
    let mut names = options.behaviors.clone();
    names.extend(
        summary
            .behaviors
            .keys()
            .filter(|name| !options.behaviors.contains(name))
            .cloned(),
    );
    for name in names {
        let (seeds, players) = summary.behaviors.get(&name).copied().unwrap_or_default();
        out.push_str(&format!("  {name:<28} {seeds:>6} {players:>10}\n"));
    }
    out.push_str(&crate::coverage::render(&summary.coverage));
    out
}

/// One row per failure group: the smallest seed, how to replay it, what it needs.
fn render_failures(summary: &Summary, options: &RenderOptions) -> String {
    let groups = summary.groups();
    if groups.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "failures: {} distinct, {} seeds\n",
        groups.len(),
        summary.failures.len()
    );
    for group in &groups {
        let first = group.first;
        let what = first
            .first_violation
            .as_ref()
            .map_or("not deterministic", |v| v.invariant.as_str());
        out.push_str(&format!(
            "FAILED {what} in {} seeds, smallest seed {}\n",
            group.seeds.len(),
            first.seed
        ));
        out.push_str(&format!("  seeds: {}\n", list_seeds(&group.seeds)));
        match &first.shrunk {
            Some(shrunk) => out.push_str(&format!(
                "  signature {}: {}\n  shrunk to {} players on {} servers in {} runs; {}\n",
                shrunk.signature,
                shrunk.description,
                shrunk.players,
                shrunk.servers,
                shrunk.runs,
                shrunk.needs
            )),
            None => out.push_str("  not shrunk\n"),
        }
        for violation in &first.violations {
            out.push_str(&format!("  {violation}\n"));
        }
        if let Some((a, b)) = &first.nondeterministic {
            out.push_str(&format!("  not deterministic: trace hash {a} then {b}\n"));
        }
        let args = if options.replay_args.is_empty() {
            String::new()
        } else {
            format!(" {}", options.replay_args)
        };
        out.push_str(&format!(
            "  replay: match-sim replay --seed {}{args}\n",
            first.seed
        ));
        if let Some(dir) = &options.timelines {
            out.push_str(&format!("  timeline: {dir}/seed-{}.html\n", first.seed));
        }
    }
    out
}

fn list_seeds(seeds: &[u64]) -> String {
    let shown: Vec<String> = seeds
        .iter()
        .take(MAX_LISTED_SEEDS)
        .map(u64::to_string)
        .collect();
    let more = seeds.len().saturating_sub(MAX_LISTED_SEEDS);
    if more == 0 {
        shown.join(", ")
    } else {
        format!("{} and {more} more", shown.join(", "))
    }
}

/// What `merge` found about the shards' coverage of their windows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Windows (start, seeds) of the headers, with the shards seen per window.
    pub windows: BTreeMap<(u64, u64), BTreeMap<u64, Shard>>,
    /// Seeds recorded more than once.
    pub duplicates: Vec<u64>,
    /// Problems to report (missing shards, incomplete shards).
    pub problems: Vec<String>,
}

/// Merges the lines of every file: the summary, and whether the shards covered their
/// windows exactly once.
pub fn merge(files: &[Vec<Line>]) -> (Summary, Coverage, Vec<CampaignHeader>) {
    let mut summary = Summary::default();
    let mut coverage = Coverage::default();
    let mut headers = Vec::new();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for line in files.iter().flatten() {
        match line {
            Line::Campaign(header) => headers.push(header.clone()),
            Line::Seed(record) => {
                let count = seen.entry(record.seed).or_default();
                *count += 1;
                if *count == 1 {
                    summary.add(record);
                }
            }
        }
    }
    coverage.duplicates = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(seed, _)| *seed)
        .collect();
    check_windows(&headers, &seen, &mut coverage);
    (summary, coverage, headers)
}

/// Checks that each window's shards are all present and each ran all its seeds.
fn check_windows(headers: &[CampaignHeader], seen: &BTreeMap<u64, u64>, coverage: &mut Coverage) {
    for header in headers {
        coverage
            .windows
            .entry((header.start, header.seeds))
            .or_default()
            .insert(header.shard.index, header.shard);
    }
    for header in headers {
        let expected = header.shard.len(header.seeds);
        let ran = header
            .shard
            .seeds(header.start, header.seeds)
            .filter(|seed| seen.contains_key(seed))
            .count() as u64;
        if ran < expected {
            coverage.problems.push(format!(
                "shard {} of seeds {}..{} ran {ran} of its {expected} seeds",
                header.shard,
                header.start,
                header.start.saturating_add(header.seeds)
            ));
        }
    }
    for ((start, seeds), shards) in &coverage.windows {
        let count = shards.values().map(|shard| shard.count).max().unwrap_or(1);
        let missing: Vec<String> = (1..=count)
            .filter(|index| !shards.contains_key(index))
            .map(|index| format!("{index}/{count}"))
            .collect();
        if !missing.is_empty() {
            coverage.problems.push(format!(
                "seeds {start}..{}: no file for shard {}",
                start.saturating_add(*seeds),
                missing.join(", ")
            ));
        }
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
