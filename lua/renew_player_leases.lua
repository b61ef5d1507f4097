-- renew_player_leases.lua: extend the player lease of every live session of an instance, in
-- one call. A lease is extended only while it still holds the renewing session's owner token:
-- a lease that ran out or that another session took is never recreated nor overwritten.
-- KEYS[k] player lease key of the k-th session (prefix:session:<player>)
-- ARGV[1] lease ttl_ms, then pairs ARGV[2k] player id, ARGV[2k+1] owner token (k = 1..#KEYS)
-- Reply: {'renewed', count, lost_pid1, lost_pid2, ...} (lost: no lease, or another owner's)
local reply = { 'renewed', 0 }
local renewed = 0
for k = 1, #KEYS do
  local player = ARGV[2 * k]
  local owner = ARGV[2 * k + 1]
  if player and owner then
    if redis.call('GET', KEYS[k]) == owner then
      redis.call('PEXPIRE', KEYS[k], ARGV[1])
      renewed = renewed + 1
    else
      reply[#reply + 1] = player
    end
  end
end
reply[2] = renewed
return reply
