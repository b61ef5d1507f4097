//! Differential conformance suite: the same operations run against `FakeRedis` and a real
//! redis-server 7, and their replies and resulting data must match (by the rules of
//! `match_sim::conformance`). A fake that differs from Redis proves nothing about
//! production; this suite is what lets the simulation's results count.
//!
//! - [`generated_sequences_match_redis`]: proptest sequences over every command the
//!   service and its scripts use, interleaved with EVALs of every `lua/` script with
//!   generated KEYS and ARGV (right and wrong arity, wrong types, odd values). At least
//!   1,000 cases per run from a fixed seed; wherever Redis chooses (SPOP, SRANDMEMBER,
//!   and inside scripts also free orders and SCAN pages) it runs first and the fake
//!   follows its choices, so one seed gives one verdict. On a mismatch proptest shrinks
//!   the sequence and the test prints the minimal one with both servers' replies,
//!   Redis's choices and the command that replays the run.
//! - `targeted`: the Lua <-> reply conversions, one plain test per rule, and the
//!   choices Redis makes inside scripts (issue 15's sequence, the recorder).
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

use std::cell::{Cell, RefCell};
use std::time::Instant;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use crate::ops::PATTERNS;
use crate::real_redis::RealRedis;
use crate::runner::{Namespaces, Stats, run_sequence};

/// Cases per run unless `CONFORMANCE_CASES` says otherwise; the issue asks for at least
/// 1,000 in every CI run.
const DEFAULT_CASES: u32 = 1_000;
/// The proptest seed unless `CONFORMANCE_SEED` says otherwise, so CI runs the same cases
/// every time and a failure reproduces.
const DEFAULT_SEED: u64 = 0x00C0_FFEE_2024;
/// Shrinking steps allowed after a mismatch (each replays a sequence on both servers).
const MAX_SHRINK_ITERS: u32 = 4_096;
/// How long a run's claim on its seed's namespace lasts if the run dies without letting
/// go (a shared server); longer than any run.
const CLAIM_TTL_SECONDS: &str = "3600";

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

/// The generated run's key namespace on the real server, held for the run.
///
/// The fake's own choices (the page shapes of a top-level SCAN) depend on key names, so
/// every run of one seed uses the same names: `{conformance:seed:<seed>}:`. A run claims
/// it with an owner key, so two runs of one seed on a shared server never share keys;
/// the second falls back to a namespace of its own process (and says so).
struct Claim {
    /// The run's namespace.
    namespace: String,
    /// The owner key to delete when the run ends, if the claim succeeded.
    owner_key: Option<String>,
}

impl Claim {
    /// Claims the namespace of `seed`, or a process namespace when it is taken.
    fn take(real: &mut RealRedis, seed: u64) -> Self {
        let namespace = format!("{{conformance:seed:{seed}}}:");
        let owner_key = format!("{namespace}owner");
        let owner = process_namespace("generated");
        let claimed = real.cmd(&["SET", &owner_key, &owner, "NX", "EX", CLAIM_TTL_SECONDS]);
        if claimed == Ok(match_server::store::Reply::Status("OK".to_owned())) {
            return Self {
                namespace,
                owner_key: Some(owner_key),
            };
        }
        println!(
            "conformance: {namespace} is in use by another run on this server; using this \
             process's own namespace (the fake's SCAN pages may differ from another run)"
        );
        Self {
            namespace: owner,
            owner_key: None,
        }
    }
}

impl Drop for Claim {
    /// Lets go of the namespace, also when the test fails.
    fn drop(&mut self) {
        if let Some(owner_key) = &self.owner_key {
            let _ = RealRedis::connect().cmd(&["DEL", owner_key]);
        }
    }
}

/// The command that replays a run of `cases` cases from `seed` exactly.
fn replay_command(cases: u64, seed: u64) -> String {
    let release = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    format!(
        "CONFORMANCE_CASES={cases} CONFORMANCE_SEED={seed} scripts/with-redis.sh \
         cargo test{release} -p match-sim --test conformance generated_sequences_match_redis"
    )
}

/// Goal: the fake answers every generated sequence exactly as Redis 7 does - every reply
/// and the data left behind - over at least 1,000 cases from a fixed seed, following the
/// choices Redis makes; on a mismatch, the minimal failing sequence is printed with both
/// servers' replies, Redis's choices and the command that replays the run.
#[test]
fn generated_sequences_match_redis() {
    let cases = env_number("CONFORMANCE_CASES", DEFAULT_CASES);
    let seed = env_number("CONFORMANCE_SEED", DEFAULT_SEED);
    let real = RefCell::new(RealRedis::connect());
    let claim = Claim::take(&mut real.borrow_mut(), seed);
    let namespaces = Namespaces {
        channels: claim.namespace.clone(),
        case: format!("{}case:", claim.namespace),
        log_key: format!("{}choices", claim.namespace).into_bytes(),
    };
    let patterns: Vec<String> = PATTERNS
        .iter()
        .map(|pattern| format!("{}{pattern}", namespaces.channels))
        .collect();
    real_redis::subscribe_forever(&patterns);
    let stats = RefCell::new(Stats::default());
    let first_failure = Cell::new(None);
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
    let result = runner.run(&ops::sequence().boxed(), |sequence| {
        let mut stats = stats.borrow_mut();
        let outcome = run_sequence(&mut real.borrow_mut(), &mut stats, &sequence, &namespaces);
        if outcome.is_err() && first_failure.get().is_none() {
            first_failure.set(Some(stats.cases));
        }
        outcome.map_err(TestCaseError::fail)
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
        Err(TestError::Fail(reason, sequence)) => {
            let first = first_failure.get().unwrap_or(u64::from(cases));
            panic!(
                "the fake differs from Redis.\n\nReplay this run exactly:\n  {}\n\
                 Case {first} failed first; this replays only the cases up to it:\n  {}\n\n\
                 Minimal failing sequence (after shrinking):\n{sequence}\n{reason}\n",
                replay_command(u64::from(cases), seed),
                replay_command(first, seed),
            )
        }
        Err(TestError::Abort(reason)) => panic!(
            "the conformance run aborted: {reason}\nReplay: {}",
            replay_command(u64::from(cases), seed)
        ),
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
        "  both servers failed alike: {} operations",
        stats.both_errors
    );
    println!("  commands: {:?}", stats.by_command);
    println!(
        "  Redis's choices the fake followed (picks, orders, pages): {:?}",
        stats.followed
    );
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
