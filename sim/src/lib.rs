//! match-sim: runs the real match-server in a deterministic turmoil world, injects faults
//! from a seed, and checks the service's invariants with an oracle.
//!
//! Map of the modules:
//!
//! - [`scenario`]: what a run does, drawn from a seed by proptest strategies.
//! - [`world`]: the turmoil world (servers, client hosts, fakes) and the fault driver.
//! - [`player`]: simulated players, real WebSocket clients with behaviors.
//! - [`oracle`]: the invariants, a registry of checks (one file each) over the clients'
//!   views, Redis, the service's facts, the faults and what the fake served.
//! - [`fake_redis`]: the in-memory Redis that runs the service's own Lua scripts.
//! - [`seams`]: sim clock, seeded ids, fake allocator, turmoil listener.
//! - [`probe`]: the service's typed facts (locks, leases, ...), stamped for the oracle.
//! - [`trace`]: the event log, canonical text and hash.
//! - [`flow`]: structured events (arrows, fault windows) beside the trace, for the picture.
//! - [`recording`]: Store and Allocator wrappers that record those events at the seams.
//! - [`html`]: one failing (or passing) run as a self-contained HTML timeline.
//! - [`coverage`]: the catalogue's recovery rules and race windows, and which a run reached.
//! - [`records`]: one JSON line per seed, and the campaign summary built from them.
//! - [`shrink`]: shrinking a failing scenario, and the signature that groups failures.
//! - [`redis_view`]: the fake's data as the oracle reads it.
//! - [`named`]: hand-written scenarios kept as reviewed snapshots.
//! - [`campaign`]: many seeds in parallel, summaries, shrinking.
//! - [`panics`]: a panic anywhere fails the seed.

pub mod campaign;
pub mod conformance;
pub mod coverage;
pub mod fake_redis;
pub mod flow;
pub mod html;
pub mod named;
pub mod oracle;
pub mod panics;
pub mod player;
pub mod probe;
pub mod recording;
pub mod records;
pub mod redis_view;
pub mod scenario;
pub mod seams;
pub mod shrink;
pub mod trace;
pub mod world;
