-- fleet_sync.lua: bring index records in step with registrations the caller just read.
-- Layout (src/scripts/fleet_sync.rs): KEYS and ARGV as bound below, then ARGV[2..] the
-- servers, five arguments each: name, address ('' = no longer registered: removed),
-- status, capacity, sessions the registration reports.
-- Before a record's held_until_ms the reported sessions only raise in_use (the server may
-- not know of a claim yet); after it, the report is the truth.
-- Reply: {'synced', upserted, removed, free_servers}
local servers_key = KEYS[1]
local free_key = KEYS[2]
local now_ms = tonumber(ARGV[1])
local upserted, removed = 0, 0
for _, entry in ipairs(arg_groups(2, 5)) do
  local name, address = entry[1], entry[2]
  if address == '' then
    removed = removed + redis.call('HDEL', servers_key, name)
    redis.call('SREM', free_key, name)
  else
    local reported = tonumber(entry[5]) or 0
    local s = get_server(servers_key, name) or { in_use = 0, held_until_ms = 0 }
    if now_ms >= s.held_until_ms then
      s.in_use = reported
    else
      s.in_use = math.max(s.in_use, reported)
    end
    s.address, s.status, s.capacity = address, entry[3], tonumber(entry[4]) or 1
    put_server(servers_key, free_key, name, s)
    upserted = upserted + 1
  end
end
return { 'synced', upserted, removed, redis.call('SCARD', free_key) }
