//! Runs one generated sequence against a fresh fake and the real Redis side by side,
//! comparing every reply and, at the end, all the data.
//!
//! Each case gets its own key namespace on the real server (it is never flushed, so a
//! shared server is fine) and a fresh `FakeRedis` whose `ManualClock` starts at the wall
//! clock, so expiry arithmetic overflows at the same values on both.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use match_server::scripts::SCRIPTS;
use match_server::store::Reply;
use match_sim::conformance::{
    Mismatch, Outcome, PopChoice, Shape, Snapshot, compare, compare_pop, compare_try_match,
    error_wording_difference, fake_outcome, reply_tag, sync_members,
};
use match_sim::fake_redis::{FakeRedis, FakeSubscription, ManualClock};

use crate::ops::{Arg, Check, Op, PATTERNS, Sequence};
use crate::real_redis::RealRedis;

/// The most calls one SCAN-family iteration or sweep may take before it counts as stuck.
/// A SCAN walks the real server's whole keyspace (MATCH filters after the walk), so on a
/// shared server with many keys and `COUNT 1` an iteration takes many calls.
const MAX_ITERATION_CALLS: usize = 1_000_000;

/// Decides how much of a try_match outcome SPOP's picks decide, with Redis's own Lua:
/// 0 the queue is popped whole (or not at all), 1 a subset with a pop budget of at least
/// the queue size, 2 a subset that the budget may cut short (see `PopChoice`).
const POP_CHOICE_PROBE: &str = r"
local ok, card = pcall(redis.call, 'SCARD', KEYS[1])
if not ok or type(card) ~= 'number' then return 0 end
local need = ARGV[2] and tonumber(ARGV[2])
local max_pops = ARGV[6] and tonumber(ARGV[6])
if not need or not max_pops or need <= 0 or need >= card or max_pops <= 0 then return 0 end
if max_pops >= card then return 1 end
return 2
";

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
    /// try_match calls by how much SPOP's picks decided.
    pub pop_choices: BTreeMap<String, u64>,
    /// Times the fake's data was brought in line with Redis's after a random pick.
    pub resyncs: u64,
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

/// One case in progress.
pub struct CaseRun<'a> {
    /// The real server.
    real: &'a mut RealRedis,
    /// The fake, fresh for this case.
    fake: FakeRedis,
    /// This case's key namespace on the real server.
    namespace: String,
    /// The run's channel namespace (the real subscriber listens under it).
    channel_namespace: String,
    /// Counters for the summary.
    stats: &'a mut Stats,
    /// The fake's subscriptions, held so PUBLISH counts them.
    _subscriptions: Vec<FakeSubscription>,
}

