-- renew_player_leases.lua: extend the player lease of every live session of an instance, in
-- one call. A lease is extended only while it still holds the renewing session's owner token:
-- a lease that ran out or that another session took is never recreated nor overwritten.
-- Layout (src/scripts/renew_player_leases.rs): ARGV[1] as bound below; then, per session k,
-- KEYS[k] its player lease key (prefix:session:<player>) and, from ARGV[2] on, its player
-- id and owner token.
-- Reply: {'renewed', count, lost_pid1, lost_pid2, ...} (lost: no lease, or another owner's)
-- The leases are read in one MGET (at most LEASE_RENEW_BATCH keys a call); each one still held
-- is extended with its own PEXPIRE.
local ttl_ms = ARGV[1]
local reply = { 'renewed', 0 }
local sessions = session_pairs(2)
local count = math.min(#sessions, #KEYS)
if count == 0 then
  return reply
end
local keys = {}
for k = 1, count do
  keys[k] = KEYS[k]
end
local holders = redis.call('MGET', unpack(keys))
local renewed = 0
for k = 1, count do
  local player, owner = sessions[k][1], sessions[k][2]
  if holders[k] == owner then
    redis.call('PEXPIRE', KEYS[k], ttl_ms)
    renewed = renewed + 1
  else
    reply[#reply + 1] = player
  end
end
reply[2] = renewed
return reply
