//! Runs one generated sequence against a fresh fake and the real Redis side by side,
//! comparing every reply and, at the end, all the data.
//!
//! Each case works in the run's case namespace on the real server (emptied before and
//! after the case; the server is never flushed, so a shared server is fine) and gets a
//! fresh `FakeRedis` whose `ManualClock` starts at the wall clock, so expiry arithmetic
//! overflows at the same values on both.
//!
//! Where Redis makes a choice (SPOP and SRANDMEMBER picks, and inside scripts also the
//! order of SMEMBERS and the like and SCAN-family pages), the operation runs on Redis
//! first, with its choices recorded, and the fake follows them (`FakeRedis::follow`), so
//! both replies and both data compare exactly; a choice the fake cannot follow fails the
//! case.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use match_server::scripts;
use match_server::store::Reply;
use match_sim::conformance::{
    Mismatch, Outcome, Shape, Snapshot, compare, error_wording_difference, fake_outcome, reply_tag,
};
use match_sim::fake_redis::{FakeRedis, FakeSubscription, ManualClock, Recorded};

use crate::ops::{Arg, Check, Op, PATTERNS, Sequence};
use crate::real_redis::RealRedis;

/// The most calls one SCAN-family iteration or sweep may take before it counts as stuck.
/// A SCAN walks the real server's whole keyspace (MATCH filters after the walk), so on a
/// shared server with many keys and `COUNT 1` an iteration takes many calls.
const MAX_ITERATION_CALLS: usize = 1_000_000;

/// What the suite saw, for the summary printed after a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Cases run (shrinking runs included).
    pub cases: u64,
    /// Operations compared.
    pub ops: u64,
    /// Operations by command name.
    pub by_command: BTreeMap<String, u64>,
    /// Script outcomes on Redis, by script and tag (`error` for an error reply).
    pub by_script_outcome: BTreeMap<String, u64>,
    /// Operations where both servers answered with an error.
    pub both_errors: u64,
    /// Redis's choices the fake followed, by command (inside scripts and at top level).
    pub followed: BTreeMap<String, u64>,
    /// Error wordings that differ (same kind), fake then Redis, with how often.
    pub wordings: BTreeMap<(String, String), u64>,
}

/// The wall clock in Unix milliseconds (the real server's clock).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Where a run keeps its keys and channels on the real server.
pub struct Namespaces {
    /// The run's channels (the real subscriber listens under it).
    pub channels: String,
    /// Every case's keys (one case at a time); emptied before and after each case.
    pub case: String,
    /// The list the recorder logs Redis's choices to, outside the case's keys.
    pub log_key: Vec<u8>,
}

/// One case in progress.
pub struct CaseRun<'a> {
    /// The real server.
    real: &'a mut RealRedis,
    /// The fake, fresh for this case.
    fake: FakeRedis,
    /// Where keys, channels and the recorder's log go.
    namespaces: &'a Namespaces,
    /// Counters for the summary.
    stats: &'a mut Stats,
    /// The fake's subscriptions, held so PUBLISH counts them.
    _subscriptions: Vec<FakeSubscription>,
}

/// How Redis's choices for one operation are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Record {
    /// A top-level command: its reply is the choice.
    Reply,
    /// An EVAL: the recorder logs the choices made inside the script.
    Script,
}

/// Runs `sequence` on both servers; `Err` describes the first mismatch.
pub fn run_sequence(
    real: &mut RealRedis,
    stats: &mut Stats,
    sequence: &Sequence,
    namespaces: &Namespaces,
) -> Result<(), String> {
    let fake = FakeRedis::new(sequence.fake_seed, ManualClock::new(wall_ms()))
        .map_err(|error| format!("the fake did not start: {error}"))?;
    let subscriptions = PATTERNS
        .iter()
        .map(|pattern| fake.subscribe_pattern(&format!("{}{pattern}", namespaces.channels)))
        .collect();
    stats.cases += 1;
    real.delete_namespace(&namespaces.case);
    let mut case = CaseRun {
        real,
        fake,
        namespaces,
        stats,
        _subscriptions: subscriptions,
    };
    let result = case.run_all(&sequence.ops);
    case.real.delete_namespace(&namespaces.case);
    result
}

