//! Differential conformance suite: the same operations run against `FakeRedis` and a real
//! redis-server 7, and their replies and resulting data must match (by the rules of
//! `match_sim::conformance`). A fake that differs from Redis proves nothing about
//! production; this suite is what lets the simulation's results count.
//!
//! - [`generated_sequences_match_redis`]: proptest sequences over every command the
//!   service and its scripts use, interleaved with EVALs of every `lua/` script with
//!   generated KEYS and ARGV (right and wrong arity, wrong types, odd values). At least
//!   1,000 cases per run from a fixed seed; on a mismatch proptest shrinks the sequence
//!   and the test prints the minimal one with both servers' replies.
//! - `targeted`: the Lua <-> reply conversions, one plain test per rule.
//! - `differences`: each difference `docs/fake-redis.md` lists and a test can observe is
//!   still there, so the document cannot go stale silently.
//!
//! Redis: `MATCH_TEST_REDIS_URL` (CI), otherwise a private redis-server on a free port;
//! without redis-server the suite fails, it never skips. Environment knobs:
//! `CONFORMANCE_CASES` (default 1000), `CONFORMANCE_SEED` (default fixed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

#[path = "conformance/differences.rs"]
mod differences;
#[path = "conformance/ops.rs"]
mod ops;
#[path = "conformance/real_redis.rs"]
mod real_redis;
#[path = "conformance/runner.rs"]
mod runner;
#[path = "conformance/targeted.rs"]
mod targeted;

use std::cell::RefCell;
use std::time::Instant;

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use crate::ops::PATTERNS;
use crate::real_redis::RealRedis;
use crate::runner::{Stats, run_sequence};

/// Cases per run unless `CONFORMANCE_CASES` says otherwise; the issue asks for at least
/// 1,000 in every CI run.
const DEFAULT_CASES: u32 = 1_000;
/// The proptest seed unless `CONFORMANCE_SEED` says otherwise, so CI runs the same cases
/// every time and a failure reproduces.
const DEFAULT_SEED: u64 = 0x00C0_FFEE_2024;
/// Shrinking steps allowed after a mismatch (each replays a sequence on both servers).
const MAX_SHRINK_ITERS: u32 = 4_096;

/// A number from the environment, or `default`; a value that does not parse fails loudly
/// rather than silently running the default.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        _ => default,
    }
}

/// A namespace for this process's keys and channels: never shared with another run or
/// another test on the same server, and free of glob characters.
pub fn process_namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{{conformance:{}:{nanos}:{test}}}:", std::process::id())
}

/// Goal: the fake answers every generated sequence exactly as Redis 7 does - every reply
/// and the data left behind - over at least 1,000 cases from a fixed seed; on a mismatch,
/// the minimal failing sequence is printed with both servers' replies.
#[test]
fn generated_sequences_match_redis() {
    let cases = env_number("CONFORMANCE_CASES", DEFAULT_CASES);
    let seed = env_number("CONFORMANCE_SEED", DEFAULT_SEED);
    let namespace = process_namespace("generated");
    let patterns: Vec<String> = PATTERNS
        .iter()
        .map(|pattern| format!("{namespace}{pattern}"))
        .collect();
    real_redis::subscribe_forever(&patterns);
    let real = RefCell::new(RealRedis::connect());
    let stats = RefCell::new(Stats::default());
    let case_number = RefCell::new(0_u64);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: MAX_SHRINK_ITERS,
        ..Config::default()
    };
    println!("conformance: {cases} cases from seed {seed} (CONFORMANCE_CASES, CONFORMANCE_SEED)");
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&ops::sequence(), |sequence| {
        let mut number = case_number.borrow_mut();
        *number += 1;
        let case_namespace = format!("{namespace}c{number}:");
        run_sequence(
            &mut real.borrow_mut(),
            &mut stats.borrow_mut(),
            &sequence,
            &namespace,
            case_namespace,
        )
        .map_err(TestCaseError::fail)
    });
    let elapsed = started.elapsed();
    let stats = stats.into_inner();
    match result {
        Ok(()) => {
            print_summary(&stats, elapsed);
            assert!(
                stats.cases >= u64::from(cases),
                "only {} cases ran, {cases} were asked for",
                stats.cases
            );
        }
        Err(TestError::Fail(reason, sequence)) => panic!(
            "the fake differs from Redis.\n\nMinimal failing sequence (after shrinking; \
             replay with CONFORMANCE_SEED={seed}):\n{sequence}\n{reason}\n"
        ),
        Err(TestError::Abort(reason)) => panic!("the conformance run aborted: {reason}"),
    }
}

/// Prints what the run covered, so a reader of the CI log can see it did real work.
fn print_summary(stats: &Stats, elapsed: std::time::Duration) {
    println!(
        "conformance: {} cases, {} operations, 0 mismatches in {:.1} s",
        stats.cases,
        stats.ops,
        elapsed.as_secs_f64()
    );
    println!(
        "  both servers failed alike: {} operations; fake resynchronised after random picks: {}",
        stats.both_errors, stats.resyncs
    );
    println!("  commands: {:?}", stats.by_command);
    println!("  try_match pop choices: {:?}", stats.pop_choices);
    println!(
        "  error wordings that differ (same kind, so not mismatches): {}",
        stats.wordings.len()
    );
    for ((fake, real), count) in &stats.wordings {
        println!("    {count}x fake {fake:?}\n        redis {real:?}");
    }
    println!("  script outcomes on Redis:");
    for (outcome, count) in &stats.by_script_outcome {
        println!("    {outcome}: {count}");
    }
}
