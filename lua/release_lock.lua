-- release_lock.lua: delete a match lock only if this holder's token still owns it.
-- Layout (src/scripts/release_lock.rs): KEYS and ARGV as bound below.
-- Reply: 1 released, 0 not held by this token
local lock_key = KEYS[1]
local token = ARGV[1]
return release_if_held(lock_key, token)