impl CaseRun<'_> {
    /// Every operation, then the data.
    fn run_all(&mut self, ops: &[Op]) -> Result<(), String> {
        for (index, op) in ops.iter().enumerate() {
            self.stats.ops += 1;
            let name = match op.argv.first() {
                Some(Arg::Lit(name)) => String::from_utf8_lossy(name).to_uppercase(),
                _ => "?".to_owned(),
            };
            *self.stats.by_command.entry(name).or_default() += 1;
            self.run_op(op)
                .map_err(|report| format!("operation {} `{op}`:\n{report}", index + 1))?;
        }
        let real = self.real.snapshot(&self.namespaces.case);
        let differences = Snapshot::of_fake(&self.fake).differences(&real);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the data differs after the last operation:\n  - {}",
                differences.join("\n  - ")
            ))
        }
    }

    /// The argv with the namespaces and script sources filled in.
    fn resolve(&self, argv: &[Arg]) -> Vec<Vec<u8>> {
        argv.iter()
            .map(|arg| match arg {
                Arg::Key(key) | Arg::KeyGlob(key) => {
                    format!("{}{key}", self.namespaces.case).into_bytes()
                }
                Arg::Channel(channel) => {
                    format!("{}{channel}", self.namespaces.channels).into_bytes()
                }
                Arg::Script(index) => scripts::all()
                    .get(*index)
                    .map(|script| script.source.clone().into_bytes())
                    .unwrap_or_default(),
                Arg::Lit(bytes) => bytes.clone(),
            })
            .collect()
    }

    /// Runs `argv` on the fake.
    fn on_fake(&self, argv: &[Vec<u8>]) -> Outcome {
        fake_outcome(self.fake.execute(argv))
    }

    /// Counts both servers failing and error wordings that differ.
    fn tally(&mut self, fake: &Outcome, real: &Outcome) {
        if fake.is_err() && real.is_err() {
            self.stats.both_errors += 1;
        }
        if let Some(wording) = error_wording_difference(fake, real) {
            *self.stats.wordings.entry(wording).or_default() += 1;
        }
    }

    /// Runs `argv` on both servers.
    fn on_both(&mut self, argv: &[Vec<u8>]) -> (Outcome, Outcome) {
        let fake = self.on_fake(argv);
        let real = self.real.run(argv);
        self.tally(&fake, &real);
        (fake, real)
    }

    /// Runs one operation and compares as its check says.
    fn run_op(&mut self, op: &Op) -> Result<(), String> {
        let argv = self.resolve(&op.argv);
        let shape = match op.check {
            Check::Exact => Shape::Exact,
            Check::Unordered => Shape::Unordered,
            Check::Map => Shape::Map,
            Check::Ttl(unit_ms) => Shape::Ttl { unit_ms },
            Check::Scan { cursor_at, pairs } => return self.scan(&argv, cursor_at, pairs),
            Check::Followed => return self.followed(&argv, Record::Reply).map(|_| ()),
            Check::Script => {
                let real = self.followed(&argv, Record::Script)?;
                self.count_script(op, &real);
                return Ok(());
            }
            Check::Sweep => return self.sweep(op, &argv),
        };
        let (fake, real) = self.on_both(&argv);
        compare(shape, &fake, &real).map_err(|mismatch| mismatch.to_string())
    }

    /// Runs `argv` on Redis, recording its choices, then on the fake following them, and
    /// compares the outcomes exactly; returns Redis's outcome. A choice the fake could not
    /// follow is a mismatch even when the replies agree.
    fn followed(&mut self, argv: &[Vec<u8>], record: Record) -> Result<Outcome, String> {
        let (real, recorded) = match record {
            Record::Reply => {
                let real = self.real.run(argv);
                let recorded = real.as_ref().ok().map(|reply| Recorded {
                    argv: argv.to_vec(),
                    reply: reply.clone(),
                });
                (real, recorded.into_iter().collect())
            }
            Record::Script => self.real.run_recorded(argv, &self.namespaces.log_key),
        };
        for call in &recorded {
            let name = call.argv.first().map_or_else(String::new, |name| {
                String::from_utf8_lossy(name).to_uppercase()
            });
            *self.stats.followed.entry(name).or_default() += 1;
        }
        self.fake.follow(recorded.clone());
        let fake = self.on_fake(argv);
        let problems = self.fake.stop_following();
        self.tally(&fake, &real);
        let verdict = if problems.is_empty() {
            compare(Shape::Exact, &fake, &real).map_err(|mismatch| mismatch.to_string())
        } else {
            let mismatch = Mismatch::new(
                &fake,
                &real,
                format!(
                    "the fake could not follow Redis's choices:\n    - {}",
                    problems.join("\n    - ")
                ),
            );
            Err(mismatch.to_string())
        };
        verdict
            .map(|()| real)
            .map_err(|report| format!("{report}\n{}", choices_made(&recorded)))
    }

    /// Counts a script's outcome on Redis.
    fn count_script(&mut self, op: &Op, real: &Outcome) {
        let name = match op.argv.get(1) {
            Some(Arg::Script(index)) => crate::ops::script_name(*index),
            _ => "?",
        };
        let tag = match real {
            Err(_) => "error".to_owned(),
            Ok(_) => reply_tag(real).unwrap_or_else(|| "other".to_owned()),
        };
        *self
            .stats
            .by_script_outcome
            .entry(format!("{name} -> {tag}"))
            .or_default() += 1;
    }

    /// A whole SCAN-family iteration on each server, compared by its union (the fake's
    /// own pages, not Redis's: the iteration's union does not depend on them).
    fn scan(&mut self, argv: &[Vec<u8>], cursor_at: usize, pairs: bool) -> Result<(), String> {
        let fake = iterate(argv, cursor_at, |argv| self.on_fake(argv));
        let real = iterate(argv, cursor_at, |argv| self.real.run(argv));
        let shape = if pairs { Shape::UnionMap } else { Shape::Union };
        compare(shape, &fake, &real).map_err(|mismatch| mismatch.to_string())
    }

    /// sweep_players page by page, as the service calls it: each call on Redis first and
    /// then on the fake following Redis's HSCAN page, compared exactly, then again with
    /// the cursor it returned until that is 0.
    fn sweep(&mut self, op: &Op, argv: &[Vec<u8>]) -> Result<(), String> {
        let numkeys = argv
            .get(2)
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok());
        let cursor_at = numkeys.map(|n| 3 + n + 1).filter(|at| *at < argv.len());
        let mut argv = argv.to_vec();
        for page in 1..=MAX_ITERATION_CALLS {
            let real = self
                .followed(&argv, Record::Script)
                .map_err(|report| format!("page {page} of the sweep:\n{report}"))?;
            let next = match &real {
                Ok(Reply::Array(parts)) => match parts.as_slice() {
                    [Reply::Bulk(tag), Reply::Bulk(next), Reply::Int(_)]
                        if tag.as_slice() == b"swept" && next.as_slice() != b"0" =>
                    {
                        Some(next.clone())
                    }
                    _ => None,
                },
                _ => None,
            };
            match (next, cursor_at.and_then(|at| argv.get_mut(at))) {
                (Some(next), Some(cursor)) => *cursor = next,
                _ => {
                    self.count_script(op, &real);
                    return Ok(());
                }
            }
        }
        Err("the sweep did not end".to_owned())
    }
}

