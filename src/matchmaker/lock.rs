//! The per-mode distributed lock: `SET NX PX` with an owner token, released by
//! compare-and-delete (`release_lock.lua`). It spares instances from contending on one
//! queue; safety comes from the scripts (`try_match.lua` checks the token), so a lock held
//! twice does no harm. The match loop is its only user.
//!
//! A holder counts its lock valid from the moment it *sent* the acquire, minus a margin, so
//! a slow reply can never make it believe it holds the lock after Redis expired it.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::Shared;
use crate::metrics::Family;
use crate::probe::Fact;
use crate::scripts::CallError;
use crate::scripts::release_lock::ReleaseLock;

/// Part of the TTL a holder gives up, in percent, to absorb clock drift between it and Redis.
const LOCK_SAFETY_MARGIN_PERCENT: u64 = 10;
const _: () = assert!(
    LOCK_SAFETY_MARGIN_PERCENT < 100,
    "a holder must keep part of the lock's TTL to act in"
);

/// A held lock; release it with [`release`].
#[derive(Debug)]
pub struct LockGuard {
    /// This holder's token; scripts that act under the lock check it.
    pub token: Uuid,
    /// The mode the lock guards.
    pub mode: String,
    /// After this instant the holder must assume Redis has expired the lock.
    pub valid_until: Instant,
}

impl LockGuard {
    /// Whether the holder may still act under the lock.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// Tries to take the lock of `mode`; `None` when another holder has it or Redis failed.
pub(super) async fn acquire(shared: &Shared, mode: &str) -> Option<LockGuard> {
    let key = shared.keys.lock(mode);
    let token = shared.new_id();
    let ttl_ms = shared.settings.timing.lock_ttl_ms;
    let validity_ms = ttl_ms - ttl_ms * LOCK_SAFETY_MARGIN_PERCENT / 100;
    let sent = Instant::now();
    let acquired = shared
        .deps
        .store
        .set_nx_px(&key, &token.to_string(), ttl_ms)
        .await;
    let valid_until = sent + Duration::from_millis(validity_ms);
    match acquired {
        Ok(true) => {
            let valid_ms = valid_until
                .saturating_duration_since(Instant::now())
                .as_millis();
            tracing::debug!(mode, %token, valid_ms, "lock acquired");
            shared.record(Fact::LockAcquired {
                mode: mode.to_owned(),
                token,
                valid_ms: u64::try_from(valid_ms).unwrap_or(u64::MAX),
            });
            Some(LockGuard {
                token,
                mode: mode.to_owned(),
                valid_until,
            })
        }
        Ok(false) => {
            shared.metrics.incr(Family::LockContention, mode);
            None
        }
        Err(error) => {
            shared.metrics.incr(Family::StoreErrors, "lock");
            tracing::warn!(%error, %key, "lock acquire failed");
            None
        }
    }
}

/// Releases a lock if this holder still owns it; a lost reply leaves it to its TTL.
/// From the moment this is called the holder no longer acts under the lock.
pub(super) async fn release(shared: &Shared, guard: LockGuard) {
    tracing::debug!(mode = %guard.mode, token = %guard.token, "lock releasing");
    shared.record(Fact::LockReleasing {
        mode: guard.mode.clone(),
        token: guard.token,
    });
    let key = shared.keys.lock(&guard.mode);
    let call = ReleaseLock {
        mode: &guard.mode,
        token: guard.token,
    };
    match shared.scripts.call(&call).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(%key, "lock expired before release"),
        // Counted and logged as a bad reply already.
        Err(CallError::BadReply | CallError::Layout) => {}
        Err(CallError::Unavailable | CallError::Server | CallError::Withdrawn) => {
            tracing::warn!(%key, "lock release failed; it expires by TTL");
        }
    }
}
