//! The embedded Lua 5.1 that runs scripts as Redis 7.0 does: one state per fake, compiled
//! functions cached by SHA1, the sandbox of `prelude.lua`, `redis.call` wired to the
//! command table for the duration of one run, and Redis's error texts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use match_server::store::Reply;
use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::commands::{self, Caller, Core, Ctx};
use super::convert::{lua_args_to_argv, lua_to_reply, reply_to_lua, single_field, single_line};
use super::errors::{CmdError, CmdResult};
use super::lua_lib::{self, Budget, Lrand48, raise_reply};

/// The chunk name Redis gives user scripts; errors read `user_script:LINE: ...`.
const USER_SCRIPT_SOURCE: &str = "@user_script";
/// How many stack levels the error handler searches for the user's frame.
const MAX_STACK_SEARCH: usize = 256;
/// The most scripts kept compiled; past it the cache starts over, as SCRIPT FLUSH would.
const MAX_CACHED_SCRIPTS: usize = 4096;

/// The Lua state and what the fake keeps about it.
#[derive(Debug)]
pub struct LuaHost {
    /// The one Lua state of this fake; created once, reused by every script.
    lua: Lua,
    /// The globals scripts see (the prelude's flat copy), where KEYS and ARGV are set
    /// before each run.
    globals: Table,
    /// The real `redis` table; `call` and `pcall` are set to scoped functions during a run.
    redis: Table,
    /// The read-only environment every user script runs in.
    env: Table,
    /// The prelude's runner: `xpcall(f, handler)`.
    runner: Function,
    /// Compiled scripts by lower-case SHA1.
    compiled: BTreeMap<String, Function>,
    /// The running script's instruction budget, so a runaway script fails instead of
    /// hanging the simulation.
    budget: Arc<Budget>,
}

