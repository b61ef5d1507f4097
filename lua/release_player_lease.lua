-- release_player_lease.lua: delete a player lease only if the ending session still holds it.
-- Layout (src/scripts/release_player_lease.rs): KEYS and ARGV as bound below.
-- Reply: 1 released, 0 not held by this session (it ran out, or another session holds it)
local lease_key = KEYS[1]
local owner = ARGV[1]
return release_if_held(lease_key, owner)
