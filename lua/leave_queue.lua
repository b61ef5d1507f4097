-- leave_queue.lua: remove a player's queue entry (dequeue, disconnect, shutdown).
-- KEYS[1] queue set of the mode the session believes it is in, KEYS[2] players hash
-- ARGV[1] player id, ARGV[2] owner token, ARGV[3] mode of KEYS[1]
-- Reply: {'left', previous_state} | {'loading', loading_id, mode} | {'other_mode', mode} | {'none'}
local p = get_player(KEYS[2], ARGV[1])
if not p or p.owner ~= ARGV[2] then
  return { 'none' }
end
if p.state == 'loading' then
  return { 'loading', p.loading, p.mode }
end
if p.state == 'queued' then
  if p.mode ~= ARGV[3] then
    return { 'other_mode', p.mode }
  end
  redis.call('SREM', KEYS[1], ARGV[1])
end
redis.call('HDEL', KEYS[2], ARGV[1])
return { 'left', p.state }