/// Redis's recorded choices, one line each, for a report.
fn choices_made(recorded: &[Recorded]) -> String {
    if recorded.is_empty() {
        return "  Redis made no choices here".to_owned();
    }
    let lines: Vec<String> = recorded
        .iter()
        .map(|call| {
            let argv: Vec<String> = call
                .argv
                .iter()
                .map(|arg| match_sim::conformance::escape(arg))
                .collect();
            format!(
                "    {} -> {}",
                argv.join(" "),
                match_sim::conformance::render(&Ok(call.reply.clone()))
            )
        })
        .collect();
    format!(
        "  Redis's choices (followed by the fake):\n{}",
        lines.join("\n")
    )
}

/// A whole SCAN-family iteration: every element of every page in one array, or the first
/// error; a reply that is not a SCAN page is returned as it is (and will not match).
fn iterate(
    argv: &[Vec<u8>],
    cursor_at: usize,
    mut run: impl FnMut(&[Vec<u8>]) -> Outcome,
) -> Outcome {
    let mut argv = argv.to_vec();
    let mut everything = Vec::new();
    for _ in 0..MAX_ITERATION_CALLS {
        let page = run(&argv)?;
        let Reply::Array(parts) = &page else {
            return Ok(page);
        };
        let [Reply::Bulk(next), Reply::Array(elements)] = parts.as_slice() else {
            return Ok(page);
        };
        everything.extend(elements.iter().cloned());
        if next.as_slice() == b"0" {
            return Ok(Reply::Array(everything));
        }
        if let Some(cursor) = argv.get_mut(cursor_at) {
            cursor.clone_from(next);
        }
    }
    Err("LOOP the iteration did not end".to_owned())
}
