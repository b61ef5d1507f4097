-- finish_match.lua: record the allocated game server for every player and end the loading session.
-- KEYS[1] loading hash, KEYS[2] players hash, KEYS[3] loading index set of the mode
-- ARGV[1] loading id, ARGV[2] game session id, ARGV[3] server address, ARGV[4] result lease deadline_ms
-- Reply: {'matched', pid1, owner1, ...} | {'gone'}
if redis.call('HGET', KEYS[1], 'state') ~= 'allocating' then
  return { 'gone' }
end
local reply = { 'matched' }
for _, pid in ipairs(loading_players(KEYS[1])) do
  local p = get_player(KEYS[2], pid)
  if p and p.state == 'loading' and p.loading == ARGV[1] then
    p.state = 'matched'
    p.lease_raw = ARGV[4]
    p.session = ARGV[2]
    p.address = ARGV[3]
    put_player(KEYS[2], pid, p)
    reply[#reply + 1] = pid
    reply[#reply + 1] = p.owner
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return reply
