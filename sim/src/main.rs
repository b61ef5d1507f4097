//! The `match-sim` binary: fuzz campaigns, replay of one seed or scenario file, shrinking.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use match_sim::campaign::{self, FuzzOptions};
use match_sim::records::Shard;
use match_sim::scenario::Shape;
use match_sim::shrink::Budget;
use match_sim::world::{self, RunConfig};

mod cli;

/// Deterministic simulation testbed for match-server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// World size options shared by the commands.
#[derive(clap::Args, Debug, Clone)]
struct ShapeArgs {
    /// Fewest players per world.
    #[arg(long, default_value_t = 4)]
    min_players: usize,
    /// Most players per world.
    #[arg(long, default_value_t = 12)]
    max_players: usize,
    /// Fewest server instances.
    #[arg(long, default_value_t = 2)]
    min_servers: u8,
    /// Most server instances.
    #[arg(long, default_value_t = 3)]
    max_servers: u8,
    /// Run without any fault (pure throughput).
    #[arg(long)]
    no_faults: bool,
    /// Draw no process stalls (an instance's Redis requests held, then applied late): the
    /// fault mix of before they were on by default.
    #[arg(long)]
    no_stalls: bool,
    /// Also draw freezes: an instance frozen right after it takes a match lock, its Redis
    /// requests held with no timeout until it resumes (off by default: see docs/design.md).
    #[arg(long, conflicts_with = "no_stalls")]
    freezes: bool,
    /// Stalls are drawn by default; kept so older replay commands still parse.
    #[arg(long, hide = true, conflicts_with = "no_stalls")]
    stalls: bool,
    /// turmoil step in ms of sim time.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
}

impl ShapeArgs {
    fn shape(&self) -> Shape {
        Shape {
            players: (self.min_players, self.max_players.max(self.min_players)),
            servers: (
                self.min_servers.max(1),
                self.max_servers.max(self.min_servers.max(1)),
            ),
            client_hosts: (2, 3),
            faults: !self.no_faults,
            stalls: !self.no_stalls,
            freezes: self.freezes,
        }
    }

    fn config(&self) -> RunConfig {
        RunConfig {
            tick_ms: self.tick_ms.max(1),
            ..RunConfig::default()
        }
    }

