//! `lua/fleet_release.lua`: gives back the slot of a claim whose session was not created
//! (the game server refused or could not be reached), at once instead of after the TTL.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("fleet_release");

/// KEYS and ARGV of `fleet_release.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["servers_key", "free_key", "claim_key"],
    args: &[],
    key_tail: None,
    arg_tail: None,
};

/// Releases the claim of the allocation `token`.
#[derive(Clone, Debug)]
pub struct FleetRelease {
    /// The token the claim was made with.
    pub token: Uuid,
}

/// What `fleet_release.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseReply {
    /// The slot of `name` is free again.
    Released {
        /// The server whose slot was given back.
        name: String,
        /// Servers with a free slot now.
        free_servers: u64,
    },
    /// No such claim: released before, or expired.
    Gone {
        /// Servers with a free slot now.
        free_servers: u64,
    },
}

impl ScriptCall for FleetRelease {
    type Outcome = ReleaseReply;
    /// The first call deletes the claim; a repeat answers `gone` and changes nothing.
    const RETRY: Retry = Retry::Idempotent;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("servers_key", keys.fleet_servers());
        call.key("free_key", keys.fleet_free());
        call.key("claim_key", keys.fleet_claim(self.token));
        call
    }

    fn parse(&self, reply: &Reply) -> Result<ReleaseReply, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `fleet_release.lua`.
pub fn parse(reply: &Reply) -> Result<ReleaseReply, ReplyError> {
    let (tag, mut fields) = Fields::open(SCRIPT.name, reply)?;
    let outcome = match tag.as_str() {
        "released" => ReleaseReply::Released {
            name: fields.text("server name")?,
            free_servers: fields.count("free servers")?,
        },
        "gone" => ReleaseReply::Gone {
            free_servers: fields.count("free servers")?,
        },
        _ => return Err(unknown_tag(SCRIPT.name, reply, &tag)),
    };
    fields.end()?;
    Ok(outcome)
}
