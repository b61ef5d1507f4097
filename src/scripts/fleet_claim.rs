//! `lua/fleet_claim.lua`: claims one free slot of the fleet index for an allocation in a
//! constant number of Redis commands, whatever the fleet's size.

use std::sync::LazyLock;

use uuid::Uuid;

use super::reply::{Fields, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("fleet_claim");

/// KEYS and ARGV of `fleet_claim.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["servers_key", "free_key", "claim_key"],
    args: &["now_ms", "claim_ttl_ms", "max_picks"],
    key_tail: None,
    arg_tail: None,
};

/// Claims a slot of some free server for the allocation `token`.
#[derive(Clone, Debug)]
pub struct FleetClaim {
    /// The allocation's fresh token: names its claim key, which `fleet_release` reads.
    pub token: Uuid,
    /// The current time (unix ms).
    pub now_ms: u64,
    /// How long the claim holds the slot before the server's own report decides again.
    pub claim_ttl_ms: u64,
}

/// What `fleet_claim.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimReply {
    /// A slot of `name` is claimed.
    Claimed {
        /// The server's registry name (`dedicated_server:<name>`).
        name: String,
        /// Its address as indexed, to be checked against the registration.
        address: String,
        /// Servers left with a free slot.
        free_servers: u64,
    },
    /// No indexed server has a free slot.
    None {
        /// Servers with a free slot (0 unless the index is inconsistent).
        free_servers: u64,
    },
}

/// How many free-set members one claim looks at before answering `none`: each member that
/// is not free is removed, so this only bounds the repair of an inconsistent index.
pub const MAX_PICKS_PER_CLAIM: u32 = 4;

impl ScriptCall for FleetClaim {
    type Outcome = ClaimReply;
    /// A repeat would claim a second slot; a lost claim expires with its TTL.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("servers_key", keys.fleet_servers());
        call.key("free_key", keys.fleet_free());
        call.key("claim_key", keys.fleet_claim(self.token));
        call.arg("now_ms", self.now_ms);
        call.arg("claim_ttl_ms", self.claim_ttl_ms);
        call.arg("max_picks", MAX_PICKS_PER_CLAIM);
        call
    }

    fn parse(&self, reply: &Reply) -> Result<ClaimReply, ReplyError> {
        parse(reply)
    }
}

/// Parses the reply of `fleet_claim.lua`.
pub fn parse(reply: &Reply) -> Result<ClaimReply, ReplyError> {
    let (tag, mut fields) = Fields::open(SCRIPT.name, reply)?;
    let outcome = match tag.as_str() {
        "claimed" => ClaimReply::Claimed {
            name: fields.text("server name")?,
            address: fields.text("address")?,
            free_servers: fields.count("free servers")?,
        },
        "none" => ClaimReply::None {
            free_servers: fields.count("free servers")?,
        },
        _ => return Err(unknown_tag(SCRIPT.name, reply, &tag)),
    };
    fields.end()?;
    Ok(outcome)
}
