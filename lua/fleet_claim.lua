-- fleet_claim.lua: claim one free slot of the fleet index for an allocation, in O(1).
-- Layout (src/scripts/fleet_claim.rs): KEYS and ARGV as bound below. claim_key is
-- {prefix}:fleet:claim:<token>, a fresh token per allocation; it names the server for
-- fleet_release.lua and expires with the claim.
-- Reply: {'claimed', name, address, free_servers} | {'none', free_servers}
local servers_key = KEYS[1]
local free_key = KEYS[2]
local claim_key = KEYS[3]
local now_ms = tonumber(ARGV[1])
local claim_ttl_ms = tonumber(ARGV[2])
local max_picks = tonumber(ARGV[3])
for _ = 1, max_picks do
  local name = redis.call('SRANDMEMBER', free_key)
  if not name then
    break
  end
  local s = get_server(servers_key, name)
  if s and is_free(s) then
    s.in_use = s.in_use + 1
    s.held_until_ms = math.max(s.held_until_ms, now_ms + claim_ttl_ms)
    put_server(servers_key, free_key, name, s)
    redis.call('SET', claim_key, name, 'PX', claim_ttl_ms)
    return { 'claimed', name, s.address, redis.call('SCARD', free_key) }
  end
  -- A member without a free record (never written by put_server): repair and pick again.
  redis.call('SREM', free_key, name)
end
return { 'none', redis.call('SCARD', free_key) }
