-- loading_complete.lua: mark one player of a loading session ready; the last one moves it to allocating.
-- KEYS[1] loading hash, KEYS[2] players hash
-- ARGV[1] player id, ARGV[2] owner token, ARGV[3] loading id, ARGV[4] allocation deadline_ms
-- Reply: {'waiting', ready, total} | {'all_ready', mode, pid1, owner1, ...}
--      | {'already_ready'} | {'not_member'} | {'gone'}
-- Idempotent for the caller that completed the group: asked again (its reply was lost), it
-- gets 'all_ready' again, so exactly one caller allocates a game server.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'gone' }
end
local flag = redis.call('HGET', KEYS[1], 'ready:' .. ARGV[1])
local p = get_player(KEYS[2], ARGV[1])
if not flag or not p or p.owner ~= ARGV[2] or p.loading ~= ARGV[3] then
  return { 'not_member' }
end
local state = redis.call('HGET', KEYS[1], 'state')
local pids = loading_players(KEYS[1])
if state == 'allocating' and redis.call('HGET', KEYS[1], 'allocator') == ARGV[2] then
  -- This caller completed the group earlier and lost the reply: answer it again.
elseif flag == '1' or state ~= 'loading' then
  return { 'already_ready' }
else
  redis.call('HSET', KEYS[1], 'ready:' .. ARGV[1], '1')
  local ready = 0
  for _, pid in ipairs(pids) do
    if redis.call('HGET', KEYS[1], 'ready:' .. pid) == '1' then
      ready = ready + 1
    end
  end
  if ready < #pids then
    return { 'waiting', ready, #pids }
  end
  redis.call('HSET', KEYS[1], 'state', 'allocating', 'deadline_ms', ARGV[4], 'allocator', ARGV[2])
end
local reply = { 'all_ready', redis.call('HGET', KEYS[1], 'mode') }
for _, pid in ipairs(pids) do
  local member = get_player(KEYS[2], pid)
  reply[#reply + 1] = pid
  reply[#reply + 1] = member and member.owner or ''
end
return reply