/// Runs `sequence` on both servers; `Err` describes the first mismatch.
pub fn run_sequence(
    real: &mut RealRedis,
    stats: &mut Stats,
    sequence: &Sequence,
    channel_namespace: &str,
    namespace: String,
) -> Result<(), String> {
    let fake = FakeRedis::new(sequence.fake_seed, ManualClock::new(wall_ms()))
        .map_err(|error| format!("the fake did not start: {error}"))?;
    let subscriptions = PATTERNS
        .iter()
        .map(|pattern| fake.subscribe_pattern(&format!("{channel_namespace}{pattern}")))
        .collect();
    stats.cases += 1;
    let mut case = CaseRun {
        real,
        fake,
        namespace,
        channel_namespace: channel_namespace.to_owned(),
        stats,
        _subscriptions: subscriptions,
    };
    let result = case.run_all(&sequence.ops);
    case.real.delete_namespace(&case.namespace);
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
        let differences = self.data_differences();
        if differences.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the data differs after the last operation:\n  - {}",
                differences.join("\n  - ")
            ))
        }
    }

    /// The differences between the fake's data and Redis's, one line each.
    fn data_differences(&mut self) -> Vec<String> {
        let real = self.real.snapshot(&self.namespace);
        Snapshot::of_fake(&self.fake).differences(&real)
    }

    /// The argv with the namespaces and script sources filled in.
    fn resolve(&self, argv: &[Arg]) -> Vec<Vec<u8>> {
        argv.iter()
            .map(|arg| match arg {
                Arg::Key(key) | Arg::KeyGlob(key) => {
                    format!("{}{key}", self.namespace).into_bytes()
                }
                Arg::Channel(channel) => {
                    format!("{}{channel}", self.channel_namespace).into_bytes()
                }
                Arg::Script(index) => SCRIPTS
                    .all()
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

    /// Runs `argv` on both servers.
    fn on_both(&mut self, argv: &[Vec<u8>]) -> (Outcome, Outcome) {
        let fake = self.on_fake(argv);
        let real = self.real.run(argv);
        if fake.is_err() && real.is_err() {
            self.stats.both_errors += 1;
        }
        if let Some(wording) = error_wording_difference(&fake, &real) {
            *self.stats.wordings.entry(wording).or_default() += 1;
        }
        (fake, real)
    }

    /// Runs one operation and compares as its check says.
    fn run_op(&mut self, op: &Op) -> Result<(), String> {
        let argv = self.resolve(&op.argv);
        let shape = match op.check {
            Check::Exact | Check::Script => Shape::Exact,
            Check::Unordered => Shape::Unordered,
            Check::Map => Shape::Map,
            Check::Ttl(unit_ms) => Shape::Ttl { unit_ms },
            Check::Scan { cursor_at, pairs } => return self.scan(&argv, cursor_at, pairs),
            Check::Pop => return self.pop(&argv),
            Check::TryMatch => return self.try_match(op, &argv),
            Check::Sweep => return self.sweep(op, &argv),
        };
        let (fake, real) = self.on_both(&argv);
        if op.check == Check::Script {
            self.count_script(op, &real);
        }
        compare(shape, &fake, &real).map_err(|mismatch| mismatch.to_string())
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

    /// A whole SCAN-family iteration on each server, compared by its union.
    fn scan(&mut self, argv: &[Vec<u8>], cursor_at: usize, pairs: bool) -> Result<(), String> {
        let fake = iterate(argv, cursor_at, |argv| self.on_fake(argv));
        let real = iterate(argv, cursor_at, |argv| self.real.run(argv));
        let shape = if pairs { Shape::UnionMap } else { Shape::Union };
        compare(shape, &fake, &real).map_err(|mismatch| mismatch.to_string())
    }

    /// SPOP: compared on what does not depend on the picks, then the fake's set is made
    /// to hold what Redis's holds.
    fn pop(&mut self, argv: &[Vec<u8>]) -> Result<(), String> {
        let (fake, real) = self.on_both(argv);
        let Some(key) = argv.get(1) else {
            return compare(Shape::Exact, &fake, &real).map_err(|m| m.to_string());
        };
        let members = vec![b"SMEMBERS".to_vec(), key.clone()];
        let fake_rest = self.on_fake(&members);
        let real_rest = self.real.run(&members);
        compare_pop(&fake, &fake_rest, &real, &real_rest).map_err(|mismatch| {
            format!(
                "{mismatch}\n  members left: fake {}, redis {}",
                match_sim::conformance::render(&fake_rest),
                match_sim::conformance::render(&real_rest)
            )
        })?;
        if let (Ok(Reply::Array(fake_rest)), Ok(Reply::Array(real_rest))) = (&fake_rest, &real_rest)
        {
            let fake_rest = bulk_set(fake_rest);
            let real_rest = bulk_set(real_rest);
            if fake_rest != real_rest {
                self.stats.resyncs += 1;
                sync_members(&self.fake, key, &real_rest)
                    .map_err(|error| format!("could not resync the fake: {error}"))?;
            }
        }
        Ok(())
    }

    /// try_match: compared as strictly as SPOP's picks allow; afterwards the fake holds
    /// exactly Redis's data (see `PopChoice`).
    fn try_match(&mut self, op: &Op, argv: &[Vec<u8>]) -> Result<(), String> {
        let mut probe = argv.to_vec();
        if let Some(source) = probe.get_mut(1) {
            *source = POP_CHOICE_PROBE.as_bytes().to_vec();
        }
        let choice = match self.real.run(&probe) {
            Ok(Reply::Int(1)) => PopChoice::Subset,
            Ok(Reply::Int(2)) => PopChoice::SubsetBounded,
            _ => PopChoice::Whole,
        };
        *self
            .stats
            .pop_choices
            .entry(format!("{choice:?}"))
            .or_default() += 1;
        if choice != PopChoice::Whole {
            self.check_data_before(op)?;
        }
        let (fake, real) = self.on_both(argv);
        self.count_script(op, &real);
        compare_try_match(choice, &fake, &real).map_err(|mismatch| mismatch.to_string())?;
        if choice == PopChoice::Whole {
            self.sync_players_order(argv)
        } else {
            self.resync()
        }
    }

    /// After a try_match that popped the whole queue, the loading hash's `players` field
    /// lists the same players in SPOP order (also when the script failed after writing
    /// it); the fake takes Redis's order (once it is shown to be the same players), so
    /// later scripts reply in the same order.
    fn sync_players_order(&mut self, argv: &[Vec<u8>]) -> Result<(), String> {
        let Some(loading_key) = argv.get(5) else {
            return Ok(());
        };
        let read = vec![b"HGET".to_vec(), loading_key.clone(), b"players".to_vec()];
        let fake_players = self.on_fake(&read);
        let real_players = self.real.run(&read);
        let ids = |outcome: &Outcome| match outcome {
            Ok(Reply::Bulk(list)) => {
                let mut ids: Vec<Vec<u8>> = list
                    .split(|byte| *byte == b',')
                    .map(<[u8]>::to_vec)
                    .collect();
                ids.sort_unstable();
                Some(ids)
            }
            _ => None,
        };
        if ids(&fake_players) != ids(&real_players) {
            let mismatch = Mismatch::new(
                &fake_players,
                &real_players,
                "the loading session lists different players",
            );
            return Err(mismatch.to_string());
        }
        if fake_players != real_players {
            if let Ok(Reply::Bulk(order)) = real_players {
                let write = vec![
                    b"HSET".to_vec(),
                    loading_key.clone(),
                    b"players".to_vec(),
                    order,
                ];
                fake_outcome(self.fake.execute(&write))
                    .map_err(|error| format!("could not copy the players order: {error}"))?;
            }
        }
        Ok(())
    }

    /// sweep_players repeated with the cursor it returns until that is 0, on each server;
    /// compared by the total removed (Redis answers a small hash in one HSCAN page, the
    /// fake in pages of its own shapes). When the sweep fails part way (a queue key of the
    /// wrong type), what it removed before failing depends on the HSCAN order, which Redis
    /// leaves unspecified; then the fake takes Redis's data, after the data before the
    /// sweep was shown to match.
    fn sweep(&mut self, op: &Op, argv: &[Vec<u8>]) -> Result<(), String> {
        self.check_data_before(op)?;
        let numkeys = argv
            .get(2)
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok());
        let cursor_at = numkeys.map(|n| 3 + n + 1).filter(|at| *at < argv.len());
        let (fake, real) = match cursor_at {
            Some(cursor_at) => (
                sweep_all(argv, cursor_at, |argv| self.on_fake(argv)),
                sweep_all(argv, cursor_at, |argv| self.real.run(argv)),
            ),
            None => self.on_both(argv),
        };
        self.count_script(op, &real);
        compare(Shape::Exact, &fake, &real).map_err(|mismatch| mismatch.to_string())?;
        if fake.is_err() {
            self.resync()?;
        }
        Ok(())
    }

    /// Fails when the data already differs, before an operation after which the fake will
    /// be resynchronised (so the resync cannot hide an earlier difference).
    fn check_data_before(&mut self, op: &Op) -> Result<(), String> {
        let differences = self.data_differences();
        if differences.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the data already differed before `{op}` (checked first, as the fake may be \
             resynchronised after it):\n  - {}",
            differences.join("\n  - ")
        ))
    }

    /// Replaces the fake's data with Redis's.
    fn resync(&mut self) -> Result<(), String> {
        self.stats.resyncs += 1;
        let real_data = self.real.snapshot(&self.namespace);
        real_data
            .load_into(&self.fake)
            .map_err(|error| format!("could not resync the fake: {error}"))
    }
}

