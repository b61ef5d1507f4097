//! What the fake tells an observer about every request it serves through the
//! [`Store`](match_server::store::Store) seam: which instance sent it, what it was, what it
//! answered, which fault struck it and how long a stall held it. The simulation's oracle
//! reads cause and time from it (when a notice was published, which instance ended a
//! loading session, which instance's Redis path a fault hit).
//!
//! The observer runs inside the fake's lock, with a read-only view of the data at that
//! instant; it must not call back into the fake. Without an observer nothing is built.

use std::fmt;

use match_server::store::{Reply, StoreError};

use super::DataView;
use super::faults::FaultKind;

/// One request as the fake served it.
#[derive(Debug)]
pub struct Served<'a> {
    /// The instance that sent it (the name of its [`super::FakeRedis::for_client`]
    /// handle), empty for an untagged handle.
    pub client: &'a str,
    /// The fake's time when the request took effect (unix ms).
    pub now_ms: u64,
    /// The script's name (`try_match`) or the command's, upper case (`PUBLISH`).
    pub target: &'a str,
    /// A script's KEYS (empty for a command).
    pub keys: &'a [Vec<u8>],
    /// A script's ARGV, or a command's arguments after its name.
    pub args: &'a [Vec<u8>],
    /// What the instance gets back; `None` when the request failed before its effect.
    pub result: Option<&'a Result<Reply, StoreError>>,
    /// The reply the request itself produced when a fault replaced it with an error after
    /// its effect (`error_after_effect`): what Redis did, which the instance never heard.
    pub effect: Option<&'a Reply>,
    /// The fault injected into it, if any.
    pub fault: Option<FaultKind>,
    /// How long its reply is delayed (a slow reply), ms.
    pub delay_ms: u64,
    /// How long a stall held it before it took effect, ms.
    pub held_ms: u64,
    /// Whether every live subscription was dropped right before it ran.
    pub dropped_subscribers: bool,
}

/// Receives every served request.
pub trait Observer: Send + Sync + fmt::Debug {
    /// Called once per request, with the data as it is right after the request's effect.
    fn served(&self, served: &Served<'_>, data: &DataView<'_>);

    /// Called right before a request takes effect (after any fault that fails it before
    /// its effect), with the data as it is then: what a request replaced or dropped is
    /// visible only here. Does nothing unless an observer needs it.
    fn before(&self, _target: &str, _keys: &[Vec<u8>], _args: &[Vec<u8>], _data: &DataView<'_>) {}
}
