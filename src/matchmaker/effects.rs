//! The effects sessions ask for: enqueue, leave (dequeue, disconnect, shutdown),
//! loading_complete and resync. Each retries an unknown outcome a bounded number of times,
//! which is safe because every script answers a repeated call by the same session
//! idempotently.

use std::time::Duration;

use uuid::Uuid;

use super::entry::PlayerEntry;
use super::replies::{
    CancelReply, CompleteReply, EnqueueReply, LeaveReply, ReplyError, parse_cancel, parse_complete,
    parse_enqueue, parse_leave, unknown_mode,
};
use super::{EffectError, Matchmaker};
use crate::limits;
use crate::notify::NoticeEvent;
use crate::probe::{Act, EndCause, Fact};
use crate::protocol::ErrorCode;
use crate::scripts::{SCRIPTS, Script};
use crate::store::{Reply, StoreError};

impl Matchmaker {
    /// Runs `script` until it gives a reply `parse` accepts, at most
    /// [`limits::MAX_EFFECT_ATTEMPTS`] times. An error reply from Redis is not retried.
    pub async fn eval_with_retry<T>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
        parse: impl Fn(&Reply) -> Result<T, ReplyError>,
    ) -> Result<T, EffectError> {
        self.eval_attempts(script, keys, args, parse, || {}).await
    }

    /// [`Self::eval_with_retry`], calling `before_each` right before every attempt is sent
    /// (to report a decision to the probe once per attempt that may take effect).
    pub async fn eval_attempts<T>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
        parse: impl Fn(&Reply) -> Result<T, ReplyError>,
        before_each: impl Fn(),
    ) -> Result<T, EffectError> {
        for attempt in 1..=limits::MAX_EFFECT_ATTEMPTS {
            before_each();
            match self.eval(script, keys, args).await {
                Ok(reply) => match parse(&reply) {
                    Ok(outcome) => return Ok(outcome),
                    Err(error) => self.bad_reply(&error),
                },
                Err(StoreError::Server(_)) => return Err(EffectError::Unavailable),
                Err(_) => {}
            }
            if attempt < limits::MAX_EFFECT_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(limits::EFFECT_RETRY_DELAY_MS)).await;
            }
        }
        Err(EffectError::Unavailable)
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
    ) -> Result<EnqueueReply, EffectError> {
        let now_ms = self.now_ms("enqueue")?;
        let lease_ms = now_ms.saturating_add(self.settings.timing.lease_ttl_ms);
        let mut keys = vec![self.keys.queue(mode), self.keys.players()];
        let mut args = vec![
            player.to_string(),
            owner.to_string(),
            mode.to_owned(),
            now_ms.to_string(),
            lease_ms.to_string(),
            self.settings.limits.max_queue_len.to_string(),
        ];
        for other in &self.settings.modes {
            keys.push(self.keys.queue(&other.name));
            args.push(other.name.clone());
        }
        let parse = |reply: &Reply| match parse_enqueue(reply)? {
            EnqueueReply::Already { mode, .. } if self.settings.mode(&mode).is_none() => {
                Err(unknown_mode("enqueue", &mode))
            }
            outcome => Ok(outcome),
        };
        let act = Act::Enqueue { requested };
        let acting = || self.record(Fact::Acted { player, owner, act });
        let reply = self
            .eval_attempts(&SCRIPTS.enqueue, &keys, &args, parse, acting)
            .await?;
        if let EnqueueReply::Enqueued { queue_len } = reply {
            let need = self.players_per_match(mode).unwrap_or(usize::MAX);
            if usize::try_from(queue_len).is_ok_and(|len| len >= need) {
                self.trigger_match(mode);
            }
        }
        Ok(reply)
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
        let mut mode = mode.to_owned();
        // Each step removes one place; an entry is in at most one, so two steps suffice.
        for _ in 0..3 {
            let keys = [self.keys.queue(&mode), self.keys.players()];
            let args = [player.to_string(), owner.to_string(), mode.clone()];
            match self
                .eval_with_retry(&SCRIPTS.leave_queue, &keys, &args, |reply: &Reply| {
                    match parse_leave(reply)? {
                        LeaveReply::Loading { mode, .. } | LeaveReply::OtherMode { mode }
                            if self.settings.mode(&mode).is_none() =>
                        {
                            Err(unknown_mode("leave_queue", &mode))
                        }
                        outcome => Ok(outcome),
                    }
                })
                .await?
            {
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
        let leaving = Some((player, owner));
        let reason = ErrorCode::LoadingCancelled;
        let reply = self
            .cancel_loading(mode, loading, leaving, CancelWhen::Always, reason)
            .await?;
        if let CancelReply::Cancelled { requeued, .. } = reply {
            let event = NoticeEvent::Requeued {
                loading,
                code: ErrorCode::LoadingCancelled,
            };
            self.publisher.publish(mode, requeued, event).await;
        }
        Ok(())
    }

    /// Runs `cancel_loading.lua` on `loading` of `mode`.
    pub async fn cancel_loading(
        &self,
        mode: &str,
        loading: Uuid,
        leaving: Option<(Uuid, Uuid)>,
        when: CancelWhen,
        reason: ErrorCode,
    ) -> Result<CancelReply, EffectError> {
        let need = self
            .players_per_match(mode)
            .ok_or(EffectError::Unavailable)?;
        let now_ms = self.now_ms("cancel_loading")?;
        let removed_lease_ms = now_ms.saturating_add(self.settings.timing.lease_ttl_ms);
        let (leaving_player, leaving_owner) = leaving
            .map(|(player, owner)| (player.to_string(), owner.to_string()))
            .unwrap_or_default();
        let keys = [
            self.keys.loading(loading),
            self.keys.players(),
            self.keys.loading_index(mode),
            self.keys.queue(mode),
        ];
        let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
        // The loading timeout policy: only the players who loaded are requeued.
        let remove_unready = when == CancelWhen::Expired;
        let args = [
            loading.to_string(),
            leaving_player,
            leaving_owner,
            now_ms.to_string(),
            flag(when == CancelWhen::Expired),
            flag(when == CancelWhen::Allocating),
            reason.as_str().to_owned(),
            flag(remove_unready),
            ErrorCode::LoadingNotCompleted.as_str().to_owned(),
            removed_lease_ms.to_string(),
        ];
        let parse = |reply: &Reply| parse_cancel(reply, need);
        let cause = match (leaving, when) {
            (Some((player, _)), _) => EndCause::Left { player },
            (None, CancelWhen::Expired) => EndCause::TimedOut,
            (None, CancelWhen::Always | CancelWhen::Allocating) => {
                EndCause::AllocationFailed { code: reason }
            }
        };
        let ending = || {
            self.record(Fact::LoadingEnding {
                loading,
                mode: mode.to_owned(),
                cause,
            });
        };
        let reply = self
            .eval_attempts(&SCRIPTS.cancel_loading, &keys, &args, parse, ending)
            .await?;
        if let CancelReply::Cancelled {
            dropped,
            requeued,
            removed,
        } = &reply
        {
            let (requeued, removed) = (requeued.len(), removed.len());
            tracing::info!(%loading, mode, requeued, removed, dropped, "loading session cancelled");
        }
        Ok(reply)
    }

    /// Marks `player` ready in `loading`; the caller that completes the group starts the
    /// game server allocation.
    pub async fn loading_complete(
        self: &std::sync::Arc<Self>,
        owner: Uuid,
        player: Uuid,
        mode: &str,
        loading: Uuid,
    ) -> Result<CompleteReply, EffectError> {
        let need = self
            .players_per_match(mode)
            .ok_or(EffectError::Unavailable)?;
        let now_ms = self.now_ms("loading_complete")?;
        let allocation_ms = self.settings.timing.allocation_timeout_ms.saturating_mul(2);
        let keys = [self.keys.loading(loading), self.keys.players()];
        let args = [
            player.to_string(),
            owner.to_string(),
            loading.to_string(),
            now_ms.saturating_add(allocation_ms).to_string(),
        ];
        let parse = |reply: &Reply| parse_complete(reply, need);
        let reply = self
            .eval_with_retry(&SCRIPTS.loading_complete, &keys, &args, parse)
            .await?;
        if let CompleteReply::AllReady { members } = &reply {
            self.spawn_allocation(mode.to_owned(), loading, members.clone());
        }
        Ok(reply)
    }

    /// Reads `player`'s entry, the truth a session reconciles itself with.
    pub async fn read_entry(&self, player: Uuid) -> Result<Option<PlayerEntry>, EffectError> {
        match self
            .deps
            .store
            .hget(&self.keys.players(), &player.to_string())
            .await
        {
            Ok(raw) => Ok(raw.as_deref().and_then(PlayerEntry::decode)),
            Err(error) => {
                self.metrics
                    .incr(crate::metrics::Family::StoreErrors, "hget");
                tracing::warn!(%error, %player, "entry read failed");
                Err(EffectError::Unavailable)
            }
        }
    }
}

/// When `cancel_loading.lua` may end a loading session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelWhen {
    /// Unconditionally (a player leaves).
    Always,
    /// Only past its deadline (the stale sweep, i.e. the loading timeout): only the players
    /// who loaded are requeued, the others are taken out of the queue.
    Expired,
    /// Only while allocating (allocation failed).
    Allocating,
}
