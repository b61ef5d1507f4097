//! `FakeRedis`: a deterministic in-memory Redis 7.0 for the simulation. It runs the
//! service's own `lua/` scripts in an embedded Lua 5.1, expires keys on an injected time
//! source, delivers pattern pub/sub through tokio channels, and injects faults from a seed.
//!
//! Map of the module:
//!
//! - `mod.rs` (this file): [`FakeRedis`], its constructor, the generic entry points
//!   ([`FakeRedis::execute`], [`FakeRedis::eval_source`]) and the inspection used by the oracle.
//! - `store.rs`: the [`Store`](match_server::store::Store) seam, with fault injection.
//! - `commands/`: the command table and every data command, with Redis's replies and errors.
//! - `data.rs`: the keyspace, expiry (`keyIsExpired`), and the read-only [`DataView`].
//! - `lua_host.rs`, `lua_lib.rs`, `prelude.lua`, `convert.rs`: scripting (sandbox,
//!   `redis.*`, `math.random`, conversions, the instruction budget).
//! - `scan.rs`: SCAN-family cursors; `glob.rs`: Redis glob patterns.
//! - `pubsub.rs`: PSUBSCRIBE / PUBLISH; `faults.rs`: the fault plan and its counters.
//! - `follow.rs`: where choices come from (the seed, or a real Redis's record to follow).
//! - `time.rs`: the [`TimeSource`] seam and a [`ManualClock`] for tests.
//! - `args.rs`, `errors.rs`: argument parsing and error texts shared by the commands.
//!
//! Everything is deterministic: ordered maps only, no wall clock, and every random choice
//! (SPOP picks, SCAN page shapes, faults) comes from ChaCha8 streams of the seed, unless
//! the conformance suite makes the fake follow a real Redis's choices ([`FakeRedis::follow`]).

mod args;
mod commands;
mod convert;
mod data;
mod errors;
mod faults;
mod follow;
mod glob;
mod lua_host;
mod lua_lib;
mod observe;
mod pubsub;
mod scan;
mod store;
mod time;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use match_server::store::{Reply, StoreError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use data::{DataView, Entry, Fields, Members, Value};
pub use faults::{FaultKind, FaultPlan, ScheduledFault};
pub use follow::{CHOICE_COMMANDS, Recorded};
pub use glob::glob_match;
pub use lua_lib::DEFAULT_SCRIPT_INSTRUCTIONS;
pub use observe::{Observer, Served};
pub use pubsub::{FakeSubscription, SUBSCRIBER_BUFFER_MESSAGES};
pub use time::{ManualClock, TimeSource};

use args::parse_i64;
use commands::{Caller, Core, Ctx, Route};
use errors::{CmdError, CmdResult};
use faults::FaultState;
use lua_host::LuaHost;

/// The ChaCha stream of the seed that decides data choices (SPOP, SCAN shapes).
const DATA_STREAM: u64 = 0;
/// The ChaCha stream of the seed that decides faults, so plans do not shift data choices.
const FAULT_STREAM: u64 = 1;

/// Why a fake could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FakeRedisError {
    /// The embedded Lua state or its prelude failed to start.
    #[error("the fake's Lua host could not start: {0}")]
    LuaHost(String),
}

/// A deterministic in-memory Redis; clones share one server.
///
/// Wiring it up (the simulation passes a closure reading sim time instead):
///
/// ```
/// use match_server::store::Store;
/// use match_sim::fake_redis::{FakeRedis, FaultKind, FaultPlan, ManualClock};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new(0);
/// let redis = FakeRedis::new(42, clock.clone())?;
/// redis.set_fault_plan(FaultPlan::uniform(0.01).with(FaultKind::SlowReply, 0.05));
///
/// let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(redis.clone());
/// redis.set_faults_enabled(false); // quiet period: heal everything
/// assert!(store.set_nx_px("lock", "token", 1_000).await?);
/// clock.advance_ms(1_001);
/// assert!(redis.with_data(|view| view.string("lock").is_none()));
/// println!("{:?} after {} commands", redis.fault_counts(), redis.commands_executed());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FakeRedis {
    /// The server every clone talks to.
    shared: Arc<Shared>,
    /// The instance this handle serves (see [`FakeRedis::for_client`]): faults, stalls and
    /// the observer are told who sent each request. `None` for an untagged handle.
    client: Option<Arc<str>>,
}

/// The parts of the server shared by clones.
struct Shared {
    /// All mutable state behind one lock: commands and scripts run one at a time, which
    /// is what makes a script atomic.
    state: Mutex<State>,
    /// Where "now" comes from, for expiry.
    time: Box<dyn TimeSource>,
    /// The seed the fake was built with, for reports.
    seed: u64,
}

