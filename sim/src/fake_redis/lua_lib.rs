//! The Rust half of Redis's Lua library: `redis.sha1hex`, `redis.log`, `math.random` and
//! `math.randomseed`, and errors raised from Rust the way Redis's C functions raise them.
//!
//! These are Rust (C-level) functions rather than Lua wrappers for one reason: a Lua
//! `return f(...)` is a tail call that erases the caller's frame unless `f` is a C
//! function, and Redis's error texts name the line of the user's frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mlua::{HookTriggers, Lua, MultiValue, Table, Value, VmState};

/// The largest value of `lrand48`, as Redis's `REDIS_LRAND48_MAX`.
const LRAND48_MAX: u64 = 2_147_483_647;

/// An error raised from Rust into a script.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Raised {
    /// An error reply (`redis.call` failures and Redis's library argument errors): Lua sees
    /// `{err = text}`, and the text is the script's error if nothing catches it.
    #[error("{0}")]
    Reply(String),
    /// A plain Lua error message (as `luaL_error` raises), already prefixed with the
    /// caller's position; an uncaught one becomes `ERR <message>`.
    #[error("{0}")]
    Message(String),
}

/// An error reply to raise.
pub fn raise_reply(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Raised::Reply(text.into()))
}

/// A `luaL_error`-style message to raise, positioned at the calling Lua line.
pub fn raise_message(lua: &Lua, message: &str) -> mlua::Error {
    let position = lua
        .inspect_stack(1, |frame| {
            let line = frame.current_line()?;
            let source = frame.source().short_src?.into_owned();
            Some(format!("{source}:{line}: "))
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::external(Raised::Message(format!("{position}{message}")))
}

/// A plain Lua error message without a position (as Redis's read-only table check).
fn raise_unpositioned(message: &str) -> mlua::Error {
    mlua::Error::external(Raised::Message(message.to_owned()))
}

/// What a raised Rust error carries, if `value` is one: `(text, is_reply)`.
fn raised(value: &Value) -> Option<(String, bool)> {
    let Value::Error(error) = value else {
        return None;
    };
    match error.downcast_ref::<Raised>()? {
        Raised::Reply(text) => Some((text.clone(), true)),
        Raised::Message(text) => Some((text.clone(), false)),
    }
}

/// Redis's 48-bit `lrand48` generator behind `math.random`. Redis 7.0 does not reseed it
/// per script; the fake seeds it once from its own seed.
#[derive(Debug, Default)]
pub struct Lrand48 {
    /// The 48-bit state.
    state: AtomicU64,
}

impl Lrand48 {
    /// `redisSrand48(seed)`.
    pub fn seed(&self, seed: i32) {
        let state = (u64::from(seed as u32) << 16) | 0x330E;
        self.state.store(state, Ordering::Relaxed);
    }

    /// `redisLrand48()`: the next 31-bit value.
    fn next(&self) -> u64 {
        const MASK_48: u64 = (1 << 48) - 1;
        let state = self.state.load(Ordering::Relaxed);
        let next = state.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & MASK_48;
        self.state.store(next, Ordering::Relaxed);
        next >> 17
    }
}

/// How many VM instructions run between two checks of a script's budget.
const BUDGET_CHECK_INSTRUCTIONS: u32 = 1_000_000;
/// The instructions one script may run by default (about a second of Lua): far beyond any
/// service script, and a runaway loop fails its seed instead of hanging the simulation.
pub const DEFAULT_SCRIPT_INSTRUCTIONS: u64 = 100_000_000;

/// The instruction budget of the running script. Redis would keep running the script and
/// answer BUSY to everyone else; a simulation is better served by an error it can report.
#[derive(Debug)]
pub struct Budget {
    /// Instructions counted since the script started (in steps of the check interval).
    spent: AtomicU64,
    /// Instructions allowed per script.
    limit: AtomicU64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            spent: AtomicU64::new(0),
            limit: AtomicU64::new(DEFAULT_SCRIPT_INSTRUCTIONS),
        }
    }
}

impl Budget {
    /// Starts a new script's count.
    pub fn reset(&self) {
        self.spent.store(0, Ordering::Relaxed);
    }

    /// Changes the instructions allowed per script.
    pub fn set_limit(&self, instructions: u64) {
        self.limit.store(instructions, Ordering::Relaxed);
    }

    /// Counts one check interval; the error once the budget is gone.
    fn spend(&self) -> mlua::Result<VmState> {
        let step = u64::from(BUDGET_CHECK_INSTRUCTIONS);
        let spent = self
            .spent
            .fetch_add(step, Ordering::Relaxed)
            .saturating_add(step);
        let limit = self.limit.load(Ordering::Relaxed);
        if spent > limit {
            return Err(raise_reply(format!(
                "ERR fake redis: script ran past its budget of {limit} instructions \
                 (a real Redis would answer BUSY to other clients)"
            )));
        }
        Ok(VmState::Continue)
    }
}

/// Makes `lua` charge every script's instructions to `budget`.
pub fn install_budget(lua: &Lua, budget: &Arc<Budget>) -> mlua::Result<()> {
    let budget = Arc::clone(budget);
    let triggers = HookTriggers::new().every_nth_instruction(BUDGET_CHECK_INSTRUCTIONS);
    lua.set_hook(triggers, move |_, _| budget.spend())
}

