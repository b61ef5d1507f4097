//! The one port a session talks to: its Redis effects (enqueue, leave, loading_complete,
//! resync), its player lease, its registration with the notice router, and its facts.
//! Every outcome comes back typed for the session's state machine; script replies stay on
//! this side of the port.
//!
//! Each effect retries an unknown outcome a bounded number of times, which is safe because
//! every script answers a repeated call by the same session idempotently.

use std::sync::Arc;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::allocation::Allocations;
use super::entry::PlayerEntry;
use super::lease_keeper::LeaseKeeper;
use super::loading_end::end_loading;
use super::match_loop::MatchTrigger;
use super::{EffectError, Shared};
use crate::config::Settings;
use crate::metrics::{Family, Metrics};
use crate::notify::{LocalSession, NoticeEvent, Router, SessionNotice};
use crate::probe::{Act, Fact};
use crate::protocol::ErrorCode;
use crate::scripts::Member;
use crate::scripts::cancel_loading::{CancelReply, CancelWhen};
use crate::scripts::enqueue::{Enqueue, EnqueueReply};
use crate::scripts::leave_queue::{LeaveQueue, LeaveReply};
use crate::scripts::loading_complete::{CompleteReply, LoadingComplete};

/// What an enqueue did, as the session sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The player is queued now.
    Enqueued,
    /// This session's entry already waits in the queue of `mode` (an earlier attempt
    /// succeeded).
    AlreadyQueued {
        /// The mode the entry is queued in.
        mode: String,
    },
    /// This session's entry is already in a loading session of `mode`; the session asks
    /// Redis which one (the `start_loading` notice may be lost).
    AlreadyLoading {
        /// The mode of the loading session.
        mode: String,
    },
    /// A live entry of another session holds this player.
    Taken,
    /// An expired entry of the player still sits in a loading session.
    Busy,
    /// The queue is at its length limit.
    Full,
}

/// What reporting `loading_complete` did, as the session sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// Marked ready; others still load.
    Waiting,
    /// Marked ready, and the group is complete: this instance allocates a game server.
    AllReady,
    /// The player was already marked ready.
    AlreadyReady,
    /// The player is not (or no longer) in this loading session.
    NotMember,
    /// The loading session no longer exists.
    Gone,
    /// The player's lease no longer holds this session's token: nothing was marked, and
    /// the session must stop acting for the player.
    LeaseLost,
}

impl CompleteOutcome {
    /// Whether the player is marked ready in the loading session now.
    pub fn is_ready(self) -> bool {
        matches!(self, Self::Waiting | Self::AllReady | Self::AlreadyReady)
    }
}

/// The outcome of an attempt to take a player lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The lease holds this session's token now.
    Acquired,
    /// Another session holds it: another connection already plays as this player.
    HeldElsewhere,
}

/// The port of every session of one instance; cheap to clone.
#[derive(Clone)]
pub struct SessionPort {
    /// Settings, seams, scripts.
    shared: Arc<Shared>,
    /// Where the session registers for notices.
    router: Arc<Router>,
    /// Takes and releases player leases.
    leases: Arc<LeaseKeeper>,
    /// Starts the allocation of a group this session completed.
    allocations: Allocations,
    /// Asks the match loop for a round when a queue may hold a full group.
    trigger: MatchTrigger,
}

impl SessionPort {
    /// The port on an instance's services.
    pub(super) fn new(
        shared: Arc<Shared>,
        router: Arc<Router>,
        leases: Arc<LeaseKeeper>,
        allocations: Allocations,
        trigger: MatchTrigger,
    ) -> Self {
        Self {
            shared,
            router,
            leases,
            allocations,
            trigger,
        }
    }

    /// Validated settings.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.shared.settings
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Where the session reports broken relations.
    pub fn checks(&self) -> &crate::check::Checks {
        &self.shared.checks
    }

    /// A fresh session token.
    pub fn new_owner(&self) -> Uuid {
        self.shared.new_id()
    }

