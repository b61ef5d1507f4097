//! `lua/loading_complete.lua`: marks one player of a loading session ready; the caller that
//! completes the group moves it to allocating and allocates a game server. Idempotent for
//! that caller: asked again after a lost reply, the script answers `all_ready` again.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, check_group, unknown_tag};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("loading_complete");

/// KEYS and ARGV of `loading_complete.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["loading_key", "players_key", "lease_key"],
    args: &["player", "owner", "loading_id", "allocation_deadline_ms"],
    key_tail: None,
    arg_tail: None,
};

/// Marks `player` of the session `owner` ready in `loading`.
#[derive(Clone, Debug)]
pub struct LoadingComplete {
    /// The player.
    pub player: Uuid,
    /// The session that owns the player's entry.
    pub owner: Uuid,
    /// The loading session.
    pub loading: Uuid,
    /// Deadline of the allocation, should this call complete the group (unix ms): past it
    /// the stale sweep ends the loading session.
    pub allocation_deadline_ms: u64,
    /// Players per match of the loading session's mode, as a group size.
    pub players_per_match: usize,
}

/// What `loading_complete.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteReply {
    /// Marked ready; others still load.
    Waiting,
    /// Everyone is ready: this caller must allocate a game server for the group.
    AllReady {
        /// The group.
        members: Vec<Member>,
    },
    /// This player was already marked ready.
    AlreadyReady,
    /// The player is not (or no longer) in this loading session.
    NotMember,
    /// The loading session no longer exists.
    Gone,
    /// The player lease does not hold the caller's token (it ran out, or another
    /// connection took the player): nothing was marked.
    LeaseLost,
}

impl ScriptCall for LoadingComplete {
    type Outcome = CompleteReply;
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("loading_key", keys.loading(self.loading));
        call.key("players_key", keys.players());
        call.key("lease_key", keys.player_lease(self.player));
        call.arg("player", self.player);
        call.arg("owner", self.owner);
        call.arg("loading_id", self.loading);
        call.arg("allocation_deadline_ms", self.allocation_deadline_ms);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<CompleteReply, ReplyError> {
        parse(reply, self.players_per_match)
    }

    /// A group the caller completed holds the caller (the script checked its ready flag).
    fn relation(&self, outcome: &CompleteReply) -> Result<(), &'static str> {
        match outcome {
            CompleteReply::AllReady { members }
                if !members.iter().any(|member| member.player == self.player) =>
            {
                Err("the completed group does not hold the caller")
            }
            _ => Ok(()),
        }
    }
}

/// Parses the reply of `loading_complete.lua` for a mode of `players_per_match`.
pub fn parse(reply: &Reply, players_per_match: usize) -> Result<CompleteReply, ReplyError> {
    let script = SCRIPT.name;
    let (tag, mut fields) = Fields::open(script, reply)?;
    let outcome = match tag.as_str() {
        "waiting" => {
            let ready = fields.count("ready")?;
            let total = fields.count("total")?;
            if ready >= total {
                return Err(fields.fail(format!("waiting with {ready} of {total} ready")));
            }
            CompleteReply::Waiting
        }
        "all_ready" => {
            fields.text("mode")?;
            let members = fields.members()?;
            check_group(script, reply, &members, players_per_match)?;
            return Ok(CompleteReply::AllReady { members });
        }
        "already_ready" => CompleteReply::AlreadyReady,
        "not_member" => CompleteReply::NotMember,
        "gone" => CompleteReply::Gone,
        "lease_lost" => CompleteReply::LeaseLost,
        other => return Err(unknown_tag(script, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}
