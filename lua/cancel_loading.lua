-- cancel_loading.lua: end a loading session and put its remaining live players back in the queue.
-- Used when a player leaves, when allocation fails and by the stale sweep. With ARGV[8] = '1'
-- (the loading timeout) only the players who loaded are requeued: the others are taken out of
-- the queue (entry state 'removed', with the loading id and ARGV[9] as the reason), so a player
-- who does not load cannot hold the others hostage. That holds for an entry whose lease ran out
-- too (its instance may have failed to renew it, e.g. its clock failed, while its session
-- lives): it gets the lease ARGV[10], so its session, if alive, learns why instead of finding
-- its entry gone and re-enqueueing; a dead session's entry is swept when that lease runs out.
-- KEYS[1] loading hash, KEYS[2] players hash, KEYS[3] loading index set, KEYS[4] queue set of the mode
-- ARGV[1] loading id, ARGV[2] leaving player id or '', ARGV[3] leaving owner or '',
-- ARGV[4] now_ms, ARGV[5] only_if_expired ('1' or '0'), ARGV[6] only_if_allocating ('1' or '0'),
-- ARGV[7] the reason requeued players are told (an error code), kept in their entries,
-- ARGV[8] remove the players who did not load ('1' or '0'), ARGV[9] the reason they are told,
-- ARGV[10] the lease deadline_ms a removed entry whose lease had run out gets
-- Reply: {'cancelled', dropped, requeued_count, pid1, owner1, ...} (the first requeued_count
--        pairs were requeued, the rest removed) | {'not_expired'} | {'not_member'} | {'gone'}
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
local remove_unready = ARGV[8] == '1'
local requeued = {}
local removed = {}
local dropped = 0
for _, pid in ipairs(loading_players(KEYS[1])) do
  local p = get_player(KEYS[2], pid)
  local ours = p and p.state == 'loading' and p.loading == ARGV[1]
  local unready = remove_unready and redis.call('HGET', KEYS[1], 'ready:' .. pid) ~= '1'
  if pid == leaving then
    redis.call('HDEL', KEYS[2], pid)
  elseif ours and (unready or is_live(p, now_ms)) then
    p.loading = ''
    p.mode = mode
    p.ended = ARGV[1]
    if unready then
      p.state = 'removed'
      p.reason = ARGV[9]
      if not is_live(p, now_ms) then
        p.lease_raw = ARGV[10]
      end
      removed[#removed + 1] = { pid, p.owner }
    else
      p.state = 'queued'
      p.reason = ARGV[7]
      redis.call('SADD', KEYS[4], pid)
      requeued[#requeued + 1] = { pid, p.owner }
    end
    put_player(KEYS[2], pid, p)
  else
    dropped = dropped + 1
    if ours then
      redis.call('HDEL', KEYS[2], pid)
    end
  end
end
local reply = { 'cancelled', dropped, #requeued }
for _, list in ipairs({ requeued, removed }) do
  for _, member in ipairs(list) do
    reply[#reply + 1] = member[1]
    reply[#reply + 1] = member[2]
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return reply
