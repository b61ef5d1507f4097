//! match-sim (placeholder).
