//! The fake's time source: key expiry reads "now" from here and never from the wall clock,
//! so the simulation can drive it from sim time and unit tests can drive it by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the fake reads the current time, in milliseconds on any fixed epoch.
///
/// Any `Fn() -> u64` closure is a time source, so the simulation can pass
/// `move || sim_elapsed_ms()` without writing a type.
pub trait TimeSource: Send + Sync {
    /// The current time in milliseconds; it must never go backwards between two commands.
    fn now_ms(&self) -> u64;
}

impl<F> TimeSource for F
where
    F: Fn() -> u64 + Send + Sync,
{
    fn now_ms(&self) -> u64 {
        self()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    /// The shared current time, so a test keeps a handle while the fake holds another.
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Sets the time to `now_ms`.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: u64) {
        self.now_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl TimeSource for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
