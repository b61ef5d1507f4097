//! `lua/try_match.lua`: pops one group of live queued players of a mode and creates their
//! loading session, atomically, under the caller's match lock. Never repeated: a repeat
//! after a lost reply would form a second group (the match loop recovers instead).

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, check_group, unknown_tag};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::config::GameMode;
use crate::keys::Keys;
use crate::limits;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("try_match");

/// KEYS and ARGV of `try_match.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &[
        "queue_key",
        "players_key",
        "loading_key",
        "loading_index_key",
        "lock_key",
    ],
    args: &[
        "mode",
        "players_per_match",
        "loading_id",
        "now_ms",
        "deadline_ms",
        "max_pops",
        "lock_token",
    ],
    key_tail: None,
    arg_tail: None,
};

/// Forms one group of `mode` into the new loading session `loading`.
#[derive(Clone, Debug)]
pub struct TryMatch<'a> {
    /// The mode, with its group size.
    pub mode: &'a GameMode,
    /// The id the new loading session gets.
    pub loading: Uuid,
    /// The caller's unix time: queued entries whose lease ends before it are dead.
    pub now_ms: u64,
    /// When the loading session times out (unix ms).
    pub deadline_ms: u64,
    /// The caller's token on the mode's match lock; a caller that lost the lock changes
    /// nothing.
    pub lock_token: Uuid,
    /// Players per match of the mode, as a group size.
    pub players_per_match: usize,
}

/// What `try_match.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryMatchReply {
    /// A loading session was created with these players.
    Matched {
        /// The new loading session.
        loading: Uuid,
        /// Dead entries skipped on the way.
        dropped: u64,
        /// The group, exactly the mode's player count.
        members: Vec<Member>,
    },
    /// The caller's lock expired: nothing was changed.
    LockLost,
    /// Not enough live players; the popped ones are back.
    Waiting {
        /// Queue length now.
        queue_len: u64,
        /// Dead entries removed on the way.
        dropped: u64,
    },
}

impl ScriptCall for TryMatch<'_> {
    type Outcome = TryMatchReply;
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mode = &self.mode.name;
        let max_pops = self
            .mode
            .players
            .saturating_mul(limits::MAX_POPS_PER_PLAYER);
        let mut call = Invocation::new(&LAYOUT);
        call.key("queue_key", keys.queue(mode));
        call.key("players_key", keys.players());
        call.key("loading_key", keys.loading(self.loading));
        call.key("loading_index_key", keys.loading_index(mode));
        call.key("lock_key", keys.lock(mode));
        call.arg("mode", mode);
        call.arg("players_per_match", self.mode.players);
        call.arg("loading_id", self.loading);
        call.arg("now_ms", self.now_ms);
        call.arg("deadline_ms", self.deadline_ms);
        call.arg("max_pops", max_pops);
        call.arg("lock_token", self.lock_token);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<TryMatchReply, ReplyError> {
        parse(reply, self.players_per_match)
    }

    /// The script creates the loading session under the id it was given.
    fn relation(&self, outcome: &TryMatchReply) -> Result<(), &'static str> {
        match outcome {
            TryMatchReply::Matched { loading, .. } if *loading != self.loading => {
                Err("the loading session has another id than the one given")
            }
            _ => Ok(()),
        }
    }
}

/// Parses the reply of `try_match.lua` for a mode of `players_per_match`.
pub fn parse(reply: &Reply, players_per_match: usize) -> Result<TryMatchReply, ReplyError> {
    let script = SCRIPT.name;
    let (tag, mut fields) = Fields::open(script, reply)?;
    match tag.as_str() {
        "matched" => {
            let loading = fields.uuid("loading id")?;
            let dropped = fields.count("dropped")?;
            let members = fields.members()?;
            check_group(script, reply, &members, players_per_match)?;
            Ok(TryMatchReply::Matched {
                loading,
                dropped,
                members,
            })
        }
        "waiting" => {
            let queue_len = fields.count("queue length")?;
            let dropped = fields.count("dropped")?;
            fields.end()?;
            Ok(TryMatchReply::Waiting { queue_len, dropped })
        }
        "lock_lost" => fields.end().map(|()| TryMatchReply::LockLost),
        other => Err(unknown_tag(script, reply, other)),
    }
}
