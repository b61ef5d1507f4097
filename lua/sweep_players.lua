-- sweep_players.lua: remove entries whose lease ran out (their instance died), one HSCAN page per call.
-- Loading entries are left to the stale loading sweep, which owns their loading session.
-- Layout (src/scripts/sweep_players.rs): KEYS and ARGV as bound below, then KEYS[2..] the
-- queue of every mode and ARGV[4..] the mode names, in the same order.
-- Reply: {'swept', next_cursor, removed}
local players_key = KEYS[1]
local now_ms = tonumber(ARGV[1])
local cursor = ARGV[2]
local count = ARGV[3]
local queues = mode_queues(2, 4)
local page = redis.call('HSCAN', players_key, cursor, 'COUNT', count)
local entries = page[2]
local removed = 0
for i = 1, #entries, 2 do
  local pid = entries[i]
  local p = decode_player(entries[i + 1])
  if p and p.state ~= 'loading' and not is_live(p, now_ms) then
    if p.state == 'queued' and queues[p.mode] then
      redis.call('SREM', queues[p.mode], pid)
    end
    redis.call('HDEL', players_key, pid)
    removed = removed + 1
  end
end
return { 'swept', page[1], removed }
