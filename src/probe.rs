//! The probe seam: typed facts about the service's own decisions (a lock taken, a lease
//! held or lost, a repair, a broken assertion), for the simulation's oracle to judge.
//!
//! Production passes [`NoProbe`], which drops every fact; nothing in the service ever reads
//! a fact back, so a probe cannot change behaviour. The simulation passes a probe that
//! stamps each fact with sim time and host, so invariants are checked on what the service
//! decided rather than on the wording of a log line.

use uuid::Uuid;

/// Receives the service's facts as they happen.
pub trait Probe: Send + Sync {
    /// Records one fact; must not block and must not fail.
    fn record(&self, fact: Fact);
}

/// The production probe: facts are dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    fn record(&self, _fact: Fact) {}
}

/// One decision of the service, typed. Non-exhaustive: a reader handles the facts it judges
/// and ignores the rest, so adding a fact never breaks an existing check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fact {
    /// A match lock was taken; the holder may act under it for `valid_ms` from now.
    LockAcquired {
        /// The mode the lock guards.
        mode: String,
        /// The holder's token.
        token: Uuid,
        /// How long the holder believes it may act under the lock, from now.
        valid_ms: u64,
    },
    /// A holder stops acting under its lock (the release follows).
    LockReleasing {
        /// The mode the lock guards.
        mode: String,
        /// The holder's token.
        token: Uuid,
    },
}