/// Puts the library functions into the prelude's `bridge` table.
pub fn install(lua: &Lua, bridge: &Table, random: &Arc<Lrand48>) -> mlua::Result<()> {
    bridge.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    bridge.raw_set("log", lua.create_function(log)?)?;
    let next = Arc::clone(random);
    bridge.raw_set(
        "random",
        lua.create_function(move |lua, args| math_random(lua, args, &next))?,
    )?;
    let seed = Arc::clone(random);
    let randomseed = lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        seed.seed(check_int(lua, &args, 1, "randomseed")?);
        Ok(())
    })?;
    bridge.raw_set("randomseed", randomseed)?;
    let error_text = lua.create_function(|_, value: Value| {
        Ok(raised(&value).map_or((None, false), |(text, is_reply)| (Some(text), is_reply)))
    })?;
    bridge.raw_set("error_text", error_text)?;
    Ok(())
}

/// `rawset` that refuses the sandbox's read-only tables (the weak set `protected`).
pub fn guarded_rawset(lua: &Lua, protected: Table) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, (table, key, value): (Table, Value, Value)| {
        if protected.raw_get::<bool>(&table)? {
            return Err(raise_unpositioned("Attempt to modify a readonly table"));
        }
        table.raw_set(key, value)?;
        Ok(table)
    })
}

/// `redis.sha1hex(s)`: numbers hash as Lua prints them, other non-strings as "".
fn sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<String> {
    let mut args = args.into_iter();
    let (Some(value), None) = (args.next(), args.next()) else {
        return Err(raise_reply("ERR wrong number of arguments"));
    };
    let bytes = match lua.coerce_string(value)? {
        Some(text) => text.as_bytes().to_vec(),
        None => Vec::new(),
    };
    Ok(sha1_smol::Sha1::from(bytes).hexdigest())
}

/// `redis.log(level, message...)`: logs nowhere, but checks arguments as Redis does.
fn log(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(raise_reply(
            "ERR redis.log() requires two arguments or more.",
        ));
    }
    let level = args.front().cloned().map(|value| lua.coerce_number(value));
    let Some(Ok(Some(level))) = level else {
        return Err(raise_reply(
            "ERR First argument must be a number (log level).",
        ));
    };
    if !(0.0..=3.0).contains(&level) {
        return Err(raise_reply("ERR Invalid debug level."));
    }
    Ok(())
}

/// `math.random([m [, n]])` exactly as Redis's `redis_math_random`.
fn math_random(lua: &Lua, args: MultiValue, generator: &Lrand48) -> mlua::Result<f64> {
    let r = (generator.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
    let args: Vec<Value> = args.into_iter().collect();
    match args.len() {
        0 => Ok(r),
        1 => {
            let upper = check_int(lua, &args, 1, "random")?;
            if upper < 1 {
                return Err(raise_message(
                    lua,
                    "bad argument #1 to 'random' (interval is empty)",
                ));
            }
            Ok((r * f64::from(upper)).floor() + 1.0)
        }
        2 => {
            let lower = check_int(lua, &args, 1, "random")?;
            let upper = check_int(lua, &args, 2, "random")?;
            if lower > upper {
                return Err(raise_message(
                    lua,
                    "bad argument #2 to 'random' (interval is empty)",
                ));
            }
            let span = f64::from(upper) - f64::from(lower) + 1.0;
            Ok((r * span).floor() + f64::from(lower))
        }
        _ => Err(raise_message(lua, "wrong number of arguments")),
    }
}

/// `luaL_checkint`: the argument as a C `int` (numbers and numeric strings, truncated).
fn check_int(lua: &Lua, args: &[Value], position: usize, function: &str) -> mlua::Result<i32> {
    let value = args.get(position - 1).cloned().unwrap_or(Value::Nil);
    let type_name = if position > args.len() {
        "no value"
    } else {
        value.type_name()
    };
    match lua.coerce_number(value)? {
        Some(number) => Ok(number as i64 as i32),
        None => Err(raise_message(
            lua,
            &format!("bad argument #{position} to '{function}' (number expected, got {type_name})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::Lrand48;

    /// Goal: the generator reproduces Redis's sequences (checked on Redis 7.0.15:
    /// after `math.randomseed(0)`, `math.random(100)` gives 18 then 75; after
    /// `math.randomseed(7)`, `math.random(1000)` gives 267 then 683).
    #[test]
    fn lrand48_matches_redis() {
        let generator = Lrand48::default();
        let draw = |g: &Lrand48, upper: f64| {
            ((g.next() % 2_147_483_647) as f64 / 2_147_483_647.0 * upper).floor() + 1.0
        };
        generator.seed(0);
        assert_eq!(
            (draw(&generator, 100.0), draw(&generator, 100.0)),
            (18.0, 75.0)
        );
        generator.seed(7);
        assert_eq!(
            (draw(&generator, 1000.0), draw(&generator, 1000.0)),
            (267.0, 683.0)
        );
    }
}
