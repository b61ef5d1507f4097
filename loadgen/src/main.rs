//! The `match-loadgen` binary (being built).
fn main() {}
