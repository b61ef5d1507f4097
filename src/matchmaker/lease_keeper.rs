//! The lease keeper: the leases of this instance's live sessions, and the fencing that stops
//! a session before its player lease may have lapsed.
//!
//! **Player leases** (at most one live session per player, across every instance):
//! `{prefix}:session:<player>` holds the owner token of the one session that acts for the
//! player, with a TTL. A session takes it with `SET NX PX` - an authenticated session right
//! after the upgrade, before it reads a frame; a dev-mode session at its first `enqueue` -
//! and holds it for the rest of its connection. The keeper renews it together with the
//! entries, but only while it still holds the session's token, and tells the sessions whose
//! lease is gone to stop acting. A session releases its lease with compare-and-delete when it
//! ends (disconnect, shutdown); a crashed instance's leases run out with their TTL.
//!
//! The TTL is `lease_ttl_ms + lease_renew_interval_ms`, one renewal interval longer than an
//! entry's lease: every entry a session writes gets a deadline before the next renewal of
//! its player lease would have extended the lease, so once a player lease has run out the
//! entries written under it are dead too, and a reconnecting player can enqueue at once.
//!
//! **Entry leases**: each entry in the players hash carries a deadline the keeper extends
//! for every local session that may hold one; a dead instance's entries expire.
//!
//! **Fencing**: the keeper owns, per session, until when its player lease surely lives (the
//! TTL counted from when the last successful take or renewal was *sent*). Which sessions
//! hold a lease, and which may hold an entry, it reads from the sessions themselves through
//! the router; it copies neither.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::session_port::LeaseOutcome;
use super::{EffectError, Shared};
use crate::limits;
use crate::metrics::Family;
use crate::notify::{Notice, NoticeEvent, Router};
use crate::probe::{Fact, LeaseChange, Repair, RepairRule};
use crate::scripts::Member;
use crate::scripts::release_player_lease::ReleasePlayerLease;
use crate::scripts::renew_leases::RenewLeases;
use crate::scripts::renew_player_leases::RenewPlayerLeases;

/// Takes, renews, fences and releases the leases of this instance's sessions.
pub struct LeaseKeeper {
    /// Settings, seams, scripts.
    shared: Arc<Shared>,
    /// The local sessions: who holds a lease or may hold an entry, and where to tell them.
    router: Arc<Router>,
    /// Until when each session's player lease surely lives.
    fences: Mutex<Fences>,
}

/// Per session token: until when its player lease surely lives. Past it another connection
/// may hold the player, so the session must have stopped acting before.
#[derive(Debug, Default)]
struct Fences {
    /// The fence of each session that took a lease, by session token.
    until: BTreeMap<Uuid, Instant>,
}

impl Fences {
    /// A lease was taken by a command sent at `until - ttl`: the session's fence starts
    /// there.
    fn taken(&mut self, owner: Uuid, until: Instant) {
        self.until.insert(owner, until);
    }

    /// The leases of `owners` were renewed by a command sent at `until - ttl`. An earlier
    /// time never shortens a fence, and a session that ended meanwhile gets none.
    fn extend(&mut self, owners: impl IntoIterator<Item = Uuid>, until: Instant) {
        for owner in owners {
            if let Some(fence) = self.until.get_mut(&owner) {
                *fence = (*fence).max(until);
            }
        }
    }

    /// Whether the lease of the session `owner` may be gone by `by`: its fence ends by
    /// then, or it has none (never taken here, or already declared lost).
    fn fenced(&self, owner: Uuid, by: Instant) -> bool {
        self.until.get(&owner).is_none_or(|until| *until <= by)
    }

    /// The sessions of `held` (those holding a lease) whose lease may be gone by `by`.
    fn expiring(&self, held: Vec<Member>, by: Instant) -> Vec<Member> {
        held.into_iter()
            .filter(|member| self.fenced(member.owner, by))
            .collect()
    }

    /// The session `owner` ended.
    fn forget(&mut self, owner: Uuid) {
        self.until.remove(&owner);
    }
}

impl LeaseKeeper {
    /// A keeper for the sessions of `router`.
    pub(super) fn new(shared: Arc<Shared>, router: Arc<Router>) -> Self {
        Self {
            shared,
            router,
            fences: Mutex::new(Fences::default()),
        }
    }

    /// The TTL a player lease is set and renewed with (see the module documentation).
    fn player_lease_ttl_ms(&self) -> u64 {
        let timing = &self.shared.settings.timing;
        timing
            .lease_ttl_ms
            .saturating_add(timing.lease_renew_interval_ms)
    }

