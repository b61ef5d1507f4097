//! Unit tests of the session state machine: every (state, event) pair.
//!
//! The cross product of [`S`] (every state shape) and [`E`] (every event shape) is built
//! programmatically; [`expected`] is the written outcome of each pair, grouped where the
//! outcome is the same by design. Global properties are then checked over the actual steps
//! of the whole product, independently of the table, and a few realistic sequences are
//! driven end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use uuid::Uuid;

use super::{Claim, Close, Context, Effect, Event, LeaseHold, State, Step, fenced, step};
use crate::matchmaker::EffectError;
use crate::matchmaker::entry::{Place, PlayerEntry};
use crate::matchmaker::session_port::{CompleteOutcome, EnqueueOutcome, LeaseOutcome};
use crate::notify::NoticeEvent;
use crate::protocol::{ClientRequest, ErrorCode, ServerMessage};

/// The session's player.
const PLAYER: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
/// The other player of a 1v1 group.
const OTHER_PLAYER: Uuid = Uuid::from_u128(0x2222_2222_2222_4222_8222_2222_2222_2222);
/// The session's own token (`ctx.owner`).
const OWNER: Uuid = Uuid::from_u128(0xa0a0_a0a0_a0a0_4a0a_8a0a_a0a0_a0a0_a0a0);
/// Another session's token.
const STRANGER: Uuid = Uuid::from_u128(0xb0b0_b0b0_b0b0_4b0b_8b0b_b0b0_b0b0_b0b0);
/// The loading session a loading state is in (remembered in ctx by those states).
const CURRENT: Uuid = Uuid::from_u128(0xc0c0_c0c0_c0c0_4c0c_8c0c_c0c0_c0c0_c0c0);
/// A loading session this session never heard of.
const FRESH: Uuid = Uuid::from_u128(0xf0f0_f0f0_f0f0_4f0f_8f0f_f0f0_f0f0_f0f0);
/// A loading session this session went through earlier (always in ctx).
const OLD: Uuid = Uuid::from_u128(0xd0d0_d0d0_d0d0_4d0d_8d0d_d0d0_d0d0_d0d0);
/// The game server's session id.
const GAME: Uuid = Uuid::from_u128(0xe0e0_e0e0_e0e0_4e0e_8e0e_e0e0_e0e0_e0e0);
const ADDRESS: &str = "10.0.0.7:7777";
const MODE: &str = "Normal_1v1";
const MODE2: &str = "Ranked_2v2";
const NO_MODE: &str = "Chess_9v9";

fn claim_in(mode: &str) -> Claim {
    Claim {
        player: PLAYER,
        mode: mode.to_owned(),
    }
}

fn claim() -> Claim {
    claim_in(MODE)
}

/// The claim a dev-mode connection makes for the other player.
fn other_claim() -> Claim {
    Claim {
        player: OTHER_PLAYER,
        mode: MODE.to_owned(),
    }
}

/// Every state shape of the machine, with the context shapes that change outcomes (the
/// player the connection is bound to, and whether it holds the player's lease).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum S {
    /// Dev mode, fresh: bound to no player, no lease.
    IdleUnbound,
    /// Authenticated, before its lease is taken.
    IdleToken,
    /// Bound, after an acquisition whose outcome is unknown.
    IdleRetry,
    /// Bound and holding the lease, never queued.
    IdleNone,
    /// Bound and holding the lease, queued before.
    IdleSome,
    /// Taking the lease at an authenticated connect.
    AcqConnect,
    /// Taking the lease for an enqueue (a dev-mode first enqueue, or a retry).
    AcqEnqueue,
    EnqAnnounce,
    EnqSilent,
    InQueue,
    DeqQueue,
    DeqLoading,
    Loading,
    Loaded,
    Completing,
    Disconnecting,
}

impl S {
    const ALL: [Self; 16] = [
        Self::IdleUnbound,
        Self::IdleToken,
        Self::IdleRetry,
        Self::IdleNone,
        Self::IdleSome,
        Self::AcqConnect,
        Self::AcqEnqueue,
        Self::EnqAnnounce,
        Self::EnqSilent,
        Self::InQueue,
        Self::DeqQueue,
        Self::DeqLoading,
        Self::Loading,
        Self::Loaded,
        Self::Completing,
        Self::Disconnecting,
    ];

    fn state(self) -> State {
        match self {
            Self::IdleUnbound | Self::IdleToken | Self::IdleRetry | Self::IdleNone => {
                State::Idle { last: None }
            }
            Self::IdleSome => State::Idle {
                last: Some(claim()),
            },
            Self::AcqConnect => acquiring(None),
            Self::AcqEnqueue => acquiring(Some(claim())),
            Self::EnqAnnounce => enqueuing(true),
            Self::EnqSilent => enqueuing(false),
            Self::InQueue => in_queue(MODE),
            Self::DeqQueue => dequeuing(None),
            Self::DeqLoading => dequeuing(Some(CURRENT)),
            Self::Loading => in_loading(CURRENT, false),
            Self::Loaded => in_loading(CURRENT, true),
            Self::Completing => State::Completing {
                claim: claim(),
                loading: CURRENT,
            },
            Self::Disconnecting => State::Disconnecting,
        }
    }

    /// The context the session has in this state: it remembers an earlier loading session
    /// (`OLD`), and the current one when the state holds it (it announced it on entry); it
    /// is bound to `PLAYER` except fresh in dev mode, and holds the lease as the shape says.
    fn context(self) -> Context {
        let mut ctx = Context::new(OWNER, vec![MODE.to_owned(), MODE2.to_owned()]);
        if self != Self::IdleUnbound {
            ctx = ctx.for_player(PLAYER);
        }
        ctx.lease = self.lease();
        ctx.recent_loadings.push_back(OLD);
        if matches!(
            self,
            Self::DeqLoading | Self::Loading | Self::Loaded | Self::Completing
        ) {
            ctx.recent_loadings.push_back(CURRENT);
        }
        ctx
    }

    /// The cleanup a disconnect in this state implies.
    fn cleanup(self) -> Option<Effect> {
        match self {
            Self::IdleUnbound
            | Self::IdleToken
            | Self::IdleRetry
            | Self::IdleNone
            | Self::AcqConnect
            | Self::AcqEnqueue
            | Self::Disconnecting => None,
            Self::IdleSome
            | Self::EnqAnnounce
            | Self::EnqSilent
            | Self::InQueue
            | Self::DeqQueue => Some(leave(MODE, None)),
            Self::DeqLoading | Self::Loading | Self::Loaded | Self::Completing => {
                Some(leave(MODE, Some(CURRENT)))
            }
        }
    }

    /// The lease the session holds in this shape.
    fn lease(self) -> LeaseHold {
        match self {
            Self::IdleUnbound | Self::IdleToken | Self::AcqConnect | Self::AcqEnqueue => {
                LeaseHold::NotHeld
            }
            Self::IdleRetry => LeaseHold::Unknown,
            _ => LeaseHold::Held,
        }
    }

    fn is_idle(self) -> bool {
        matches!(
            self,
            Self::IdleUnbound | Self::IdleToken | Self::IdleRetry | Self::IdleNone | Self::IdleSome
        )
    }

    fn is_acquiring(self) -> bool {
        matches!(self, Self::AcqConnect | Self::AcqEnqueue)
    }
}

/// Every event shape the machine can receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum E {
    Connected,
    EnqueueValid,
    EnqueueUnknownMode,
    EnqueueOtherPlayer,
    Dequeue,
    CompleteCurrent,
    CompleteOther,
    BadFrame,
    Enqueued,
    AlreadyQueued,
    AlreadyQueuedOtherMode,
    AlreadyLoading,
    Taken,
    Busy,
    Full,
    EnqueueFailed,
    LeftOk,
    LeftFailed,
    CompletedWaiting,
    CompletedAllReady,
    CompletedAlreadyReady,
    CompletedNotMember,
    CompletedGone,
    CompletedLeaseLost,
    CompleteFailed,
    SyncedAbsent,
    SyncedQueued,
    SyncedQueuedOtherMode,
    SyncedLoadingCurrent,
    SyncedLoadingFresh,
    SyncedLoadingOld,
    SyncedMatchedCurrent,
    SyncedMatchedFresh,
    SyncedForeignQueued,
    SyncedForeignLoading,
    SyncedRemovedCurrent,
    SyncedRemovedFresh,
    SyncFailed,
    LeaseAcquired,
    LeaseHeldElsewhere,
    LeaseFailed,
    LeaseLost,
    StartCurrent,
    StartFresh,
    StartOld,
    MatchCurrent,
    MatchFresh,
    RequeuedCurrent,
    RequeuedFresh,
    RemovedCurrent,
    RemovedFresh,
    RemovedOld,
    NoticeResync,
    ResyncDue,
    Closed,
    Shutdown,
}

impl E {
    const ALL: [Self; 56] = [
        Self::Connected,
        Self::EnqueueValid,
        Self::EnqueueUnknownMode,
        Self::EnqueueOtherPlayer,
        Self::Dequeue,
        Self::CompleteCurrent,
        Self::CompleteOther,
        Self::BadFrame,
        Self::Enqueued,
        Self::AlreadyQueued,
        Self::AlreadyQueuedOtherMode,
        Self::AlreadyLoading,
        Self::Taken,
        Self::Busy,
        Self::Full,
        Self::EnqueueFailed,
        Self::LeftOk,
        Self::LeftFailed,
        Self::CompletedWaiting,
        Self::CompletedAllReady,
        Self::CompletedAlreadyReady,
        Self::CompletedNotMember,
        Self::CompletedGone,
        Self::CompletedLeaseLost,
        Self::CompleteFailed,
        Self::SyncedAbsent,
        Self::SyncedQueued,
        Self::SyncedQueuedOtherMode,
        Self::SyncedLoadingCurrent,
        Self::SyncedLoadingFresh,
        Self::SyncedLoadingOld,
        Self::SyncedMatchedCurrent,
        Self::SyncedMatchedFresh,
        Self::SyncedForeignQueued,
        Self::SyncedForeignLoading,
        Self::SyncedRemovedCurrent,
        Self::SyncedRemovedFresh,
        Self::SyncFailed,
        Self::LeaseAcquired,
        Self::LeaseHeldElsewhere,
        Self::LeaseFailed,
        Self::LeaseLost,
        Self::StartCurrent,
        Self::StartFresh,
        Self::StartOld,
        Self::MatchCurrent,
        Self::MatchFresh,
        Self::RequeuedCurrent,
        Self::RequeuedFresh,
        Self::RemovedCurrent,
        Self::RemovedFresh,
        Self::RemovedOld,
        Self::NoticeResync,
        Self::ResyncDue,
        Self::Closed,
        Self::Shutdown,
    ];

