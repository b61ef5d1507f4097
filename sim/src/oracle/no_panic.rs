//! Invariant 1, nothing panics: its violations come from outside the checks - the panic
//! hook of every task, a host that failed, a run that could not start (see `panics` and
//! `world`) - so this check has no hook of its own; it is in the registry for the
//! catalogue and the summary.

use super::{Bounds, Check};

/// Invariant 1 (reported by the world, see the module documentation).
#[derive(Debug)]
pub struct NoPanic;

impl NoPanic {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for NoPanic {}
