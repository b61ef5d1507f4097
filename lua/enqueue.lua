-- enqueue.lua: put a player into a mode's queue, once, for the session that owns it.
-- Layout (src/scripts/enqueue.rs): KEYS and ARGV as bound below, then KEYS[3..] the queue of
-- every mode and ARGV[7..] the mode names, in the same order.
-- Reply: {'enqueued', queue_len} | {'already', state, mode, loading_id} | {'taken'} | {'busy'} | {'full'}
local queue_key = KEYS[1]
local players_key = KEYS[2]
local player = ARGV[1]
local owner = ARGV[2]
local mode = ARGV[3]
local now_ms = tonumber(ARGV[4])
local lease_deadline_ms = ARGV[5]
local max_queue_len = tonumber(ARGV[6])
local queues = mode_queues(3, 7)
local p = get_player(players_key, player)
if p then
  local live = is_live(p, now_ms)
  -- A 'removed' entry only records why its session's player left the queue; it holds no
  -- place, so another session of the player (which holds the player lease now) replaces it.
  if live and p.owner ~= owner and p.state ~= 'removed' then
    return { 'taken' }
  end
  if p.owner == owner and (p.state == 'queued' or p.state == 'loading') then
    return { 'already', p.state, p.mode, p.loading }
  end
  if p.state == 'loading' then
    -- An expired entry still listed in a loading session: the stale sweep frees it.
    return { 'busy' }
  end
end
if redis.call('SCARD', queue_key) >= max_queue_len then
  return { 'full' }
end
if p and p.state == 'queued' and queues[p.mode] then
  -- A dead entry is replaced: take its player out of the queue it was in, whatever the mode.
  redis.call('SREM', queues[p.mode], player)
end
redis.call('SADD', queue_key, player)
put_player(players_key, player, { state = 'queued', mode = mode, owner = owner, lease_raw = lease_deadline_ms })
return { 'enqueued', redis.call('SCARD', queue_key) }