    /// The options that differ from the defaults, as arguments (for replay commands).
    fn as_args(&self) -> String {
        let mut args = Vec::new();
        let numbers = [
            ("--min-players", self.min_players as u64, 4),
            ("--max-players", self.max_players as u64, 12),
            ("--min-servers", u64::from(self.min_servers), 2),
            ("--max-servers", u64::from(self.max_servers), 3),
            ("--tick-ms", self.tick_ms, 20),
        ];
        for (name, value, default) in numbers {
            if value != default {
                args.push(format!("{name} {value}"));
            }
        }
        if self.no_faults {
            args.push("--no-faults".to_owned());
        }
        if self.no_stalls {
            args.push("--no-stalls".to_owned());
        }
        if self.freezes {
            args.push("--freezes".to_owned());
        }
        args.join(" ")
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run many seeds (or one shard of them); exit non-zero when any fails.
    Fuzz(Box<FuzzArgs>),
    /// Merge the records of shards (`fuzz --jsonl`) into the summary `fuzz` prints.
    Merge {
        /// Record files written by `fuzz --jsonl`.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Directory the shards wrote their timelines to, named in each failure's row.
        #[arg(long)]
        timelines: Option<String>,
        /// Also write the smallest seed of each distinct failure here, one per line.
        #[arg(long)]
        representatives: Option<std::path::PathBuf>,
        /// Exit non-zero, naming each, when a reachable recovery rule or race window of
        /// the catalogue (docs/design.md) was reached by no seed.
        #[arg(long)]
        require_coverage: bool,
    },
    /// Print the timeline and verdict of one seed or scenario file.
    Replay {
        /// The seed to replay.
        #[arg(long, required_unless_present_any = ["scenario", "named"])]
        seed: Option<u64>,
        /// A scenario file written by `shrink`.
        #[arg(long, conflicts_with_all = ["seed", "named"])]
        scenario: Option<std::path::PathBuf>,
        /// A named scenario (see `match-sim named`).
        #[arg(long, conflicts_with = "seed")]
        named: Option<String>,
        /// Include the service's debug events.
        #[arg(long)]
        verbose: bool,
        /// Also write the run as a self-contained HTML timeline to this file.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Shrink a failing seed to a minimal scenario and write it (and both timelines).
    Shrink {
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the scenario (default: shrunk-<seed>.json); the timelines of the
        /// shrunk scenario (`.html`) and of the original seed (`.original.html`) go beside it.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Most candidate runs of proptest's shrinking.
        #[arg(long, default_value_t = 500)]
        max_runs: usize,
        /// Most wall time spent shrinking, in seconds.
        #[arg(long, default_value_t = 600)]
        max_secs: u64,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// List the named scenarios.
    Named,
    /// Print the scenario a seed draws, as JSON.
    Scenario {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        shape: ShapeArgs,
    },
}

/// The options of `fuzz`.
#[derive(clap::Args, Debug)]
struct FuzzArgs {
    /// How many seeds the window holds (all shards together).
    #[arg(long, default_value_t = 1_000)]
    seeds: u64,
    /// The first seed of the window.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Run only shard K of N (1-based): the seeds whose offset in the window is K-1 modulo
    /// N. `--shard 3/4` of `--start 0 --seeds 100` runs 2, 6, 10, ..., 98.
    #[arg(long, value_parser = Shard::parse, default_value = "1/1")]
    shard: Shard,
    /// Worker threads (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run every seed twice and compare the trace hashes.
    #[arg(long)]
    check_determinism: bool,
    /// No progress bar (for logs).
    #[arg(long)]
    quiet: bool,
    /// Write one JSON record per seed to this file (a header line first); `match-sim
    /// merge` reads them.
    #[arg(long)]
    jsonl: Option<std::path::PathBuf>,
    /// Where the timelines of failures go: one `seed-<S>.html` per distinct failure, and
    /// its shrunk scenario as `seed-<S>.shrunk.json` and `.shrunk.html`.
    #[arg(long, default_value = "target/match-sim/timelines")]
    html_dir: std::path::PathBuf,
    /// Write no timelines.
    #[arg(long)]
    no_html: bool,
    /// Do not shrink failing seeds (their failures are then grouped by invariant only).
    #[arg(long)]
    no_shrink: bool,
    /// Most candidate runs of proptest's shrinking per failing seed (deterministic bound).
    #[arg(long, default_value_t = 48)]
    shrink_runs: usize,
    /// Most wall time shrinking one failing seed, in seconds (a safety net: when it cuts,
    /// the record says so and the signature may depend on the machine).
    #[arg(long, default_value_t = 60)]
    shrink_secs: u64,
    /// The commit recorded in each record (default: $MATCH_SIM_COMMIT, $GITHUB_SHA, or
    /// `git rev-parse HEAD`).
    #[arg(long)]
    commit: Option<String>,
    /// Exit non-zero, naming each, when a reachable recovery rule or race window of the
    /// catalogue (docs/design.md) was reached by no seed.
    #[arg(long)]
    require_coverage: bool,
    #[command(flatten)]
    shape: ShapeArgs,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Fuzz(args) => fuzz(&args),
        Command::Merge {
            files,
            timelines,
            representatives,
            require_coverage,
        } => cli::merge(&files, timelines, representatives, require_coverage),
        Command::Replay {
            seed,
            scenario,
            named,
            verbose,
            html,
            shape,
        } => replay(seed, scenario, named, verbose, html, &shape),
        Command::Named => {
            for (name, _) in match_sim::named::all() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Command::Shrink {
            seed,
            out,
            max_runs,
            max_secs,
            shape,
        } => {
            let budget = Budget {
                max_runs,
                max_wall: std::time::Duration::from_secs(max_secs),
            };
            shrink(seed, out, budget, &shape)
        }
        Command::Scenario { seed, shape } => {
            match match_sim::scenario::generate(seed, shape.shape()) {
                Some(scenario) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&scenario).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                None => fail("no scenario for this seed"),
            }
        }
    }
}

/// `fuzz`: the options from the arguments, then the campaign.
fn fuzz(args: &FuzzArgs) -> ExitCode {
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let shrink = (!args.no_shrink).then_some(Budget {
        max_runs: args.shrink_runs,
        max_wall: std::time::Duration::from_secs(args.shrink_secs),
    });
    let options = FuzzOptions {
        seeds: args.seeds,
        start: args.start,
        shard: args.shard,
        jobs,
        check_determinism: args.check_determinism,
        shape: args.shape.shape(),
        config: args.shape.config(),
        shrink,
        commit: cli::commit(args.commit.clone()),
    };
    let output = cli::FuzzOutput {
        quiet: args.quiet,
        jsonl: args.jsonl.clone(),
        html_dir: (!args.no_html).then(|| args.html_dir.clone()),
        replay_args: args.shape.as_args(),
        require_coverage: args.require_coverage,
    };
    cli::fuzz(&options, &output)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("match-sim: {message}");
    ExitCode::from(2)
}

fn replay(
    seed: Option<u64>,
    file: Option<std::path::PathBuf>,
    named: Option<String>,
    verbose: bool,
    html: Option<std::path::PathBuf>,
    shape: &ShapeArgs,
) -> ExitCode {
    let scenario = match (seed, file, named) {
        (_, _, Some(name)) => match match_sim::named::get(&name) {
            Some(scenario) => scenario,
            None => {
                return fail(&format!(
                    "no named scenario {name:?}; `match-sim named` lists them"
                ));
            }
        },
        (_, Some(path), None) => match cli::read_scenario(&path) {
            Ok(scenario) => scenario,
            Err(message) => return fail(&message),
        },
        (Some(seed), None, None) => match match_sim::scenario::generate(seed, shape.shape()) {
            Some(scenario) => scenario,
            None => return fail("no scenario for this seed"),
        },
        (None, None, None) => return fail("give --seed, --scenario or --named"),
    };
    let mut config = shape.config();
    if verbose {
        config.trace_level = tracing::Level::DEBUG;
    }
    config.structured = html.is_some();
    let report = world::run(&scenario, &config);
    print!("{}", campaign::render_replay(&report, verbose));
    if let Some(path) = html {
        if let Err(message) = cli::write_html(&path, &report) {
            return fail(&message);
        }
        eprintln!("timeline written to {}", path.display());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn shrink(
    seed: u64,
    out: Option<std::path::PathBuf>,
    budget: Budget,
    shape: &ShapeArgs,
) -> ExitCode {
    eprintln!("match-sim shrink: seed {seed}");
    let config = shape.config();
    let result =
        match_sim::shrink::shrink_seed(seed, shape.shape(), &config, budget, |runs, candidate| {
            eprintln!(
                "  run {runs}: {} players, faults: {}",
                candidate.players.len(),
                candidate.fault_kinds().join(", ")
            );
        });
    let Some(shrunk) = result else {
        eprintln!("seed {seed} passes: nothing to shrink");
        return ExitCode::SUCCESS;
    };
    let path = out.unwrap_or_else(|| format!("shrunk-{seed}.json").into());
    let text = serde_json::to_string_pretty(&shrunk.scenario).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, text) {
        return fail(&format!("cannot write {}: {error}", path.display()));
    }
    let structured = RunConfig {
        structured: true,
        ..config
    };
    let report = world::run(&shrunk.scenario, &structured);
    let (signature, description) = shrunk.signature();
    println!(
        "minimal scenario after {} runs{}: {}\nsignature {signature}: {description}",
        shrunk.runs,
        if shrunk.cut_by_time {
            " (cut short by --max-secs)"
        } else {
            ""
        },
        match_sim::shrink::needs(&shrunk.scenario)
    );
    print!("{}", campaign::render_shrunk(&report));
    let html = path.with_extension("html");
    let original_html = path.with_extension("original.html");
    let original = match_sim::scenario::generate(seed, shape.shape())
        .map(|scenario| world::run(&scenario, &structured));
    for (file, report) in [(&html, Some(&report)), (&original_html, original.as_ref())] {
        if let Some(report) = report
            && let Err(message) = cli::write_html(file, report)
        {
            return fail(&message);
        }
    }
    println!(
        "written to {}\nreplay: match-sim replay --scenario {}\ntimelines: {} (shrunk), {} (seed {seed})",
        path.display(),
        path.display(),
        html.display(),
        original_html.display()
    );
    ExitCode::SUCCESS
}
