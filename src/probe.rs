//! The probe seam: typed facts about the service's own decisions (a lock taken, a lease
//! held or lost, a repair, a broken assertion), for the simulation's oracle to judge.
//!
//! Production passes [`NoProbe`], which drops every fact; nothing in the service ever reads
//! a fact back, so a probe cannot change behaviour. The simulation passes a probe that
//! stamps each fact with sim time and host, so invariants are checked on what the service
//! decided rather than on the wording of a log line.

use uuid::Uuid;

use crate::protocol::ErrorCode;

/// Receives the service's facts as they happen.
pub trait Probe: Send + Sync {
    /// Records one fact; must not block and must not fail.
    fn record(&self, fact: Fact);
}

/// The production probe: facts are dropped.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    fn record(&self, _fact: Fact) {}
}

/// One decision of the service, typed. Non-exhaustive: a reader handles the facts it judges
/// and ignores the rest, so adding a fact never breaks an existing check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fact {
    /// A match lock was taken; the holder may act under it for `valid_ms` from now.
    LockAcquired {
        /// The mode the lock guards.
        mode: String,
        /// The holder's token.
        token: Uuid,
        /// How long the holder believes it may act under the lock, from now.
        valid_ms: u64,
    },
    /// A holder stops acting under its lock (the release follows).
    LockReleasing {
        /// The mode the lock guards.
        mode: String,
        /// The holder's token.
        token: Uuid,
    },
    /// A session acted for its player. Only the session that holds the player's lease may
    /// act; reported right before the act (a frame about to be sent, each attempt of an
    /// effect about to be sent to Redis), or once Redis confirmed it (`loading_complete`).
    Acted {
        /// The player acted for.
        player: Uuid,
        /// The acting session's token (the lease's owner token when it holds the lease).
        owner: Uuid,
        /// What it did.
        act: Act,
    },
    /// A session's hold on its player's lease changed.
    Lease {
        /// The player.
        player: Uuid,
        /// The session's token.
        owner: Uuid,
        /// What changed.
        change: LeaseChange,
    },
    /// A loading session was created (reported from the script's reply), or found created
    /// after its reply was lost.
    LoadingCreated {
        /// The loading session.
        loading: Uuid,
        /// Its mode.
        mode: String,
        /// Its players.
        players: Vec<Uuid>,
    },
    /// The service is about to try to end a loading session, for `cause`: reported right
    /// before each attempt of the script that would end it (`cancel_loading`,
    /// `finish_match`), so the cause of every end is on record even when the reply is lost.
    LoadingEnding {
        /// The loading session.
        loading: Uuid,
        /// Its mode.
        mode: String,
        /// Why it ends.
        cause: EndCause,
    },
}

/// What a session did for its player.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Runs the enqueue effect; `requested` when the client asked for it (a new attempt),
    /// false when the session re-enqueues on its own after Redis lost its entry.
    Enqueue {
        /// Whether the client asked.
        requested: bool,
    },
    /// Tells the client `enqueued`.
    ToldEnqueued,
    /// Tells the client `start_loading`.
    ToldStartLoading {
        /// The loading session announced.
        loading: Uuid,
    },
    /// The client's `loading_complete` took effect (Redis marked the player ready).
    LoadingCompleted {
        /// The loading session.
        loading: Uuid,
    },
}

/// A change of a session's hold on its player's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// Taken (or found taken by this session's earlier attempt).
    Taken,
    /// Released when the session ended.
    Released,
    /// Lost: the renewal found it gone, or it may lapse before the next renewal lands; the
    /// session is told to stop acting.
    Lost,
}

/// Why the service ends a loading session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// Every player loaded and a game server was allocated.
    Matched,
    /// `player` left (dequeue, disconnect, shutdown, a lost lease): the others are requeued.
    Left {
        /// The leaving player.
        player: Uuid,
    },
    /// The loading timeout: the players who loaded are requeued, the others removed.
    TimedOut,
    /// The allocation failed with `code`: everyone is requeued.
    AllocationFailed {
        /// The code the players are told.
        code: ErrorCode,
    },
}
