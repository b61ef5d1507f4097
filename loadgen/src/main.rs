//! `match-loadgen`: drives WebSocket players through enqueue -> start_loading ->
//! loading_complete -> match_found against match-server instances on this machine, measures
//! throughput and latency, reads the Redis cost per matched player, and verifies that no
//! player was duplicated or lost.
//!
//! Modules, from the outside in:
//!
//! - [`cli`]: options, validated into a plan; every address must be loopback ([`loopback`]).
//! - [`run`]: one run end to end: stub game server ([`stub_gs`]), Redis counters
//!   ([`redis_probe`], optionally [`monitor`]), the players ([`drive`], [`player`]), verification ([`verify`]) and
//!   the report ([`report`]).
//!
//! Exit status: 0 when the verification passed, 1 when it found a problem, 2 for a bad
//! command line, 3 when the run could not be carried out.

mod cli;
mod drive;
mod loopback;
mod monitor;
mod player;
mod redis_probe;
mod report;
mod run;
mod stub_gs;
mod verify;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let plan = match cli.plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("match-loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("match-loadgen: cannot start the runtime: {error}");
            return ExitCode::from(3);
        }
    };
    let report = match runtime.block_on(run::run(&plan)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("match-loadgen: {error}");
            return ExitCode::from(3);
        }
    };
    if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("match-loadgen: cannot render JSON: {error}"),
        }
    } else {
        print!("{}", report::render_text(&report));
    }
    if report.verdict.passed && report.player_task_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
