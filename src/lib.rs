//! match-server: a WebSocket matchmaking service on Redis, written to run unchanged inside
//! the deterministic simulation of the `match-sim` crate.
//!
//! Map of the modules, from the outside in:
//!
//! - [`config`]: settings (TOML file and environment overrides) and game modes.
//! - [`protocol`]: the JSON frames clients and server exchange.
//! - [`server`]: accept loop, connection cap, HTTP routing (`/ws`, `/metrics`), shutdown.
//! - [`session`]: one task per WebSocket, driven by a pure state machine.
//! - [`notify`]: pub/sub notices, routed to the local session that owns the player.
//! - [`matchmaker`]: enqueue, match, loading, allocation, sweeps - every Redis effect.
//! - [`allocator`]: dedicated game server allocation.
//! - [`store`], [`scripts`], [`keys`]: the Redis seam, the Lua scripts and key names.
//! - [`clock`]: the time and identity seams.
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`limits`]: every bound the service enforces, as named constants.
//!
//! The seams ([`store::Store`], [`clock::Clock`], [`clock::Ids`], [`allocator::Allocator`]
//! and the listener) are the only doors to the world; nothing here knows it may be simulated.

pub mod clock;
pub mod scripts;
pub mod store;
