-- cancel_loading.lua: end a loading session and put its remaining live players back in the queue.
-- Used when a player leaves, when allocation fails and by the stale sweep. With
-- remove_unready = '1' (the loading timeout) only the players who loaded are requeued: the
-- others are taken out of the queue (entry state 'removed', with the loading id and
-- removal_reason), so a player who does not load cannot hold the others hostage. That holds
-- for an entry whose lease ran out too (its instance may have failed to renew it, e.g. its
-- clock failed, while its session lives): it gets the lease removed_lease_deadline_ms, so its
-- session, if alive, learns why instead of finding its entry gone and re-enqueueing; a dead
-- session's entry is swept when that lease runs out.
-- Layout (src/scripts/cancel_loading.rs): KEYS and ARGV as bound below. leaving_player and
-- leaving_owner are '' when nobody leaves; the flags are '1' or '0'; requeue_reason is the
-- error code requeued players are told, kept in their entries.
-- Reply: {'cancelled', dropped, requeued_count, pid1, owner1, ...} (the first requeued_count
--        pairs were requeued, the rest removed) | {'not_expired'} | {'not_member'} | {'gone'}
local loading_key = KEYS[1]
local players_key = KEYS[2]
local loading_index_key = KEYS[3]
local queue_key = KEYS[4]
local loading_id = ARGV[1]
local leaving_player = ARGV[2]
local leaving_owner = ARGV[3]
local now_ms = tonumber(ARGV[4])
local only_if_expired = ARGV[5]
local only_if_allocating = ARGV[6]
local requeue_reason = ARGV[7]
local remove_unready = ARGV[8]
local removal_reason = ARGV[9]
local removed_lease_deadline_ms = ARGV[10]
if redis.call('EXISTS', loading_key) == 0 then
  redis.call('SREM', loading_index_key, loading_id)
  return { 'gone' }
end
if only_if_expired == '1' and tonumber(redis.call('HGET', loading_key, 'deadline_ms') or '0') >= now_ms then
  return { 'not_expired' }
end
if only_if_allocating == '1' and redis.call('HGET', loading_key, 'state') ~= 'allocating' then
  return { 'not_expired' }
end
if leaving_player ~= '' then
  local p = get_player(players_key, leaving_player)
  if not redis.call('HGET', loading_key, 'ready:' .. leaving_player) or not p or p.owner ~= leaving_owner then
    return { 'not_member' }
  end
end
local mode = redis.call('HGET', loading_key, 'mode')
local requeued = {}
local removed = {}
local dropped = 0
for _, pid in ipairs(loading_players(loading_key)) do
  local p = get_player(players_key, pid)
  local ours = p and p.state == 'loading' and p.loading == loading_id
  local unready = remove_unready == '1' and redis.call('HGET', loading_key, 'ready:' .. pid) ~= '1'
  if pid == leaving_player then
    redis.call('HDEL', players_key, pid)
  elseif ours and (unready or is_live(p, now_ms)) then
    p.loading = ''
    p.mode = mode
    p.ended = loading_id
    if unready then
      p.state = 'removed'
      p.reason = removal_reason
      if not is_live(p, now_ms) then
        p.lease_raw = removed_lease_deadline_ms
      end
      removed[#removed + 1] = { pid, p.owner }
    else
      p.state = 'queued'
      p.reason = requeue_reason
      redis.call('SADD', queue_key, pid)
      requeued[#requeued + 1] = { pid, p.owner }
    end
    put_player(players_key, pid, p)
  else
    dropped = dropped + 1
    if ours then
      redis.call('HDEL', players_key, pid)
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
redis.call('DEL', loading_key)
redis.call('SREM', loading_index_key, loading_id)
return reply
