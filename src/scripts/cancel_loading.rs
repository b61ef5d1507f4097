//! `lua/cancel_loading.lua`: ends a loading session and requeues its remaining live players
//! (a player leaves, the allocation failed), or, at the loading timeout, requeues only the
//! players who loaded and takes the others out of the queue.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, check_distinct, error, unknown_tag};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::protocol::ErrorCode;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("cancel_loading");

/// KEYS and ARGV of `cancel_loading.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &[
        "loading_key",
        "players_key",
        "loading_index_key",
        "queue_key",
    ],
    args: &[
        "loading_id",
        "leaving_player",
        "leaving_owner",
        "now_ms",
        "only_if_expired",
        "only_if_allocating",
        "requeue_reason",
        "remove_unready",
        "removal_reason",
        "removed_lease_deadline_ms",
    ],
    key_tail: None,
    arg_tail: None,
};

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

/// Ends `loading` of `mode`, if `when` allows.
#[derive(Clone, Debug)]
pub struct CancelLoading<'a> {
    /// The mode of the loading session (its queue and index keys).
    pub mode: &'a str,
    /// The loading session.
    pub loading: Uuid,
    /// The player who leaves it and its session's token, if one does: its entry is deleted,
    /// and the call is refused unless that session owns the player's place in it.
    pub leaving: Option<Member>,
    /// The caller's unix time: deadlines and leases are judged against it.
    pub now_ms: u64,
    /// When the session may be ended.
    pub when: CancelWhen,
    /// What the requeued players are told (kept in their entries).
    pub reason: ErrorCode,
    /// The lease a removed entry whose own lease had run out gets (unix ms).
    pub removed_lease_deadline_ms: u64,
    /// Players per match of the mode, as a group size.
    pub players_per_match: usize,
}

/// What `cancel_loading.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReply {
    /// The loading session ended; `requeued` players are back in the queue, `removed` ones
    /// (those who did not load, at a loading timeout) are out of it.
    Cancelled {
        /// Players dropped because their lease ran out.
        dropped: u64,
        /// Players requeued.
        requeued: Vec<Member>,
        /// Players taken out of the queue.
        removed: Vec<Member>,
    },
    /// The sweep's condition did not hold (deadline not passed, or not allocating).
    NotExpired,
    /// The leaving player is not in this loading session.
    NotMember,
    /// The loading session no longer exists.
    Gone,
}

/// A flag argument.
fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

impl ScriptCall for CancelLoading<'_> {
    type Outcome = CancelReply;
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let (leaving_player, leaving_owner) = self
            .leaving
            .map(|member| (member.player.to_string(), member.owner.to_string()))
            .unwrap_or_default();
        // The loading timeout policy: only the players who loaded are requeued.
        let remove_unready = self.when == CancelWhen::Expired;
        let mut call = Invocation::new(&LAYOUT);
        call.key("loading_key", keys.loading(self.loading));
        call.key("players_key", keys.players());
        call.key("loading_index_key", keys.loading_index(self.mode));
        call.key("queue_key", keys.queue(self.mode));
        call.arg("loading_id", self.loading);
        call.arg("leaving_player", leaving_player);
        call.arg("leaving_owner", leaving_owner);
        call.arg("now_ms", self.now_ms);
        call.arg("only_if_expired", flag(self.when == CancelWhen::Expired));
        call.arg("only_if_allocating", flag(self.when == CancelWhen::Allocating));
        call.arg("requeue_reason", self.reason.as_str());
        call.arg("remove_unready", flag(remove_unready));
        call.arg("removal_reason", ErrorCode::LoadingNotCompleted.as_str());
        call.arg("removed_lease_deadline_ms", self.removed_lease_deadline_ms);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<CancelReply, ReplyError> {
        parse(reply, self.players_per_match)
    }

    /// The leaving player is neither requeued nor removed: its entry is deleted.
    fn relation(&self, outcome: &CancelReply) -> Result<(), &'static str> {
        let Some(leaving) = self.leaving else {
            return Ok(());
        };
        match outcome {
            CancelReply::Cancelled {
                requeued, removed, ..
            } if requeued
                .iter()
                .chain(removed)
                .any(|member| member.player == leaving.player) =>
            {
                Err("the leaving player stays in the queue")
            }
            _ => Ok(()),
        }
    }
}

/// Parses the reply of `cancel_loading.lua` for a mode of `players_per_match`.
pub fn parse(reply: &Reply, players_per_match: usize) -> Result<CancelReply, ReplyError> {
    let script = SCRIPT.name;
    let (tag, mut fields) = Fields::open(script, reply)?;
    let outcome = match tag.as_str() {
        "cancelled" => {
            let dropped = fields.count("dropped")?;
            let requeued_count = fields.count("requeued count")?;
            let mut requeued = fields.members()?;
            if requeued.len() > players_per_match {
                return Err(error(script, reply, "more players than the mode holds"));
            }
            check_distinct(script, reply, &requeued)?;
            let split = usize::try_from(requeued_count)
                .ok()
                .filter(|count| *count <= requeued.len())
                .ok_or_else(|| error(script, reply, "requeued count exceeds the players"))?;
            let removed = requeued.split_off(split);
            return Ok(CancelReply::Cancelled {
                dropped,
                requeued,
                removed,
            });
        }
        "not_expired" => CancelReply::NotExpired,
        "not_member" => CancelReply::NotMember,
        "gone" => CancelReply::Gone,
        other => return Err(unknown_tag(script, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}
