//! Game server allocation for a fully loaded session, then `match_found` to its players -
//! or, on any failure, every player back in the queue with the failure's error code.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::Matchmaker;
use super::effects::CancelWhen;
use super::replies::{CancelReply, FinishReply, Member, parse_finish};
use crate::allocator::{Allocation, AllocationError};
use crate::metrics::Family;
use crate::notify::NoticeEvent;
use crate::probe::{EndCause, Fact};
use crate::scripts::SCRIPTS;
use crate::store::Reply;

impl Matchmaker {
    /// Starts the allocation for `loading` in a tracked task (shutdown waits for it).
    pub fn spawn_allocation(self: &Arc<Self>, mode: String, loading: Uuid, members: Vec<Member>) {
        let matchmaker = Arc::clone(self);
        self.tasks.spawn(async move {
            matchmaker
                .allocate_and_finish(&mode, loading, members)
                .await;
        });
    }

    /// Allocates a game server within the timeout, then finishes or requeues the group.
    async fn allocate_and_finish(&self, mode: &str, loading: Uuid, members: Vec<Member>) {
        let players: Vec<Uuid> = members.iter().map(|m| m.player).collect();
        let timeout = Duration::from_millis(self.settings.timing.allocation_timeout_ms);
        let result =
            match tokio::time::timeout(timeout, self.deps.allocator.allocate(&players)).await {
                Ok(result) => result,
                Err(_) => Err(AllocationError::Timeout),
            };
        match result {
            Ok(allocation) => self.finish(mode, loading, &members, allocation).await,
            Err(error) => {
                self.requeue_after_failure(mode, loading, &members, &error)
                    .await
            }
        }
    }

    /// Records the match and tells the players; an unknown outcome makes them resync.
    async fn finish(&self, mode: &str, loading: Uuid, members: &[Member], allocation: Allocation) {
        let need = self.players_per_match(mode).unwrap_or(members.len());
        let lease_ms = match self.now_ms("finish_match") {
            Ok(now_ms) => now_ms.saturating_add(self.settings.timing.lease_ttl_ms),
            Err(_) => return self.resync_members(mode, members).await,
        };
        let keys = [
            self.keys.loading(loading),
            self.keys.players(),
            self.keys.loading_index(mode),
        ];
        let args = [
            loading.to_string(),
            allocation.session_id.to_string(),
            allocation.server_address.clone(),
            lease_ms.to_string(),
        ];
        let parse = |reply: &Reply| parse_finish(reply, need);
        let ending = || {
            self.record(Fact::LoadingEnding {
                loading,
                mode: mode.to_owned(),
                cause: EndCause::Matched,
            });
        };
        match self
            .eval_attempts(&SCRIPTS.finish_match, &keys, &args, parse, ending)
            .await
        {
            Ok(FinishReply::Matched { members: matched }) => {
                self.metrics.incr(Family::MatchesCompleted, mode);
                tracing::info!(%loading, session_id = %allocation.session_id, server = %allocation.server_address, "match found");
                let event = NoticeEvent::MatchFound {
                    loading,
                    session_id: allocation.session_id,
                    server_address: allocation.server_address,
                };
                self.publisher.publish(mode, matched, event).await;
            }
            Ok(FinishReply::Gone) => {
                tracing::warn!(%loading, session_id = %allocation.session_id, "loading session ended during allocation; game server session unused");
                // A retry after a lost reply also sees `gone`: let the entries speak.
                self.resync_members(mode, members).await;
            }
            Err(_) => self.resync_members(mode, members).await,
        }
    }

    /// Ends the loading session after a failed allocation; everyone is requeued and told.
    async fn requeue_after_failure(
        &self,
        mode: &str,
        loading: Uuid,
        members: &[Member],
        error: &AllocationError,
    ) {
        tracing::warn!(%loading, %error, "allocation failed; requeueing the players");
        match self
            .cancel_loading(mode, loading, None, CancelWhen::Allocating, error.code())
            .await
        {
            Ok(CancelReply::Cancelled { requeued, .. }) => {
                let event = NoticeEvent::Requeued {
                    loading,
                    code: error.code(),
                };
                self.publisher.publish(mode, requeued, event).await;
            }
            // `gone` after a retry whose first attempt worked: the entries hold the reason.
            Ok(_) | Err(_) => self.resync_members(mode, members).await,
        }
    }

    /// Tells `members` to compare themselves with Redis.
    async fn resync_members(&self, mode: &str, members: &[Member]) {
        self.publisher
            .publish(mode, members.to_vec(), NoticeEvent::Resync)
            .await;
    }
}
