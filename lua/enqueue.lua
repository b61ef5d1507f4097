-- enqueue.lua: put a player into a mode's queue, once, for the session that owns it.
-- KEYS[1] queue set of the mode, KEYS[2] players hash, KEYS[3..n] queue sets of every mode
-- ARGV[1] player id, ARGV[2] owner token, ARGV[3] mode, ARGV[4] now_ms,
-- ARGV[5] lease deadline_ms, ARGV[6] max queue length, ARGV[7..] mode names matching KEYS[3..]
-- Reply: {'enqueued', queue_len} | {'already', state, mode, loading_id} | {'taken'} | {'busy'} | {'full'}
local now_ms = tonumber(ARGV[4])
local p = get_player(KEYS[2], ARGV[1])
if p then
  local live = is_live(p, now_ms)
  -- A 'removed' entry only records why its session's player left the queue; it holds no
  -- place, so another session of the player (which holds the player lease now) replaces it.
  if live and p.owner ~= ARGV[2] and p.state ~= 'removed' then
    return { 'taken' }
  end
  if p.owner == ARGV[2] and (p.state == 'queued' or p.state == 'loading') then
    return { 'already', p.state, p.mode, p.loading }
  end
  if p.state == 'loading' then
    -- An expired entry still listed in a loading session: the stale sweep frees it.
    return { 'busy' }
  end
end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[6]) then
  return { 'full' }
end
if p and p.state == 'queued' then
  -- A dead entry is replaced: take its player out of the queue it was in, whatever the mode.
  for i = 7, #ARGV do
    if ARGV[i] == p.mode then
      redis.call('SREM', KEYS[i - 4], ARGV[1])
    end
  end
end
redis.call('SADD', KEYS[1], ARGV[1])
put_player(KEYS[2], ARGV[1], { state = 'queued', mode = ARGV[3], owner = ARGV[2], lease_raw = ARGV[5] })
return { 'enqueued', redis.call('SCARD', KEYS[1]) }
