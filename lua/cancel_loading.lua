-- cancel_loading.lua: end a loading session and put its remaining live players back in the queue.
-- Used when a player leaves, when allocation fails and by the stale sweep.
-- KEYS[1] loading hash, KEYS[2] players hash, KEYS[3] loading index set, KEYS[4] queue set of the mode
-- ARGV[1] loading id, ARGV[2] leaving player id or '', ARGV[3] leaving owner or '',
-- ARGV[4] now_ms, ARGV[5] only_if_expired ('1' or '0'), ARGV[6] only_if_allocating ('1' or '0'),
-- ARGV[7] the reason players are told (an error code), kept in their entries
-- Reply: {'cancelled', dropped, pid1, owner1, ...} | {'not_expired'} | {'not_member'} | {'gone'}
local now_ms = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
  return { 'gone' }
end
if ARGV[5] == '1' and tonumber(redis.call('HGET', KEYS[1], 'deadline_ms') or '0') >= now_ms then
  return { 'not_expired' }
end
if ARGV[6] == '1' and redis.call('HGET', KEYS[1], 'state') ~= 'allocating' then
  return { 'not_expired' }
end
local leaving = ARGV[2]
if leaving ~= '' then
  local p = get_player(KEYS[2], leaving)
  if not redis.call('HGET', KEYS[1], 'ready:' .. leaving) or not p or p.owner ~= ARGV[3] then
    return { 'not_member' }
  end
end
local mode = redis.call('HGET', KEYS[1], 'mode')
local reply = { 'cancelled', 0 }
local dropped = 0
for _, pid in ipairs(loading_players(KEYS[1])) do
  local p = get_player(KEYS[2], pid)
  local ours = p and p.state == 'loading' and p.loading == ARGV[1]
  if pid == leaving then
    redis.call('HDEL', KEYS[2], pid)
  elseif ours and is_live(p, now_ms) then
    p.state = 'queued'
    p.loading = ''
    p.mode = mode
    p.ended = ARGV[1]
    p.reason = ARGV[7]
    put_player(KEYS[2], pid, p)
    redis.call('SADD', KEYS[4], pid)
    reply[#reply + 1] = pid
    reply[#reply + 1] = p.owner
  else
    dropped = dropped + 1
    if ours then
      redis.call('HDEL', KEYS[2], pid)
    end
  end
end
reply[2] = dropped
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return reply
