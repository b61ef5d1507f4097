//! The `match-sim` binary (placeholder until the CLI lands).
fn main() {}
