//! Game server allocation for a fully loaded session, then `match_found` to its players -
//! or, on any failure, every player back in the queue with the failure's error code.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::Shared;
use super::loading_end::end_loading;
use crate::allocator::{Allocation, AllocationError};
use crate::metrics::Family;
use crate::notify::NoticeEvent;
use crate::probe::{EndCause, Fact};
use crate::scripts::Member;
use crate::scripts::cancel_loading::{CancelReply, CancelWhen};
use crate::scripts::finish_match::{FinishMatch, FinishReply};

/// Runs allocations in tracked tasks (shutdown waits for them); cheap to clone.
#[derive(Clone)]
pub struct Allocations {
    /// Settings, seams, scripts.
    shared: Arc<Shared>,
    /// The running allocations.
    tasks: TaskTracker,
}

impl Allocations {
    /// No allocation running yet.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            tasks: TaskTracker::new(),
        }
    }

    /// The tracker of the running allocations.
    pub(super) fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }

    /// Starts the allocation for `loading` in a tracked task.
    pub(super) fn spawn(&self, mode: String, loading: Uuid, members: Vec<Member>) {
        let shared = self.shared.clone();
        self.tasks.spawn(async move {
            let job = Job {
                shared: &shared,
                mode: &mode,
                loading,
                members: &members,
            };
            job.allocate_and_finish().await;
        });
    }
}

/// One allocation: a group of `mode` in the fully loaded session `loading`.
struct Job<'a> {
    /// Settings, seams, scripts.
    shared: &'a Shared,
    /// The mode.
    mode: &'a str,
    /// The fully loaded session.
    loading: Uuid,
    /// Its players and their sessions.
    members: &'a [Member],
}

impl Job<'_> {
    /// Allocates a game server within the timeout, then finishes or requeues the group.
    async fn allocate_and_finish(&self) {
        let players: Vec<Uuid> = self.members.iter().map(|m| m.player).collect();
        let timeout = Duration::from_millis(self.shared.settings.timing.allocation_timeout_ms);
        let loaded_at = tokio::time::Instant::now();
        let allocate = self.shared.deps.allocator.allocate(&players);
        let result = match tokio::time::timeout(timeout, allocate).await {
            Ok(result) => result,
            Err(_) => Err(AllocationError::Timeout),
        };
        let failure = result.as_ref().err().map(AllocationError::code);
        self.shared
            .metrics
            .allocation_finished(failure, loaded_at.elapsed());
        match result {
            Ok(allocation) => self.finish(allocation).await,
            Err(error) => self.requeue_after_failure(&error).await,
        }
    }

    /// Records the match and tells the players; an unknown outcome makes them resync.
    async fn finish(&self, allocation: Allocation) {
        let (shared, mode, loading) = (self.shared, self.mode, self.loading);
        let players_per_match = shared.players_per_match(mode).unwrap_or(self.members.len());
        let lease_deadline_ms = match shared.now_ms("finish_match") {
            Ok(now_ms) => now_ms.saturating_add(shared.settings.timing.lease_ttl_ms),
            Err(_) => return self.resync_members().await,
        };
        let call = FinishMatch {
            mode,
            loading,
            session_id: allocation.session_id,
            server_address: &allocation.server_address,
            lease_deadline_ms,
            group: self.members,
            players_per_match,
        };
        let ending = || {
            shared.record(Fact::LoadingEnding {
                loading,
                mode: mode.to_owned(),
                cause: EndCause::Matched,
            });
        };
        match shared.scripts.call_reporting(&call, ending).await {
            Ok(FinishReply::Matched { members: matched }) => {
                shared.metrics.incr(Family::MatchesCompleted, mode);
                tracing::info!(%loading, session_id = %allocation.session_id, server = %allocation.server_address, "match found");
                let event = NoticeEvent::MatchFound {
                    loading,
                    session_id: allocation.session_id,
                    server_address: allocation.server_address,
                };
                shared.publisher.publish(mode, matched, event).await;
            }
            Ok(FinishReply::Gone) => {
                tracing::warn!(%loading, session_id = %allocation.session_id, "loading session ended during allocation; game server session unused");
                // A retry after a lost reply also sees `gone`: let the entries speak.
                self.resync_members().await;
            }
            Err(_) => self.resync_members().await,
        }
    }

    /// Ends the loading session after a failed allocation; everyone is requeued and told.
    async fn requeue_after_failure(&self, error: &AllocationError) {
        let (shared, mode, loading) = (self.shared, self.mode, self.loading);
        tracing::warn!(%loading, %error, "allocation failed; requeueing the players");
        let code = error.code();
        match end_loading(shared, mode, loading, None, CancelWhen::Allocating, code).await {
            Ok(CancelReply::Cancelled { requeued, .. }) => {
                let event = NoticeEvent::Requeued { loading, code };
                shared.publisher.publish(mode, requeued, event).await;
            }
            // `gone` after a retry whose first attempt worked: the entries hold the reason.
            Ok(_) | Err(_) => self.resync_members().await,
        }
    }

    /// Tells the group to compare itself with Redis.
    async fn resync_members(&self) {
        self.shared
            .publisher
            .publish(self.mode, self.members.to_vec(), NoticeEvent::Resync)
            .await;
    }
}
