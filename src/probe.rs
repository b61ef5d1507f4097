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
    /// A safety net acted: the service found state that its primary path should have kept
    /// right (a lost notice, a lost entry, a hung allocation, a lease no renewal kept, a
    /// lost script reply) and repaired it, or ordered sessions to compare themselves with
    /// Redis. Reported where the repair is decided; the simulation's oracle asks which
    /// fault could have broken that state (invariant 15, "no repair without a cause").
    Repaired {
        /// The safety net that acted (a row of the recovery catalogue in docs/design.md).
        rule: RepairRule,
        /// The player whose state was repaired; `None` for a repair of no one player's
        /// state (a loading session, a page of dead entries).
        player: Option<Uuid>,
        /// The session (owner token) that repaired or was repaired; `None` when the net
        /// does not act through a session.
        owner: Option<Uuid>,
        /// What was found broken and repaired.
        what: Repair,
    },
    /// A notice for a local session was dropped on purpose: the session's bounded notice
    /// queue was full (or the session was ending). The session learns what it missed at
    /// its next resync; the drop is on record so that repair has its cause.
    NoticeDropped {
        /// The player the notice was for.
        player: Uuid,
        /// The session it was routed to.
        owner: Uuid,
        /// The loading session the notice was about, if any.
        loading: Option<Uuid>,
    },
    /// A relation the design relies on was found broken (see [`check!`](crate::check!)):
    /// the service logged it, counted it and took its safe path; the simulation counts it
    /// as a violation.
    AssertionFailed {
        /// The check's name, as in `match_assertion_failures_total{check}`.
        check: &'static str,
        /// How the relation was broken.
        detail: String,
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

/// The safety net behind a [`Fact::Repaired`]: which recovery rule acted, and for a
/// session's resync, what made it compare itself with Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairRule {
    /// The periodic resync of a waiting session (R5, every `resync_interval_ms`).
    PeriodicResync,
    /// A resync a `resync` notice asked for: the subscriber came back, the entry renewal
    /// found the entry gone, or a matchmaker recovered from an unknown outcome (R6, R7).
    ToldToResync,
    /// A resync a notice that did not fit the session's state asked for (a `start_loading`
    /// or `match_found` of another loading session, a removal it never announced).
    NoticeResync,
    /// A resync an effect's outcome asked for (`enqueue` found the player loading,
    /// `loading_complete` found the session gone).
    OutcomeResync,
    /// Every local session told to resync after the subscriber subscribed again (R7).
    Resubscribe,
    /// Sessions told to resync because the entry renewal found their entry gone (R7).
    EntryGoneResync,
    /// The matchmaker read a loading session its lost `try_match` reply may have created,
    /// and told its players to resync (R6).
    LostReplyRecovery,
    /// The stale sweep ended a loading session past its deadline (R2).
    StaleSweep,
    /// The dead-entry sweep removed entries whose lease ran out (R14).
    DeadEntrySweep,
    /// A session whose player lease may lapse before the next renewal stops (R12).
    Fencing,
    /// A session whose player lease the renewal found gone or taken stops (R13).
    LeaseLost,
}

/// What a safety net found broken (and repaired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// The entry had the player in `loading`, which the session had never announced (its
    /// `start_loading` was lost): the session announces it now.
    MissedLoading {
        /// The loading session announced late.
        loading: Uuid,
        /// The loading session the session believed it was in, if any (its end's notice
        /// was lost or is late too).
        left: Option<Uuid>,
    },
    /// The entry had the player in `loading`, which the session had announced before but
    /// no longer followed: it follows it again, silently.
    FollowedLoading {
        /// The loading session followed again.
        loading: Uuid,
    },
    /// The loading session the session believed in had ended and requeued the player (its
    /// `requeued` notice was lost): the client is told the recorded reason.
    MissedRequeue {
        /// The ended loading session.
        loading: Uuid,
    },
    /// A loading timeout had taken the player out of the queue (its `removed` notice was
    /// lost): the client is told `loading_not_completed`.
    MissedRemoval {
        /// The loading session the player was removed from.
        loading: Uuid,
    },
    /// The loading session had got its game server (its `match_found` notice was lost):
    /// the client is told `match_found` from the entry.
    MissedMatch {
        /// The matched loading session.
        loading: Uuid,
    },
    /// The session's entry was gone (or another session's): the session enqueues again,
    /// silently.
    EntryLost,
    /// An idle session found a place in Redis it no longer wants (a leave or an enqueue
    /// whose outcome was unknown): it leaves it.
    StrayPlace,
    /// Sessions were told to compare themselves with Redis; what each finds is reported
    /// by that session.
    ResyncOrdered,
    /// A loading session whose players had all loaded was ended by the stale sweep: its
    /// allocation neither matched nor failed in time.
    AllocationHung {
        /// The loading session.
        loading: Uuid,
    },
    /// A loading session a lost `try_match` reply created was found and its players told.
    LoadingRecovered {
        /// The loading session.
        loading: Uuid,
    },
    /// Dead entries were removed.
    DeadEntries {
        /// How many, in one page.
        count: u64,
    },
    /// A session stopped acting because its player lease may lapse (no renewal in time).
    Fenced,
    /// A session stopped acting because its player lease was gone or taken.
    LeaseGone,
}
