//! The `match-server` binary (placeholder until the server lands).
fn main() {}
