-- leave_queue.lua: remove a player's queue entry (dequeue, disconnect, shutdown).
-- Layout (src/scripts/leave_queue.rs): KEYS and ARGV as bound below; queue_key is the queue
-- of `mode`, the mode the session believes the player is in.
-- Reply: {'left', previous_state} | {'loading', loading_id, mode} | {'other_mode', mode} | {'none'}
local queue_key = KEYS[1]
local players_key = KEYS[2]
local player = ARGV[1]
local owner = ARGV[2]
local mode = ARGV[3]
local p = get_player(players_key, player)
if not p or p.owner ~= owner then
  return { 'none' }
end
if p.state == 'loading' then
  return { 'loading', p.loading, p.mode }
end
if p.state == 'queued' then
  if p.mode ~= mode then
    return { 'other_mode', p.mode }
  end
  redis.call('SREM', queue_key, player)
end
redis.call('HDEL', players_key, player)
return { 'left', p.state }