    fn event(self) -> Event {
        match self {
            Self::Connected => Event::Connected,
            Self::EnqueueValid => enqueue_request(MODE),
            Self::EnqueueUnknownMode => enqueue_request(NO_MODE),
            Self::EnqueueOtherPlayer => Event::Request(ClientRequest::Enqueue {
                player_id: OTHER_PLAYER,
                game_mode: MODE.to_owned(),
            }),
            Self::Dequeue => Event::Request(ClientRequest::Dequeue),
            Self::CompleteCurrent => complete_request(CURRENT),
            Self::CompleteOther => complete_request(FRESH),
            Self::BadFrame => Event::BadFrame(ErrorCode::InvalidMessage),
            Self::Enqueued => Event::Enqueued(Ok(EnqueueOutcome::Enqueued)),
            Self::AlreadyQueued => already_queued(MODE),
            Self::AlreadyQueuedOtherMode => already_queued(MODE2),
            Self::AlreadyLoading => Event::Enqueued(Ok(EnqueueOutcome::AlreadyLoading {
                mode: MODE.to_owned(),
            })),
            Self::Taken => Event::Enqueued(Ok(EnqueueOutcome::Taken)),
            Self::Busy => Event::Enqueued(Ok(EnqueueOutcome::Busy)),
            Self::Full => Event::Enqueued(Ok(EnqueueOutcome::Full)),
            Self::EnqueueFailed => Event::Enqueued(Err(EffectError::Unavailable)),
            Self::LeftOk => Event::Left(Ok(())),
            Self::LeftFailed => Event::Left(Err(EffectError::Unavailable)),
            Self::CompletedWaiting => Event::Completed(Ok(CompleteOutcome::Waiting)),
            Self::CompletedAllReady => Event::Completed(Ok(CompleteOutcome::AllReady)),
            Self::CompletedAlreadyReady => Event::Completed(Ok(CompleteOutcome::AlreadyReady)),
            Self::CompletedNotMember => Event::Completed(Ok(CompleteOutcome::NotMember)),
            Self::CompletedGone => Event::Completed(Ok(CompleteOutcome::Gone)),
            Self::CompletedLeaseLost => Event::Completed(Ok(CompleteOutcome::LeaseLost)),
            Self::CompleteFailed => Event::Completed(Err(EffectError::Unavailable)),
            Self::SyncedAbsent => Event::Synced(Ok(None)),
            Self::SyncedQueued => synced(OWNER, MODE, Place::Queued),
            Self::SyncedQueuedOtherMode => synced(OWNER, MODE2, Place::Queued),
            Self::SyncedLoadingCurrent => synced(OWNER, MODE, loading_place(CURRENT)),
            Self::SyncedLoadingFresh => synced(OWNER, MODE, loading_place(FRESH)),
            Self::SyncedLoadingOld => synced(OWNER, MODE, loading_place(OLD)),
            Self::SyncedMatchedCurrent => synced(OWNER, MODE, matched_place(CURRENT)),
            Self::SyncedMatchedFresh => synced(OWNER, MODE, matched_place(FRESH)),
            Self::SyncedForeignQueued => synced(STRANGER, MODE, Place::Queued),
            Self::SyncedForeignLoading => synced(STRANGER, MODE, loading_place(CURRENT)),
            Self::SyncedRemovedCurrent => synced(OWNER, MODE, removed_place(CURRENT)),
            Self::SyncedRemovedFresh => synced(OWNER, MODE, removed_place(FRESH)),
            Self::SyncFailed => Event::Synced(Err(EffectError::Unavailable)),
            Self::LeaseAcquired => Event::LeaseAcquired(Ok(LeaseOutcome::Acquired)),
            Self::LeaseHeldElsewhere => Event::LeaseAcquired(Ok(LeaseOutcome::HeldElsewhere)),
            Self::LeaseFailed => Event::LeaseAcquired(Err(EffectError::Unavailable)),
            Self::LeaseLost => Event::Notice(NoticeEvent::LeaseLost),
            Self::StartCurrent => notice_start(CURRENT),
            Self::StartFresh => notice_start(FRESH),
            Self::StartOld => notice_start(OLD),
            Self::MatchCurrent => notice_match(CURRENT),
            Self::MatchFresh => notice_match(FRESH),
            Self::RequeuedCurrent => notice_requeued(CURRENT),
            Self::RequeuedFresh => notice_requeued(FRESH),
            Self::RemovedCurrent => notice_removed(CURRENT),
            Self::RemovedFresh => notice_removed(FRESH),
            Self::RemovedOld => notice_removed(OLD),
            Self::NoticeResync => Event::Notice(NoticeEvent::Resync),
            Self::ResyncDue => Event::ResyncDue,
            Self::Closed => Event::Closed,
            Self::Shutdown => Event::Shutdown,
        }
    }

    fn is_request(self) -> bool {
        matches!(
            self,
            Self::EnqueueValid
                | Self::EnqueueUnknownMode
                | Self::EnqueueOtherPlayer
                | Self::Dequeue
                | Self::CompleteCurrent
                | Self::CompleteOther
        )
    }

    fn is_enqueue_request(self) -> bool {
        matches!(
            self,
            Self::EnqueueValid | Self::EnqueueUnknownMode | Self::EnqueueOtherPlayer
        )
    }
}

// ---- builders of states, events, effects and replies

fn acquiring(enqueue: Option<Claim>) -> State {
    State::Acquiring {
        player: PLAYER,
        enqueue,
    }
}

fn acquire(player: Uuid) -> Effect {
    Effect::AcquireLease { player }
}

fn enqueuing(announce: bool) -> State {
    State::Enqueuing {
        claim: claim(),
        announce,
    }
}

fn in_queue(mode: &str) -> State {
    State::InQueue {
        claim: claim_in(mode),
    }
}

fn dequeuing(loading: Option<Uuid>) -> State {
    State::Dequeuing {
        claim: claim(),
        loading,
    }
}

fn in_loading(loading: Uuid, loaded: bool) -> State {
    State::InLoading {
        claim: claim(),
        loading,
        loaded,
    }
}

fn idle_after(claim: Option<Claim>) -> State {
    State::Idle { last: claim }
}

fn enqueue_request(mode: &str) -> Event {
    Event::Request(ClientRequest::Enqueue {
        player_id: PLAYER,
        game_mode: mode.to_owned(),
    })
}

fn complete_request(loading: Uuid) -> Event {
    Event::Request(ClientRequest::LoadingComplete {
        loading_session_id: loading,
    })
}

fn already_queued(mode: &str) -> Event {
    Event::Enqueued(Ok(EnqueueOutcome::AlreadyQueued {
        mode: mode.to_owned(),
    }))
}

fn loading_place(loading: Uuid) -> Place {
    Place::Loading { loading }
}

fn matched_place(loading: Uuid) -> Place {
    Place::Matched {
        loading,
        session_id: GAME,
        server_address: ADDRESS.to_owned(),
    }
}

fn removed_place(loading: Uuid) -> Place {
    Place::Removed {
        loading,
        code: ErrorCode::LoadingNotCompleted,
    }
}

fn synced(owner: Uuid, mode: &str, place: Place) -> Event {
    Event::Synced(Ok(Some(PlayerEntry {
        place,
        mode: mode.to_owned(),
        owner,
        lease_deadline_ms: 60_000,
        last_requeue: None,
    })))
}

fn notice_start(loading: Uuid) -> Event {
    Event::Notice(NoticeEvent::StartLoading { loading })
}

fn notice_match(loading: Uuid) -> Event {
    Event::Notice(NoticeEvent::MatchFound {
        loading,
        session_id: GAME,
        server_address: ADDRESS.to_owned(),
    })
}

fn notice_requeued(loading: Uuid) -> Event {
    Event::Notice(NoticeEvent::Requeued {
        loading,
        code: ErrorCode::LoadingTimeout,
    })
}

fn notice_removed(loading: Uuid) -> Event {
    Event::Notice(NoticeEvent::Removed {
        loading,
        code: ErrorCode::LoadingNotCompleted,
    })
}

fn leave(mode: &str, loading: Option<Uuid>) -> Effect {
    Effect::Leave {
        claim: claim_in(mode),
        loading,
    }
}

fn resync() -> Effect {
    Effect::Resync { player: PLAYER }
}

fn start(loading: Uuid) -> ServerMessage {
    ServerMessage::StartLoading {
        loading_session_id: loading,
    }
}

fn match_found() -> ServerMessage {
    ServerMessage::MatchFound {
        session_id: GAME,
        server_address: ADDRESS.to_owned(),
    }
}

/// An expected step under construction.
struct Want(Step);

fn keep(s: S) -> Want {
    go(s.state())
}

fn go(state: State) -> Want {
    Want(Step {
        state,
        replies: Vec::new(),
        effect: None,
        close: None,
    })
}

impl Want {
    fn err(self, code: ErrorCode) -> Self {
        self.say(ServerMessage::error(code))
    }

    fn say(mut self, message: ServerMessage) -> Self {
        self.0.replies.push(message);
        self
    }

    fn run(self, effect: Effect) -> Self {
        self.maybe_run(Some(effect))
    }

    fn maybe_run(mut self, effect: Option<Effect>) -> Self {
        self.0.effect = effect;
        self
    }

    fn close(mut self, close: Close) -> Self {
        self.0.close = Some(close);
        self
    }
}

