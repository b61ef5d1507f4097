//! Periodic upkeep: stale loading sessions are cancelled (the players who loaded are told
//! and requeued, the others told and taken out of the queue), and dead entries are removed.
//! The leases of this instance's live sessions are the [`LeaseKeeper`](super::LeaseKeeper)'s.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::loading_end::end_loading;
use super::{EffectError, Shared};
use crate::limits;
use crate::metrics::Family;
use crate::notify::NoticeEvent;
use crate::probe::{Fact, Repair, RepairRule};
use crate::protocol::ErrorCode;
use crate::scripts::CallError;
use crate::scripts::cancel_loading::{CancelReply, CancelWhen};
use crate::scripts::sweep_players::SweepPlayers;

/// The sweeper of one instance: owns where its pass over the players hash is.
pub struct Sweeper {
    /// Settings, seams, scripts.
    shared: Arc<Shared>,
    /// The HSCAN cursor of the dead entry sweep (0: a new pass starts).
    cursor: u64,
    /// Rounds run so far.
    round: u64,
}

impl Sweeper {
    /// A sweeper that has not run yet.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            cursor: 0,
            round: 0,
        }
    }

    /// Sweeps every `sweep_interval_ms` until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let timing = &self.shared.settings.timing;
        let mut ticker = crate::clock::periodic(timing.sweep_interval_ms);
        // Dead entries only appear when a lease runs out, so half a lease is often enough.
        let players_every = (timing.lease_ttl_ms / 2 / timing.sweep_interval_ms).max(1);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                _ = ticker.tick() => {
                    for mode in self.shared.settings.modes.clone() {
                        self.sweep_loading(&mode.name).await;
                    }
                    if self.round % players_every == 0 || self.cursor != 0 {
                        self.cursor = self.sweep_players(self.cursor).await;
                    }
                    self.round = self.round.wrapping_add(1);
                }
            }
        }
    }

    /// Cancels the loading sessions of `mode` past their deadline.
    async fn sweep_loading(&self, mode: &str) {
        let shared = &self.shared;
        let index = shared.keys.loading_index(mode);
        let mut ids: Vec<Uuid> = match shared.deps.store.smembers(&index).await {
            Ok(members) => members
                .iter()
                .filter_map(|id| Uuid::parse_str(id).ok())
                .collect(),
            Err(error) => {
                shared.metrics.incr(Family::StoreErrors, "smembers");
                tracing::warn!(%error, mode, "cannot list loading sessions");
                return;
            }
        };
        ids.sort_unstable();
        shared.metrics.set(
            Family::LoadingSessions,
            mode,
            i64::try_from(ids.len()).unwrap_or(i64::MAX),
        );
        let Ok(now_ms) = shared.now_ms("sweep_loading") else {
            return;
        };
        for loading in ids.into_iter().take(limits::MAX_LOADING_SWEEP_PER_ROUND) {
            if !self.past_deadline(loading, now_ms).await {
                continue;
            }
            let code = ErrorCode::LoadingTimeout;
            match end_loading(shared, mode, loading, None, CancelWhen::Expired, code).await {
                Ok(CancelReply::Cancelled {
                    requeued, removed, ..
                }) => {
                    tracing::info!(%loading, mode, "stale loading session swept");
                    // Everyone had loaded: the allocation should have ended it (a match or
                    // a failure), so the sweep repairs a hung allocation. A player who did
                    // not load makes the timeout the designed path, not a repair.
                    if removed.is_empty() {
                        shared.record(Fact::Repaired {
                            rule: RepairRule::StaleSweep,
                            player: None,
                            owner: None,
                            what: Repair::AllocationHung { loading },
                        });
                    }
                    let event = NoticeEvent::Requeued { loading, code };
                    shared.publisher.publish(mode, requeued, event).await;
                    // A separate notice: an older instance drops what it cannot parse, and
                    // must not lose the requeued players' notice with it.
                    let event = NoticeEvent::Removed {
                        loading,
                        code: ErrorCode::LoadingNotCompleted,
                    };
                    shared.publisher.publish(mode, removed, event).await;
                }
                Ok(_) => {}
                // A clock failure stops this round; the next round tries again.
                Err(EffectError::Clock) => return,
                Err(EffectError::Unavailable) => {}
            }
        }
    }

    /// Whether `loading` is past its deadline, by a cheap HGET before the script that decides
    /// atomically. A missing session or an unreadable deadline counts as past: the script
    /// then tidies the index or checks for itself.
    async fn past_deadline(&self, loading: Uuid, now_ms: u64) -> bool {
        let key = self.shared.keys.loading(loading);
        match self.shared.deps.store.hget(&key, "deadline_ms").await {
            Ok(Some(raw)) => std::str::from_utf8(&raw)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .is_none_or(|deadline_ms| deadline_ms < now_ms),
            Ok(None) | Err(_) => true,
        }
    }

    /// Removes dead entries, a few HSCAN pages per round; returns the cursor to go on from.
    async fn sweep_players(&self, mut cursor: u64) -> u64 {
        let shared = &self.shared;
        for _ in 0..limits::SWEEP_PAGES_PER_ROUND {
            let Ok(now_ms) = shared.now_ms("sweep_players") else {
                return cursor;
            };
            let call = SweepPlayers {
                now_ms,
                cursor,
                count: limits::SWEEP_PAGE_ENTRIES,
                modes: &shared.settings.modes,
            };
            match shared.scripts.call(&call).await {
                Ok(page) => {
                    if page.removed > 0 {
                        tracing::info!(removed = page.removed, "dead player entries removed");
                        shared.record(Fact::Repaired {
                            rule: RepairRule::DeadEntrySweep,
                            player: None,
                            owner: None,
                            what: Repair::DeadEntries {
                                count: page.removed,
                            },
                        });
                    }
                    cursor = page.cursor;
                    if cursor == 0 {
                        return 0;
                    }
                }
                // A garbled page restarts the pass; a failed call goes on from here.
                Err(CallError::BadReply | CallError::Layout) => return 0,
                Err(CallError::Unavailable | CallError::Server | CallError::Withdrawn) => {
                    return cursor;
                }
            }
        }
        cursor
    }
}
