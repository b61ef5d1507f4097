-- lib.lua: helpers prepended to every script (the service sends lib.lua .. script as one source).
-- A player entry lives in the players hash, field = player id, value =
--   state|mode|owner|lease_deadline_ms|loading_id|match_session_id|server_address|ended|reason
-- state is one of: queued, loading, matched. ended|reason record the last loading session the
-- player was requeued from and why (an error code), so a session that missed the notice
-- still tells its client the right reason.

local function split_fields(raw)
  -- Plain find, not a pattern: entries are decoded in every script, often many per call.
  local fields = {}
  local start = 1
  while true do
    local bar = string.find(raw, '|', start, true)
    if not bar then
      fields[#fields + 1] = string.sub(raw, start)
      return fields
    end
    fields[#fields + 1] = string.sub(raw, start, bar - 1)
    start = bar + 1
  end
end

local function decode_player(raw)
  if not raw then
    return nil
  end
  local f = split_fields(raw)
  return {
    state = f[1] or '', mode = f[2] or '', owner = f[3] or '',
    lease = tonumber(f[4]) or 0, lease_raw = f[4] or '0',
    loading = f[5] or '', session = f[6] or '', address = f[7] or '',
    ended = f[8] or '', reason = f[9] or '',
  }
end

local function encode_player(p)
  return table.concat({
    p.state, p.mode, p.owner, p.lease_raw, p.loading or '', p.session or '', p.address or '',
    p.ended or '', p.reason or '',
  }, '|')
end

local function get_player(players_key, player_id)
  return decode_player(redis.call('HGET', players_key, player_id))
end

local function put_player(players_key, player_id, p)
  redis.call('HSET', players_key, player_id, encode_player(p))
end

local function is_live(p, now_ms)
  return p.lease >= now_ms
end

-- Compare-and-delete: deletes `key` only if it holds `token`; 1 when deleted, else 0.
local function release_if_held(key, token)
  if redis.call('GET', key) == token then
    return redis.call('DEL', key)
  end
  return 0
end

-- The queue of every mode, passed as two lists in one order: KEYS[first_key..] the queue
-- sets and ARGV[first_arg..] the mode names (built together by the script's Rust module).
-- Returns mode name -> queue key.
local function mode_queues(first_key, first_arg)
  local queues = {}
  local key = first_key
  for arg = first_arg, #ARGV do
    queues[ARGV[arg]] = KEYS[key]
    key = key + 1
  end
  return queues
end

-- The sessions passed as a tail of ARGV from first_arg, two arguments each: a player id,
-- then the owner token of its session. Returns a list of { player, owner }.
local function session_pairs(first_arg)
  local sessions = {}
  local arg = first_arg
  while ARGV[arg] and ARGV[arg + 1] do
    sessions[#sessions + 1] = { ARGV[arg], ARGV[arg + 1] }
    arg = arg + 2
  end
  return sessions
end

-- The loading session's players are stored as one comma-separated field.
local function loading_players(loading_key)
  local list = redis.call('HGET', loading_key, 'players')
  local out = {}
  if not list then
    return out
  end
  for pid in string.gmatch(list, '([^,]+)') do
    out[#out + 1] = pid
  end
  return out
end

-- Fleet index (issue 10). A server record lives in the servers hash, field = server name,
-- value = address|capacity|in_use|held_until_ms|status
-- in_use counts the slots claimed or busy; held_until_ms is the last claim's deadline,
-- before which a report of fewer sessions cannot lower in_use (the server may not have
-- heard of the claim yet). A server is in the free set iff status is idle and
-- in_use < capacity.
local function decode_server(raw)
  if not raw then
    return nil
  end
  local f = split_fields(raw)
  local capacity, in_use, held = tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  if #f ~= 5 or not capacity or not in_use or not held then
    return nil
  end
  return { address = f[1], capacity = capacity, in_use = in_use, held_until_ms = held, status = f[5] }
end

local function get_server(servers_key, name)
  return decode_server(redis.call('HGET', servers_key, name))
end

local function is_free(s)
  return s.status == 'idle' and s.in_use < s.capacity
end

-- Writes the record and keeps the free set in step with it.
local function put_server(servers_key, free_key, name, s)
  redis.call('HSET', servers_key, name,
    table.concat({ s.address, s.capacity, s.in_use, s.held_until_ms, s.status }, '|'))
  if is_free(s) then
    redis.call('SADD', free_key, name)
  else
    redis.call('SREM', free_key, name)
  end
end

-- The groups of `width` arguments passed as a tail of ARGV from first_arg.
local function arg_groups(first_arg, width)
  local groups = {}
  local arg = first_arg
  while ARGV[arg + width - 1] do
    local group = {}
    for i = 0, width - 1 do
      group[#group + 1] = ARGV[arg + i]
    end
    groups[#groups + 1] = group
    arg = arg + width
  end
  return groups
end