/// The written outcome of every (state, event) pair.
fn expected(s: S, e: E) -> Step {
    use E::*;
    use ErrorCode as C;
    use S::*;
    let want = match (s, e) {
        // Disconnecting is terminal and silent: the socket is closing, only cleanup remains.
        (Disconnecting, _) => keep(s),
        // A bad frame in any live state: exactly that error, nothing else changes.
        (_, BadFrame) => keep(s).err(C::InvalidMessage),
        // The client went away or the server stops: clean up what the state implies.
        (_, Closed) => go(State::Disconnecting).maybe_run(s.cleanup()),
        (_, Shutdown) => go(State::Disconnecting)
            .err(C::ShuttingDown)
            .maybe_run(s.cleanup()),
        // The renewal found the lease gone: a holder cleans up and ends the connection; a
        // session that holds none has nothing to lose.
        (_, LeaseLost | CompletedLeaseLost) if s.lease() == LeaseHold::Held => {
            go(State::Disconnecting)
                .err(C::SessionLost)
                .maybe_run(s.cleanup())
                .close(Close::SessionLost)
        }
        (_, LeaseLost | CompletedLeaseLost) => keep(s),
        // A connection bound to PLAYER never acts for another one, whatever its state.
        (IdleUnbound, EnqueueOtherPlayer) => go(State::Acquiring {
            player: OTHER_PLAYER,
            enqueue: Some(other_claim()),
        })
        .run(acquire(OTHER_PLAYER)),
        (_, EnqueueOtherPlayer) => keep(s).err(C::PlayerMismatch),

        // ---- Idle: the only state that accepts enqueue, once the lease is held; without it
        // the enqueue takes the lease first (dev mode's first enqueue binds the connection).
        (IdleNone | IdleSome, EnqueueValid) => go(enqueuing(true)).run(Effect::Enqueue(claim())),
        (IdleUnbound | IdleToken | IdleRetry, EnqueueValid) => {
            go(acquiring(Some(claim()))).run(acquire(PLAYER))
        }
        // An authenticated session takes its lease on connect (again after a failure).
        (IdleToken | IdleRetry, Connected) => go(acquiring(None)).run(acquire(PLAYER)),
        (IdleUnbound | IdleToken | IdleRetry | IdleNone | IdleSome, EnqueueUnknownMode) => {
            keep(s).err(C::UnknownGameMode)
        }
        (IdleUnbound | IdleToken | IdleRetry | IdleNone | IdleSome, Dequeue) => {
            keep(s).err(C::NotInQueue)
        }
        (
            IdleUnbound | IdleToken | IdleRetry | IdleNone | IdleSome,
            CompleteCurrent | CompleteOther,
        ) => keep(s).err(C::NotLoading),
        // start_loading while idle: Redis may hold a place the session does not want.
        (IdleSome, StartCurrent | StartFresh | StartOld) => keep(s).run(resync()),
        // The check found our own entry queued or loading: remove it, in the entry's mode.
        (IdleSome, SyncedQueued) => keep(s).run(leave(MODE, None)),
        (IdleSome, SyncedQueuedOtherMode) => keep(s).run(leave(MODE2, None)),
        (IdleSome, SyncedLoadingCurrent) => keep(s).run(leave(MODE, Some(CURRENT))),
        (IdleSome, SyncedLoadingFresh) => keep(s).run(leave(MODE, Some(FRESH))),
        (IdleSome, SyncedLoadingOld) => keep(s).run(leave(MODE, Some(OLD))),
        // Anything else is nothing to an idle session: outcomes of its own cleanup, matched
        // or foreign entries, notices it has no claim for, a lease outcome out of turn.
        (IdleUnbound | IdleToken | IdleRetry | IdleNone | IdleSome, _) => keep(s),

        // ---- Acquiring: waits for the lease only.
        (AcqConnect, LeaseAcquired) => go(idle_after(None)),
        (AcqEnqueue, LeaseAcquired) => go(enqueuing(true)).run(Effect::Enqueue(claim())),
        // Another connection plays as PLAYER: refuse, end, clean nothing (nothing is ours).
        (AcqConnect | AcqEnqueue, LeaseHeldElsewhere) => go(State::Disconnecting)
            .err(C::SessionExists)
            .close(Close::SessionExists),
        // Unknown outcome: nothing was enqueued; the next enqueue takes the lease again.
        (AcqConnect, LeaseFailed) => go(State::Disconnecting)
            .err(C::ServiceUnavailable)
            .close(Close::Unavailable),
        (AcqEnqueue, LeaseFailed) => go(idle_after(None)).err(C::ServiceUnavailable),
        (AcqConnect | AcqEnqueue, EnqueueValid | EnqueueUnknownMode) => {
            keep(s).err(C::AlreadyQueued)
        }
        (AcqConnect | AcqEnqueue, Dequeue) => keep(s).err(C::NotInQueue),
        (AcqConnect | AcqEnqueue, CompleteCurrent | CompleteOther) => keep(s).err(C::NotLoading),
        (AcqConnect | AcqEnqueue, _) => keep(s),

        // ---- Enqueuing: waits for the enqueue effect only.
        (EnqAnnounce | EnqSilent, EnqueueValid | EnqueueUnknownMode) => {
            keep(s).err(C::AlreadyQueued)
        }
        (EnqAnnounce | EnqSilent, Dequeue) => keep(s).err(C::NotInQueue),
        (EnqAnnounce | EnqSilent, CompleteCurrent | CompleteOther) => keep(s).err(C::NotLoading),
        (EnqAnnounce, Enqueued | AlreadyQueued) => {
            go(in_queue(MODE)).say(ServerMessage::Enqueued {})
        }
        (EnqSilent, Enqueued | AlreadyQueued) => go(in_queue(MODE)),
        // An earlier attempt of this session queued it in another mode: follow the entry.
        (EnqAnnounce, AlreadyQueuedOtherMode) => {
            go(in_queue(MODE2)).say(ServerMessage::Enqueued {})
        }
        (EnqSilent, AlreadyQueuedOtherMode) => go(in_queue(MODE2)),
        // Already loading: the start_loading notice may be lost; ask Redis.
        (EnqAnnounce, AlreadyLoading) => go(in_queue(MODE))
            .say(ServerMessage::Enqueued {})
            .run(resync()),
        (EnqSilent, AlreadyLoading) => go(in_queue(MODE)).run(resync()),
        (EnqAnnounce | EnqSilent, Taken | Busy) => go(idle_after(None)).err(C::PlayerBusy),
        (EnqAnnounce | EnqSilent, Full) => go(idle_after(None)).err(C::QueueFull),
        // Unknown outcome: tell the client, and remove whatever may have been written.
        (EnqAnnounce | EnqSilent, EnqueueFailed) => go(idle_after(Some(claim())))
            .err(C::ServiceUnavailable)
            .run(leave(MODE, None)),
        (EnqAnnounce | EnqSilent, _) => keep(s),

        // ---- InQueue
        (InQueue, Dequeue) => go(dequeuing(None)).run(leave(MODE, None)),
        (InQueue, EnqueueValid | EnqueueUnknownMode) => keep(s).err(C::AlreadyQueued),
        (InQueue, CompleteCurrent | CompleteOther) => keep(s).err(C::NotLoading),
        // CURRENT is not yet known to a queued session: both it and FRESH are new.
        (InQueue, StartCurrent | SyncedLoadingCurrent) => {
            go(in_loading(CURRENT, false)).say(start(CURRENT))
        }
        (InQueue, StartFresh | SyncedLoadingFresh) => {
            go(in_loading(FRESH, false)).say(start(FRESH))
        }
        // A late duplicate start_loading: never a second one.
        (InQueue, StartOld) => keep(s),
        // Redis says we are in a loading session the client already heard of: follow it
        // silently (at most one start_loading per loading session).
        (InQueue, SyncedLoadingOld) => go(in_loading(OLD, false)),
        (InQueue, MatchCurrent | MatchFresh | NoticeResync | ResyncDue) => keep(s).run(resync()),
        (InQueue, SyncedQueued | SyncedQueuedOtherMode) => keep(s),
        // A removal from a loading session never announced here (its start_loading was
        // lost; CURRENT is not known to a queued session either): the entry says what to
        // tell. A late notice of an old one is nothing.
        (InQueue, RemovedCurrent | RemovedFresh) => keep(s).run(resync()),
        (InQueue, RemovedOld) => keep(s),
        // The loading timeout took the player out of the queue: tell it, never "requeued".
        (InQueue, SyncedRemovedCurrent | SyncedRemovedFresh) => {
            go(idle_after(Some(claim()))).err(C::LoadingNotCompleted)
        }
        // The entry is gone, foreign or not a queue place: enqueue again, silently.
        (
            InQueue,
            SyncedAbsent | SyncedMatchedCurrent | SyncedMatchedFresh | SyncedForeignQueued
            | SyncedForeignLoading,
        ) => go(enqueuing(false)).run(Effect::Enqueue(claim())),
        (InQueue, _) => keep(s),

        // ---- Dequeuing: waits for the leave effect only; done even when Redis failed
        // (the entry is no longer renewed and expires with its lease).
        (DeqQueue | DeqLoading, LeftOk | LeftFailed) => {
            go(idle_after(Some(claim()))).say(ServerMessage::Dequeued {})
        }
        (DeqQueue | DeqLoading, EnqueueValid | EnqueueUnknownMode) => keep(s).err(C::AlreadyQueued),
        (DeqQueue | DeqLoading, Dequeue) => keep(s).err(C::NotInQueue),
        (DeqQueue | DeqLoading, CompleteCurrent | CompleteOther) => keep(s).err(C::NotLoading),
        (DeqQueue | DeqLoading, _) => keep(s),

        // ---- InLoading
        (Loading | Loaded, Dequeue) => go(dequeuing(Some(CURRENT))).run(leave(MODE, Some(CURRENT))),
        (Loading | Loaded, EnqueueValid | EnqueueUnknownMode) => keep(s).err(C::AlreadyQueued),
        (Loading | Loaded, CompleteOther) => keep(s).err(C::WrongLoadingSession),
        (Loading, CompleteCurrent) => go(State::Completing {
            claim: claim(),
            loading: CURRENT,
        })
        .run(Effect::Complete {
            claim: claim(),
            loading: CURRENT,
        }),
        (Loaded, CompleteCurrent) => keep(s).err(C::AlreadyLoaded),
        (Loading | Loaded, StartCurrent | StartOld) => keep(s),
        // A notice of another loading session: ask Redis why ours ended before telling.
        (Loading | Loaded, StartFresh) => keep(s).run(resync()),
        // Redis says we moved into another loading session; the entry names no reason for
        // ours (see the reason tests below), so the generic one.
        (Loading | Loaded, SyncedLoadingFresh) => go(in_loading(FRESH, false))
            .err(C::LoadingCancelled)
            .say(start(FRESH)),
        (Loading | Loaded, MatchCurrent | SyncedMatchedCurrent) => {
            go(idle_after(Some(claim()))).say(match_found())
        }
        (Loading | Loaded, MatchFresh | NoticeResync | ResyncDue) => keep(s).run(resync()),
        (Loading | Loaded, RequeuedCurrent) => go(in_queue(MODE)).err(C::LoadingTimeout),
        // Out of the queue: the claim stays as `last` so a disconnect deletes the entry.
        (Loading | Loaded, RemovedCurrent | SyncedRemovedCurrent | SyncedRemovedFresh) => {
            go(idle_after(Some(claim()))).err(C::LoadingNotCompleted)
        }
        // Removed from a session never announced: ours ended and notices were lost; ask.
        (Loading | Loaded, RemovedFresh) => keep(s).run(resync()),
        (Loading | Loaded, RemovedOld) => keep(s),
        (Loading | Loaded, SyncedLoadingCurrent) => keep(s),
        (Loading | Loaded, SyncedLoadingOld) => go(in_loading(OLD, false)),
        (Loading | Loaded, SyncedQueued | SyncedQueuedOtherMode) => {
            go(in_queue(MODE)).err(C::LoadingCancelled)
        }
        (
            Loading | Loaded,
            SyncedAbsent | SyncedMatchedFresh | SyncedForeignQueued | SyncedForeignLoading,
        ) => go(enqueuing(false))
            .err(C::LoadingCancelled)
            .run(Effect::Enqueue(claim())),
        (Loading | Loaded, _) => keep(s),

        // ---- Completing: waits for the loading_complete effect only.
        (Completing, EnqueueValid | EnqueueUnknownMode) => keep(s).err(C::AlreadyQueued),
        (Completing, Dequeue) => keep(s).err(C::NotInQueue),
        (Completing, CompleteCurrent | CompleteOther) => keep(s).err(C::AlreadyLoaded),
        (Completing, CompletedWaiting | CompletedAllReady | CompletedAlreadyReady) => {
            go(in_loading(CURRENT, true))
        }
        (Completing, CompletedNotMember | CompletedGone) => {
            go(in_loading(CURRENT, false)).run(resync())
        }
        (Completing, CompleteFailed) => go(in_loading(CURRENT, false)).err(C::ServiceUnavailable),
        (Completing, _) => keep(s),
    };
    want.0
}