/// The members of an array of bulk replies.
fn bulk_set(items: &[Reply]) -> BTreeSet<Vec<u8>> {
    items
        .iter()
        .filter_map(|item| match item {
            Reply::Bulk(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
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

/// sweep_players until its cursor is 0: `{'swept', '0', total removed}`, or the first
/// reply that is not a `swept` page.
fn sweep_all(
    argv: &[Vec<u8>],
    cursor_at: usize,
    mut run: impl FnMut(&[Vec<u8>]) -> Outcome,
) -> Outcome {
    let mut argv = argv.to_vec();
    let mut removed = 0;
    for _ in 0..MAX_ITERATION_CALLS {
        let page = run(&argv)?;
        let Reply::Array(parts) = &page else {
            return Ok(page);
        };
        let [Reply::Bulk(tag), Reply::Bulk(next), Reply::Int(count)] = parts.as_slice() else {
            return Ok(page);
        };
        if tag.as_slice() != b"swept" {
            return Ok(page);
        }
        removed += count;
        if next.as_slice() == b"0" {
            return Ok(Reply::Array(vec![
                Reply::bulk("swept"),
                Reply::bulk("0"),
                Reply::Int(removed),
            ]));
        }
        if let Some(cursor) = argv.get_mut(cursor_at) {
            cursor.clone_from(next);
        }
    }
    Err("LOOP the sweep did not end".to_owned())
}