impl LuaHost {
    /// Creates the state, loads only the safe libraries and runs the prelude;
    /// `math.random` starts from `random_seed`.
    pub fn new(random_seed: i32) -> mlua::Result<Self> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        let random = Arc::new(Lrand48::default());
        random.seed(random_seed);
        let bridge = lua.create_table()?;
        lua_lib::install(&lua, &bridge, &random)?;
        bridge.raw_set("where", lua.create_function(|lua, ()| Ok(user_frame(lua)))?)?;
        let prelude = lua
            .load(include_str!("prelude.lua"))
            .set_name("=redis_prelude")
            .set_mode(ChunkMode::Text)
            .into_function()?;
        let (env, runner, redis, protected, globals): (Table, Function, Table, Table, Table) =
            prelude.call(bridge)?;
        globals.raw_set("rawset", lua_lib::guarded_rawset(&lua, protected)?)?;
        let budget = Arc::new(Budget::default());
        lua_lib::install_budget(&lua, &budget)?;
        Ok(Self {
            lua,
            globals,
            redis,
            env,
            runner,
            compiled: BTreeMap::new(),
            budget,
        })
    }

    /// Changes how many VM instructions one script may run before it fails.
    pub fn set_instruction_limit(&self, instructions: u64) {
        self.budget.set_limit(instructions);
    }

    /// Whether a script with this SHA1 is compiled (SCRIPT EXISTS, EVALSHA).
    pub fn has(&self, sha1: &str) -> bool {
        self.compiled.contains_key(&sha1.to_ascii_lowercase())
    }

    /// Forgets every compiled script (SCRIPT FLUSH).
    pub fn flush(&mut self) {
        self.compiled.clear();
    }

    /// Compiles `source` under `sha1` unless it already is (SCRIPT LOAD, EVAL).
    pub fn load(&mut self, sha1: &str, source: &[u8]) -> Result<Function, CmdError> {
        let sha1 = sha1.to_ascii_lowercase();
        if let Some(function) = self.compiled.get(&sha1) {
            return Ok(function.clone());
        }
        if let Some(bytecode) = cached_bytecode(&sha1) {
            let function = self
                .lua
                .load(&bytecode[..])
                .set_name(USER_SCRIPT_SOURCE)
                .set_mode(ChunkMode::Binary)
                .set_environment(self.env.clone())
                .into_function()
                .map_err(internal)?;
            return Ok(self.remember(sha1, function));
        }
        let function = self
            .lua
            .load(source)
            .set_name(USER_SCRIPT_SOURCE)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|error| {
                let message = match &error {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                CmdError(format!(
                    "ERR Error compiling script (new function): {}",
                    single_line(message.as_bytes())
                ))
            })?;
        cache_bytecode(&sha1, function.dump(false));
        Ok(self.remember(sha1, function))
    }

    /// Keeps a compiled script under its SHA1.
    fn remember(&mut self, sha1: String, function: Function) -> Function {
        if self.compiled.len() >= MAX_CACHED_SCRIPTS {
            self.compiled.clear();
        }
        self.compiled.insert(sha1, function.clone());
        function
    }

    /// Runs the compiled script `sha1` atomically against `core`, at the instant `now_ms`.
    pub fn run(
        &mut self,
        core: &mut Core,
        now_ms: u64,
        sha1: &str,
        keys: &[Vec<u8>],
        args: &[Vec<u8>],
    ) -> CmdResult {
        let Some(function) = self.compiled.get(&sha1.to_ascii_lowercase()).cloned() else {
            return Err(CmdError::new(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        };
        self.set_arguments(keys, args).map_err(internal)?;
        self.budget.reset();
        let ctx = RefCell::new(Ctx { core, now_ms });
        let outcome = self.lua.scope(|scope| {
            let call = scope.create_function(|lua, values| redis_call(lua, &ctx, values, true))?;
            let pcall =
                scope.create_function(|lua, values| redis_call(lua, &ctx, values, false))?;
            self.redis.raw_set("call", call)?;
            self.redis.raw_set("pcall", pcall)?;
            let (succeeded, value): (bool, Value) = self.runner.call(function)?;
            Ok(script_outcome(succeeded, &value, sha1))
        });
        // The scoped functions are dead now; drop the references to them.
        self.redis.raw_set("call", Value::Nil).map_err(internal)?;
        self.redis.raw_set("pcall", Value::Nil).map_err(internal)?;
        outcome.map_err(internal)?
    }

    /// Sets the KEYS and ARGV globals for the next run.
    fn set_arguments(&self, keys: &[Vec<u8>], args: &[Vec<u8>]) -> mlua::Result<()> {
        for (name, values) in [("KEYS", keys), ("ARGV", args)] {
            let table = self.lua.create_table_with_capacity(values.len(), 0)?;
            for (index, value) in values.iter().enumerate() {
                table.raw_set(index + 1, self.lua.create_string(value)?)?;
            }
            self.globals.raw_set(name, table)?;
        }
        Ok(())
    }
}

/// Bytecode of every script compiled in this process, by SHA1: each seed builds a fresh
/// fake, and compiling the service's scripts from text every time cost 5 % of a campaign.
/// Loading the same bytecode gives the same function, so runs stay identical.
static BYTECODE: Mutex<BTreeMap<String, Arc<[u8]>>> = Mutex::new(BTreeMap::new());

/// Most scripts whose bytecode the process keeps (the conformance suite compiles many).
const MAX_CACHED_BYTECODE: usize = 1024;

fn cached_bytecode(sha1: &str) -> Option<Arc<[u8]>> {
    BYTECODE.lock().ok()?.get(sha1).cloned()
}

fn cache_bytecode(sha1: &str, bytecode: Vec<u8>) {
    if let Ok(mut cache) = BYTECODE.lock()
        && cache.len() < MAX_CACHED_BYTECODE
    {
        cache.insert(sha1.to_owned(), bytecode.into());
    }
}

/// An error of the host itself (not of the script); should never happen.
fn internal(error: mlua::Error) -> CmdError {
    CmdError(format!(
        "ERR fake redis Lua host failure: {}",
        single_line(error.to_string().as_bytes())
    ))
}

/// `redis.call` (`raise` true) and `redis.pcall`: runs one command. A failure is raised
/// as an error reply by `redis.call` and returned as an `{err = ...}` table by `redis.pcall`.
fn redis_call(
    lua: &Lua,
    ctx: &RefCell<Ctx<'_>>,
    values: MultiValue,
    raise: bool,
) -> mlua::Result<Value> {
    let values: Vec<Value> = values.into_iter().collect();
    let result = match lua_args_to_argv(&values) {
        None => Err(CmdError::new(
            "ERR Lua redis lib command arguments must be strings or integers",
        )),
        Some(argv) => {
            let mut ctx = ctx.try_borrow_mut().map_err(mlua::Error::external)?;
            commands::resolve(&argv, Caller::Script)
                .and_then(|spec| commands::run(spec, &mut ctx, &argv))
        }
    };
    match result {
        Ok(reply) => reply_to_lua(lua, &reply),
        Err(CmdError(text)) if raise => Err(raise_reply(text)),
        Err(CmdError(text)) => Ok(Value::Table(single_field(lua, "err", &text)?)),
    }
}

/// `bridge.where`: the source and current line of the innermost user script frame.
fn user_frame(lua: &Lua) -> (Option<String>, Option<usize>) {
    for level in 1..MAX_STACK_SEARCH {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source().source.map(|source| source.into_owned());
            (source, debug.current_line())
        });
        match frame {
            None => break,
            Some((Some(source), line)) if source == USER_SCRIPT_SOURCE => {
                return (Some(source), line);
            }
            Some(_) => {}
        }
    }
    (None, None)
}

/// Turns what the runner returned into the script's reply, with Redis 7's error text:
/// `<message> script: <sha1>, on @user_script:<line>.` for raised errors.
fn script_outcome(succeeded: bool, value: &Value, sha1: &str) -> CmdResult {
    if succeeded {
        return match lua_to_reply(value) {
            Reply::Error(text) => Err(CmdError(text)),
            reply => Ok(reply),
        };
    }
    let Value::Table(error) = value else {
        return Err(CmdError(format!(
            "ERR Error running script {sha1}, execution failure"
        )));
    };
    let message = match error.raw_get::<Value>("err") {
        Ok(Value::String(text)) => single_line(&text.as_bytes()),
        Ok(Value::Integer(number)) => number.to_string(),
        Ok(Value::Number(number)) => number.to_string(),
        _ => "ERR unknown error".to_owned(),
    };
    let source = error.raw_get::<Option<String>>("source").ok().flatten();
    let line = error.raw_get::<Option<i64>>("line").ok().flatten();
    Err(CmdError(match (source, line) {
        (Some(source), Some(line)) => format!("{message} script: {sha1}, on {source}:{line}."),
        _ => message,
    }))
}
