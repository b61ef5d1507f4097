//! Test support shared by the workspace's suites (the integration tests and the Redis
//! conformance suite): the Redis they run against.
//!
//! This crate exists only for tests; failing loudly, with instructions, is its job, so the
//! workspace's no-panic lints are lifted here.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod redis_server;
