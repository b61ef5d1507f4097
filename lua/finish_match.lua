-- finish_match.lua: record the allocated game server for every player and end the loading session.
-- Layout (src/scripts/finish_match.rs): KEYS and ARGV as bound below; lease_deadline_ms is
-- the lease the matched entries get.
-- Reply: {'matched', pid1, owner1, ...} | {'gone'}
local loading_key = KEYS[1]
local players_key = KEYS[2]
local loading_index_key = KEYS[3]
local loading_id = ARGV[1]
local session_id = ARGV[2]
local server_address = ARGV[3]
local lease_deadline_ms = ARGV[4]
if redis.call('HGET', loading_key, 'state') ~= 'allocating' then
  return { 'gone' }
end
local reply = { 'matched' }
for _, pid in ipairs(loading_players(loading_key)) do
  local p = get_player(players_key, pid)
  if p and p.state == 'loading' and p.loading == loading_id then
    p.state = 'matched'
    p.lease_raw = lease_deadline_ms
    p.session = session_id
    p.address = server_address
    put_player(players_key, pid, p)
    reply[#reply + 1] = pid
    reply[#reply + 1] = p.owner
  end
end
redis.call('DEL', loading_key)
redis.call('SREM', loading_index_key, loading_id)
return reply
