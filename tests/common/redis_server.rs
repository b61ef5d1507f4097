//! The Redis the tests run against; shared with the conformance suite through
//! `match-testkit` so both start and find it the same way.

pub use match_testkit::redis_server::{free_port, redis_url};
