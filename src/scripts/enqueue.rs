//! `lua/enqueue.lua`: puts a player into a mode's queue, once, for the session that owns it.
//! A dead entry of the player queued in any mode is taken out of that mode's queue, so the
//! call carries every mode's queue and name, built together from the configured modes.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, unknown_mode, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::config::GameMode;
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("enqueue");

/// KEYS and ARGV of `enqueue.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["queue_key", "players_key"],
    args: &[
        "player",
        "owner",
        "mode",
        "now_ms",
        "lease_deadline_ms",
        "max_queue_len",
    ],
    key_tail: Some("the queue of every mode"),
    arg_tail: Some("the name of every mode, in the order of their queues"),
};

/// Puts `player` into the queue of `mode` for the session `owner`.
#[derive(Clone, Debug)]
pub struct Enqueue<'a> {
    /// The player.
    pub player: Uuid,
    /// The session that will own the entry.
    pub owner: Uuid,
    /// The mode whose queue the player joins.
    pub mode: &'a str,
    /// The caller's unix time: entries whose lease ends before it are dead.
    pub now_ms: u64,
    /// The new entry's lease deadline (unix ms).
    pub lease_deadline_ms: u64,
    /// Longest queue the mode may have; a full one refuses the player.
    pub max_queue_len: u64,
    /// Every configured mode: where a dead entry of the player may be queued, and the only
    /// modes a reply may name.
    pub modes: &'a [GameMode],
}

/// What `enqueue.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnqueueReply {
    /// The player is now queued; `queue_len` players wait in the mode.
    Enqueued {
        /// Queue length after the insert.
        queue_len: u64,
    },
    /// This session's entry already waits in a queue (an earlier attempt succeeded).
    AlreadyQueued {
        /// The mode of the entry.
        mode: String,
    },
    /// This session's entry is already in a loading session.
    AlreadyLoading {
        /// The mode of the entry.
        mode: String,
        /// The loading session, when the reply names one.
        loading: Option<Uuid>,
    },
    /// A live entry of another session holds this player.
    Taken,
    /// An expired entry still sits in a loading session; the sweep will free it.
    Busy,
    /// The queue is at its length limit.
    Full,
}

impl ScriptCall for Enqueue<'_> {
    type Outcome = EnqueueReply;
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
        call.arg("now_ms", self.now_ms);
        call.arg("lease_deadline_ms", self.lease_deadline_ms);
        call.arg("max_queue_len", self.max_queue_len);
        for mode in self.modes {
            call.key_tail(keys.queue(&mode.name));
            call.arg_tail(&mode.name);
        }
        call
    }

    /// [`parse`], refusing a mode the service does not know (the session would adopt it).
    fn parse(&self, reply: &Reply) -> Result<EnqueueReply, ReplyError> {
        match parse(reply)? {
            EnqueueReply::AlreadyQueued { mode } | EnqueueReply::AlreadyLoading { mode, .. }
                if !self.modes.iter().any(|known| known.name == mode) =>
            {
                Err(unknown_mode(SCRIPT.name, &mode))
            }
            outcome => Ok(outcome),
        }
    }
}

/// Parses the reply of `enqueue.lua`.
pub fn parse(reply: &Reply) -> Result<EnqueueReply, ReplyError> {
    let (tag, mut fields) = Fields::open(SCRIPT.name, reply)?;
    let outcome = match tag.as_str() {
        "enqueued" => EnqueueReply::Enqueued {
            queue_len: fields.count("queue length")?,
        },
        "already" => {
            let state = fields.text("state")?;
            if state != "queued" && state != "loading" {
                return Err(fields.fail(format!("state {state:?}")));
            }
            let mode = fields.mode("mode")?;
            let loading = fields.optional_uuid("loading id")?;
            if state == "loading" {
                EnqueueReply::AlreadyLoading { mode, loading }
            } else {
                EnqueueReply::AlreadyQueued { mode }
            }
        }
        "taken" => EnqueueReply::Taken,
        "busy" => EnqueueReply::Busy,
        "full" => EnqueueReply::Full,
        other => return Err(unknown_tag(SCRIPT.name, reply, other)),
    };
    fields.end()?;
    Ok(outcome)
}
