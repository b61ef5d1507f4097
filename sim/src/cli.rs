//! The binary's campaign commands: `fuzz` with its progress bar, records and timelines, and
//! `merge` of shard records; plus the file helpers `replay` and `shrink` share.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use match_sim::campaign::{self, FuzzOptions, SeedOutcome};
use match_sim::records::{self, CampaignHeader, Line, RenderOptions, Shard};
use match_sim::scenario::{self, Scenario};
use match_sim::world::{self, RunConfig, RunReport};

/// Most timelines one `fuzz` writes (one per distinct failure, smallest seed first).
const MAX_TIMELINES: usize = 50;

/// Where `fuzz` puts what it produces besides the summary.
pub struct FuzzOutput {
    /// No progress bar.
    pub quiet: bool,
    /// The records file.
    pub jsonl: Option<PathBuf>,
    /// The timelines' directory.
    pub html_dir: Option<PathBuf>,
    /// Non-default world options, for replay commands and the header.
    pub replay_args: String,
    /// Fail the campaign when a reachable row of the rule catalogue was never reached.
    pub require_coverage: bool,
}

/// The coverage gate: prints a line per reachable catalogue row no seed reached; true
/// when there is none (or the gate is off).
fn coverage_holds(summary: &records::Summary, required: bool) -> bool {
    if !required {
        return true;
    }
    let report = match_sim::coverage::gate_report(&summary.coverage);
    print!("{report}");
    report.is_empty()
}

/// The commit to record: the flag, `$MATCH_SIM_COMMIT`, `$GITHUB_SHA`, `git rev-parse`.
pub fn commit(flag: Option<String>) -> String {
    if let Some(commit) = flag
        .or_else(|| std::env::var("MATCH_SIM_COMMIT").ok())
        .or_else(|| std::env::var("GITHUB_SHA").ok())
        .filter(|commit| !commit.is_empty())
    {
        return commit;
    }
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Reads a scenario file.
pub fn read_scenario(path: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|error| format!("{} is not a scenario file: {error}", path.display()))
}

/// Writes the HTML timeline of `report` to `path`, creating its directory.
pub fn write_html(path: &Path, report: &RunReport) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    std::fs::write(path, match_sim::html::render(report))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Opens the records file and writes its header line.
fn open_records(path: &Path, options: &FuzzOptions, args: &str) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    let mut file = std::fs::File::create(path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    let header = Line::Campaign(CampaignHeader {
        format: records::FORMAT_VERSION,
        commit: options.commit.clone(),
        start: options.start,
        seeds: options.seeds,
        shard: options.shard,
        args: args.to_owned(),
        check_determinism: options.check_determinism,
    });
    writeln!(file, "{}", records::to_line(&header))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(file)
}

