-- renew_leases.lua: extend the lease of every entry an instance's live sessions own, in one call.
-- Layout (src/scripts/renew_leases.rs): KEYS and ARGV as bound below, then ARGV[2..] the
-- sessions, two arguments each: a player id and the owner token of its session.
-- Reply: {'renewed', count, lost_pid1, lost_pid2, ...} (lost: no entry, or owned by another session)
-- The entries are read in one HMGET and written back in one HSET (the Rust side sends at most
-- LEASE_RENEW_BATCH sessions a call, well within Lua's unpack limit): two commands whatever the
-- number of sessions, so players who wait long (an exhausted fleet) cost little upkeep.
local players_key = KEYS[1]
local lease_deadline_ms = ARGV[1]
local reply = { 'renewed', 0 }
local sessions = session_pairs(2)
if #sessions == 0 then
  return reply
end
local ids = {}
for i, session in ipairs(sessions) do
  ids[i] = session[1]
end
local stored = redis.call('HMGET', players_key, unpack(ids))
local writes = {}
local renewed = 0
for i, session in ipairs(sessions) do
  local player, owner = session[1], session[2]
  local p = decode_player(stored[i])
  if p and p.owner == owner then
    p.lease_raw = lease_deadline_ms
    writes[#writes + 1] = player
    writes[#writes + 1] = encode_player(p)
    renewed = renewed + 1
  else
    reply[#reply + 1] = player
  end
end
if #writes > 0 then
  redis.call('HSET', players_key, unpack(writes))
end
reply[2] = renewed
return reply
