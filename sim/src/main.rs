//! The `match-sim` binary: fuzz campaigns, replay of one seed or scenario file, shrinking.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use match_sim::campaign::{self, FuzzOptions};
use match_sim::scenario::{Scenario, Shape};
use match_sim::world::{self, RunConfig};

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
        }
    }

    fn config(&self) -> RunConfig {
        RunConfig {
            tick_ms: self.tick_ms.max(1),
            ..RunConfig::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run many seeds; exit non-zero when any fails.
    Fuzz {
        /// How many seeds.
        #[arg(long, default_value_t = 1_000)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Worker threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run every seed twice and compare the trace hashes.
        #[arg(long)]
        check_determinism: bool,
        /// No progress bar (for logs).
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        shape: ShapeArgs,
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
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Shrink a failing seed to a minimal scenario and write it to a file.
    Shrink {
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the scenario (default: shrunk-<seed>.json).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Most candidate runs.
        #[arg(long, default_value_t = 500)]
        max_runs: usize,
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

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Fuzz {
            seeds,
            start,
            jobs,
            check_determinism,
            quiet,
            shape,
        } => {
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            let options = FuzzOptions {
                seeds,
                start,
                jobs,
                check_determinism,
                shape: shape.shape(),
                config: shape.config(),
            };
            fuzz(&options, quiet)
        }
        Command::Replay {
            seed,
            scenario,
            named,
            verbose,
            shape,
        } => replay(seed, scenario, named, verbose, &shape),
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
            shape,
        } => shrink(seed, out, max_runs, &shape),
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

fn fail(message: &str) -> ExitCode {
    eprintln!("match-sim: {message}");
    ExitCode::from(2)
}

fn fuzz(options: &FuzzOptions, quiet: bool) -> ExitCode {
    if !quiet {
        eprintln!(
            "match-sim fuzz: seeds {}..{} on {} jobs",
            options.start,
            options.start + options.seeds,
            options.jobs
        );
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(options.seeds)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    let summary = campaign::fuzz(options, |result| {
        bar.inc(1);
        if !result.passed() {
            failed += 1;
            bar.set_message(format!("{failed} failed"));
            bar.println(format!(
                "seed {} FAILED: {}",
                result.seed,
                result
                    .violations
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "not deterministic".into())
            ));
        }
    });
    bar.finish_and_clear();
    print!("{}", campaign::render_summary(options, &summary));
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(
    seed: Option<u64>,
    file: Option<std::path::PathBuf>,
    named: Option<String>,
    verbose: bool,
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
        (_, Some(path), None) => match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<Scenario>(&text) {
                Ok(scenario) => scenario,
                Err(error) => {
                    return fail(&format!(
                        "{} is not a scenario file: {error}",
                        path.display()
                    ));
                }
            },
            Err(error) => return fail(&format!("cannot read {}: {error}", path.display())),
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
    let report = world::run(&scenario, &config);
    print!("{}", campaign::render_replay(&report, verbose));
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn shrink(
    seed: u64,
    out: Option<std::path::PathBuf>,
    max_runs: usize,
    shape: &ShapeArgs,
) -> ExitCode {
    eprintln!("match-sim shrink: seed {seed}");
    let result = campaign::shrink(
        seed,
        shape.shape(),
        &shape.config(),
        max_runs,
        |runs, candidate| {
            eprintln!(
                "  run {runs}: {} players, faults: {}",
                candidate.players.len(),
                candidate.fault_kinds().join(", ")
            );
        },
    );
    let Some((scenario, violations)) = result else {
        eprintln!("seed {seed} passes: nothing to shrink");
        return ExitCode::SUCCESS;
    };
    let path = out.unwrap_or_else(|| format!("shrunk-{seed}.json").into());
    let text = serde_json::to_string_pretty(&scenario).unwrap_or_default();
    if let Err(error) = std::fs::write(&path, text) {
        return fail(&format!("cannot write {}: {error}", path.display()));
    }
    println!(
        "minimal scenario: {} players, faults: {}",
        scenario.players.len(),
        scenario.fault_kinds().join(", ")
    );
    for violation in &violations {
        println!("  {violation}");
    }
    println!(
        "written to {}\nreplay: match-sim replay --scenario {}",
        path.display(),
        path.display()
    );
    ExitCode::SUCCESS
}
