//! `lua/leave_queue.lua`: removes a session's queue entry (dequeue, disconnect, shutdown), or
//! says where the entry is instead (a loading session, another mode's queue).

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, unknown_mode, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::config::GameMode;
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("leave_queue");

/// KEYS and ARGV of `leave_queue.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["queue_key", "players_key"],
    args: &["player", "owner", "mode"],
    key_tail: None,
    arg_tail: None,
};

/// Removes the entry of `player` owned by the session `owner`, believed queued in `mode`.
#[derive(Clone, Debug)]
pub struct LeaveQueue<'a> {
    /// The player.
    pub player: Uuid,
    /// The session whose entry it is; another session's entry is left alone.
    pub owner: Uuid,
    /// The mode the session believes the entry is queued in.
    pub mode: &'a str,
    /// Every configured mode: the only modes a reply may name.
    pub modes: &'a [GameMode],
}

/// What `leave_queue.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReply {
    /// The entry was removed.
    Left,
    /// The player is in a loading session; cancel it instead.
    Loading {
        /// The loading session.
        loading: Uuid,
        /// The mode of the loading session.
        mode: String,
    },
    /// The player is queued in another mode; retry with that mode's queue.
    OtherMode {
        /// The mode the entry is in.
        mode: String,
    },
    /// No entry of this session exists.
    Absent,
}

impl ScriptCall for LeaveQueue<'_> {
    type Outcome = LeaveReply;
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("queue_key", keys.queue(self.mode));
        call.key("players_key", keys.players());
        call.arg("player", self.player);
        call.arg("owner", self.owner);
        call.arg("mode", self.mode);
        call
    }

    /// [`parse`], refusing a mode the service does not know (the leave would follow it).
    fn parse(&self, reply: &Reply) -> Result<LeaveReply, ReplyError> {
        match parse(reply)? {
            LeaveReply::Loading { mode, .. } | LeaveReply::OtherMode { mode }
                if !self.modes.iter().any(|known| known.name == mode) =>
            {
                Err(unknown_mode(SCRIPT.name, &mode))
            }
            outcome => Ok(outcome),
        }
    }
}

/// Parses the reply of `leave_queue.lua`.
pub fn parse(reply: &Reply) -> Result<LeaveReply, ReplyError> {
    let (tag, mut fields) = Fields::open(SCRIPT.name, reply)?;
    let outcome = match tag.as_str() {
        "left" => {
            fields.text("previous state")?;
            LeaveReply::Left
        }
        "loading" => {
            let loading = fields.uuid("loading id")?;
            let mode = fields.mode("mode")?;
            LeaveReply::Loading { loading, mode }
        }
        "other_mode" => LeaveReply::OtherMode {
            mode: fields.mode("mode")?,
        },
        "none" => LeaveReply::Absent,
        other => return Err(unknown_tag(SCRIPT.name, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}
