//! Ending a loading session without a match: a player leaves it, its allocation failed, or
//! the stale sweep finds it past its deadline (the loading timeout). One function for the
//! three, so each end reports its cause to the probe the same way.

use uuid::Uuid;

use super::{EffectError, Shared};
use crate::probe::{EndCause, Fact};
use crate::protocol::ErrorCode;
use crate::scripts::Member;
use crate::scripts::cancel_loading::{CancelLoading, CancelReply, CancelWhen};

/// Runs `cancel_loading.lua` on `loading` of `mode`: `leaving` is the player who leaves it
/// (and its session's token), `when` what allows the end, `reason` what the requeued
/// players are told. Reports [`Fact::LoadingEnding`] before every attempt.
pub(crate) async fn end_loading(
    shared: &Shared,
    mode: &str,
    loading: Uuid,
    leaving: Option<Member>,
    when: CancelWhen,
    reason: ErrorCode,
) -> Result<CancelReply, EffectError> {
    let players_per_match = shared
        .players_per_match(mode)
        .ok_or(EffectError::Unavailable)?;
    let now_ms = shared.now_ms("cancel_loading")?;
    let call = CancelLoading {
        mode,
        loading,
        leaving,
        now_ms,
        when,
        reason,
        removed_lease_deadline_ms: now_ms.saturating_add(shared.settings.timing.lease_ttl_ms),
        players_per_match,
    };
    let cause = match (leaving, when) {
        (Some(member), _) => EndCause::Left {
            player: member.player,
        },
        (None, CancelWhen::Expired) => EndCause::TimedOut,
        (None, CancelWhen::Always | CancelWhen::Allocating) => {
            EndCause::AllocationFailed { code: reason }
        }
    };
    let ending = || {
        shared.record(Fact::LoadingEnding {
            loading,
            mode: mode.to_owned(),
            cause,
        });
    };
    let reply = shared
        .scripts
        .call_reporting(&call, ending)
        .await
        .map_err(|_| EffectError::Unavailable)?;
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
