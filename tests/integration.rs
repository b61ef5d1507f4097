//! Every integration test of match-server, in one test binary: real redis-server, real
//! WebSocket clients, in-process and spawned server instances, a stub game server.
//!
//! One binary instead of one per file: a release test binary with its dependencies weighs
//! tens of megabytes, and sixteen of them made CI link and store the same code sixteen
//! times. Each module is one area of behaviour; run one with
//! `cargo test --test integration <module>::` (for example `sessions::`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

mod agones;
mod allocation_failures;
mod auth;
mod bad_frames;
mod cli;
mod connection_cap;
mod disconnects;
mod enqueue_burst;
mod fleet;
mod frame_limit;
mod graceful_shutdown;
mod happy_path;
mod instance_crash;
mod loading_timeout;
mod notice_loss;
mod player_limits;
mod sessions;
mod two_instances;
