//! `lua/fleet_sync.lua`: brings fleet index records in step with a batch of
//! `dedicated_server:<name>` registrations the caller just read (or found gone).

use std::sync::LazyLock;

use super::reply::{Fields, unknown_tag};
use super::{Invocation, Layout, ReplyError, Retry, Script, ScriptCall};
use crate::keys::Keys;
use crate::store::Reply;

/// The script.
pub static SCRIPT: LazyLock<Script> = script!("fleet_sync");

/// KEYS and ARGV of `fleet_sync.lua`.
pub const LAYOUT: Layout = Layout {
    keys: &["servers_key", "free_key"],
    args: &["now_ms"],
    key_tail: None,
    arg_tail: Some("per server: name, address ('' = gone), status, capacity, sessions"),
};

/// One server as its registration reads now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReport {
    /// The registry name (`dedicated_server:<name>`).
    pub name: String,
    /// The registration, or `None` when the key is gone (the server left the fleet).
    pub registration: Option<Registration>,
}

/// The allocation-relevant part of a registration, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Where the server answers `POST /session/create`.
    pub address: String,
    /// `idle` accepts new sessions; any other status (`busy`, `draining`) does not.
    pub status: String,
    /// Sessions the server can host at once (1 for legacy registrations).
    pub capacity: u32,
    /// Sessions the server says it hosts now.
    pub sessions: u32,
}

/// Syncs a batch of server reports into the index.
#[derive(Clone, Debug)]
pub struct FleetSync<'a> {
    /// The current time (unix ms): claims younger than their TTL are kept.
    pub now_ms: u64,
    /// The servers as read.
    pub reports: &'a [ServerReport],
}

/// What `fleet_sync.lua` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReply {
    /// Records written.
    pub upserted: u64,
    /// Records removed (servers gone).
    pub removed: u64,
    /// Servers with a free slot now.
    pub free_servers: u64,
}

impl ScriptCall for FleetSync<'_> {
    type Outcome = SyncReply;
    /// The next sweep reads and sends the same servers again anyway.
    const RETRY: Retry = Retry::Never;

    fn script(&self) -> &'static Script {
        &SCRIPT
    }

    fn invocation(&self, keys: &Keys) -> Invocation {
        let mut call = Invocation::new(&LAYOUT);
        call.key("servers_key", keys.fleet_servers());
        call.key("free_key", keys.fleet_free());
        call.arg("now_ms", self.now_ms);
        for report in self.reports {
            call.arg_tail(&report.name);
            match &report.registration {
                Some(registration) => {
                    call.arg_tail(&registration.address);
                    call.arg_tail(&registration.status);
                    call.arg_tail(registration.capacity);
                    call.arg_tail(registration.sessions);
                }
                None => {
                    for _ in 0..4 {
                        call.arg_tail("");
                    }
                }
            }
        }
        call
    }

    fn parse(&self, reply: &Reply) -> Result<SyncReply, ReplyError> {
        parse(reply)
    }

    fn relation(&self, outcome: &SyncReply) -> Result<(), &'static str> {
        let written = outcome.upserted.saturating_add(outcome.removed);
        if written > u64::try_from(self.reports.len()).unwrap_or(u64::MAX) {
            return Err("more records written than servers sent");
        }
        Ok(())
    }
}

/// Parses the reply of `fleet_sync.lua`.
pub fn parse(reply: &Reply) -> Result<SyncReply, ReplyError> {
    let (tag, mut fields) = Fields::open(SCRIPT.name, reply)?;
    if tag != "synced" {
        return Err(unknown_tag(SCRIPT.name, reply, &tag));
    }
    let outcome = SyncReply {
        upserted: fields.count("upserted")?,
        removed: fields.count("removed")?,
        free_servers: fields.count("free servers")?,
    };
    fields.end()?;
    Ok(outcome)
}