    /// Registers the session `owner`: notices for it go to `sender`; the router and the
    /// lease keeper read its state through `session`.
    pub fn register(
        &self,
        owner: Uuid,
        sender: mpsc::Sender<SessionNotice>,
        session: Arc<dyn LocalSession>,
    ) {
        self.router.register(owner, sender, session);
    }

    /// Forgets the session `owner` (it ended).
    pub fn unregister(&self, owner: Uuid) {
        self.router.unregister(owner);
        self.leases.forget(owner);
    }

    /// Reports a decision to the probe seam.
    pub fn record(&self, fact: Fact) {
        self.shared.record(fact);
    }

    /// The guard of each attempt of an effect the session `owner` runs for `player`: the
    /// attempt is sent (and reported as `act`) only while the session's lease fence holds.
    /// Checked per attempt, not per step: retries held by a stalled Redis connection can
    /// outlast the lease, and an attempt sent after it may land for a player another
    /// connection holds by then.
    fn acting(&self, owner: Uuid, player: Uuid, act: Act) -> impl Fn() -> bool + '_ {
        move || {
            if self.lease_fenced(owner, player) {
                return false;
            }
            self.record(Fact::Acted { player, owner, act });
            true
        }
    }

    /// Puts `player` into the queue of `mode` for the session `owner`. `requested` says
    /// whether the client asked for it (a new attempt) or the session repairs a lost entry;
    /// the act is reported to the probe before every attempt (an attempt is when it lands).
    pub async fn enqueue(
        &self,
        owner: Uuid,
        player: Uuid,
        mode: &str,
        requested: bool,
    ) -> Result<EnqueueOutcome, EffectError> {
        let shared = &self.shared;
        let now_ms = shared.now_ms("enqueue")?;
        let call = Enqueue {
            player,
            owner,
            mode,
            now_ms,
            lease_deadline_ms: now_ms.saturating_add(shared.settings.timing.lease_ttl_ms),
            max_queue_len: shared.settings.limits.max_queue_len,
            modes: &shared.settings.modes,
        };
        let reply = shared
            .scripts
            .call_guarded(
                &call,
                self.acting(owner, player, Act::Enqueue { requested }),
            )
            .await
            .map_err(|_| EffectError::Unavailable)?;
        Ok(match reply {
            EnqueueReply::Enqueued { queue_len } => {
                let need = shared.players_per_match(mode).unwrap_or(usize::MAX);
                if usize::try_from(queue_len).is_ok_and(|len| len >= need) {
                    self.trigger.request(mode);
                }
                EnqueueOutcome::Enqueued
            }
            EnqueueReply::AlreadyQueued { mode } => EnqueueOutcome::AlreadyQueued { mode },
            EnqueueReply::AlreadyLoading { mode, .. } => EnqueueOutcome::AlreadyLoading { mode },
            EnqueueReply::Taken => EnqueueOutcome::Taken,
            EnqueueReply::Busy => EnqueueOutcome::Busy,
            EnqueueReply::Full => EnqueueOutcome::Full,
        })
    }

    /// Removes every trace of `player` for the session `owner`: its queue entry, or its place
    /// in a loading session (whose other players are requeued and told). Used by dequeue,
    /// disconnect and shutdown. Succeeds when nothing of the session is left in Redis.
    pub async fn leave(
        &self,
        owner: Uuid,
        player: Uuid,
        mode: &str,
        loading: Option<Uuid>,
    ) -> Result<(), EffectError> {
        if let Some(loading) = loading {
            self.cancel_as_leaver(owner, player, mode, loading).await?;
        }
        let modes = &self.shared.settings.modes;
        let mut mode = mode.to_owned();
        // Each step removes one place; an entry is in at most one, so two steps suffice.
        for _ in 0..3 {
            let call = LeaveQueue {
                player,
                owner,
                mode: &mode,
                modes,
            };
            let reply = self
                .shared
                .scripts
                .call(&call)
                .await
                .map_err(|_| EffectError::Unavailable)?;
            match reply {
                LeaveReply::Left | LeaveReply::Absent => return Ok(()),
                LeaveReply::Loading {
                    loading,
                    mode: loading_mode,
                } => {
                    self.cancel_as_leaver(owner, player, &loading_mode, loading)
                        .await?;
                }
                LeaveReply::OtherMode { mode: other } => mode = other,
            }
        }
        Err(EffectError::Unavailable)
    }

    /// Cancels `loading` because `player` leaves it; the others are requeued and told.
    async fn cancel_as_leaver(
        &self,
        owner: Uuid,
        player: Uuid,
        mode: &str,
        loading: Uuid,
    ) -> Result<(), EffectError> {
        let leaving = Some(Member { player, owner });
        let code = ErrorCode::LoadingCancelled;
        let reply = end_loading(
            &self.shared,
            mode,
            loading,
            leaving,
            CancelWhen::Always,
            code,
        )
        .await?;
        if let CancelReply::Cancelled { requeued, .. } = reply {
            let event = NoticeEvent::Requeued { loading, code };
            self.shared.publisher.publish(mode, requeued, event).await;
        }
        Ok(())
    }

    /// Marks `player` ready in `loading`; the caller that completes the group starts the
    /// game server allocation.
    pub async fn loading_complete(
        &self,
        owner: Uuid,
        player: Uuid,
        mode: &str,
        loading: Uuid,
    ) -> Result<CompleteOutcome, EffectError> {
        let shared = &self.shared;
        let players_per_match = shared
            .players_per_match(mode)
            .ok_or(EffectError::Unavailable)?;
        let now_ms = shared.now_ms("loading_complete")?;
        let allocation_ms = shared
            .settings
            .timing
            .allocation_timeout_ms
            .saturating_mul(2);
        let call = LoadingComplete {
            player,
            owner,
            loading,
            allocation_deadline_ms: now_ms.saturating_add(allocation_ms),
            players_per_match,
        };
        let act = Act::LoadingCompleted { loading };
        let reply = shared
            .scripts
            .call_guarded(&call, self.acting(owner, player, act))
            .await
            .map_err(|_| EffectError::Unavailable)?;
        Ok(match reply {
            CompleteReply::Waiting => CompleteOutcome::Waiting,
            CompleteReply::AllReady { members } => {
                crate::check!(
                    shared.checks,
                    "group_size_matches_mode",
                    members.len() == players_per_match,
                    "{loading} completed with {} players for {mode}",
                    members.len()
                );
                self.allocations.spawn(mode.to_owned(), loading, members);
                CompleteOutcome::AllReady
            }
            CompleteReply::AlreadyReady => CompleteOutcome::AlreadyReady,
            CompleteReply::NotMember => CompleteOutcome::NotMember,
            CompleteReply::Gone => CompleteOutcome::Gone,
            CompleteReply::LeaseLost => CompleteOutcome::LeaseLost,
        })
    }

    /// Reads `player`'s entry, the truth a session reconciles itself with.
    pub async fn read_entry(&self, player: Uuid) -> Result<Option<PlayerEntry>, EffectError> {
        let shared = &self.shared;
        match shared
            .deps
            .store
            .hget(&shared.keys.players(), &player.to_string())
            .await
        {
            Ok(raw) => Ok(raw.as_deref().and_then(PlayerEntry::decode)),
            Err(error) => {
                shared.metrics.incr(Family::StoreErrors, "hget");
                tracing::warn!(%error, %player, "entry read failed");
                Err(EffectError::Unavailable)
            }
        }
    }

    /// Takes the lease of `player` for the session `owner` (see [`LeaseKeeper::acquire`]).
    pub async fn acquire_lease(
        &self,
        owner: Uuid,
        player: Uuid,
    ) -> Result<LeaseOutcome, EffectError> {
        self.leases.acquire(owner, player).await
    }

    /// Whether the session `owner`, which believes it holds the lease of `player`, must
    /// stop acting before its next step (see [`LeaseKeeper::must_stop`]).
    pub fn lease_fenced(&self, owner: Uuid, player: Uuid) -> bool {
        self.leases.must_stop(Member { player, owner })
    }

    /// Releases the lease of `player` if the session `owner` still holds it.
    pub async fn release_lease(&self, owner: Uuid, player: Uuid) {
        self.leases.release(owner, player).await;
    }
}
