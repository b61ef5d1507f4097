//! `lua/renew_player_leases.lua`: extends the player lease (`{prefix}:session:<player>`,
//! one live session per player) of a batch of an instance's live sessions, in one call,
//! only while each still holds its session's token, and names the players whose lease is
//! gone or held by another session.

use std::sync::LazyLock;

use super::renew_leases::{RenewReply, parse_renewal};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("renew_player_leases");

/// KEYS and ARGV of `renew_player_leases.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &[],
    args: &["ttl_ms"],
    key_tail: Some("per session: its player lease key"),
    arg_tail: Some("per session, in the order of the keys: its player id, then its owner token"),
};

/// Extends the player leases of `batch` by `ttl_ms` from now.
#[derive(Clone, Debug)]
pub struct RenewPlayerLeases<'a> {
    /// The TTL the leases get.
    pub ttl_ms: u64,
    /// The sessions (player, owner) whose player leases are renewed.
    pub batch: &'a [Member],
}

impl ScriptCall for RenewPlayerLeases<'_> {
    type Outcome = RenewReply;
    /// The next renewal round sends the same batch anyway.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.arg("ttl_ms", self.ttl_ms);
        for member in self.batch {
            call.key_tail(keys.player_lease(member.player));
            call.arg_tail(member.player);
            call.arg_tail(member.owner);
        }
        call
    }

    fn parse(&self, reply: &Reply) -> Result<RenewReply, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `renew_player_leases.lua` (the shape of `renew_leases.lua`'s).
pub fn parse(reply: &Reply) -> Result<RenewReply, ReplyError> {
    parse_renewal(SCRIPT.name, reply)
}