/// Everything a command can change.
struct State {
    /// The keyspace, the data RNG and pub/sub.
    core: Core,
    /// The Lua state and compiled scripts.
    lua: LuaHost,
    /// The fault plan and its RNG and counters.
    faults: FaultState,
    /// Top-level commands received (scripts count once), for the simulation's report.
    commands_executed: u64,
    /// Told about every request served through the Store seam, if set.
    observer: Option<Arc<dyn Observer>>,
    /// Instances whose requests are held (a stall), with the requests held so far, in the
    /// order they were sent.
    stalls: BTreeMap<String, Vec<store::Held>>,
    /// Stalled instances that are frozen: their held requests wait for good (no timeout).
    frozen: BTreeSet<String>,
    /// Instances that freeze right after they next take a match lock (`SET <lock> NX`).
    armed: BTreeSet<String>,
    /// Instances that stall (held requests, response timeout as usual) right after they
    /// next take a match lock: a lock holder outlives its lock (W6).
    armed_stalls: BTreeSet<String>,
    /// Instances that crash right after their next script that owes a notice took effect
    /// (W7): from then on their requests are held for good, until the driver crashes them.
    armed_crashes: BTreeSet<String>,
    /// Instances whose armed crash struck, for the driver to crash (in the order struck).
    struck_crashes: Vec<String>,
    /// Instances whose player-lease renewals fail (before their effect) and that stall
    /// right before their next `loading_complete` takes effect (W9).
    armed_lease_stalls: BTreeSet<String>,
    /// Instances whose armed lease stall struck, for the driver to time their resume.
    struck_stalls: Vec<String>,
    /// How long an instance waits for a held request's reply before it gives up with a
    /// timeout (its effect still lands when the stall ends); `None`: it waits for good.
    response_timeout_ms: Option<u64>,
}

impl std::fmt::Debug for FakeRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRedis")
            .field("seed", &self.shared.seed)
            .finish_non_exhaustive()
    }
}

impl FakeRedis {
    /// A fresh, empty server whose random choices all derive from `seed`, reading time
    /// from `time`. Faults are enabled but the plan injects none until
    /// [`set_fault_plan`](Self::set_fault_plan).
    pub fn new(seed: u64, time: impl TimeSource + 'static) -> Result<Self, FakeRedisError> {
        // The seed's low 32 bits start math.random (the cast keeps exactly those bits).
        let lua = LuaHost::new(seed as i32)
            .map_err(|error| FakeRedisError::LuaHost(error.to_string()))?;
        let mut data_rng = ChaCha8Rng::seed_from_u64(seed);
        data_rng.set_stream(DATA_STREAM);
        let mut fault_rng = ChaCha8Rng::seed_from_u64(seed);
        fault_rng.set_stream(FAULT_STREAM);
        let core = Core {
            db: data::Db::default(),
            choices: follow::Choices::seeded(data_rng),
            scan_seed: seed,
            pubsub: pubsub::PubSub::default(),
        };
        let state = State {
            core,
            lua,
            faults: FaultState::new(fault_rng),
            commands_executed: 0,
            observer: None,
            stalls: BTreeMap::new(),
            frozen: BTreeSet::new(),
            armed: BTreeSet::new(),
            armed_stalls: BTreeSet::new(),
            armed_crashes: BTreeSet::new(),
            struck_crashes: Vec::new(),
            armed_lease_stalls: BTreeSet::new(),
            struck_stalls: Vec::new(),
            response_timeout_ms: None,
        };
        let shared = Shared {
            state: Mutex::new(state),
            time: Box::new(time),
            seed,
        };
        Ok(Self {
            shared: Arc::new(shared),
            client: None,
        })
    }

    /// A handle on the same server for the instance `client`: requests through it are
    /// reported to the observer as that instance's, and held while it is stalled.
    pub fn for_client(&self, client: &str) -> Self {
        Self {
            shared: self.shared.clone(),
            client: Some(Arc::from(client)),
        }
    }

    /// The instance this handle serves, empty for an untagged handle.
    fn client_name(&self) -> &str {
        self.client.as_deref().unwrap_or_default()
    }

