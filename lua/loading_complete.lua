-- loading_complete.lua: mark one player of a loading session ready; the last one moves it to allocating.
-- Layout (src/scripts/loading_complete.rs): KEYS and ARGV as bound below.
-- Reply: {'waiting', ready, total} | {'all_ready', mode, pid1, owner1, ...}
--      | {'already_ready'} | {'not_member'} | {'gone'} | {'lease_lost'}
-- Fenced on the player lease: a call held by a stalled connection that lands after the
-- caller's lease ran out (another connection may hold the player by then) changes nothing.
-- Idempotent for the caller that completed the group: asked again (its reply was lost), it
-- gets 'all_ready' again, so exactly one caller allocates a game server.
local loading_key = KEYS[1]
local players_key = KEYS[2]
local lease_key = KEYS[3]
local player = ARGV[1]
local owner = ARGV[2]
local loading_id = ARGV[3]
local allocation_deadline_ms = ARGV[4]
if redis.call('GET', lease_key) ~= owner then
  return { 'lease_lost' }
end
if redis.call('EXISTS', loading_key) == 0 then
  return { 'gone' }
end
local flag = redis.call('HGET', loading_key, 'ready:' .. player)
local p = get_player(players_key, player)
if not flag or not p or p.owner ~= owner or p.loading ~= loading_id then
  return { 'not_member' }
end
local state = redis.call('HGET', loading_key, 'state')
local pids = loading_players(loading_key)
if state == 'allocating' and redis.call('HGET', loading_key, 'allocator') == owner then
  -- This caller completed the group earlier and lost the reply: answer it again.
elseif flag == '1' or state ~= 'loading' then
  return { 'already_ready' }
else
  redis.call('HSET', loading_key, 'ready:' .. player, '1')
  local ready = 0
  for _, pid in ipairs(pids) do
    if redis.call('HGET', loading_key, 'ready:' .. pid) == '1' then
      ready = ready + 1
    end
  end
  if ready < #pids then
    return { 'waiting', ready, #pids }
  end
  redis.call('HSET', loading_key, 'state', 'allocating', 'deadline_ms', allocation_deadline_ms, 'allocator', owner)
end
local reply = { 'all_ready', redis.call('HGET', loading_key, 'mode') }
for _, pid in ipairs(pids) do
  local member = get_player(players_key, pid)
  reply[#reply + 1] = pid
  reply[#reply + 1] = member and member.owner or ''
end
return reply