/// One pair of the cross product, stepped.
struct Pair {
    s: S,
    e: E,
    before: Context,
    after: Context,
    step: Step,
}

/// Steps every (state, event) pair once, each from its state's own context. A panic in a
/// pair is caught and reported with the pair, not as a bare test failure.
fn cross_product() -> Vec<Pair> {
    let mut pairs = Vec::new();
    let mut panics = Vec::new();
    for s in S::ALL {
        for e in E::ALL {
            let before = s.context();
            let mut after = before.clone();
            let result = catch_unwind(AssertUnwindSafe(|| step(s.state(), e.event(), &mut after)));
            match result {
                Ok(step) => pairs.push(Pair {
                    s,
                    e,
                    before,
                    after,
                    step,
                }),
                Err(_) => panics.push(format!("{s:?} x {e:?}")),
            }
        }
    }
    assert!(panics.is_empty(), "pairs that panic: {panics:#?}");
    pairs
}

/// The variant an event is, down to the reply or notice it carries. Exhaustive on purpose:
/// a new variant anywhere stops this from compiling until the product covers it.
fn event_variant(event: &Event) -> &'static str {
    match event {
        Event::Connected => "connected",
        Event::Request(ClientRequest::Enqueue { .. }) => "request enqueue",
        Event::Request(ClientRequest::Dequeue) => "request dequeue",
        Event::Request(ClientRequest::LoadingComplete { .. }) => "request loading_complete",
        Event::BadFrame(_) => "bad frame",
        Event::Enqueued(Ok(EnqueueOutcome::Enqueued)) => "enqueued",
        Event::Enqueued(Ok(EnqueueOutcome::AlreadyQueued { .. })) => "enqueued already queued",
        Event::Enqueued(Ok(EnqueueOutcome::AlreadyLoading { .. })) => "enqueued already loading",
        Event::Enqueued(Ok(EnqueueOutcome::Taken)) => "enqueued taken",
        Event::Enqueued(Ok(EnqueueOutcome::Busy)) => "enqueued busy",
        Event::Enqueued(Ok(EnqueueOutcome::Full)) => "enqueued full",
        Event::Enqueued(Err(_)) => "enqueued error",
        Event::Left(Ok(())) => "left",
        Event::Left(Err(_)) => "left error",
        Event::Completed(Ok(CompleteOutcome::Waiting)) => "completed waiting",
        Event::Completed(Ok(CompleteOutcome::AllReady)) => "completed all_ready",
        Event::Completed(Ok(CompleteOutcome::AlreadyReady)) => "completed already_ready",
        Event::Completed(Ok(CompleteOutcome::NotMember)) => "completed not_member",
        Event::Completed(Ok(CompleteOutcome::Gone)) => "completed gone",
        Event::Completed(Ok(CompleteOutcome::LeaseLost)) => "completed lease_lost",
        Event::Completed(Err(_)) => "completed error",
        Event::Synced(Ok(None)) => "synced absent",
        Event::Synced(Ok(Some(entry))) => match entry.place {
            Place::Queued => "synced queued",
            Place::Loading { .. } => "synced loading",
            Place::Matched { .. } => "synced matched",
            Place::Removed { .. } => "synced removed",
        },
        Event::Synced(Err(_)) => "synced error",
        Event::LeaseAcquired(Ok(LeaseOutcome::Acquired)) => "lease acquired",
        Event::LeaseAcquired(Ok(LeaseOutcome::HeldElsewhere)) => "lease held elsewhere",
        Event::LeaseAcquired(Err(_)) => "lease error",
        Event::Notice(NoticeEvent::StartLoading { .. }) => "notice start_loading",
        Event::Notice(NoticeEvent::MatchFound { .. }) => "notice match_found",
        Event::Notice(NoticeEvent::Requeued { .. }) => "notice requeued",
        Event::Notice(NoticeEvent::Removed { .. }) => "notice removed",
        Event::Notice(NoticeEvent::Resync) => "notice resync",
        Event::Notice(NoticeEvent::LeaseLost) => "notice lease_lost",
        Event::ResyncDue => "resync due",
        Event::Closed => "closed",
        Event::Shutdown => "shutdown",
    }
}

/// The variant a state is, exhaustively (see [`event_variant`]).
fn state_variant(state: &State) -> &'static str {
    match state {
        State::Idle { last: None } => "idle without claim",
        State::Idle { last: Some(_) } => "idle with claim",
        State::Acquiring { enqueue: None, .. } => "acquiring at connect",
        State::Acquiring {
            enqueue: Some(_), ..
        } => "acquiring for an enqueue",
        State::Enqueuing { announce: true, .. } => "enqueuing, announced",
        State::Enqueuing {
            announce: false, ..
        } => "enqueuing, silent",
        State::InQueue { .. } => "in queue",
        State::Dequeuing { loading: None, .. } => "dequeuing from the queue",
        State::Dequeuing {
            loading: Some(_), ..
        } => "dequeuing from loading",
        State::InLoading { loaded: false, .. } => "loading",
        State::InLoading { loaded: true, .. } => "loaded",
        State::Completing { .. } => "completing",
        State::Disconnecting => "disconnecting",
    }
}

/// The shape of a context's binding, exhaustively.
fn context_variant(ctx: &Context) -> &'static str {
    match (ctx.player, ctx.lease) {
        (None, LeaseHold::NotHeld) => "unbound",
        (None, LeaseHold::Held | LeaseHold::Unknown) => "unbound with a lease (impossible)",
        (Some(_), LeaseHold::NotHeld) => "bound, no lease",
        (Some(_), LeaseHold::Held) => "bound, lease held",
        (Some(_), LeaseHold::Unknown) => "bound, lease unknown",
    }
}

