//! `lua/finish_match.lua`: records the allocated game server in every entry of a fully
//! loaded session and ends the loading session.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, check_distinct, error, unknown_tag};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("finish_match");

/// KEYS and ARGV of `finish_match.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["loading_key", "players_key", "loading_index_key"],
    args: &["loading_id", "session_id", "server_address", "lease_deadline_ms"],
    key_tail: None,
    arg_tail: None,
};

/// Records the game server `server_address` (its session `session_id`) for `loading`.
#[derive(Clone, Debug)]
pub struct FinishMatch<'a> {
    /// The mode of the loading session (its index key).
    pub mode: &'a str,
    /// The loading session.
    pub loading: Uuid,
    /// The game server's session id.
    pub session_id: Uuid,
    /// The game server's address.
    pub server_address: &'a str,
    /// The lease the matched entries get (unix ms).
    pub lease_deadline_ms: u64,
    /// The group the allocation was for: the matched players are among them.
    pub group: &'a [Member],
    /// Players per match of the mode, as a group size.
    pub players_per_match: usize,
}

/// What `finish_match.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReply {
    /// These players are matched (entries record the game server).
    Matched {
        /// The players whose entries were still in the loading session.
        members: Vec<Member>,
    },
    /// The loading session ended meanwhile (cancelled or swept).
    Gone,
}

impl ScriptCall for FinishMatch<'_> {
    type Outcome = FinishReply;
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("loading_key", keys.loading(self.loading));
        call.key("players_key", keys.players());
        call.key("loading_index_key", keys.loading_index(self.mode));
        call.arg("loading_id", self.loading);
        call.arg("session_id", self.session_id);
        call.arg("server_address", self.server_address);
        call.arg("lease_deadline_ms", self.lease_deadline_ms);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<FinishReply, ReplyError> {
        parse(reply, self.players_per_match)
    }

    /// The matched players are players of the group (the loading session's own list).
    fn relation(&self, outcome: &FinishReply) -> Result<(), &'static str> {
        match outcome {
            FinishReply::Matched { members }
                if !members
                    .iter()
                    .all(|member| self.group.iter().any(|m| m.player == member.player)) =>
            {
                Err("a matched player is not in the group")
            }
            _ => Ok(()),
        }
    }
}

/// Parses the reply of `finish_match.lua` for a mode of `players_per_match`.
pub fn parse(reply: &Reply, players_per_match: usize) -> Result<FinishReply, ReplyError> {
    let script = SCRIPT.name;
    let (tag, mut fields) = Fields::open(script, reply)?;
    match tag.as_str() {
        "matched" => {
            let members = fields.members()?;
            if members.len() > players_per_match {
                return Err(error(script, reply, "more players than the mode holds"));
            }
            check_distinct(script, reply, &members)?;
            Ok(FinishReply::Matched { members })
        }
        "gone" => fields.end().map(|()| FinishReply::Gone),
        other => Err(unknown_tag(script, reply, other)),
    }
}