    /// Sets the observer told about every request served through the Store seam.
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        self.lock().observer = Some(observer);
    }

    /// Sets how long an instance waits for a held request (the service's Redis command
    /// timeout, which the real client enforces).
    pub fn set_response_timeout_ms(&self, timeout_ms: u64) {
        self.lock().response_timeout_ms = Some(timeout_ms);
    }

    /// The seed this fake was built with.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The time source's current time.
    pub fn now_ms(&self) -> u64 {
        self.shared.time.now_ms()
    }

    /// The state, even if a panicking test poisoned the lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one command (name first, like a RESP array) without faults. An error reply is
    /// `Err(StoreError::Server(text))` with Redis's text.
    pub fn execute(&self, args: &[Vec<u8>]) -> Result<Reply, StoreError> {
        let now_ms = self.now_ms();
        let mut state = self.lock();
        state.commands_executed += 1;
        state.execute(args, now_ms).map_err(server_error)
    }

    /// [`execute`](Self::execute) for text arguments, handy in tests.
    pub fn cmd(&self, args: &[&str]) -> Result<Reply, StoreError> {
        let args: Vec<Vec<u8>> = args.iter().map(|arg| arg.as_bytes().to_vec()).collect();
        self.execute(&args)
    }

    /// `EVAL source numkeys keys... args...` without faults: compiles (once per SHA1)
    /// and runs any script. (Named apart from `Store::eval`, which takes a service
    /// `Script` and injects faults.)
    pub fn eval_source<K: AsRef<[u8]>, A: AsRef<[u8]>>(
        &self,
        source: &str,
        keys: &[K],
        args: &[A],
    ) -> Result<Reply, StoreError> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.as_ref().to_vec()).collect();
        let args: Vec<Vec<u8>> = args.iter().map(|arg| arg.as_ref().to_vec()).collect();
        let sha1 = sha1_smol::Sha1::from(source).hexdigest();
        let now_ms = self.now_ms();
        let mut state = self.lock();
        state.commands_executed += 1;
        state
            .run_script(&sha1, source.as_bytes(), &keys, &args, now_ms)
            .map_err(server_error)
    }

    /// Subscribes to a pattern at once, without faults (the Store seam's `psubscribe` is
    /// the faulty, async way).
    pub fn subscribe_pattern(&self, pattern: &str) -> FakeSubscription {
        self.lock().core.pubsub.psubscribe(pattern.as_bytes())
    }

    /// Ends every live subscription, as a dropped pub/sub connection; returns how many.
    pub fn drop_subscribers(&self) -> usize {
        self.lock().core.pubsub.drop_all()
    }

    /// How many subscriptions are live.
    pub fn live_subscriptions(&self) -> usize {
        self.lock().core.pubsub.live()
    }

    /// Changes how many Lua VM instructions one script may run before it fails with an
    /// error (default [`DEFAULT_SCRIPT_INSTRUCTIONS`], checked every million instructions).
    pub fn set_script_instruction_limit(&self, instructions: u64) {
        self.lock().lua.set_instruction_limit(instructions);
    }

    /// Replaces the fault plan.
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        self.lock().faults.set_plan(plan);
    }

    /// Aims one fault at one request (the n-th call of a script or command).
    pub fn schedule_fault(&self, fault: ScheduledFault) {
        self.lock().faults.schedule(fault);
    }

    /// Turns fault injection on or off (off for the simulation's quiet period).
    pub fn set_faults_enabled(&self, enabled: bool) {
        self.lock().faults.set_enabled(enabled);
    }

    /// Whether fault injection is on.
    pub fn faults_enabled(&self) -> bool {
        self.lock().faults.enabled()
    }

    /// Faults actually injected so far, by the kinds' stable names (all kinds present).
    pub fn fault_counts(&self) -> BTreeMap<&'static str, u64> {
        self.lock().faults.counts()
    }

    /// Top-level commands received so far (a script counts once).
    pub fn commands_executed(&self) -> u64 {
        self.lock().commands_executed
    }

    /// Makes the commands that follow take the choices a real Redis made for the same
    /// calls (`recorded`, in call order) instead of the seed's: SPOP and SRANDMEMBER picks,
    /// the order of SMEMBERS, HGETALL, HKEYS, HVALS and KEYS, SCAN-family pages (see
    /// [`CHOICE_COMMANDS`]). Each choice is checked to be one the fake could make itself.
    /// For the conformance suite; until [`stop_following`](Self::stop_following).
    pub fn follow(&self, recorded: Vec<Recorded>) {
        self.lock().core.choices.follow(recorded);
    }

    /// Goes back to the seed's choices; returns every choice that could not be followed
    /// and every recorded reply no command took, one line each (empty: followed exactly).
    pub fn stop_following(&self) -> Vec<String> {
        self.lock().core.choices.stop_following()
    }

    /// Runs `inspect` on a read-only view of the live data, at the current time. The view
    /// holds the server's lock: `inspect` must not call back into this fake.
    pub fn with_data<R>(&self, inspect: impl FnOnce(&DataView<'_>) -> R) -> R {
        let now_ms = self.now_ms();
        let state = self.lock();
        inspect(&DataView::new(&state.core.db, now_ms))
    }

    /// A copy of every live key with its value and expiry, in key order.
    pub fn dump(&self) -> BTreeMap<Vec<u8>, Entry> {
        self.with_data(|view| {
            view.entries()
                .map(|(key, entry)| (key.to_vec(), entry.clone()))
                .collect()
        })
    }
}

