-- sweep_players.lua: remove entries whose lease ran out (their instance died), one HSCAN page per call.
-- Loading entries are left to the stale loading sweep, which owns their loading session.
-- KEYS[1] players hash, KEYS[2..n] queue sets of the modes named in ARGV[4..]
-- ARGV[1] now_ms, ARGV[2] HSCAN cursor, ARGV[3] HSCAN count, ARGV[4..] mode names matching KEYS[2..]
-- Reply: {'swept', next_cursor, removed}
local now_ms = tonumber(ARGV[1])
local queues = {}
for i = 4, #ARGV do
  queues[ARGV[i]] = KEYS[i - 2]
end
local page = redis.call('HSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local entries = page[2]
local removed = 0
for i = 1, #entries, 2 do
  local pid = entries[i]
  local p = decode_player(entries[i + 1])
  if p and p.state ~= 'loading' and not is_live(p, now_ms) then
    if p.state == 'queued' and queues[p.mode] then
      redis.call('SREM', queues[p.mode], pid)
    end
    redis.call('HDEL', KEYS[1], pid)
    removed = removed + 1
  end
end
return { 'swept', page[1], removed }
