//! `lua/sweep_players.lua`: removes entries whose lease ran out (their instance died), one
//! HSCAN page per call; a removed queued entry also leaves its mode's queue, so the call
//! carries every mode's queue and name, built together from the configured modes.

use std::sync::LazyLock;

use super::reply::{Fields, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::config::GameMode;
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("sweep_players");

/// KEYS and ARGV of `sweep_players.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["players_key"],
    args: &["now_ms", "cursor", "count"],
    key_tail: Some("the queue of every mode"),
    arg_tail: Some("the name of every mode, in the order of their queues"),
};

/// Sweeps one page of the players hash from `cursor`.
#[derive(Clone, Debug)]
pub struct SweepPlayers<'a> {
    /// The caller's unix time: entries whose lease ended before it are dead.
    pub now_ms: u64,
    /// The HSCAN cursor to go on from (0 starts a pass).
    pub cursor: u64,
    /// The HSCAN COUNT: entries inspected per page.
    pub count: u32,
    /// Every configured mode: where a dead queued entry may be queued.
    pub modes: &'a [GameMode],
}

/// What one `sweep_players.lua` page did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepReply {
    /// The HSCAN cursor to continue from; 0 when the pass is complete.
    pub cursor: u64,
    /// Dead entries removed.
    pub removed: u64,
}

impl ScriptCall for SweepPlayers<'_> {
    type Outcome = SweepReply;
    /// The next sweep round goes on anyway.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("players_key", keys.players());
        call.arg("now_ms", self.now_ms);
        call.arg("cursor", self.cursor);
        call.arg("count", self.count);
        for mode in self.modes {
            call.key_tail(keys.queue(&mode.name));
            call.arg_tail(&mode.name);
        }
        call
    }

    fn parse(&self, reply: &Reply) -> Result<SweepReply, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `sweep_players.lua`.
pub fn parse(reply: &Reply) -> Result<SweepReply, ReplyError> {
    let script = SCRIPT.name;
    let (tag, mut fields) = Fields::open(script, reply)?;
    if tag != "swept" {
        return Err(unknown_tag(script, reply, &tag));
    }
    let cursor = fields.count("cursor")?;
    let removed = fields.count("removed")?;
    fields.end()?;
    Ok(SweepReply { cursor, removed })
}