    /// Renews every `lease_renew_interval_ms` until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let interval_ms = self.shared.settings.timing.lease_renew_interval_ms;
        let mut ticker = crate::clock::periodic(interval_ms);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                _ = ticker.tick() => {
                    // Entries first: an entry's deadline never outlasts its player lease.
                    self.renew_entry_leases().await;
                    self.renew_player_leases().await;
                }
            }
        }
    }

    /// Takes the lease of `player` for the session `owner`. A Redis error is retried a
    /// bounded number of times; that is safe because a refused `SET NX` is followed by a
    /// `GET` that recognises the session's own token, set by an attempt whose reply was lost.
    pub(super) async fn acquire(
        &self,
        owner: Uuid,
        player: Uuid,
    ) -> Result<LeaseOutcome, EffectError> {
        let store = &self.shared.deps.store;
        let key = self.shared.keys.player_lease(player);
        let token = owner.to_string();
        let ttl_ms = self.player_lease_ttl_ms();
        for attempt in 1..=limits::MAX_EFFECT_ATTEMPTS {
            let sent = Instant::now();
            match store.set_nx_px(&key, &token, ttl_ms).await {
                Ok(true) => return Ok(self.taken(owner, player, sent)),
                Ok(false) => match store.get(&key).await {
                    // Our own token, set by an attempt whose reply was lost: it lives at
                    // least as long as if this attempt had set it.
                    Ok(Some(holder)) if holder == token.as_bytes() => {
                        return Ok(self.taken(owner, player, sent));
                    }
                    Ok(Some(_)) => return Ok(LeaseOutcome::HeldElsewhere),
                    // Released in between: the next attempt may take it.
                    Ok(None) => {}
                    Err(error) => self.store_error("get", &key, &error),
                },
                Err(error) => self.store_error("set_nx_px", &key, &error),
            }
            if attempt < limits::MAX_EFFECT_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(limits::EFFECT_RETRY_DELAY_MS)).await;
            }
        }
        Err(EffectError::Unavailable)
    }

    /// Records that the lease taken by a command sent at `sent` surely lives until its TTL
    /// from then; the session's fence starts there.
    fn taken(&self, owner: Uuid, player: Uuid, sent: Instant) -> LeaseOutcome {
        let until = sent + Duration::from_millis(self.player_lease_ttl_ms());
        if let Ok(mut fences) = self.fences.lock() {
            fences.taken(owner, until);
        }
        self.shared.record(Fact::Lease {
            player,
            owner,
            change: LeaseChange::Taken,
        });
        LeaseOutcome::Acquired
    }

    /// Counts and logs a failed command of the lease acquisition.
    fn store_error(&self, op: &'static str, key: &str, error: &crate::store::StoreError) {
        self.shared.metrics.incr(Family::StoreErrors, op);
        tracing::warn!(%error, %key, "player lease command failed");
    }

    /// Releases the lease of `player` if the session `owner` still holds it; a failure
    /// leaves it to its TTL.
    pub(super) async fn release(&self, owner: Uuid, player: Uuid) {
        let call = ReleasePlayerLease { player, owner };
        match self.shared.scripts.call(&call).await {
            Ok(true) => {
                tracing::debug!(%player, "player lease released");
                self.shared.record(Fact::Lease {
                    player,
                    owner,
                    change: LeaseChange::Released,
                });
            }
            Ok(false) => tracing::info!(%player, "player lease was no longer this session's"),
            Err(_) => {
                let error = EffectError::Unavailable;
                tracing::warn!(%error, %player, "player lease release failed; it expires with its TTL");
            }
        }
    }

    /// Whether the session `member`, which believes it holds its lease, must stop acting
    /// now: the keeper declared the lease lost, or the session's fence ends before the next
    /// renewal could land (the keeper's own rule, judged at the moment the session is about
    /// to act rather than at the keeper's next tick, which renewals held by a stalled Redis
    /// connection can delay by seconds). A fence found ended here is declared lost now.
    pub(super) fn must_stop(&self, member: Member) -> bool {
        let horizon = self.horizon();
        let Ok(mut fences) = self.fences.lock() else {
            return true;
        };
        match fences.until.get(&member.owner) {
            // Declared lost already (the fact was recorded then).
            None => true,
            Some(until) if *until <= horizon => {
                fences.forget(member.owner);
                drop(fences);
                self.record_lost(member);
                true
            }
            Some(_) => false,
        }
    }

    /// Reports that the session `member` lost (or may have lost) its player lease.
    fn record_lost(&self, member: Member) {
        self.shared.record(Fact::Lease {
            player: member.player,
            owner: member.owner,
            change: LeaseChange::Lost,
        });
    }

    /// Forgets the fence of the session `owner` (it ended).
    pub(super) fn forget(&self, owner: Uuid) {
        if let Ok(mut fences) = self.fences.lock() {
            fences.forget(owner);
        }
    }

    /// Extends the lease of every entry a live local session may hold; sessions whose entry
    /// is gone are told to resync.
    async fn renew_entry_leases(&self) {
        let claims = self.router.claims();
        for batch in claims.chunks(limits::LEASE_RENEW_BATCH) {
            let Ok(now_ms) = self.shared.now_ms("renew_leases") else {
                return;
            };
            let timing = &self.shared.settings.timing;
            let call = RenewLeases {
                lease_deadline_ms: now_ms.saturating_add(timing.lease_ttl_ms),
                batch,
            };
            if let Ok(renewed) = self.shared.scripts.call(&call).await
                && !renewed.lost.is_empty()
            {
                self.resync_lost(batch, &renewed.lost);
            }
        }
    }

    /// Tells the local sessions of `lost` players to resync.
    fn resync_lost(&self, batch: &[Member], lost: &[Uuid]) {
        let targets: Vec<Member> = batch
            .iter()
            .filter(|m| lost.contains(&m.player))
            .copied()
            .collect();
        for target in &targets {
            self.shared.record(Fact::Repaired {
                rule: RepairRule::EntryGoneResync,
                player: Some(target.player),
                owner: Some(target.owner),
                what: Repair::ResyncOrdered,
            });
        }
        self.router.deliver(&Notice {
            targets,
            event: NoticeEvent::Resync,
        });
    }

    /// Extends the player lease of every live local session that holds one; sessions whose
    /// lease is gone or taken are told, and stop acting for their player.
    async fn renew_player_leases(&self) {
        let leases = self.router.leases();
        let ttl_ms = self.player_lease_ttl_ms();
        let ttl = Duration::from_millis(ttl_ms);
        for batch in leases.chunks(limits::LEASE_RENEW_BATCH) {
            let call = RenewPlayerLeases { ttl_ms, batch };
            let sent = Instant::now();
            // A failed renewal is the fence's business below.
            if let Ok(renewed) = self.shared.scripts.call(&call).await {
                let (lost, kept): (Vec<Member>, Vec<Member>) = batch
                    .iter()
                    .partition(|member| renewed.lost.contains(&member.player));
                if let Ok(mut fences) = self.fences.lock() {
                    fences.extend(kept.iter().map(|member| member.owner), sent + ttl);
                }
                // A dropped notice is repeated by the next renewal, which finds the
                // lease still gone.
                self.stop_sessions(lost, RepairRule::LeaseLost, "player leases lost");
            }
        }
        self.fence_expiring_leases();
    }

    /// The instant a fence must outlast for its session to go on acting: the next renewal
    /// may land one renewal interval from now.
    fn horizon(&self) -> Instant {
        let period = Duration::from_millis(self.shared.settings.timing.lease_renew_interval_ms);
        Instant::now() + period
    }

    /// Every session holding a player lease that may be gone by `by`: no take or renewal
    /// has succeeded recently enough, so it must stop acting for its player.
    fn expiring(&self, by: Instant) -> Vec<Member> {
        let held = self.router.leases();
        self.fences
            .lock()
            .map(|fences| fences.expiring(held, by))
            .unwrap_or_default()
    }

    /// Self-fencing: a session whose lease no renewal has extended in time (Redis errors,
    /// lost replies) may lose it before the next renewal lands, and another connection may
    /// then take the player. Such sessions stop acting now, as if the lease were gone.
    fn fence_expiring_leases(&self) {
        let expiring = self.expiring(self.horizon());
        self.stop_sessions(
            expiring,
            RepairRule::Fencing,
            "player leases not renewed in time; their sessions stop",
        );
    }

    /// Tells the local sessions `targets` that their player lease is gone (or may be), so
    /// they stop acting for their player (the safety net `rule`); logs `why` when there are
    /// any. Their fences end here: a session whose task is busy (an effect held by a stalled
    /// Redis connection) finds itself fenced before it takes its next step, whatever notice
    /// waits in its queue (see [`must_stop`](Self::must_stop)).
    fn stop_sessions(&self, targets: Vec<Member>, rule: RepairRule, why: &str) {
        if targets.is_empty() {
            return;
        }
        tracing::warn!(sessions = targets.len(), "{why}");
        if let Ok(mut fences) = self.fences.lock() {
            for target in &targets {
                fences.forget(target.owner);
            }
        }
        for target in &targets {
            self.record_lost(*target);
            let what = match rule {
                RepairRule::Fencing => Repair::Fenced,
                _ => Repair::LeaseGone,
            };
            self.shared.record(Fact::Repaired {
                rule,
                player: Some(target.player),
                owner: Some(target.owner),
                what,
            });
        }
        self.router.deliver(&Notice {
            targets,
            event: NoticeEvent::LeaseLost,
        });
    }
}

#[cfg(test)]
mod tests;