/// `fuzz`: runs the campaign, streams records, prints the summary, writes timelines.
pub fn fuzz(options: &FuzzOptions, output: &FuzzOutput) -> ExitCode {
    let mut records = match output.jsonl.as_deref() {
        Some(path) => match open_records(path, options, &output.replay_args) {
            Ok(file) => Some(file),
            Err(message) => return crate::fail(&message),
        },
        None => None,
    };
    if !output.quiet {
        eprintln!("{}", campaign::fuzz_header(options));
    }
    let bar = if output.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(options.shard.len(options.seeds))
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    let mut write_error = None;
    let mut shrunk: BTreeMap<u64, Scenario> = BTreeMap::new();
    let (summary, wall) = campaign::fuzz(options, |outcome: &SeedOutcome| {
        bar.inc(1);
        if let Some(file) = records.as_mut() {
            let line = records::to_line(&Line::Seed(Box::new(outcome.record.clone())));
            if let Err(error) = writeln!(file, "{line}") {
                write_error.get_or_insert_with(|| error.to_string());
            }
        }
        if !outcome.record.passed() {
            failed += 1;
            bar.set_message(format!("{failed} failed"));
            bar.println(failure_line(outcome));
            if let Some(scenario) = &outcome.shrunk {
                shrunk.insert(outcome.record.seed, scenario.clone());
            }
        }
    });
    bar.finish_and_clear();
    if let Some(error) = write_error {
        return crate::fail(&format!("cannot write the records: {error}"));
    }
    let render = RenderOptions {
        header: campaign::fuzz_header(options),
        wall_secs: Some(wall.as_secs_f64()),
        invariants: campaign::invariant_names(),
        behaviors: campaign::behavior_names(),
        replay_args: output.replay_args.clone(),
        timelines: output
            .html_dir
            .as_ref()
            .filter(|_| !summary.failures.is_empty())
            .map(|dir| dir.display().to_string()),
    };
    print!("{}", records::render(&summary, &render));
    let covered = coverage_holds(&summary, output.require_coverage);
    if let Some(dir) = &output.html_dir {
        let seeds: Vec<u64> = summary.groups().iter().map(|g| g.first.seed).collect();
        if let Err(message) = write_timelines(dir, &seeds, options, &shrunk) {
            return crate::fail(&message);
        }
    }
    if summary.failures.is_empty() && covered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn failure_line(outcome: &SeedOutcome) -> String {
    let record = &outcome.record;
    let what = record
        .first_violation
        .as_ref()
        .map_or_else(|| "not deterministic".to_owned(), ToString::to_string);
    let signature = record
        .shrunk
        .as_ref()
        .map(|s| format!(" [signature {}]", s.signature))
        .unwrap_or_default();
    format!("seed {} FAILED{signature}: {what}", record.seed)
}

/// Writes one timeline per distinct failure (its smallest seed), and its shrunk scenario
/// with its timeline.
fn write_timelines(
    dir: &Path,
    seeds: &[u64],
    options: &FuzzOptions,
    shrunk: &BTreeMap<u64, Scenario>,
) -> Result<(), String> {
    let config = RunConfig {
        structured: true,
        ..options.config.clone()
    };
    for seed in seeds.iter().take(MAX_TIMELINES) {
        if let Some(scenario) = scenario::generate(*seed, options.shape) {
            let report = world::run(&scenario, &config);
            write_html(&dir.join(format!("seed-{seed}.html")), &report)?;
        }
        if let Some(scenario) = shrunk.get(seed) {
            let json = serde_json::to_string_pretty(scenario).unwrap_or_default();
            let path = dir.join(format!("seed-{seed}.shrunk.json"));
            std::fs::write(&path, json)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
            let report = world::run(scenario, &config);
            write_html(&dir.join(format!("seed-{seed}.shrunk.html")), &report)?;
        }
    }
    if !seeds.is_empty() {
        eprintln!(
            "timelines of {} distinct failures written to {}",
            seeds.len().min(MAX_TIMELINES),
            dir.display()
        );
    }
    Ok(())
}

/// `merge`: reads every records file and prints the summary `fuzz` would have printed.
pub fn merge(
    files: &[PathBuf],
    timelines: Option<String>,
    representatives: Option<PathBuf>,
    require_coverage: bool,
) -> ExitCode {
    let mut parsed = Vec::new();
    for path in files {
        let lines = std::fs::read_to_string(path)
            .map_err(|error| error.to_string())
            .and_then(|text| records::parse(&text));
        match lines {
            Ok(lines) => parsed.push(lines),
            Err(error) => return crate::fail(&format!("{}: {error}", path.display())),
        }
    }
    let (summary, coverage, headers) = records::merge(&parsed);
    let render = RenderOptions {
        header: merge_header(&headers, files.len()),
        wall_secs: None,
        invariants: campaign::invariant_names(),
        behaviors: campaign::behavior_names(),
        replay_args: headers.first().map(|h| h.args.clone()).unwrap_or_default(),
        timelines: timelines.filter(|_| !summary.failures.is_empty()),
    };
    print!("{}", records::render(&summary, &render));
    for problem in &coverage.problems {
        println!("INCOMPLETE: {problem}");
    }
    let mut commits: Vec<&str> = headers.iter().map(|h| h.commit.as_str()).collect();
    commits.sort_unstable();
    commits.dedup();
    if commits.len() > 1 {
        println!(
            "MIXED commits (seeds may not replay alike): {}",
            commits.join(", ")
        );
    }
    if !coverage.duplicates.is_empty() {
        println!("DUPLICATE seeds (counted once): {:?}", coverage.duplicates);
    }
    let covered = coverage_holds(&summary, require_coverage);
    if let Some(path) = representatives {
        let seeds: Vec<String> = summary
            .groups()
            .iter()
            .map(|g| g.first.seed.to_string())
            .collect();
        let text = seeds
            .iter()
            .map(|seed| format!("{seed}\n"))
            .collect::<String>();
        if let Err(error) = std::fs::write(&path, text) {
            return crate::fail(&format!("cannot write {}: {error}", path.display()));
        }
    }
    if summary.failures.is_empty() && coverage.problems.is_empty() && covered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `match-sim merge: seeds 0..2000 from 4 shards (4 files)`, or a list of windows.
fn merge_header(headers: &[CampaignHeader], files: usize) -> String {
    let mut windows: BTreeMap<(u64, u64), Vec<Shard>> = BTreeMap::new();
    for header in headers {
        windows
            .entry((header.start, header.seeds))
            .or_default()
            .push(header.shard);
    }
    let parts: Vec<String> = windows
        .iter()
        .map(|((start, seeds), shards)| {
            format!(
                "seeds {start}..{} from {} shards",
                start.saturating_add(*seeds),
                shards.len()
            )
        })
        .collect();
    format!("match-sim merge: {} ({files} files)", parts.join(", "))
}
