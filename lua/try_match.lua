-- try_match.lua: pop one group of live queued players and create their loading session atomically.
-- KEYS[1] queue set, KEYS[2] players hash, KEYS[3] new loading hash, KEYS[4] loading index set
-- of the mode, KEYS[5] the mode's match lock
-- ARGV[1] mode, ARGV[2] players per match, ARGV[3] loading id, ARGV[4] now_ms,
-- ARGV[5] loading deadline_ms, ARGV[6] most members to pop (bounds the work spent on ghosts),
-- ARGV[7] the caller's lock token
-- Reply: {'matched', loading_id, dropped, pid1, owner1, pid2, owner2, ...}
--      | {'waiting', queue_len, dropped} | {'lock_lost'}
-- A caller whose lock expired changes nothing, so holding the lock twice can do no harm.
if redis.call('GET', KEYS[5]) ~= ARGV[7] then
  return { 'lock_lost' }
end
local mode = ARGV[1]
local need = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[4])
local max_pops = tonumber(ARGV[6])
local picked = {}
local dropped = 0
local pops = 0
while #picked < need and pops < max_pops do
  local batch = redis.call('SPOP', KEYS[1], need - #picked)
  if #batch == 0 then
    break
  end
  for _, pid in ipairs(batch) do
    pops = pops + 1
    local p = get_player(KEYS[2], pid)
    if p and p.state == 'queued' and p.mode == mode and is_live(p, now_ms) then
      picked[#picked + 1] = { pid, p }
    else
      dropped = dropped + 1
      if p and p.state == 'queued' and p.mode == mode then
        redis.call('HDEL', KEYS[2], pid)
      end
    end
  end
end
if #picked < need then
  for _, e in ipairs(picked) do
    redis.call('SADD', KEYS[1], e[1])
  end
  return { 'waiting', redis.call('SCARD', KEYS[1]), dropped }
end
local ids = {}
local reply = { 'matched', ARGV[3], dropped }
for _, e in ipairs(picked) do
  local pid, p = e[1], e[2]
  ids[#ids + 1] = pid
  redis.call('HSET', KEYS[3], 'ready:' .. pid, '0')
  p.state = 'loading'
  p.loading = ARGV[3]
  put_player(KEYS[2], pid, p)
  reply[#reply + 1] = pid
  reply[#reply + 1] = p.owner
end
redis.call('HSET', KEYS[3], 'mode', mode, 'state', 'loading', 'deadline_ms', ARGV[5], 'players', table.concat(ids, ','))
redis.call('SADD', KEYS[4], ARGV[3])
return reply
