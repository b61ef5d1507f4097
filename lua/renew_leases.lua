-- renew_leases.lua: extend the lease of every entry an instance's live sessions own, in one call.
-- Layout (src/scripts/renew_leases.rs): KEYS and ARGV as bound below, then ARGV[2..] the
-- sessions, two arguments each: a player id and the owner token of its session.
-- Reply: {'renewed', count, lost_pid1, lost_pid2, ...} (lost: no entry, or owned by another session)
local players_key = KEYS[1]
local lease_deadline_ms = ARGV[1]
local reply = { 'renewed', 0 }
local renewed = 0
for _, session in ipairs(session_pairs(2)) do
  local player, owner = session[1], session[2]
  local p = get_player(players_key, player)
  if p and p.owner == owner then
    p.lease_raw = lease_deadline_ms
    put_player(players_key, player, p)
    renewed = renewed + 1
  else
    reply[#reply + 1] = player
  end
end
reply[2] = renewed
return reply
