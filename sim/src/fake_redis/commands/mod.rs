//! The command table: every command the fake knows, its Redis arity and whether scripts
//! may call it, plus the dispatch that checks both with Redis's error texts.
//!
//! Handlers take the whole argv (name first, as Redis does) and rely on the arity check
//! for the arguments it guarantees; they still read arguments with `get`, never indexing.

mod hashes;
mod keyspace;
mod server;
mod sets;
mod strings;

use super::data::Db;
use super::errors::{CmdError, CmdResult};
use super::follow::Choices;
use super::pubsub::PubSub;

/// The state commands act on (the Lua host and the fault plan live beside it).
#[derive(Debug)]
pub struct Core {
    /// The keyspace.
    pub db: Db,
    /// Decides SPOP and SRANDMEMBER picks, free reply orders and SCAN page shapes: from
    /// the seed, or following a real Redis's record (the conformance suite).
    pub choices: Choices,
    /// Seeds the SCAN iteration order, so each seed walks the keys differently.
    pub scan_seed: u64,
    /// Pattern subscriptions, for PUBLISH.
    pub pubsub: PubSub,
}

/// One command's view of the world: the state and the instant it runs at (a script runs
/// entirely at one instant, as Redis freezes time during a script).
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The state to read and change.
    pub core: &'a mut Core,
    /// The time the command sees, in the time source's milliseconds.
    pub now_ms: u64,
}

/// A command implementation: the context and the full argv.
pub type Handler = fn(&mut Ctx<'_>, &[Vec<u8>]) -> CmdResult;

/// Where a command is carried out.
#[derive(Clone, Copy, Debug)]
pub enum Route {
    /// By a data handler on the [`Core`].
    Data(Handler),
    /// By the Lua host (EVAL, EVALSHA, SCRIPT); never from inside a script.
    Scripting,
    /// Needs a dedicated connection (SUBSCRIBE family); use `FakeRedis::psubscribe`.
    Connection,
}

/// One entry of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name, as Redis prints it in errors.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Where the command runs.
    pub route: Route,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) fit the arity.
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

/// Who sends a command: errors differ between a client and `redis.call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A client connection (the service, a test, the generic entry point).
    Client,
    /// `redis.call` / `redis.pcall` inside a script.
    Script,
}

/// Shorthand for a table entry.
const fn data(name: &'static str, arity: i32, handler: Handler) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        route: Route::Data(handler),
    }
}

/// Every command the fake implements.
static COMMANDS: &[CommandSpec] = &[
    data("del", -2, keyspace::del),
    data("unlink", -2, keyspace::del),
    data("exists", -2, keyspace::exists),
    data("expire", -3, keyspace::expire),
    data("pexpire", -3, keyspace::pexpire),
    data("expireat", -3, keyspace::expireat),
    data("pexpireat", -3, keyspace::pexpireat),
    data("ttl", 2, keyspace::ttl),
    data("pttl", 2, keyspace::pttl),
    data("persist", 2, keyspace::persist),
    data("type", 2, keyspace::type_of),
    data("keys", 2, keyspace::keys),
    data("scan", -2, keyspace::scan),
    data("set", -3, strings::set),
    data("get", 2, strings::get),
    data("mget", -2, strings::mget),
    data("incr", 2, strings::incr),
    data("decr", 2, strings::decr),
    data("incrby", 3, strings::incrby),
    data("decrby", 3, strings::decrby),
    data("sadd", -3, sets::sadd),
    data("srem", -3, sets::srem),
    data("scard", 2, sets::scard),
    data("smembers", 2, sets::smembers),
    data("sismember", 3, sets::sismember),
    data("smismember", -3, sets::smismember),
    data("spop", -2, sets::spop),
    data("srandmember", -2, sets::srandmember),
    data("sscan", -3, sets::sscan),
    data("hset", -4, hashes::hset),
    data("hget", 3, hashes::hget),
    data("hmget", -3, hashes::hmget),
    data("hgetall", 2, hashes::hgetall),
    data("hkeys", 2, hashes::hkeys),
    data("hvals", 2, hashes::hvals),
    data("hdel", -3, hashes::hdel),
    data("hexists", 3, hashes::hexists),
    data("hlen", 2, hashes::hlen),
    data("hincrby", 4, hashes::hincrby),
    data("hscan", -3, hashes::hscan),
    data("publish", 3, server::publish),
    data("ping", -1, server::ping),
    data("dbsize", 1, server::dbsize),
    data("flushall", -1, server::flushall),
    CommandSpec {
        name: "eval",
        arity: -3,
        route: Route::Scripting,
    },
    CommandSpec {
        name: "evalsha",
        arity: -3,
        route: Route::Scripting,
    },
    CommandSpec {
        name: "script",
        arity: -2,
        route: Route::Scripting,
    },
    CommandSpec {
        name: "psubscribe",
        arity: -2,
        route: Route::Connection,
    },
    CommandSpec {
        name: "subscribe",
        arity: -2,
        route: Route::Connection,
    },
];

