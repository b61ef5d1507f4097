-- release_lock.lua: delete a lock only if this holder's token still owns it.
-- KEYS[1] lock key; ARGV[1] holder token
-- Reply: 1 released, 0 not held by this token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