/// An error reply as the seam reports it.
fn server_error(error: CmdError) -> StoreError {
    StoreError::Server(error.0)
}

impl State {
    /// Runs one client command at `now_ms`.
    fn execute(&mut self, args: &[Vec<u8>], now_ms: u64) -> CmdResult {
        let spec = commands::resolve(args, Caller::Client)?;
        match spec.route {
            Route::Data(_) => commands::run(
                spec,
                &mut Ctx {
                    core: &mut self.core,
                    now_ms,
                },
                args,
            ),
            Route::Scripting => self.scripting(spec.name, args, now_ms),
            Route::Connection => Err(CmdError::new(
                "ERR the fake serves subscriptions through FakeRedis::subscribe_pattern only",
            )),
        }
    }

    /// Compiles (once) and runs a script.
    fn run_script(
        &mut self,
        sha1: &str,
        source: &[u8],
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
        now_ms: u64,
    ) -> CmdResult {
        self.lua.load(sha1, source)?;
        self.lua.run(&mut self.core, now_ms, sha1, keys, args)
    }

    /// EVAL, EVALSHA and SCRIPT.
    fn scripting(&mut self, name: &str, args: &[Vec<u8>], now_ms: u64) -> CmdResult {
        let first = args.get(1).map_or(&[][..], Vec::as_slice);
        match name {
            "eval" => {
                let (keys, script_args) = split_keys(args)?;
                let sha1 = sha1_smol::Sha1::from(first).hexdigest();
                self.run_script(&sha1, first, keys, script_args, now_ms)
            }
            "evalsha" => {
                let (keys, script_args) = split_keys(args)?;
                let sha1 = String::from_utf8_lossy(first).to_ascii_lowercase();
                self.lua
                    .run(&mut self.core, now_ms, &sha1, keys, script_args)
            }
            _ => self.script_subcommand(args),
        }
    }

    /// SCRIPT LOAD / EXISTS / FLUSH.
    fn script_subcommand(&mut self, args: &[Vec<u8>]) -> CmdResult {
        let sub = args
            .get(1)
            .map(|sub| String::from_utf8_lossy(sub).to_ascii_lowercase());
        let rest = args.get(2..).unwrap_or_default();
        match (sub.as_deref().unwrap_or_default(), rest) {
            ("load", [source]) => {
                let sha1 = sha1_smol::Sha1::from(source).hexdigest();
                self.lua.load(&sha1, source)?;
                Ok(Reply::Bulk(sha1.into_bytes()))
            }
            ("exists", shas) if !shas.is_empty() => Ok(Reply::Array(
                shas.iter()
                    .map(|sha| Reply::Int(i64::from(self.lua.has(&String::from_utf8_lossy(sha)))))
                    .collect(),
            )),
            ("flush", []) => {
                self.lua.flush();
                Ok(errors::ok())
            }
            ("flush", [mode]) => {
                if !(args::is_option(mode, "async") || args::is_option(mode, "sync")) {
                    return Err(CmdError::new(
                        "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
                    ));
                }
                self.lua.flush();
                Ok(errors::ok())
            }
            ("load" | "exists" | "flush", _) => Err(CmdError::arity(&format!(
                "script|{}",
                sub.as_deref().unwrap_or_default()
            ))),
            _ => {
                let original = args.get(1).map(|sub| args::text(sub)).unwrap_or_default();
                let shown: String = original.chars().take(128).collect();
                Err(CmdError(format!(
                    "ERR unknown subcommand '{shown}'. Try SCRIPT HELP."
                )))
            }
        }
    }
}

/// A script's KEYS and ARGV, borrowed from the command's arguments.
type KeysAndArgs<'a> = (&'a [Vec<u8>], &'a [Vec<u8>]);

/// Splits `EVAL script numkeys key... arg...` into keys and arguments, with Redis's checks.
fn split_keys(args: &[Vec<u8>]) -> Result<KeysAndArgs<'_>, CmdError> {
    let numkeys_arg = args.get(2).map_or(&[][..], Vec::as_slice);
    let numkeys = parse_i64(numkeys_arg).ok_or_else(CmdError::not_integer)?;
    let rest = args.get(3..).unwrap_or_default();
    if numkeys > i64::try_from(rest.len()).unwrap_or(i64::MAX) {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let numkeys = usize::try_from(numkeys)
        .map_err(|_| CmdError::new("ERR Number of keys can't be negative"))?;
    rest.split_at_checked(numkeys)
        .ok_or_else(|| CmdError::new("ERR Number of keys can't be greater than number of args"))
}
