//! match-server: a WebSocket matchmaking service on Redis, written to run unchanged inside
//! the deterministic simulation of the `match-sim` crate.
//!
//! Map of the modules, from the outside in:
//!
//! - [`config`]: settings (TOML file and environment overrides) and game modes.
//! - [`protocol`]: the JSON frames clients and server exchange.
//! - [`server`]: accept loop, connection cap, background tasks, graceful shutdown.
//! - [`http`]: routing on the service port (`/ws`, `/metrics`, `/healthz`).
//! - [`auth`]: player tokens (HS256 JWT) checked at the WebSocket upgrade.
//! - [`session`]: one task per WebSocket, driven by a pure state machine.
//! - [`notify`]: pub/sub notices, routed to the local session that owns the player.
//! - [`matchmaker`]: the services behind the sessions: the session port, the match loop,
//!   allocations, the sweeper and the lease keeper.
//! - [`allocator`]: dedicated game server allocation (registry + HTTP).
//! - [`scripts`]: one module per Lua script (its typed call and reply parser), and the one
//!   call path every script call takes.
//! - [`store`], [`keys`]: the Redis seam and key names.
//! - [`clock`]: the time and identity seams.
//! - [`probe`]: typed facts about the service's decisions, for the simulation's oracle.
//! - [`check`]: assertions that stay on in release builds and never panic.
//! - [`metrics`]: Prometheus counters and gauges.
//! - [`limits`]: every fixed bound the service enforces.
//!
//! The seams ([`store::Store`], [`clock::Clock`], [`clock::Ids`], [`allocator::Allocator`],
//! [`probe::Probe`] and [`server::Listener`]) are the only doors to the world; nothing here knows whether it
//! runs in production or in the simulation.

pub mod allocator;
pub mod auth;
pub mod check;
pub mod clock;
pub mod config;
pub mod http;
pub mod keys;
pub mod limits;
pub mod matchmaker;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod protocol;
pub mod scripts;
pub mod server;
pub mod session;
pub mod store;
