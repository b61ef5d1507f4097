//! The player lease: at most one live session per player, across every instance.
//!
//! `{prefix}:session:<player>` holds the owner token of the one session that acts for the
//! player, with a TTL. A session takes it with `SET NX PX` - an authenticated session right
//! after the upgrade, before it reads a frame; a dev-mode session at its first `enqueue` -
//! and holds it for the rest of its connection. The lease renewer extends it together with
//! the entries, but only while it still holds the session's token, and reports the leases
//! that are gone so their sessions stop acting. A session releases its lease with
//! compare-and-delete when it ends (disconnect, shutdown); a crashed instance's leases run
//! out with their TTL.
//!
//! The TTL is `lease_ttl_ms + lease_renew_interval_ms`, one renewal interval longer than an
//! entry's lease: every entry a session writes gets a deadline before the next renewal of
//! its player lease would have extended the lease, so once a player lease has run out the
//! entries written under it are dead too, and a reconnecting player can enqueue at once.

use std::time::Duration;

use tokio::time::Instant;

use uuid::Uuid;

use super::replies::{Member, parse_release, parse_renew_player_leases};
use super::{EffectError, Matchmaker};
use crate::limits;
use crate::metrics::Family;
use crate::notify::{Notice, NoticeEvent};
use crate::probe::{Fact, LeaseChange};
use crate::scripts::SCRIPTS;

/// The outcome of an attempt to take a player lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseReply {
    /// The lease holds this session's token now.
    Acquired,
    /// Another session holds it: another connection already plays as this player.
    HeldElsewhere,
}

impl Matchmaker {
    /// The TTL a player lease is set and renewed with (see the module documentation).
    pub fn player_lease_ttl_ms(&self) -> u64 {
        let timing = &self.settings.timing;
        timing
            .lease_ttl_ms
            .saturating_add(timing.lease_renew_interval_ms)
    }

    /// Takes the lease of `player` for the session `owner`. A Redis error is retried a
    /// bounded number of times; that is safe because a refused `SET NX` is followed by a
    /// `GET` that recognises the session's own token, set by an attempt whose reply was lost.
    pub async fn acquire_player_lease(
        &self,
        owner: Uuid,
        player: Uuid,
    ) -> Result<LeaseReply, EffectError> {
        let key = self.keys.session(player);
        let token = owner.to_string();
        let ttl_ms = self.player_lease_ttl_ms();
        for attempt in 1..=limits::MAX_EFFECT_ATTEMPTS {
            let sent = Instant::now();
            match self.deps.store.set_nx_px(&key, &token, ttl_ms).await {
                Ok(true) => return Ok(self.lease_taken(owner, player, sent)),
                Ok(false) => match self.deps.store.get(&key).await {
                    // Our own token, set by an attempt whose reply was lost: it lives at
                    // least as long as if this attempt had set it.
                    Ok(Some(holder)) if holder == token.as_bytes() => {
                        return Ok(self.lease_taken(owner, player, sent));
                    }
                    Ok(Some(_)) => return Ok(LeaseReply::HeldElsewhere),
                    // Released in between: the next attempt may take it.
                    Ok(None) => {}
                    Err(error) => self.lease_store_error("get", &key, &error),
                },
                Err(error) => self.lease_store_error("set_nx_px", &key, &error),
            }
            if attempt < limits::MAX_EFFECT_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(limits::EFFECT_RETRY_DELAY_MS)).await;
            }
        }
        Err(EffectError::Unavailable)
    }

    /// Records when a lease taken by a command sent at `sent` surely lives until.
    fn lease_taken(&self, owner: Uuid, player: Uuid, sent: Instant) -> LeaseReply {
        let ttl = Duration::from_millis(self.player_lease_ttl_ms());
        self.router.extend_leases([owner], sent + ttl);
        self.record(Fact::Lease {
            player,
            owner,
            change: LeaseChange::Taken,
        });
        LeaseReply::Acquired
    }

    /// Counts and logs a failed command of the lease acquisition.
    fn lease_store_error(&self, op: &'static str, key: &str, error: &crate::store::StoreError) {
        self.metrics.incr(Family::StoreErrors, op);
        tracing::warn!(%error, %key, "player lease command failed");
    }

    /// Releases the lease of `player` if the session `owner` still holds it; a failure
    /// leaves it to its TTL.
    pub async fn release_player_lease(&self, owner: Uuid, player: Uuid) {
        let keys = [self.keys.session(player)];
        let args = [owner.to_string()];
        match self
            .eval_with_retry(&SCRIPTS.release_lock, &keys, &args, parse_release)
            .await
        {
            Ok(true) => {
                tracing::debug!(%player, "player lease released");
                self.record(Fact::Lease {
                    player,
                    owner,
                    change: LeaseChange::Released,
                });
            }
            Ok(false) => tracing::info!(%player, "player lease was no longer this session's"),
            Err(error) => {
                tracing::warn!(%error, %player, "player lease release failed; it expires with its TTL");
            }
        }
    }

    /// Extends the player lease of every live local session that holds one; sessions whose
    /// lease is gone or taken are told, and stop acting for their player.
    pub async fn renew_player_leases(&self) {
        let leases = self.router.leases();
        let ttl_ms = self.player_lease_ttl_ms();
        let ttl = Duration::from_millis(ttl_ms);
        let ttl_arg = ttl_ms.to_string();
        for batch in leases.chunks(limits::LEASE_RENEW_BATCH) {
            let keys: Vec<String> = batch
                .iter()
                .map(|member| self.keys.session(member.player))
                .collect();
            let mut args = Vec::with_capacity(batch.len() * 2 + 1);
            args.push(ttl_arg.clone());
            for member in batch {
                args.push(member.player.to_string());
                args.push(member.owner.to_string());
            }
            let sent = Instant::now();
            let Ok(reply) = self.eval(&SCRIPTS.renew_player_leases, &keys, &args).await else {
                continue;
            };
            match parse_renew_player_leases(&reply) {
                Ok(renewed) => {
                    let (lost, kept): (Vec<Member>, Vec<Member>) = batch
                        .iter()
                        .partition(|member| renewed.lost.contains(&member.player));
                    let kept = kept.iter().map(|member| member.owner);
                    self.router.extend_leases(kept, sent + ttl);
                    // A dropped notice is repeated by the next renewal, which finds the
                    // lease still gone.
                    self.stop_sessions(lost, "player leases lost");
                }
                Err(error) => self.bad_reply(&error),
            }
        }
        self.fence_expiring_leases();
    }

    /// Self-fencing: a session whose lease no renewal has extended in time (Redis errors,
    /// lost replies) may lose it before the next renewal lands, and another connection may
    /// then take the player. Such sessions stop acting now, as if the lease were gone.
    fn fence_expiring_leases(&self) {
        let period = Duration::from_millis(self.settings.timing.lease_renew_interval_ms);
        let expiring = self.router.expiring_leases(Instant::now() + period);
        self.stop_sessions(
            expiring,
            "player leases not renewed in time; their sessions stop",
        );
    }

    /// Tells the local sessions `targets` that their player lease is gone (or may be), so
    /// they stop acting for their player; logs `why` when there are any.
    fn stop_sessions(&self, targets: Vec<Member>, why: &str) {
        if targets.is_empty() {
            return;
        }
        tracing::warn!(sessions = targets.len(), "{why}");
        for target in &targets {
            self.record(Fact::Lease {
                player: target.player,
                owner: target.owner,
                change: LeaseChange::Lost,
            });
        }
        self.router.deliver(&Notice {
            targets,
            event: NoticeEvent::LeaseLost,
        });
    }
}
