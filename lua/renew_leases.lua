-- renew_leases.lua: extend the lease of every entry an instance's live sessions own, in one call.
-- KEYS[1] players hash
-- ARGV[1] new lease deadline_ms, then pairs ARGV[2k] player id, ARGV[2k+1] owner token
-- Reply: {'renewed', count, lost_pid1, lost_pid2, ...} (lost: no entry, or owned by another session)
local reply = { 'renewed', 0 }
local renewed = 0
local i = 2
while ARGV[i] and ARGV[i + 1] do
  local p = get_player(KEYS[1], ARGV[i])
  if p and p.owner == ARGV[i + 1] then
    p.lease_raw = ARGV[1]
    put_player(KEYS[1], ARGV[i], p)
    renewed = renewed + 1
  else
    reply[#reply + 1] = ARGV[i]
  end
  i = i + 2
end
reply[2] = renewed
return reply