/// Goal: the product covers every shape: `S::ALL`/`E::ALL` list each of their variants
/// once, and together they reach every variant of the machine's states and events (and of
/// the requests, replies, places and notices those carry).
#[test]
fn the_cross_product_covers_every_variant() {
    assert!(S::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
    assert_eq!(S::ALL.len(), S::Disconnecting as usize + 1);
    assert!(E::ALL.iter().enumerate().all(|(i, e)| *e as usize == i));
    assert_eq!(E::ALL.len(), E::Shutdown as usize + 1);
    let shapes: BTreeSet<(&str, &str)> = S::ALL
        .iter()
        .map(|s| (state_variant(&s.state()), context_variant(&s.context())))
        .collect();
    assert_eq!(shapes.len(), S::ALL.len(), "{shapes:?}");
    let states: BTreeSet<&str> = S::ALL.iter().map(|s| state_variant(&s.state())).collect();
    assert_eq!(states.len(), 13, "every state variant: {states:?}");
    let events: BTreeSet<&str> = E::ALL.iter().map(|e| event_variant(&e.event())).collect();
    assert_eq!(events.len(), 39, "{events:?}");
}

/// Goal: the whole cross product runs without a single panic.
#[test]
fn no_pair_panics() {
    let pairs = cross_product();
    assert_eq!(pairs.len(), S::ALL.len() * E::ALL.len());
}

/// Goal: every (state, event) pair keeps the machine's relations (a closing step lands in
/// `Disconnecting`, a claim is the session's player and needs its lease, a loading state was
/// announced, an effect fits its state), so the session task's `check!` never fires on a
/// correct machine; and a step that breaks one is named.
#[test]
fn every_pair_keeps_the_machine_relations() {
    let broken: Vec<String> = cross_product()
        .into_iter()
        .filter_map(|pair| {
            super::broken_relation(&pair.step, &pair.after)
                .map(|(name, detail)| format!("{:?} x {:?}: {name}: {detail}", pair.s, pair.e))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "broken relations:\n{}",
        broken.join("\n")
    );
    // A close that does not land in Disconnecting, and an effect that does not fit its
    // state, are caught.
    let ctx = S::InQueue.context();
    let mut closing = Step::stay(in_queue(MODE));
    closing.close = Some(Close::SessionLost);
    let caught = super::broken_relation(&closing, &ctx).map(|(name, _)| name);
    assert_eq!(caught, Some("closing_step_disconnects"));
    let mut misfit = Step::stay(in_queue(MODE));
    misfit.effect = Some(Effect::Complete {
        claim: claim(),
        loading: CURRENT,
    });
    let caught = super::broken_relation(&misfit, &ctx).map(|(name, _)| name);
    assert_eq!(caught, Some("effect_fits_the_state"));
    let unleased = S::IdleRetry.context();
    let caught = super::broken_relation(&Step::stay(in_queue(MODE)), &unleased).map(|(n, _)| n);
    assert_eq!(caught, Some("claim_needs_the_lease"));
}

/// Goal: every (state, event) pair gives exactly its written outcome - next state, replies
/// (exact frames, in order) and effect.
#[test]
fn every_pair_has_its_written_outcome() {
    let mismatches: Vec<String> = cross_product()
        .into_iter()
        .filter_map(|pair| {
            let want = expected(pair.s, pair.e);
            (pair.step != want).then(|| {
                format!(
                    "{:?} x {:?}:\n  got  {:?}\n  want {:?}",
                    pair.s, pair.e, pair.step, want
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} pair(s) differ from the table:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Goal: a client `enqueue` is accepted only in `Idle`, only for a configured mode and
/// only for the connection's own player (any player while a dev-mode connection is still
/// unbound); every other state refuses it without touching Redis. Accepted, it enqueues
/// when the lease is held, and takes the lease first otherwise.
#[test]
fn enqueue_is_accepted_only_in_idle() {
    for pair in cross_product() {
        if !pair.e.is_enqueue_request() {
            continue;
        }
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        let accepted = matches!(
            pair.step.effect,
            Some(Effect::Enqueue(_) | Effect::AcquireLease { .. })
        );
        assert_eq!(accepted, legal(pair.s, pair.e), "{case}");
        match pair.step.effect {
            Some(Effect::Enqueue(_)) => {
                assert_eq!(pair.before.lease, LeaseHold::Held, "{case}");
                assert!(
                    matches!(pair.step.state, State::Enqueuing { announce: true, .. }),
                    "enqueue must be marked before the effect runs: {case}"
                );
            }
            Some(Effect::AcquireLease { player }) => {
                assert_ne!(pair.before.lease, LeaseHold::Held, "{case}");
                assert_eq!(pair.after.player, Some(player), "bound first: {case}");
                assert!(
                    matches!(
                        pair.step.state,
                        State::Acquiring {
                            enqueue: Some(_),
                            ..
                        }
                    ),
                    "the enqueue waits for the lease: {case}"
                );
            }
            _ => {}
        }
    }
}

/// Whether the protocol allows this request in this state.
fn legal(s: S, e: E) -> bool {
    matches!(
        (s, e),
        (
            S::IdleUnbound | S::IdleToken | S::IdleRetry | S::IdleNone | S::IdleSome,
            E::EnqueueValid
        ) | (S::IdleUnbound, E::EnqueueOtherPlayer)
            | (S::InQueue | S::Loading | S::Loaded, E::Dequeue)
            | (S::Loading, E::CompleteCurrent)
    )
}

/// Goal: an illegal client request never changes the state, runs no effect, leaves the
/// context alone and gets exactly one `error` reply.
#[test]
fn illegal_requests_keep_the_state_and_get_one_error() {
    let mut illegal = 0;
    for pair in cross_product() {
        if !pair.e.is_request() || legal(pair.s, pair.e) || pair.s == S::Disconnecting {
            continue;
        }
        illegal += 1;
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        assert_eq!(pair.step.state, pair.s.state(), "{case}");
        assert_eq!(pair.step.effect, None, "{case}");
        assert_eq!(
            pair.after.recent_loadings, pair.before.recent_loadings,
            "{case}"
        );
        assert_eq!(pair.after.player, pair.before.player, "{case}");
        assert_eq!(pair.after.lease, pair.before.lease, "{case}");
        assert!(
            matches!(pair.step.replies.as_slice(), [ServerMessage::Error { .. }]),
            "{case}: {:?}",
            pair.step.replies
        );
    }
    assert_eq!(
        illegal,
        15 * 6 - 10,
        "every live state x request, minus the ten legal pairs"
    );
}

/// Goal: a legal request always changes the state (it starts an effect), so a repeated
/// request can never start the same effect twice.
#[test]
fn legal_requests_move_on_and_start_one_effect() {
    for pair in cross_product() {
        if !legal(pair.s, pair.e) {
            continue;
        }
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        assert_ne!(pair.step.state, pair.s.state(), "{case}");
        assert!(pair.step.effect.is_some(), "{case}");
        assert!(pair.step.replies.is_empty(), "{case}");
    }
}

/// Goal: `Closed` and `Shutdown` always lead to `Disconnecting` with the cleanup effect the
/// state implies (leave the queue, or cancel the loading session), `Enqueuing` included.
#[test]
fn closed_and_shutdown_disconnect_with_the_implied_cleanup() {
    for pair in cross_product() {
        if !matches!(pair.e, E::Closed | E::Shutdown) {
            continue;
        }
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        assert_eq!(pair.step.state, State::Disconnecting, "{case}");
        assert_eq!(pair.step.effect, pair.s.cleanup(), "{case}");
        // The cleanup acts for exactly the claim the state held.
        if let Some(Effect::Leave { claim, .. }) = &pair.step.effect {
            let held = match pair.s.state() {
                State::Idle { last } => last,
                state => state.claim().cloned(),
            };
            assert_eq!(Some(claim), held.as_ref(), "{case}");
        }
    }
}

/// Goal: `Shutdown` tells a live client exactly `shutting_down`; `Closed` sends nothing (the
/// client is gone); a session already disconnecting sends nothing more.
#[test]
fn shutdown_replies_shutting_down() {
    for pair in cross_product() {
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        match (pair.e, pair.s) {
            (_, S::Disconnecting) | (E::Closed, _) => {
                if matches!(pair.e, E::Closed | E::Shutdown) {
                    assert!(pair.step.replies.is_empty(), "{case}");
                }
            }
            (E::Shutdown, _) => assert_eq!(
                pair.step.replies,
                vec![ServerMessage::error(ErrorCode::ShuttingDown)],
                "{case}"
            ),
            _ => {}
        }
    }
}

/// Goal: `Disconnecting` is terminal: every event leaves it silent, with no effect.
#[test]
fn disconnecting_is_terminal() {
    for pair in cross_product() {
        if pair.s == S::Disconnecting {
            assert_eq!(pair.step, keep(S::Disconnecting).0, "{:?}", pair.e);
        }
    }
}

/// Goal: a bad frame of any code, in any live state, is answered with that code and
/// changes nothing.
#[test]
fn bad_frames_reply_their_code_and_keep_the_state() {
    let codes = [
        ErrorCode::InvalidMessage,
        ErrorCode::BinaryNotSupported,
        ErrorCode::InvalidPlayerId,
        ErrorCode::InvalidLoadingSessionId,
        ErrorCode::RateLimited,
    ];
    for s in S::ALL.into_iter().filter(|s| *s != S::Disconnecting) {
        for code in codes {
            let mut ctx = s.context();
            let step = step(s.state(), Event::BadFrame(code), &mut ctx);
            assert_eq!(step.state, s.state(), "{s:?} {code:?}");
            assert_eq!(step.replies, vec![ServerMessage::error(code)], "{s:?}");
            assert_eq!(step.effect, None, "{s:?} {code:?}");
        }
    }
}

/// Goal: a `start_loading` frame is only ever sent for a loading session the session had
/// not announced before, at most one per step, and the session then remembers it.
#[test]
fn start_loading_only_for_a_loading_not_seen_before() {
    for pair in cross_product() {
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        let started: Vec<Uuid> = pair
            .step
            .replies
            .iter()
            .filter_map(|reply| match reply {
                ServerMessage::StartLoading { loading_session_id } => Some(*loading_session_id),
                _ => None,
            })
            .collect();
        assert!(started.len() <= 1, "{case}");
        for loading in started {
            assert!(!pair.before.recent_loadings.contains(&loading), "{case}");
            assert!(pair.after.recent_loadings.contains(&loading), "{case}");
            assert_eq!(
                pair.step.state,
                in_loading(loading, false),
                "{case}: announced but not followed"
            );
        }
    }
}

/// Goal: every state that holds a claim reports it for renewal and notice routing; idle
/// and disconnecting sessions hold none; names are distinct and stable.
#[test]
fn claims_and_names_of_every_state() {
    let names: Vec<&str> = S::ALL.iter().map(|s| s.state().name()).collect();
    assert_eq!(
        names,
        [
            "idle",
            "idle",
            "idle",
            "idle",
            "idle",
            "acquiring",
            "acquiring",
            "enqueuing",
            "enqueuing",
            "in_queue",
            "dequeuing",
            "dequeuing",
            "in_loading",
            "in_loading",
            "completing",
            "disconnecting"
        ]
    );
    for s in S::ALL {
        let held = s.state().claim().cloned();
        let want = match s {
            _ if s.is_idle() || s.is_acquiring() => None,
            S::Disconnecting => None,
            _ => Some(claim()),
        };
        assert_eq!(held, want, "{s:?}");
    }
}

// ---- realistic sequences

/// Drives the machine through events, recording every reply and effect.
struct Run {
    state: State,
    ctx: Context,
    replies: Vec<ServerMessage>,
    effects: Vec<Effect>,
}

impl Run {
    fn new(s: S) -> Self {
        Self {
            state: s.state(),
            ctx: s.context(),
            replies: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Feeds one event; returns the step's own replies and effect.
    fn feed(&mut self, event: Event) -> (Vec<ServerMessage>, Option<Effect>) {
        let step = step(self.state.clone(), event, &mut self.ctx);
        self.state = step.state;
        self.replies.extend(step.replies.iter().cloned());
        self.effects.extend(step.effect.iter().cloned());
        (step.replies, step.effect)
    }

    fn errors(&self, code: ErrorCode) -> usize {
        self.replies
            .iter()
            .filter(|r| **r == ServerMessage::error(code))
            .count()
    }

    /// The legal-sequence invariant: at most one `start_loading` per loading session and
    /// at most one `match_found` per match.
    fn assert_legal_sequence(&self) {
        let mut starts: BTreeMap<Uuid, usize> = BTreeMap::new();
        let mut matches: BTreeMap<Uuid, usize> = BTreeMap::new();
        for reply in &self.replies {
            match reply {
                ServerMessage::StartLoading { loading_session_id } => {
                    *starts.entry(*loading_session_id).or_default() += 1;
                }
                ServerMessage::MatchFound { session_id, .. } => {
                    *matches.entry(*session_id).or_default() += 1;
                }
                _ => {}
            }
        }
        assert!(starts.values().all(|n| *n == 1), "{:?}", self.replies);
        assert!(matches.values().all(|n| *n == 1), "{:?}", self.replies);
    }
}

/// Goal: a burst of three `enqueue` frames fed before the effect finished yields exactly one
/// `Enqueue` effect and two `already_queued` errors, then a single `enqueued`.
#[test]
fn burst_of_three_enqueues_enqueues_once() {
    let mut run = Run::new(S::IdleNone);
    for _ in 0..3 {
        run.feed(enqueue_request(MODE));
    }
    assert_eq!(run.effects, vec![Effect::Enqueue(claim())]);
    assert_eq!(run.errors(ErrorCode::AlreadyQueued), 2);
    assert_eq!(run.replies.len(), 2);
    run.feed(E::Enqueued.event());
    assert_eq!(run.state, in_queue(MODE));
    assert_eq!(
        run.replies.last(),
        Some(&ServerMessage::Enqueued {}),
        "one enqueued at the end"
    );
    assert_eq!(run.effects.len(), 1);
}

/// Goal: the same burst as the session task really feeds it (the effect's outcome comes
/// back before the next frame is read) also enqueues exactly once.
#[test]
fn burst_of_three_enqueues_with_effect_between_enqueues_once() {
    let mut run = Run::new(S::IdleNone);
    let (_, effect) = run.feed(enqueue_request(MODE));
    assert_eq!(effect, Some(Effect::Enqueue(claim())));
    run.feed(E::Enqueued.event());
    run.feed(enqueue_request(MODE));
    run.feed(enqueue_request(MODE));
    assert_eq!(run.effects, vec![Effect::Enqueue(claim())]);
    assert_eq!(
        run.replies,
        vec![
            ServerMessage::Enqueued {},
            ServerMessage::error(ErrorCode::AlreadyQueued),
            ServerMessage::error(ErrorCode::AlreadyQueued),
        ]
    );
    assert_eq!(run.state, in_queue(MODE));
}

/// Goal: a `StartLoading` notice that arrives after the notice that its loading session
/// ended (the creator's reply was slow, so its notice came late: seed 4644 of the fleet
/// campaign) is stale: the queued player is not sent through a dead loading session, and
/// no repair is needed later. A fresh session's start still gets through.
#[test]
fn start_loading_after_its_session_ended_is_ignored() {
    let mut run = Run::new(S::InQueue);
    let (replies, effect) = run.feed(notice_requeued(FRESH));
    assert!(replies.is_empty() && effect.is_none());
    assert_eq!(run.state, in_queue(MODE));
    let (replies, effect) = run.feed(notice_start(FRESH));
    assert!(replies.is_empty() && effect.is_none(), "{replies:?}");
    assert_eq!(run.state, in_queue(MODE));
    run.feed(notice_start(CURRENT));
    assert_eq!(run.state, in_loading(CURRENT, false));
}

/// Goal: a duplicate `StartLoading` notice - while loading, and late after the loading
/// session was cancelled - never produces a second `start_loading`.
#[test]
fn duplicate_start_loading_notice_is_ignored() {
    let mut run = Run::new(S::InQueue);
    run.feed(notice_start(FRESH));
    assert_eq!(run.state, in_loading(FRESH, false));
    let (replies, effect) = run.feed(notice_start(FRESH));
    assert!(replies.is_empty() && effect.is_none());
    // The loading session is cancelled, then the duplicate arrives late.
    run.feed(Event::Notice(NoticeEvent::Requeued {
        loading: FRESH,
        code: ErrorCode::LoadingCancelled,
    }));
    assert_eq!(run.state, in_queue(MODE));
    let (replies, effect) = run.feed(notice_start(FRESH));
    assert!(replies.is_empty() && effect.is_none());
    assert_eq!(run.state, in_queue(MODE));
    assert_eq!(
        run.replies,
        vec![
            start(FRESH),
            ServerMessage::error(ErrorCode::LoadingCancelled)
        ]
    );
    run.assert_legal_sequence();
}

/// Goal: a lost `StartLoading` notice is recovered by the periodic resync, the client gets
/// exactly one `start_loading`, and the notice arriving late after all is ignored.
#[test]
fn resync_recovers_a_lost_start_loading() {
    let mut run = Run::new(S::InQueue);
    let (_, effect) = run.feed(Event::ResyncDue);
    assert_eq!(effect, Some(resync()));
    run.feed(synced(OWNER, MODE, loading_place(FRESH)));
    assert_eq!(run.state, in_loading(FRESH, false));
    run.feed(notice_start(FRESH));
    run.feed(Event::ResyncDue);
    run.feed(synced(OWNER, MODE, loading_place(FRESH)));
    assert_eq!(run.state, in_loading(FRESH, false));
    assert_eq!(run.replies, vec![start(FRESH)]);
    run.assert_legal_sequence();
}

/// Goal: a lost `MatchFound` notice is recovered when resync finds the entry matched for
/// the current loading session: exactly one `match_found`, and a late notice is ignored.
#[test]
fn resync_recovers_a_lost_match_found() {
    let mut run = Run::new(S::InQueue);
    run.feed(notice_start(FRESH));
    let (_, effect) = run.feed(complete_request(FRESH));
    assert_eq!(
        effect,
        Some(Effect::Complete {
            claim: claim(),
            loading: FRESH
        })
    );
    run.feed(Event::Completed(Ok(CompleteOutcome::Waiting)));
    assert_eq!(run.state, in_loading(FRESH, true));
    // The MatchFound notice is lost; the periodic resync finds the match.
    run.feed(Event::ResyncDue);
    run.feed(synced(OWNER, MODE, matched_place(FRESH)));
    assert_eq!(run.state, idle_after(Some(claim())));
    let (replies, effect) = run.feed(notice_match(FRESH));
    assert!(
        replies.is_empty() && effect.is_none(),
        "late notice ignored"
    );
    assert_eq!(run.replies, vec![start(FRESH), match_found()]);
    run.assert_legal_sequence();
}

/// Goal: when the loading_complete reply is lost (effect error) the client may retry, and
/// a `MatchFound` arriving meanwhile still ends the loading with one `match_found`.
#[test]
fn lost_loading_complete_reply_then_match_found() {
    let mut run = Run::new(S::Loading);
    run.feed(complete_request(CURRENT));
    run.feed(E::CompleteFailed.event());
    assert_eq!(run.state, in_loading(CURRENT, false));
    run.feed(complete_request(CURRENT));
    run.feed(E::CompletedAllReady.event());
    assert_eq!(run.state, in_loading(CURRENT, true));
    run.feed(notice_match(CURRENT));
    run.feed(notice_match(CURRENT));
    assert_eq!(
        run.replies,
        vec![
            ServerMessage::error(ErrorCode::ServiceUnavailable),
            match_found()
        ]
    );
    assert_eq!(run.state, idle_after(Some(claim())));
    run.assert_legal_sequence();
}

/// Goal: a lost `Requeued` notice is recovered by resync (entry queued again): the client
/// hears `loading_cancelled` once, and the late notice adds nothing.
#[test]
fn resync_recovers_a_lost_requeued() {
    let mut run = Run::new(S::Loaded);
    run.feed(Event::ResyncDue);
    run.feed(synced(OWNER, MODE, Place::Queued));
    assert_eq!(run.state, in_queue(MODE));
    run.feed(notice_requeued(CURRENT));
    assert_eq!(run.state, in_queue(MODE));
    assert_eq!(
        run.replies,
        vec![ServerMessage::error(ErrorCode::LoadingCancelled)]
    );
}

/// Goal: moved into a new loading session while the cancel of the old one was lost, the
/// client hears `loading_cancelled` then one `start_loading`; late notices of either
/// loading session add nothing.
#[test]
fn moved_to_another_loading_session_is_announced_once() {
    let mut run = Run::new(S::Loading);
    run.feed(Event::ResyncDue);
    run.feed(synced(OWNER, MODE, loading_place(FRESH)));
    run.feed(notice_start(FRESH));
    run.feed(notice_requeued(CURRENT));
    run.feed(notice_start(CURRENT));
    assert_eq!(run.state, in_loading(FRESH, false));
    assert_eq!(
        run.replies,
        vec![
            ServerMessage::error(ErrorCode::LoadingCancelled),
            start(FRESH)
        ]
    );
    run.assert_legal_sequence();
}

/// Goal: an enqueue whose outcome is unknown is cleaned up right away and again at
/// disconnect, and a later start_loading for the leftover makes the idle session check
/// and leave it.
#[test]
fn unknown_enqueue_outcome_is_cleaned_up() {
    let mut run = Run::new(S::IdleNone);
    run.feed(enqueue_request(MODE));
    let (replies, effect) = run.feed(E::EnqueueFailed.event());
    assert_eq!(
        replies,
        vec![ServerMessage::error(ErrorCode::ServiceUnavailable)]
    );
    assert_eq!(effect, Some(leave(MODE, None)));
    run.feed(Event::Left(Err(EffectError::Unavailable)));
    let (_, effect) = run.feed(notice_start(FRESH));
    assert_eq!(effect, Some(resync()));
    let (replies, effect) = run.feed(synced(OWNER, MODE, loading_place(FRESH)));
    assert!(replies.is_empty(), "the client is never told to load");
    assert_eq!(effect, Some(leave(MODE, Some(FRESH))));
    let (_, effect) = run.feed(Event::Closed);
    assert_eq!(effect, Some(leave(MODE, None)));
    assert_eq!(run.state, State::Disconnecting);
}

/// Goal: a disconnect at every point of a full match (enqueue, queue, loading, completing,
/// loaded) cleans up exactly what that point implies.
#[test]
fn disconnect_at_every_point_of_a_match_cleans_up() {
    let script = [
        enqueue_request(MODE),
        E::Enqueued.event(),
        notice_start(FRESH),
        complete_request(FRESH),
        E::CompletedWaiting.event(),
        notice_match(FRESH),
    ];
    let cleanups = [
        None,
        Some(leave(MODE, None)),
        Some(leave(MODE, None)),
        Some(leave(MODE, Some(FRESH))),
        Some(leave(MODE, Some(FRESH))),
        Some(leave(MODE, Some(FRESH))),
        Some(leave(MODE, None)),
    ];
    for (cut, cleanup) in cleanups.iter().enumerate() {
        let mut run = Run::new(S::IdleNone);
        for event in script.iter().take(cut) {
            run.feed(event.clone());
        }
        let (replies, effect) = run.feed(Event::Closed);
        assert!(replies.is_empty(), "after {cut} events");
        assert_eq!(&effect, cleanup, "after {cut} events");
        assert_eq!(run.state, State::Disconnecting);
        run.assert_legal_sequence();
    }
}

/// Goal: the memory of past loading sessions is bounded (16): within the bound a late
/// duplicate is ignored; this documents the bound a duplicate must arrive within.
#[test]
fn recent_loadings_memory_is_bounded() {
    let mut run = Run::new(S::InQueue);
    let loadings: Vec<Uuid> = (1..=17_u128).map(Uuid::from_u128).collect();
    for loading in &loadings {
        run.feed(notice_start(*loading));
        run.feed(notice_requeued(*loading));
    }
    assert_eq!(run.ctx.recent_loadings.len(), 16);
    let newest = loadings.last().copied().unwrap_or_default();
    let (replies, _) = run.feed(notice_start(newest));
    assert!(replies.is_empty(), "a recent duplicate is ignored");
}

/// An owned entry at `place` that records a requeue from `ended` for `code`.
fn synced_requeued(place: Place, ended: Uuid, code: ErrorCode) -> Event {
    Event::Synced(Ok(Some(PlayerEntry {
        place,
        mode: MODE.to_owned(),
        owner: OWNER,
        lease_deadline_ms: 60_000,
        last_requeue: Some(crate::matchmaker::entry::Requeue {
            loading: ended,
            code,
        }),
    })))
}

/// Goal: when a session learns from Redis (not from the lost or late notice) that its
/// loading session ended, the client still hears the real reason the entry recorded -
/// `loading_timeout`, an allocation failure - not a generic `loading_cancelled`.
#[test]
fn resync_tells_the_recorded_requeue_reason() {
    for code in [
        ErrorCode::LoadingTimeout,
        ErrorCode::NoServerAvailable,
        ErrorCode::AllocationTimeout,
    ] {
        let mut ctx = Context::new(OWNER, vec![MODE.to_owned(), MODE2.to_owned()]);
        ctx.recent_loadings.push_back(CURRENT);
        let loading = State::InLoading {
            claim: claim(),
            loading: CURRENT,
            loaded: true,
        };
        let back = step(
            loading.clone(),
            synced_requeued(Place::Queued, CURRENT, code),
            &mut ctx,
        );
        assert_eq!(back.state, State::InQueue { claim: claim() });
        assert_eq!(back.replies, vec![ServerMessage::error(code)]);
        let moved = step(
            loading,
            synced_requeued(loading_place(FRESH), CURRENT, code),
            &mut ctx,
        );
        assert_eq!(
            moved.replies,
            vec![ServerMessage::error(code), start(FRESH)]
        );
    }
}

/// Goal: a reason recorded for an older loading session is not applied to the current one.
#[test]
fn requeue_reason_of_another_session_is_not_used() {
    let mut ctx = Context::new(OWNER, vec![MODE.to_owned(), MODE2.to_owned()]);
    let loading = State::InLoading {
        claim: claim(),
        loading: CURRENT,
        loaded: false,
    };
    let event = synced_requeued(Place::Queued, OLD, ErrorCode::LoadingTimeout);
    let back = step(loading, event, &mut ctx);
    assert_eq!(
        back.replies,
        vec![ServerMessage::error(ErrorCode::LoadingCancelled)]
    );
}

/// Goal: a resync that finds the session's view wrong reports what it repaired (the
/// oracle's "no repair without a cause" judges it), and one that finds the view right
/// reports nothing.
#[test]
fn resync_reports_what_it_repaired() {
    use super::repair_of;
    use crate::probe::Repair;
    let own = |place: Place| PlayerEntry {
        place,
        mode: MODE.to_owned(),
        owner: OWNER,
        lease_deadline_ms: 60_000,
        last_requeue: None,
    };
    let queued = State::InQueue { claim: claim() };
    let loading = State::InLoading {
        claim: claim(),
        loading: CURRENT,
        loaded: false,
    };
    let cases = [
        (queued.clone(), Some(own(Place::Queued)), None),
        (
            queued.clone(),
            Some(own(loading_place(FRESH))),
            Some(Repair::MissedLoading {
                loading: FRESH,
                left: None,
            }),
        ),
        (queued.clone(), None, Some(Repair::EntryLost)),
        (
            queued,
            Some(own(removed_place(FRESH))),
            Some(Repair::MissedRemoval { loading: FRESH }),
        ),
        (loading.clone(), Some(own(loading_place(CURRENT))), None),
        (
            loading.clone(),
            Some(own(Place::Queued)),
            Some(Repair::MissedRequeue { loading: CURRENT }),
        ),
        (
            loading.clone(),
            Some(own(matched_place(CURRENT))),
            Some(Repair::MissedMatch { loading: CURRENT }),
        ),
        (
            loading,
            Some(own(loading_place(FRESH))),
            Some(Repair::MissedLoading {
                loading: FRESH,
                left: Some(CURRENT),
            }),
        ),
    ];
    for (from, entry, expected) in cases {
        let mut ctx = Context::new(OWNER, vec![MODE.to_owned(), MODE2.to_owned()]);
        ctx.player = Some(PLAYER);
        ctx.lease = LeaseHold::Held;
        ctx.recent_loadings.push_back(CURRENT);
        let stepped = step(from.clone(), Event::Synced(Ok(entry.clone())), &mut ctx);
        assert_eq!(
            repair_of(&from, entry.as_ref(), &stepped),
            expected,
            "{from:?} reading {entry:?}"
        );
    }
}

// ---- one live session per player

/// Goal: the machine changes the connection's binding and lease only as written: a
/// dev-mode connection is bound by its first valid enqueue and never rebound; the lease is
/// held only after an acquisition succeeds and until it is lost; an acquisition that failed
/// leaves it unknown; and the machine ends the connection itself exactly when the lease is
/// held elsewhere (`session_exists`), lost (`session_lost`), or cannot be taken at connect
/// (`service_unavailable`).
#[test]
fn binding_and_lease_change_only_as_written() {
    for pair in cross_product() {
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        let (s, e) = (pair.s, pair.e);
        let player = match (s, e) {
            (S::IdleUnbound, E::EnqueueValid) => Some(PLAYER),
            (S::IdleUnbound, E::EnqueueOtherPlayer) => Some(OTHER_PLAYER),
            _ => pair.before.player,
        };
        assert_eq!(pair.after.player, player, "{case}");
        let live = s != S::Disconnecting;
        let lease = match (s, e) {
            (_, E::LeaseAcquired) if s.is_acquiring() => LeaseHold::Held,
            (_, E::LeaseHeldElsewhere) if s.is_acquiring() => LeaseHold::NotHeld,
            (_, E::LeaseFailed) if s.is_acquiring() => LeaseHold::Unknown,
            (_, E::LeaseLost | E::CompletedLeaseLost) if live && s.lease() == LeaseHold::Held => {
                LeaseHold::NotHeld
            }
            _ => pair.before.lease,
        };
        assert_eq!(pair.after.lease, lease, "{case}");
        let close = match (s, e) {
            (_, E::LeaseHeldElsewhere) if s.is_acquiring() => Some(Close::SessionExists),
            (_, E::LeaseLost | E::CompletedLeaseLost) if live && s.lease() == LeaseHold::Held => {
                Some(Close::SessionLost)
            }
            (S::AcqConnect, E::LeaseFailed) => Some(Close::Unavailable),
            _ => None,
        };
        assert_eq!(pair.step.close, close, "{case}");
        if close.is_some() {
            assert_eq!(pair.step.state, State::Disconnecting, "{case}");
        }
    }
}

/// Goal: an authenticated session takes its lease on `Connected`, before any request, and
/// then enqueues its own player directly; it never enqueues another one.
#[test]
fn authenticated_session_takes_its_lease_first() {
    let mut run = Run::new(S::IdleToken);
    let (replies, effect) = run.feed(Event::Connected);
    assert!(replies.is_empty());
    assert_eq!(effect, Some(acquire(PLAYER)));
    run.feed(E::LeaseAcquired.event());
    assert_eq!(run.state, idle_after(None));
    assert_eq!(run.ctx.held_lease(), Some(PLAYER));
    let (_, effect) = run.feed(E::EnqueueOtherPlayer.event());
    assert_eq!(effect, None);
    let (_, effect) = run.feed(enqueue_request(MODE));
    assert_eq!(effect, Some(Effect::Enqueue(claim())));
    assert_eq!(
        run.replies,
        vec![ServerMessage::error(ErrorCode::PlayerMismatch)]
    );
}

/// Goal: a dev-mode connection is bound to the player of its first valid enqueue (an
/// unknown mode binds nothing), takes that player's lease before enqueuing, and refuses
/// any other player for its whole life - queued, and again after its match.
#[test]
fn dev_session_is_bound_by_its_first_enqueue() {
    let mut run = Run::new(S::IdleUnbound);
    run.feed(Event::Connected);
    run.feed(E::EnqueueUnknownMode.event());
    assert_eq!(run.ctx.player, None, "an unknown mode binds nothing");
    let (_, effect) = run.feed(enqueue_request(MODE));
    assert_eq!(effect, Some(acquire(PLAYER)));
    let (_, effect) = run.feed(E::LeaseAcquired.event());
    assert_eq!(effect, Some(Effect::Enqueue(claim())));
    run.feed(E::Enqueued.event());
    run.feed(E::EnqueueOtherPlayer.event());
    run.feed(notice_start(FRESH));
    run.feed(complete_request(FRESH));
    run.feed(E::CompletedAllReady.event());
    run.feed(notice_match(FRESH));
    let (_, effect) = run.feed(E::EnqueueOtherPlayer.event());
    assert_eq!(effect, None);
    assert_eq!(run.ctx.player, Some(PLAYER));
    assert_eq!(
        run.replies,
        vec![
            ServerMessage::error(ErrorCode::UnknownGameMode),
            ServerMessage::Enqueued {},
            ServerMessage::error(ErrorCode::PlayerMismatch),
            start(FRESH),
            match_found(),
            ServerMessage::error(ErrorCode::PlayerMismatch),
        ]
    );
    assert_eq!(
        run.effects
            .iter()
            .filter(|e| **e == acquire(PLAYER))
            .count(),
        1
    );
}

/// Goal: a lease held elsewhere ends the session with exactly `session_exists`, runs no
/// cleanup (nothing in Redis is this session's) and leaves no lease to release.
#[test]
fn lease_held_elsewhere_refuses_the_session() {
    for s in [S::AcqConnect, S::AcqEnqueue] {
        let mut run = Run::new(s);
        let (replies, effect) = run.feed(E::LeaseHeldElsewhere.event());
        assert_eq!(
            replies,
            vec![ServerMessage::error(ErrorCode::SessionExists)]
        );
        assert_eq!(effect, None, "{s:?}");
        assert_eq!(run.state, State::Disconnecting);
        assert_eq!(run.ctx.lease_to_release(), None, "{s:?}");
        let (replies, effect) = run.feed(Event::Closed);
        assert!(replies.is_empty() && effect.is_none(), "{s:?}");
    }
}

/// Goal: a lease lost while loading cancels the loading session (the cleanup of the
/// state), tells the client `session_lost` once, and the session then ignores everything,
/// a second loss included; it releases nothing (the lease is not its own any more).
#[test]
fn lost_lease_cleans_up_and_ends_the_session() {
    let mut run = Run::new(S::Loading);
    let (replies, effect) = run.feed(E::LeaseLost.event());
    assert_eq!(replies, vec![ServerMessage::error(ErrorCode::SessionLost)]);
    assert_eq!(effect, Some(leave(MODE, Some(CURRENT))));
    assert_eq!(run.ctx.lease_to_release(), None);
    for event in [E::LeaseLost, E::MatchCurrent, E::Closed] {
        let (replies, effect) = run.feed(event.event());
        assert!(replies.is_empty() && effect.is_none(), "{event:?}");
    }
    assert_eq!(run.state, State::Disconnecting);
}

/// Goal: an authenticated connection whose lease cannot be taken at connect (Redis failed)
/// ends at once with `service_unavailable` and close 1013, and releases the lease at the
/// end in case it was set - so an open authenticated connection always holds its lease.
#[test]
fn failed_acquisition_at_connect_ends_the_connection() {
    let mut run = Run::new(S::IdleToken);
    run.feed(Event::Connected);
    let step = step(run.state.clone(), E::LeaseFailed.event(), &mut run.ctx);
    assert_eq!(
        step.replies,
        vec![ServerMessage::error(ErrorCode::ServiceUnavailable)]
    );
    assert_eq!(step.close, Some(Close::Unavailable));
    assert_eq!(step.state, State::Disconnecting);
    assert_eq!(run.ctx.held_lease(), None, "not renewed");
    assert_eq!(
        run.ctx.lease_to_release(),
        Some(PLAYER),
        "released at the end"
    );
}

/// Goal: a dev-mode enqueue whose lease acquisition failed is refused with
/// `service_unavailable`, the connection stays, and the next enqueue takes the lease again
/// before enqueuing.
#[test]
fn failed_acquisition_is_retried_by_the_next_enqueue() {
    let mut run = Run::new(S::IdleUnbound);
    let (_, effect) = run.feed(enqueue_request(MODE));
    assert_eq!(effect, Some(acquire(PLAYER)));
    let (replies, _) = run.feed(E::LeaseFailed.event());
    assert_eq!(
        replies,
        vec![ServerMessage::error(ErrorCode::ServiceUnavailable)]
    );
    assert_eq!(run.state, idle_after(None));
    assert_eq!(run.ctx.held_lease(), None, "not renewed");
    let (_, effect) = run.feed(enqueue_request(MODE));
    assert_eq!(effect, Some(acquire(PLAYER)));
    let (_, effect) = run.feed(E::LeaseAcquired.event());
    assert_eq!(effect, Some(Effect::Enqueue(claim())));
    assert_eq!(run.ctx.held_lease(), Some(PLAYER));
}

/// Goal: the loading-timeout policy as a session applies it: whenever Redis says (by notice
/// or entry) that a timeout took the player out of the queue, the client is told exactly
/// `loading_not_completed` - never a "back in the queue" code - and the session goes idle
/// (keeping the claim, so a disconnect deletes the entry) without re-enqueueing on its own.
#[test]
fn a_removed_player_is_told_loading_not_completed_and_not_requeued() {
    let requeue_codes = [
        ErrorCode::LoadingCancelled,
        ErrorCode::LoadingTimeout,
        ErrorCode::NoServerAvailable,
        ErrorCode::AllocationFailed,
        ErrorCode::AllocationTimeout,
    ];
    let removal_events = [
        E::RemovedCurrent,
        E::RemovedFresh,
        E::RemovedOld,
        E::SyncedRemovedCurrent,
        E::SyncedRemovedFresh,
    ];
    let mut told = 0;
    for pair in cross_product() {
        if !removal_events.contains(&pair.e) {
            continue;
        }
        let case = format!("{:?} x {:?}", pair.s, pair.e);
        assert!(
            !matches!(pair.step.effect, Some(Effect::Enqueue(_))),
            "{case}"
        );
        for reply in &pair.step.replies {
            if let ServerMessage::Error { code, .. } = reply {
                assert!(!requeue_codes.contains(code), "{case}: {code:?}");
            }
        }
        if pair.step.replies == vec![ServerMessage::error(ErrorCode::LoadingNotCompleted)] {
            told += 1;
            assert_eq!(pair.step.state, idle_after(Some(claim())), "{case}");
        }
    }
    // InQueue, Loading and Loaded tell it: from the entry (2 shapes each), and from the
    // notice of the current loading session (Loading, Loaded).
    assert_eq!(told, 3 * 2 + 2);
}

/// Goal: an AFK player's session, end to end: it is removed by the timeout while loading,
/// a late copy of the notice changes nothing once it is idle, and a new `enqueue` (a new
/// attempt) is accepted and announced.
#[test]
fn a_removed_player_may_enqueue_again_as_a_new_attempt() {
    let mut ctx = S::Loading.context();
    let removed = step(
        in_loading(CURRENT, false),
        notice_removed(CURRENT),
        &mut ctx,
    );
    assert_eq!(removed.state, idle_after(Some(claim())));
    let late = step(removed.state.clone(), notice_removed(CURRENT), &mut ctx);
    assert_eq!(late.state, removed.state);
    assert!(late.replies.is_empty() && late.effect.is_none());
    let again = step(removed.state, enqueue_request(MODE), &mut ctx);
    assert_eq!(again.state, enqueuing(true));
    assert_eq!(again.effect, Some(Effect::Enqueue(claim())));
    let queued = step(
        again.state,
        Event::Enqueued(Ok(EnqueueOutcome::Enqueued)),
        &mut ctx,
    );
    assert_eq!(queued.replies, vec![ServerMessage::Enqueued {}]);
    // A late removal notice of the loading session it already left is nothing now.
    let stale = step(queued.state, notice_removed(CURRENT), &mut ctx);
    assert_eq!(stale.state, in_queue(MODE));
    assert!(stale.replies.is_empty() && stale.effect.is_none());
}

/// Goal: a session whose lease the keeper fenced while the session was busy (an effect held
/// by a stalled Redis connection, its `LeaseLost` notice queued behind the outcome) does not
/// act on whatever comes next: in every live state that holds the lease, every event but the
/// connection's end becomes the loss - `session_lost` once, the state's own cleanup, the
/// connection closes - so a resync outcome that finds the entry gone re-enqueues nothing.
/// Unfenced, that outcome still re-enqueues (the repair stays); a session without a lease,
/// and `Closed` / `Shutdown`, pass unchanged. (Regression of seed 843 with stalls.)
#[test]
fn a_fenced_session_stops_before_its_next_step() {
    let entry_gone = Event::Synced(Ok(None));
    for s in S::ALL {
        let live = s != S::Disconnecting;
        for e in E::ALL {
            let mut run = Run::new(s);
            let event = fenced(e.event(), true, &run.ctx);
            let ends = matches!(e, E::Closed | E::Shutdown);
            if s.lease() != LeaseHold::Held || ends {
                assert_eq!(event, e.event(), "{s:?} {e:?}");
                continue;
            }
            let step = step(run.state.clone(), event, &mut run.ctx);
            if !live {
                assert_eq!(step, Step::stay(State::Disconnecting), "{s:?} {e:?}");
                continue;
            }
            assert_eq!(step.state, State::Disconnecting, "{s:?} {e:?}");
            let lost = vec![ServerMessage::error(ErrorCode::SessionLost)];
            assert_eq!(step.replies, lost, "{s:?} {e:?}");
            assert_eq!(step.effect, s.cleanup(), "{s:?} {e:?}");
            assert_eq!(step.close, Some(Close::SessionLost), "{s:?} {e:?}");
        }
    }
    let mut run = Run::new(S::InQueue);
    let event = fenced(entry_gone, false, &run.ctx);
    let (_, effect) = run.feed(event);
    assert_eq!(effect, Some(Effect::Enqueue(claim())), "the repair stays");
}
