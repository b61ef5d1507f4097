-- fleet_release.lua: give back the slot of a claim whose session was not created.
-- Idempotent: the claim key is deleted by the first call, a repeat finds nothing.
-- Layout (src/scripts/fleet_release.rs): KEYS and ARGV as bound below.
-- Reply: {'released', name, free_servers} | {'gone', free_servers}
local servers_key = KEYS[1]
local free_key = KEYS[2]
local claim_key = KEYS[3]
local name = redis.call('GET', claim_key)
if not name then
  return { 'gone', redis.call('SCARD', free_key) }
end
redis.call('DEL', claim_key)
local s = get_server(servers_key, name)
if s then
  s.in_use = math.max(0, s.in_use - 1)
  put_server(servers_key, free_key, name, s)
end
return { 'released', name, redis.call('SCARD', free_key) }
