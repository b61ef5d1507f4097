//! In-memory Redis for the simulation (being built).
