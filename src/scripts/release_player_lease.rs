//! `lua/release_player_lease.lua`: deletes a player's lease if the ending session still
//! holds it (compare-and-delete), so the player can connect again at once; a lease that ran
//! out or that another session holds is left alone.

use std::sync::LazyLock;

use uuid::Uuid;

use super::release_lock::parse_released;
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("release_player_lease");

/// KEYS and ARGV of `release_player_lease.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["lease_key"],
    args: &["owner"],
    key_tail: None,
    arg_tail: None,
};

/// Releases the lease of `player` held by the session `owner`.
#[derive(Clone, Debug)]
pub struct ReleasePlayerLease {
    /// The player.
    pub player: Uuid,
    /// The ending session's token.
    pub owner: Uuid,
}

impl ScriptCall for ReleasePlayerLease {
    /// Whether the session still held the lease.
    type Outcome = bool;
    /// Compare-and-delete answers a repeat the same way, or 0 once the first one deleted.
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("lease_key", keys.player_lease(self.player));
        call.arg("owner", self.owner);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<bool, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `release_player_lease.lua`: whether the session still held the lease.
pub fn parse(reply: &Reply) -> Result<bool, ReplyError> {
    parse_released(SCRIPT.name, reply)
}
