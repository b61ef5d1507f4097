//! `lua/renew_leases.lua`: extends the lease of every entry (`lease_deadline_ms` in the
//! players hash) a batch of an instance's live sessions own, in one call, and names the
//! players whose entry is gone or owned by another session. The player leases (one live
//! session per player) are renewed by [`renew_player_leases`](super::renew_player_leases).

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, unknown_tag};
use super::{Invocation, Layout, Member, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("renew_leases");

/// KEYS and ARGV of `renew_leases.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["players_key"],
    args: &["lease_deadline_ms"],
    key_tail: None,
    arg_tail: Some("per session: its player id, then its owner token"),
};

/// Extends the entry leases of `batch` to `lease_deadline_ms`.
#[derive(Clone, Debug)]
pub struct RenewLeases<'a> {
    /// The new lease deadline (unix ms).
    pub lease_deadline_ms: u64,
    /// The sessions (player, owner) whose entries are renewed.
    pub batch: &'a [Member],
}

/// What `renew_leases.lua` (or `renew_player_leases.lua`) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewReply {
    /// Leases renewed.
    pub renewed: u64,
    /// Players whose entry (lease) is gone or owned by another session.
    pub lost: Vec<Uuid>,
}

impl ScriptCall for RenewLeases<'_> {
    type Outcome = RenewReply;
    /// The next renewal round sends the same batch anyway.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("players_key", keys.players());
        call.arg("lease_deadline_ms", self.lease_deadline_ms);
        for member in self.batch {
            call.arg_tail(member.player);
            call.arg_tail(member.owner);
        }
        call
    }

    fn parse(&self, reply: &Reply) -> Result<RenewReply, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `renew_leases.lua`.
pub fn parse(reply: &Reply) -> Result<RenewReply, ReplyError> {
    parse_renewal(SCRIPT.name, reply)
}

/// `{'renewed', count, lost player...}` from `script`.
pub(super) fn parse_renewal(script: &'static str, reply: &Reply) -> Result<RenewReply, ReplyError> {
    let (tag, mut fields) = Fields::open(script, reply)?;
    if tag != "renewed" {
        return Err(unknown_tag(script, reply, &tag));
    }
    let renewed = fields.count("renewed")?;
    let lost = fields.players()?;
    Ok(RenewReply { renewed, lost })
}
