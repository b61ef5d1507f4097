//! match-sim: runs the real match-server in a deterministic turmoil world.

pub mod fake_redis;