/// Finds the command named by `argv[0]` and checks its arity, with the error texts Redis
/// uses for `caller`.
pub fn resolve(args: &[Vec<u8>], caller: Caller) -> Result<&'static CommandSpec, CmdError> {
    let Some(name) = args.first() else {
        return Err(match caller {
            Caller::Client => CmdError::new("ERR empty command"),
            Caller::Script => {
                CmdError::new("ERR Please specify at least one argument for this redis lib call")
            }
        });
    };
    let Some(spec) = COMMANDS
        .iter()
        .find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes()))
    else {
        return Err(match caller {
            Caller::Client => unknown_command(args),
            Caller::Script => CmdError::new("ERR Unknown Redis command called from script"),
        });
    };
    if !spec.arity_ok(args.len()) {
        return Err(match caller {
            Caller::Client => CmdError::arity(spec.name),
            Caller::Script => {
                CmdError::new("ERR Wrong number of args calling Redis command from script")
            }
        });
    }
    if caller == Caller::Script && !matches!(spec.route, Route::Data(_)) {
        return Err(CmdError::new(
            "ERR This Redis command is not allowed from script",
        ));
    }
    Ok(spec)
}

/// Redis's text for an unknown command: the name and up to 128 characters of arguments.
fn unknown_command(args: &[Vec<u8>]) -> CmdError {
    const SHOWN_ARGS_CHARS: usize = 128;
    let name = args
        .first()
        .map(|name| String::from_utf8_lossy(name))
        .unwrap_or_default();
    let mut shown = String::new();
    for arg in args.iter().skip(1) {
        if shown.len() >= SHOWN_ARGS_CHARS {
            break;
        }
        let room = SHOWN_ARGS_CHARS - shown.len();
        let text: String = String::from_utf8_lossy(arg).chars().take(room).collect();
        shown.push_str(&format!("'{text}' "));
    }
    let name: String = name.chars().take(SHOWN_ARGS_CHARS).collect();
    CmdError(format!(
        "ERR unknown command '{name}', with args beginning with: {shown}"
    ))
}

/// Runs a data command that `resolve` accepted.
pub fn run(spec: &CommandSpec, ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    match spec.route {
        Route::Data(handler) => handler(ctx, args),
        Route::Scripting | Route::Connection => Err(CmdError::new(format!(
            "ERR '{}' is not a data command of the fake",
            spec.name
        ))),
    }
}

/// The argument at `index`, or empty when absent (the arity check rules that out).
fn arg(args: &[Vec<u8>], index: usize) -> &[u8] {
    args.get(index).map_or(&[], Vec::as_slice)
}

/// A bulk reply of a copy of `bytes`.
fn bulk(bytes: &[u8]) -> match_server::store::Reply {
    match_server::store::Reply::Bulk(bytes.to_vec())
}

/// An integer reply of a count.
fn count(n: usize) -> match_server::store::Reply {
    match_server::store::Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The instant as Redis's signed milliseconds.
fn now_signed(ctx: &Ctx<'_>) -> i64 {
    i64::try_from(ctx.now_ms).unwrap_or(i64::MAX)
}
