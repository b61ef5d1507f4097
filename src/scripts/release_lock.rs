//! `lua/release_lock.lua`: deletes a mode's match lock if the releasing holder's token still
//! owns it (compare-and-delete); a lock that expired meanwhile is left to its new holder.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::error;
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("release_lock");

/// KEYS and ARGV of `release_lock.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["lock_key"],
    args: &["token"],
    key_tail: None,
    arg_tail: None,
};

/// Releases the match lock of `mode` held with `token`.
#[derive(Clone, Debug)]
pub struct ReleaseLock<'a> {
    /// The mode whose lock it is.
    pub mode: &'a str,
    /// The holder's token.
    pub token: Uuid,
}

impl ScriptCall for ReleaseLock<'_> {
    /// Whether this token still held the lock.
    type Outcome = bool;
    /// A lock whose release failed expires with its TTL.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("lock_key", keys.lock(self.mode));
        call.arg("token", self.token);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<bool, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `release_lock.lua`: whether this token still held the lock.
pub fn parse(reply: &Reply) -> Result<bool, ReplyError> {
    parse_released(SCRIPT.name, reply)
}

/// `1` (released) or `0` (not held by this token) from `script`.
pub(super) fn parse_released(script: &'static str, reply: &Reply) -> Result<bool, ReplyError> {
    match reply {
        Reply::Int(0) => Ok(false),
        Reply::Int(1) => Ok(true),
        other => Err(error(script, other, "expected 0 or 1")),
    }
}
