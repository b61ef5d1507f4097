//! The time and identity seams: a fallible unix clock and a source of UUIDs.
//!
//! Nothing else under `src/` reads the wall clock or draws randomness; the simulation
//! replaces both with sim time and a seeded generator.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// Why the unix time could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The system clock reads a time before 1970 (misconfigured host, or an injected fault).
    #[error("system clock is before the unix epoch")]
    BeforeEpoch,
    /// The time does not fit in 64-bit milliseconds.
    #[error("system clock is out of range")]
    OutOfRange,
}

/// Unix time in milliseconds; every read can fail and every caller handles the failure.
pub trait Clock: Send + Sync {
    /// Milliseconds since the unix epoch.
    fn now_unix_ms(&self) -> Result<u64, ClockError>;
}

/// The production clock: `SystemTime`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> Result<u64, ClockError> {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ClockError::BeforeEpoch)?;
        u64::try_from(since_epoch.as_millis()).map_err(|_| ClockError::OutOfRange)
    }
}

/// A source of fresh identifiers (session tokens, loading session ids, lock tokens).
pub trait Ids: Send + Sync {
    /// A new, unique identifier.
    fn new_id(&self) -> Uuid;
}

/// The production source: random UUID v4.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl Ids for RandomIds {
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// A timer that fires every `period_ms` (first tick at once) and, when a tick is late
/// because the work took long, waits a full period after it instead of bursting: the one
/// way every periodic task of the service ticks (on tokio time, which the simulation drives).
pub fn periodic(period_ms: u64) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(period_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}
