//! Periodic upkeep: stale loading sessions are cancelled (the players who loaded are told
//! and requeued, the others told and taken out of the queue), dead entries are removed, and
//! the leases of this instance's live sessions (their entries' and their player leases) are
//! renewed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Matchmaker;
use super::effects::CancelWhen;
use super::replies::{CancelReply, Member, parse_renew, parse_sweep};
use crate::limits;
use crate::metrics::Family;
use crate::notify::{Notice, NoticeEvent};
use crate::protocol::ErrorCode;
use crate::scripts::SCRIPTS;

impl Matchmaker {
    /// Sweeps every `sweep_interval_ms` until shutdown.
    pub async fn run_sweeper(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = crate::clock::periodic(self.settings.timing.sweep_interval_ms);
        // Dead entries only appear when a lease runs out, so half a lease is often enough.
        let timing = &self.settings.timing;
        let players_every = (timing.lease_ttl_ms / 2 / timing.sweep_interval_ms).max(1);
        let mut cursor = 0;
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    for mode in self.settings.modes.clone() {
                        self.sweep_loading(&mode.name).await;
                    }
                    if round % players_every == 0 || cursor != 0 {
                        cursor = self.sweep_players(cursor).await;
                    }
                    round = round.wrapping_add(1);
                }
            }
        }
    }

    /// Cancels the loading sessions of `mode` past their deadline.
    pub async fn sweep_loading(&self, mode: &str) {
        let index = self.keys.loading_index(mode);
        let mut ids: Vec<Uuid> = match self.deps.store.smembers(&index).await {
            Ok(members) => members
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
            Err(error) => {
                self.metrics.incr(Family::StoreErrors, "smembers");
                tracing::warn!(%error, mode, "cannot list loading sessions");
                return;
            }
        };
        ids.sort_unstable();
        self.metrics.set(
            Family::LoadingSessions,
            mode,
            i64::try_from(ids.len()).unwrap_or(i64::MAX),
        );
        let Ok(now_ms) = self.now_ms("sweep_loading") else {
            return;
        };
        for loading in ids.into_iter().take(limits::MAX_LOADING_SWEEP_PER_ROUND) {
            if !self.past_deadline(loading, now_ms).await {
                continue;
            }
            match self
                .cancel_loading(
                    mode,
                    loading,
                    None,
                    CancelWhen::Expired,
                    ErrorCode::LoadingTimeout,
                )
                .await
            {
                Ok(CancelReply::Cancelled {
                    requeued, removed, ..
                }) => {
                    tracing::info!(%loading, mode, "stale loading session swept");
                    let event = NoticeEvent::Requeued {
                        loading,
                        code: ErrorCode::LoadingTimeout,
                    };
                    self.publisher.publish(mode, requeued, event).await;
                    // A separate notice: an older instance drops what it cannot parse, and
                    // must not lose the requeued players' notice with it.
                    let event = NoticeEvent::Removed {
                        loading,
                        code: ErrorCode::LoadingNotCompleted,
                    };
                    self.publisher.publish(mode, removed, event).await;
                }
                Ok(_) => {}
                // A clock failure stops this round; the next round tries again.
                Err(super::EffectError::Clock) => return,
                Err(super::EffectError::Unavailable) => {}
            }
        }
    }

    /// Whether `loading` is past its deadline, by a cheap HGET before the script that decides
    /// atomically. A missing session or an unreadable deadline counts as past: the script
    /// then tidies the index or checks for itself.
    async fn past_deadline(&self, loading: Uuid, now_ms: u64) -> bool {
        let key = self.keys.loading(loading);
        match self.deps.store.hget(&key, "deadline_ms").await {
            Ok(Some(raw)) => std::str::from_utf8(&raw)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .is_none_or(|deadline_ms| deadline_ms < now_ms),
            Ok(None) | Err(_) => true,
        }
    }

    /// Removes dead entries, a few HSCAN pages per round; returns the cursor to go on from.
    pub async fn sweep_players(&self, mut cursor: u64) -> u64 {
        let mut keys = vec![self.keys.players()];
        let mut mode_names = Vec::new();
        for mode in &self.settings.modes {
            keys.push(self.keys.queue(&mode.name));
            mode_names.push(mode.name.clone());
        }
        for _ in 0..limits::SWEEP_PAGES_PER_ROUND {
            let Ok(now_ms) = self.now_ms("sweep_players") else {
                return cursor;
            };
            let mut args = vec![
                now_ms.to_string(),
                cursor.to_string(),
                limits::SWEEP_PAGE_ENTRIES.to_string(),
            ];
            args.extend(mode_names.iter().cloned());
            let reply = match self.eval(&SCRIPTS.sweep_players, &keys, &args).await {
                Ok(reply) => reply,
                Err(_) => return cursor,
            };
            match parse_sweep(&reply) {
                Ok(page) => {
                    if page.removed > 0 {
                        tracing::info!(removed = page.removed, "dead player entries removed");
                    }
                    cursor = page.cursor;
                    if cursor == 0 {
                        return 0;
                    }
                }
                Err(error) => {
                    self.bad_reply(&error);
                    return 0;
                }
            }
        }
        cursor
    }

    /// Renews every `lease_renew_interval_ms` until shutdown.
    pub async fn run_lease_renewer(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = crate::clock::periodic(self.settings.timing.lease_renew_interval_ms);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    // Entries first: an entry's deadline never outlasts its player lease.
                    self.renew_leases().await;
                    self.renew_player_leases().await;
                }
            }
        }
    }

    /// Extends the lease of every entry a live local session may hold; sessions whose entry
    /// is gone are told to resync.
    pub async fn renew_leases(&self) {
        let claims = self.router.claims();
        for batch in claims.chunks(limits::LEASE_RENEW_BATCH) {
            let Ok(now_ms) = self.now_ms("renew_leases") else {
                return;
            };
            let deadline_ms = now_ms.saturating_add(self.settings.timing.lease_ttl_ms);
            let mut args = vec![deadline_ms.to_string()];
            for member in batch {
                args.push(member.player.to_string());
                args.push(member.owner.to_string());
            }
            let keys = [self.keys.players()];
            let Ok(reply) = self.eval(&SCRIPTS.renew_leases, &keys, &args).await else {
                continue;
            };
            match parse_renew(&reply) {
                Ok(renewed) if !renewed.lost.is_empty() => self.resync_lost(batch, &renewed.lost),
                Ok(_) => {}
                Err(error) => self.bad_reply(&error),
            }
        }
    }

    /// Tells the local sessions of `lost` players to resync.
    fn resync_lost(&self, batch: &[Member], lost: &[Uuid]) {
        let targets = batch
            .iter()
            .filter(|m| lost.contains(&m.player))
            .copied()
            .collect();
        self.router.deliver(&Notice {
            targets,
            event: NoticeEvent::Resync,
        });
    }
}
