//! The per-mode distributed lock: `SET NX PX` with an owner token, released by
//! compare-and-delete. It only spares instances from contending on one queue; safety comes
//! from the scripts' atomicity, so a lock held twice (after expiry) does no harm.

use uuid::Uuid;

use super::Matchmaker;
use super::replies::parse_release;
use crate::metrics::Family;
use crate::scripts::SCRIPTS;

/// A held lock; release it with [`Matchmaker::release_lock`].
#[derive(Debug)]
pub struct LockGuard {
    /// The lock key.
    pub key: String,
    /// This holder's token; scripts that act under the lock check it.
    pub token: Uuid,
    /// The mode the lock guards.
    pub mode: String,
}

impl Matchmaker {
    /// Tries to take the lock of `mode`; `None` when another holder has it or Redis failed.
    pub async fn acquire_lock(&self, mode: &str) -> Option<LockGuard> {
        let key = self.keys.lock(mode);
        let token = self.new_id();
        let ttl_ms = self.settings.timing.lock_ttl_ms;
        match self
            .deps
            .store
            .set_nx_px(&key, &token.to_string(), ttl_ms)
            .await
        {
            Ok(true) => {
                tracing::debug!(mode, %token, ttl_ms, "lock acquired");
                Some(LockGuard {
                    key,
                    token,
                    mode: mode.to_owned(),
                })
            }
            Ok(false) => {
                self.metrics.incr(Family::LockContention, mode);
                None
            }
            Err(error) => {
                self.metrics.incr(Family::StoreErrors, "lock");
                tracing::warn!(%error, %key, "lock acquire failed");
                None
            }
        }
    }

    /// Releases a lock if this holder still owns it; a lost reply leaves it to its TTL.
    pub async fn release_lock(&self, guard: LockGuard) {
        let keys = [guard.key.clone()];
        let args = [guard.token.to_string()];
        match self.eval(&SCRIPTS.release_lock, &keys, &args).await {
            Ok(reply) => match parse_release(&reply) {
                Ok(true) => {
                    tracing::debug!(mode = %guard.mode, token = %guard.token, "lock released")
                }
                Ok(false) => tracing::warn!(key = %guard.key, "lock expired before release"),
                Err(error) => self.bad_reply(&error),
            },
            Err(_) => tracing::warn!(key = %guard.key, "lock release failed; it expires by TTL"),
        }
    }
}
