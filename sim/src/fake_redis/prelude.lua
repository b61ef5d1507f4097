-- prelude.lua: turns a plain Lua 5.1 state into Redis 7.0's script environment.
-- Runs once per Lua state, before any user script. It receives `bridge`, a table of Rust
-- functions (Rust, because a C-level function keeps its caller's frame in a tail call):
--   bridge.sha1hex, bridge.log       redis.sha1hex and redis.log
--   bridge.random, bridge.randomseed math.random and math.randomseed (Redis's lrand48)
--   bridge.error_text(e)          -> text, is_reply when e was raised from Rust
--   bridge.where()                -> source, line of the innermost user_script frame
-- It returns the sandbox environment of user scripts, the protected runner, the real
-- `redis` table (where the host sets `call` and `pcall` for the duration of each run),
-- the weak set of read-only tables (for the host's `rawset`) and the globals scripts
-- see (where the host sets KEYS, ARGV and `rawset`).
local bridge = ...

local G = _G
local type, tostring, tonumber, select, error = type, tostring, tonumber, select, error
local rawget, rawset, setmetatable = rawget, rawset, setmetatable
local real_pcall, real_xpcall = pcall, xpcall
local real_loadstring, real_setfenv = loadstring, setfenv
local string_sub, string_find, string_gsub = string.sub, string.find, string.gsub
local table_concat = table.concat

-- Tables a script may read but never change (Redis 7 makes them read-only).
local protected = setmetatable({}, { __mode = 'k' })

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end

local function readonly(t)
  local proxy = setmetatable({}, { __index = t, __newindex = readonly_error, __metatable = false })
  protected[proxy] = true
  return proxy
end

-- Redis's luaPushErrorBuff: '-CODE msg' keeps its code, anything else gets 'ERR'.
local function trim_newlines(s)
  s = string_gsub(s, '^[\r\n]+', '')
  s = string_gsub(s, '[\r\n]+$', '')
  return s
end

local function error_table(raw)
  local code, msg = 'ERR', raw
  if string_sub(raw, 1, 1) == '-' then
    local space = string_find(raw, ' ', 1, true)
    if space then
      code, msg = string_sub(raw, 2, space - 1), string_sub(raw, space + 1)
    else
      msg = string_sub(raw, 2)
    end
  end
  return { err = code .. ' ' .. trim_newlines(msg) }
end

local redis = {}

function redis.error_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  if string_sub(s, 1, 1) ~= '-' then
    s = '-' .. s
  end
  return error_table(s)
end

function redis.status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return { ok = s }
end

redis.sha1hex = bridge.sha1hex
redis.log = bridge.log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = '7.0.15', 0x07000f

function redis.set_repl(...)
  if select('#', ...) ~= 1 then
    error(error_table('redis.set_repl() requires one argument.'))
  end
end

function redis.replicate_commands()
  return true
end

function redis.setresp(...)
  if select('#', ...) ~= 1 then
    error(error_table('redis.setresp() requires one argument.'))
  end
  local version = tonumber((...))
  if version ~= 2 and version ~= 3 then
    error(error_table('RESP version must be 2 or 3.'))
  end
  if version == 3 then
    error(error_table('RESP3 is not supported by the fake Redis.'))
  end
end

function redis.breakpoint()
  return false
end

function redis.debug() end

function redis.acl_check_cmd(...)
  if select('#', ...) < 1 then
    error(error_table('Please specify at least one argument for this redis lib call'))
  end
  return true
end

-- math.random as Redis replaces it: lrand48.
math.random = bridge.random
math.randomseed = bridge.randomseed

-- Redis's pcall turns an error table into its message, so scripts see plain strings.
local error_text = bridge.error_text

local function pcall_result(ok, ...)
  if ok then
    return true, ...
  end
  local e = ...
  local raised = error_text(e)
  if raised then
    return false, raised
  end
  if type(e) == 'table' then
    local message = e.err
    if type(message) == 'string' or type(message) == 'number' then
      return false, message
    end
  end
  return false, e
end

G.pcall = function(...)
  return pcall_result(real_pcall(...))
end

-- An error raised from Rust reaches a script's own xpcall handler as Redis shows it.
local function as_lua_error(e)
  local raised, is_reply = error_text(e)
  if raised == nil then
    return e
  elseif is_reply then
    return { err = raised }
  end
  return raised
end

G.xpcall = function(f, user_handler)
  return real_xpcall(f, function(e)
    return user_handler(as_lua_error(e))
  end)
end

-- Nothing that reaches the file system, the process, other modules or the debugger.
for _, name in ipairs({ 'dofile', 'loadfile', 'print', 'getfenv', 'setfenv', 'module',
  'require', 'newproxy', 'package', 'io', 'os', 'debug' }) do
  rawset(G, name, nil)
end

-- The environment user scripts run in; filled in once the globals are final (below).
local ENV = {}

-- rawset refuses the read-only tables; the host installs it (in Rust, to keep the
-- caller's frame in a tail call) from the `protected` set returned below.

-- Code loaded at run time gets the sandbox too, and never as bytecode.
G.loadstring = function(source, name)
  if type(source) == 'string' and string_sub(source, 1, 1) == '\27' then
    return nil, 'binary chunks are not allowed'
  end
  local f, e = real_loadstring(source, name)
  if f then
    real_setfenv(f, ENV)
  end
  return f, e
end

G.load = function(reader, name)
  if type(reader) ~= 'function' then
    error("bad argument #1 to 'load' (function expected, got " .. type(reader) .. ")", 2)
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then
      break
    end
    if type(piece) ~= 'string' then
      return nil, 'reader function must return a string'
    end
    parts[#parts + 1] = piece
  end
  return G.loadstring(table_concat(parts), name or '=(load)')
end

G._G = ENV
G.redis = readonly(redis)
G.string = readonly(string)
G.table = readonly(table)
G.math = readonly(math)
G.coroutine = readonly(coroutine)

-- Reads from ENV go to VIEW, a flat copy of the final globals, so a hit costs one table
-- access; a name VIEW lacks is an error, as in Redis. Writes to either are refused.
local VIEW = {}
for key, value in pairs(G) do
  VIEW[key] = value
end
setmetatable(VIEW, {
  __index = function(_, key)
    error("Script attempted to access nonexistent global variable '" .. tostring(key) .. "'", 2)
  end,
  __newindex = readonly_error,
  __metatable = false,
})
setmetatable(ENV, { __index = VIEW, __newindex = readonly_error, __metatable = false })
protected[ENV] = true
protected[VIEW] = true

-- Redis's error handler: every error becomes {err=..., source=..., line=...}.
local function handler(err)
  err = as_lua_error(err)
  if type(err) ~= 'table' then
    err = { err = 'ERR ' .. tostring(err) }
  end
  local source, line = bridge.where()
  if source and not protected[err] then
    err.source, err.line = source, line
  end
  return err
end

local function run(f)
  return real_xpcall(f, handler)
end

return ENV, run, redis, protected, VIEW
