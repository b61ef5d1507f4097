-- try_match.lua: pop one group of live queued players and create their loading session atomically.
-- Layout (src/scripts/try_match.rs): KEYS and ARGV as bound below. max_pops bounds the work
-- spent on ghosts; lock_key and lock_token are the caller's match lock.
-- Reply: {'matched', loading_id, dropped, pid1, owner1, pid2, owner2, ...}
--      | {'waiting', queue_len, dropped} | {'lock_lost'}
-- A caller whose lock expired changes nothing, so holding the lock twice can do no harm.
local queue_key = KEYS[1]
local players_key = KEYS[2]
local loading_key = KEYS[3]
local loading_index_key = KEYS[4]
local lock_key = KEYS[5]
local mode = ARGV[1]
local players_per_match = tonumber(ARGV[2])
local loading_id = ARGV[3]
local now_ms = tonumber(ARGV[4])
local deadline_ms = ARGV[5]
local max_pops = tonumber(ARGV[6])
local lock_token = ARGV[7]
if redis.call('GET', lock_key) ~= lock_token then
  return { 'lock_lost' }
end
local picked = {}
local dropped = 0
local pops = 0
while #picked < players_per_match and pops < max_pops do
  local batch = redis.call('SPOP', queue_key, players_per_match - #picked)
  if #batch == 0 then
    break
  end
  for _, pid in ipairs(batch) do
    pops = pops + 1
    local p = get_player(players_key, pid)
    if p and p.state == 'queued' and p.mode == mode and is_live(p, now_ms) then
      picked[#picked + 1] = { pid, p }
    else
      dropped = dropped + 1
      if p and p.state == 'queued' and p.mode == mode then
        redis.call('HDEL', players_key, pid)
      end
    end
  end
end
if #picked < players_per_match then
  for _, e in ipairs(picked) do
    redis.call('SADD', queue_key, e[1])
  end
  return { 'waiting', redis.call('SCARD', queue_key), dropped }
end
local ids = {}
local reply = { 'matched', loading_id, dropped }
for _, e in ipairs(picked) do
  local pid, p = e[1], e[2]
  ids[#ids + 1] = pid
  redis.call('HSET', loading_key, 'ready:' .. pid, '0')
  p.state = 'loading'
  p.loading = loading_id
  put_player(players_key, pid, p)
  reply[#reply + 1] = pid
  reply[#reply + 1] = p.owner
end
redis.call('HSET', loading_key, 'mode', mode, 'state', 'loading', 'deadline_ms', deadline_ms, 'players', table.concat(ids, ','))
redis.call('SADD', loading_index_key, loading_id)
return reply
