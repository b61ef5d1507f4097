//! The session state machine, as a pure function: (state, event) -> (state, replies, effect).
//!
//! `Idle -> Enqueuing -> InQueue -> InLoading -> Idle (after match_found)`, any state ->
//! `Disconnecting`. `enqueue` is accepted only in `Idle`, and the state is `Enqueuing` before
//! the effect that touches Redis is even returned, so a burst of frames cannot slip through.
//! Every (state, event) pair has a written outcome; an illegal request gets an error reply.
//!
//! One live session per player: a session acts for one player only, and only while it holds
//! that player's lease (see `matchmaker::lease_keeper`). `Acquiring` runs the acquisition:
//! an authenticated session enters it on `Connected`, before any frame is read; a dev-mode
//! session at its first valid `enqueue`, which binds the connection to that player. A lease
//! held elsewhere ends the connection (`session_exists`), and so does a lease lost later
//! (`session_lost`); an `enqueue` for any other player is refused (`player_mismatch`).

use std::collections::VecDeque;

use uuid::Uuid;

use crate::matchmaker::EffectError;
use crate::matchmaker::entry::{Place, PlayerEntry};
use crate::matchmaker::session_port::{CompleteOutcome, EnqueueOutcome, LeaseOutcome};
use crate::notify::NoticeEvent;
use crate::probe::Repair;
use crate::protocol::{ClientRequest, ErrorCode, ServerMessage};

/// The player a session acts for and the mode it queues in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The player.
    pub player: Uuid,
    /// The game mode.
    pub mode: String,
}

/// Where the session is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not queued. `last` remembers the last claim so a disconnect can clean up after an
    /// effect whose outcome was unknown.
    Idle {
        /// The last claim, if any.
        last: Option<Claim>,
    },
    /// The player lease acquisition runs; `enqueue` is the claim to enqueue once it is held
    /// (a dev-mode session's first `enqueue`), `None` at an authenticated connect.
    Acquiring {
        /// The player whose lease is taken.
        player: Uuid,
        /// What to enqueue once the lease is held.
        enqueue: Option<Claim>,
    },
    /// The enqueue effect runs. `announce` is false when the session re-enqueues on its own
    /// after Redis lost its entry (the client already got `enqueued`).
    Enqueuing {
        /// What is being enqueued.
        claim: Claim,
        /// Whether to send `enqueued` on success.
        announce: bool,
    },
    /// Waiting in the queue.
    InQueue {
        /// The queued player and mode.
        claim: Claim,
    },
    /// The leave effect runs (dequeue, possibly out of a loading session).
    Dequeuing {
        /// The player leaving.
        claim: Claim,
        /// The loading session being left, if any.
        loading: Option<Uuid>,
    },
    /// In a loading session; `loaded` once `loading_complete` was accepted.
    InLoading {
        /// The player and mode.
        claim: Claim,
        /// The loading session.
        loading: Uuid,
        /// Whether this player already reported `loading_complete`.
        loaded: bool,
    },
    /// The loading_complete effect runs.
    Completing {
        /// The player and mode.
        claim: Claim,
        /// The loading session.
        loading: Uuid,
    },
    /// The connection is ending; only the cleanup effect remains.
    Disconnecting,
}

/// Something that happened to the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The connection is open; fed once, before any frame is read.
    Connected,
    /// A valid client request.
    Request(ClientRequest),
    /// A frame that could not be parsed; the code to answer with.
    BadFrame(ErrorCode),
    /// The enqueue effect finished.
    Enqueued(Result<EnqueueOutcome, EffectError>),
    /// The leave effect finished.
    Left(Result<(), EffectError>),
    /// The loading_complete effect finished.
    Completed(Result<CompleteOutcome, EffectError>),
    /// The resync effect read the player's entry.
    Synced(Result<Option<PlayerEntry>, EffectError>),
    /// The player lease acquisition finished.
    LeaseAcquired(Result<LeaseOutcome, EffectError>),
    /// A notice for this session's player (`LeaseLost` included: the renewal found the
    /// lease gone).
    Notice(NoticeEvent),
    /// Time to compare the local state with Redis.
    ResyncDue,
    /// The client went away (close frame, error, idle timeout, oversized frame).
    Closed,
    /// The server is shutting down.
    Shutdown,
}

/// A Redis effect the session task must run; its outcome comes back as an [`Event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Enqueue the claim.
    Enqueue(Claim),
    /// Remove every trace of the claim (queue entry or loading session place).
    Leave {
        /// Whose traces.
        claim: Claim,
        /// The loading session the session believes it is in.
        loading: Option<Uuid>,
    },
    /// Report loading complete.
    Complete {
        /// Who.
        claim: Claim,
        /// For which loading session.
        loading: Uuid,
    },
    /// Read the player's entry.
    Resync {
        /// Whose entry.
        player: Uuid,
    },
    /// Take the player's lease for this session.
    AcquireLease {
        /// Whose lease.
        player: Uuid,
    },
}

/// Why the machine itself ends the connection (the session task closes it with the
/// matching close code after running the step's cleanup effect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Another session holds the player's lease (`session_exists`, close 4009).
    SessionExists,
    /// The session's lease ran out or was taken (`session_lost`, close 4010).
    SessionLost,
    /// The lease could not be taken at connect: Redis failed (`service_unavailable`,
    /// close 1013 "try again later").
    Unavailable,
}

/// Whether the session holds its player's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseHold {
    /// Not taken yet, held elsewhere, or lost.
    NotHeld,
    /// Held: renewed by the instance, released when the session ends.
    Held,
    /// An acquisition's outcome is unknown (Redis failed): not renewed, but released when
    /// the session ends in case it was set; the next `enqueue` acquires again.
    Unknown,
}

/// The outcome of one transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The new state.
    pub state: State,
    /// Frames to send, in order.
    pub replies: Vec<ServerMessage>,
    /// The effect to run next, if any.
    pub effect: Option<Effect>,
    /// Set when the machine ends the connection: close with this reason once the effect
    /// (the cleanup) has run.
    pub close: Option<Close>,
}

/// What the machine needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct Context {
    /// This session's token; entries owned by another token are not ours.
    pub owner: Uuid,
    /// Configured mode names.
    pub modes: Vec<String>,
    /// Loading sessions this session already went through, so a late duplicate notice
    /// cannot restart one (bounded).
    pub recent_loadings: VecDeque<Uuid>,
    /// The player this connection acts for: the token's from the start, or in dev mode the
    /// player of its first valid `enqueue`. Never changes once set.
    pub player: Option<Uuid>,
    /// Whether the session holds the player's lease.
    pub lease: LeaseHold,
}

/// How many past loading sessions a session remembers.
const RECENT_LOADINGS: usize = 16;

impl Context {
    /// A context for the session `owner`, not yet bound to a player (dev mode).
    pub fn new(owner: Uuid, modes: Vec<String>) -> Self {
        Self {
            owner,
            modes,
            recent_loadings: VecDeque::new(),
            player: None,
            lease: LeaseHold::NotHeld,
        }
    }

    /// The context of an authenticated session: bound to `player` from the start.
    #[must_use]
    pub fn for_player(mut self, player: Uuid) -> Self {
        self.player = Some(player);
        self
    }

    /// The player whose lease this session holds, for renewal.
    pub fn held_lease(&self) -> Option<Uuid> {
        self.player.filter(|_| self.lease == LeaseHold::Held)
    }

    /// The player whose lease the session must release when it ends (held, or maybe set).
    pub fn lease_to_release(&self) -> Option<Uuid> {
        self.player.filter(|_| self.lease != LeaseHold::NotHeld)
    }

    fn remember(&mut self, loading: Uuid) {
        if !self.recent_loadings.contains(&loading) {
            if self.recent_loadings.len() >= RECENT_LOADINGS {
                self.recent_loadings.pop_front();
            }
            self.recent_loadings.push_back(loading);
        }
    }

    fn seen(&self, loading: Uuid) -> bool {
        self.recent_loadings.contains(&loading)
    }
}

impl Step {
    fn stay(state: State) -> Self {
        Self {
            state,
            replies: Vec::new(),
            effect: None,
            close: None,
        }
    }

    fn to(state: State) -> Self {
        Self::stay(state)
    }

    fn reply(mut self, message: ServerMessage) -> Self {
        self.replies.push(message);
        self
    }

    fn error(self, code: ErrorCode) -> Self {
        self.reply(ServerMessage::error(code))
    }

    fn run(mut self, effect: Effect) -> Self {
        self.effect = Some(effect);
        self
    }

    fn close(mut self, close: Close) -> Self {
        self.close = Some(close);
        self
    }
}

impl State {
    /// The claim whose Redis entry may exist, for lease renewal and notice routing.
    pub fn claim(&self) -> Option<&Claim> {
        match self {
            Self::Enqueuing { claim, .. }
            | Self::InQueue { claim }
            | Self::Dequeuing { claim, .. }
            | Self::InLoading { claim, .. }
            | Self::Completing { claim, .. } => Some(claim),
            Self::Idle { .. } | Self::Acquiring { .. } | Self::Disconnecting => None,
        }
    }

    /// A short name for logs and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle { .. } => "idle",
            Self::Acquiring { .. } => "acquiring",
            Self::Enqueuing { .. } => "enqueuing",
            Self::InQueue { .. } => "in_queue",
            Self::Dequeuing { .. } => "dequeuing",
            Self::InLoading { .. } => "in_loading",
            Self::Completing { .. } => "completing",
            Self::Disconnecting => "disconnecting",
        }
    }
}

/// The transition function.
pub fn step(state: State, event: Event, ctx: &mut Context) -> Step {
    match (state, event) {
        (State::Disconnecting, _) => Step::stay(State::Disconnecting),
        (state, Event::BadFrame(code)) => Step::stay(state).error(code),
        (state, Event::Closed) => leave_for_good(state),
        (state, Event::Shutdown) => leave_for_good(state).error(ErrorCode::ShuttingDown),
        (state, Event::Notice(NoticeEvent::LeaseLost))
        | (state, Event::Completed(Ok(CompleteOutcome::LeaseLost))) => lease_lost(state, ctx),
        (state, Event::Request(ClientRequest::Enqueue { player_id, .. }))
            if ctx.player.is_some_and(|player| player != player_id) =>
        {
            Step::stay(state).error(ErrorCode::PlayerMismatch)
        }
        (State::Idle { last }, event) => idle(last, event, ctx),
        (State::Acquiring { player, enqueue }, event) => acquiring(player, enqueue, event, ctx),
        (State::Enqueuing { claim, announce }, event) => enqueuing(claim, announce, event),
        (State::InQueue { claim }, event) => in_queue(claim, event, ctx),
        (State::Dequeuing { claim, loading }, event) => dequeuing(claim, loading, event),
        (
            State::InLoading {
                claim,
                loading,
                loaded,
            },
            event,
        ) => in_loading(claim, loading, loaded, event, ctx),
        (State::Completing { claim, loading }, event) => completing(claim, loading, event),
    }
}

/// The event the machine takes for `event` when the lease keeper says the session's lease
/// is `fenced` (declared lost, or it may lapse before the next renewal lands): the loss
/// comes first. A session task busy with a long effect (a Redis connection that held its
/// requests) reads its notices only after that effect's outcome, so a queued `LeaseLost`
/// would otherwise come after a step that acts again - a re-enqueue, an `enqueued` - for a
/// player whose lease may be gone. Only a session that holds its lease has one to lose;
/// the end of a connection keeps its own cleanup.
pub fn fenced(event: Event, lease_fenced: bool, ctx: &Context) -> Event {
    match event {
        Event::Closed | Event::Shutdown => event,
        _ if lease_fenced && ctx.lease == LeaseHold::Held => Event::Notice(NoticeEvent::LeaseLost),
        _ => event,
    }
}

/// Disconnect or shutdown: clean up whatever the state implies, then end.
fn leave_for_good(state: State) -> Step {
    let effect = match state {
        State::Idle { last: Some(claim) }
        | State::Enqueuing { claim, .. }
        | State::InQueue { claim }
        | State::Dequeuing {
            claim,
            loading: None,
        } => Some(Effect::Leave {
            claim,
            loading: None,
        }),
        State::Dequeuing {
            claim,
            loading: Some(loading),
        }
        | State::InLoading { claim, loading, .. }
        | State::Completing { claim, loading } => Some(Effect::Leave {
            claim,
            loading: Some(loading),
        }),
        State::Idle { last: None } | State::Acquiring { .. } | State::Disconnecting => None,
    };
    Step {
        effect,
        ..Step::to(State::Disconnecting)
    }
}

/// The renewal found the lease gone: stop acting for the player - clean up what the state
/// implies (only entries this session owns are touched) and end the connection. A session
/// that holds no lease has nothing to lose.
fn lease_lost(state: State, ctx: &mut Context) -> Step {
    if ctx.lease != LeaseHold::Held {
        return Step::stay(state);
    }
    ctx.lease = LeaseHold::NotHeld;
    leave_for_good(state)
        .error(ErrorCode::SessionLost)
        .close(Close::SessionLost)
}

/// Starts taking the lease of `player`, then enqueues `enqueue` if any.
fn acquire(player: Uuid, enqueue: Option<Claim>) -> Step {
    Step::to(State::Acquiring { player, enqueue }).run(Effect::AcquireLease { player })
}

fn acquiring(player: Uuid, enqueue: Option<Claim>, event: Event, ctx: &mut Context) -> Step {
    match event {
        Event::LeaseAcquired(Ok(LeaseOutcome::Acquired)) => {
            ctx.lease = LeaseHold::Held;
            match enqueue {
                Some(claim) => Step::to(State::Enqueuing {
                    claim: claim.clone(),
                    announce: true,
                })
                .run(Effect::Enqueue(claim)),
                None => Step::to(State::Idle { last: None }),
            }
        }
        Event::LeaseAcquired(Ok(LeaseOutcome::HeldElsewhere)) => {
            ctx.lease = LeaseHold::NotHeld;
            Step::to(State::Disconnecting)
                .error(ErrorCode::SessionExists)
                .close(Close::SessionExists)
        }
        // The lease may or may not be set (released at the end in case it is); nothing was
        // enqueued. A dev-mode enqueue that waited for the lease is refused and the next one
        // retries. An authenticated connection that cannot hold its lease ends at once, so
        // an open authenticated connection always holds it; the client reconnects later.
        Event::LeaseAcquired(Err(_)) => {
            ctx.lease = LeaseHold::Unknown;
            match enqueue {
                Some(_) => {
                    Step::to(State::Idle { last: None }).error(ErrorCode::ServiceUnavailable)
                }
                None => Step::to(State::Disconnecting)
                    .error(ErrorCode::ServiceUnavailable)
                    .close(Close::Unavailable),
            }
        }
        Event::Request(request) => refuse(State::Acquiring { player, enqueue }, &request),
        _ => Step::stay(State::Acquiring { player, enqueue }),
    }
}

/// The answer to a request the current state does not accept.
fn refuse(state: State, request: &ClientRequest) -> Step {
    let code = match (request, &state) {
        (ClientRequest::Enqueue { .. }, _) => ErrorCode::AlreadyQueued,
        (ClientRequest::Dequeue, _) => ErrorCode::NotInQueue,
        (ClientRequest::LoadingComplete { .. }, State::Completing { .. }) => {
            ErrorCode::AlreadyLoaded
        }
        (ClientRequest::LoadingComplete { .. }, _) => ErrorCode::NotLoading,
    };
    Step::stay(state).error(code)
}

/// Whether an entry read by resync belongs to this session, and where it says we are.
fn owned_place(entry: Option<PlayerEntry>, ctx: &Context) -> Option<Place> {
    entry
        .filter(|entry| entry.owner == ctx.owner)
        .map(|entry| entry.place)
}

fn idle(last: Option<Claim>, event: Event, ctx: &mut Context) -> Step {
    let state = State::Idle { last: last.clone() };
    match event {
        // An authenticated session takes its lease before anything else.
        Event::Connected => match ctx.player {
            Some(player) if ctx.lease != LeaseHold::Held => acquire(player, None),
            _ => Step::stay(state),
        },
        // The player is the connection's own (`step` refused any other already).
        Event::Request(ClientRequest::Enqueue {
            player_id,
            game_mode,
        }) => {
            if !ctx.modes.contains(&game_mode) {
                return Step::stay(state).error(ErrorCode::UnknownGameMode);
            }
            let claim = Claim {
                player: player_id,
                mode: game_mode,
            };
            if ctx.lease == LeaseHold::Held {
                return Step::to(State::Enqueuing {
                    claim: claim.clone(),
                    announce: true,
                })
                .run(Effect::Enqueue(claim));
            }
            // Dev mode's first enqueue binds the connection to its player.
            ctx.player = Some(player_id);
            acquire(player_id, Some(claim))
        }
        Event::Request(request) => refuse(state, &request),
        // A start_loading while idle means Redis may hold a place we do not want: check.
        Event::Notice(NoticeEvent::StartLoading { .. }) => match last {
            Some(claim) => Step::stay(state).run(Effect::Resync {
                player: claim.player,
            }),
            None => Step::stay(state),
        },
        Event::Synced(Ok(entry)) => {
            let place = owned_place(entry.clone(), ctx);
            let mode = entry.map(|e| e.mode);
            match (last.clone(), place, mode) {
                (Some(claim), Some(Place::Queued), Some(mode)) => {
                    let claim = Claim { mode, ..claim };
                    Step::stay(state).run(Effect::Leave {
                        claim,
                        loading: None,
                    })
                }
                (Some(claim), Some(Place::Loading { loading }), Some(mode)) => {
                    let claim = Claim { mode, ..claim };
                    Step::stay(state).run(Effect::Leave {
                        claim,
                        loading: Some(loading),
                    })
                }
                _ => Step::stay(state),
            }
        }
        _ => Step::stay(state),
    }
}

fn enqueuing(claim: Claim, announce: bool, event: Event) -> Step {
    let enqueued = |claim: Claim| {
        let step = Step::to(State::InQueue { claim });
        if announce {
            step.reply(ServerMessage::Enqueued {})
        } else {
            step
        }
    };
    match event {
        Event::Enqueued(Ok(EnqueueOutcome::Enqueued)) => enqueued(claim),
        Event::Enqueued(Ok(EnqueueOutcome::AlreadyQueued { mode })) => {
            enqueued(Claim { mode, ..claim })
        }
        // Already loading: the start_loading notice may be lost; ask Redis.
        Event::Enqueued(Ok(EnqueueOutcome::AlreadyLoading { mode })) => {
            let player = claim.player;
            enqueued(Claim { mode, ..claim }).run(Effect::Resync { player })
        }
        Event::Enqueued(Ok(EnqueueOutcome::Taken | EnqueueOutcome::Busy)) => {
            Step::to(State::Idle { last: None }).error(ErrorCode::PlayerBusy)
        }
        Event::Enqueued(Ok(EnqueueOutcome::Full)) => {
            Step::to(State::Idle { last: None }).error(ErrorCode::QueueFull)
        }
        Event::Enqueued(Err(_)) => Step::to(State::Idle {
            last: Some(claim.clone()),
        })
        .error(ErrorCode::ServiceUnavailable)
        .run(Effect::Leave {
            claim,
            loading: None,
        }),
        Event::Request(request) => refuse(State::Enqueuing { claim, announce }, &request),
        _ => Step::stay(State::Enqueuing { claim, announce }),
    }
}

fn in_queue(claim: Claim, event: Event, ctx: &mut Context) -> Step {
    let player = claim.player;
    match event {
        Event::Request(ClientRequest::Dequeue) => Step::to(State::Dequeuing {
            claim: claim.clone(),
            loading: None,
        })
        .run(Effect::Leave {
            claim,
            loading: None,
        }),
        Event::Request(request) => refuse(State::InQueue { claim }, &request),
        Event::Notice(NoticeEvent::StartLoading { loading }) if !ctx.seen(loading) => {
            start_loading(claim, loading, ctx)
        }
        // Requeued from a loading session this session never announced: it ended before its
        // start_loading arrived (a slow reply held the creator's notice). The player is in
        // the queue, as the session is; remembering the session makes its late start_loading
        // a stale notice, ignored, instead of a trip through a dead loading session.
        Event::Notice(NoticeEvent::Requeued { loading, .. }) if !ctx.seen(loading) => {
            ctx.remember(loading);
            Step::stay(State::InQueue { claim })
        }
        // A removal from a loading session this session never announced (its start_loading
        // was lost), or a late notice of an old one: the entry says which.
        Event::Notice(NoticeEvent::Removed { loading, .. }) if !ctx.seen(loading) => {
            Step::stay(State::InQueue { claim }).run(Effect::Resync { player })
        }
        Event::Notice(NoticeEvent::MatchFound { .. } | NoticeEvent::Resync) | Event::ResyncDue => {
            Step::stay(State::InQueue { claim }).run(Effect::Resync { player })
        }
        Event::Synced(Ok(entry)) => match owned_place(entry, ctx) {
            Some(Place::Queued) => Step::stay(State::InQueue { claim }),
            Some(Place::Loading { loading }) => resume_loading(claim, loading, ctx),
            Some(Place::Removed { code, .. }) => removed(claim, code),
            _ => Step::to(State::Enqueuing {
                claim: claim.clone(),
                announce: false,
            })
            .run(Effect::Enqueue(claim)),
        },
        _ => Step::stay(State::InQueue { claim }),
    }
}

/// Redis says the player is in `loading`: announce it, unless the client already heard of
/// it (at most one `start_loading` per loading session), in which case follow silently.
fn resume_loading(claim: Claim, loading: Uuid, ctx: &mut Context) -> Step {
    if ctx.seen(loading) {
        Step::to(State::InLoading {
            claim,
            loading,
            loaded: false,
        })
    } else {
        start_loading(claim, loading, ctx)
    }
}

fn start_loading(claim: Claim, loading: Uuid, ctx: &mut Context) -> Step {
    ctx.remember(loading);
    Step::to(State::InLoading {
        claim,
        loading,
        loaded: false,
    })
    .reply(ServerMessage::StartLoading {
        loading_session_id: loading,
    })
}

fn dequeuing(claim: Claim, loading: Option<Uuid>, event: Event) -> Step {
    match event {
        // Even when Redis failed, the entry is no longer renewed and expires with its lease.
        Event::Left(_) => {
            Step::to(State::Idle { last: Some(claim) }).reply(ServerMessage::Dequeued {})
        }
        Event::Request(request) => refuse(State::Dequeuing { claim, loading }, &request),
        _ => Step::stay(State::Dequeuing { claim, loading }),
    }
}

fn in_loading(claim: Claim, loading: Uuid, loaded: bool, event: Event, ctx: &mut Context) -> Step {
    let player = claim.player;
    let state = State::InLoading {
        claim: claim.clone(),
        loading,
        loaded,
    };
    match event {
        Event::Request(ClientRequest::Dequeue) => Step::to(State::Dequeuing {
            claim: claim.clone(),
            loading: Some(loading),
        })
        .run(Effect::Leave {
            claim,
            loading: Some(loading),
        }),
        Event::Request(ClientRequest::LoadingComplete { loading_session_id }) => {
            if loading_session_id != loading {
                Step::stay(state).error(ErrorCode::WrongLoadingSession)
            } else if loaded {
                Step::stay(state).error(ErrorCode::AlreadyLoaded)
            } else {
                Step::to(State::Completing {
                    claim: claim.clone(),
                    loading,
                })
                .run(Effect::Complete { claim, loading })
            }
        }
        Event::Request(request) => refuse(state, &request),
        // Another loading session already: the notice of why this one ended is still on its
        // way (or lost). The entry knows the reason; ask it before telling the client.
        Event::Notice(NoticeEvent::StartLoading { loading: other }) => {
            if other == loading || ctx.seen(other) {
                Step::stay(state)
            } else {
                Step::stay(state).run(Effect::Resync { player })
            }
        }
        Event::Notice(NoticeEvent::MatchFound {
            loading: done,
            session_id,
            server_address,
        }) => {
            if done == loading {
                matched(claim, session_id, server_address)
            } else {
                Step::stay(state).run(Effect::Resync { player })
            }
        }
        Event::Notice(NoticeEvent::Requeued {
            loading: ended,
            code,
        }) if ended == loading => Step::to(State::InQueue { claim }).error(code),
        Event::Notice(NoticeEvent::Removed {
            loading: ended,
            code,
        }) if ended == loading => removed(claim, code),
        // Removed from a loading session this session never announced: ours ended and a
        // notice was lost on the way; the entry tells what to say.
        Event::Notice(NoticeEvent::Removed { loading: ended, .. }) if !ctx.seen(ended) => {
            Step::stay(state).run(Effect::Resync { player })
        }
        Event::Notice(NoticeEvent::Resync) | Event::ResyncDue => {
            Step::stay(state).run(Effect::Resync { player })
        }
        Event::Synced(Ok(entry)) => reconcile_loading(claim, loading, loaded, entry, ctx),
        _ => Step::stay(state),
    }
}

/// The loading session ended (for `reason`) and the player is already in another one.
fn moved_to(claim: Claim, next: Uuid, reason: ErrorCode, ctx: &mut Context) -> Step {
    let step = start_loading(claim, next, ctx);
    let mut replies = vec![ServerMessage::error(reason)];
    replies.extend(step.replies);
    Step { replies, ..step }
}

/// Why `loading` ended, as the entry recorded it; `loading_cancelled` when it does not say.
fn requeue_reason(entry: Option<&PlayerEntry>, loading: Uuid) -> ErrorCode {
    entry
        .and_then(|entry| entry.last_requeue)
        .filter(|requeue| requeue.loading == loading)
        .map_or(ErrorCode::LoadingCancelled, |requeue| requeue.code)
}

/// A loading timeout took the player out of the queue (it did not load): tell the client
/// `code`, which is never a "back in the queue" code. The claim stays as `last`, so a
/// disconnect deletes the entry that records the removal.
fn removed(claim: Claim, code: ErrorCode) -> Step {
    Step::to(State::Idle { last: Some(claim) }).error(code)
}

fn matched(claim: Claim, session_id: Uuid, server_address: String) -> Step {
    Step::to(State::Idle { last: Some(claim) }).reply(ServerMessage::MatchFound {
        session_id,
        server_address,
    })
}

/// Compares an `InLoading` session with its entry and repairs what a lost notice broke.
fn reconcile_loading(
    claim: Claim,
    loading: Uuid,
    loaded: bool,
    entry: Option<PlayerEntry>,
    ctx: &mut Context,
) -> Step {
    let entry = entry.filter(|entry| entry.owner == ctx.owner);
    let reason = requeue_reason(entry.as_ref(), loading);
    match entry.map(|entry| entry.place) {
        Some(Place::Loading { loading: now }) if now == loading => Step::stay(State::InLoading {
            claim,
            loading,
            loaded,
        }),
        Some(Place::Loading { loading: now }) if !ctx.seen(now) => {
            moved_to(claim, now, reason, ctx)
        }
        Some(Place::Loading { loading: now }) => resume_loading(claim, now, ctx),
        Some(Place::Queued) => Step::to(State::InQueue { claim }).error(reason),
        // Out of the queue, from this loading session or one whose announcement was lost.
        Some(Place::Removed { code, .. }) => removed(claim, code),
        Some(Place::Matched {
            loading: done,
            session_id,
            server_address,
        }) if done == loading => matched(claim, session_id, server_address),
        _ => Step::to(State::Enqueuing {
            claim: claim.clone(),
            announce: false,
        })
        .error(ErrorCode::LoadingCancelled)
        .run(Effect::Enqueue(claim)),
    }
}

fn completing(claim: Claim, loading: Uuid, event: Event) -> Step {
    let player = claim.player;
    let back = |loaded: bool| State::InLoading {
        claim: claim.clone(),
        loading,
        loaded,
    };
    match event {
        Event::Completed(Ok(outcome)) if outcome.is_ready() => Step::to(back(true)),
        Event::Completed(Ok(CompleteOutcome::NotMember | CompleteOutcome::Gone)) => {
            Step::to(back(false)).run(Effect::Resync { player })
        }
        Event::Completed(Err(_)) => Step::to(back(false)).error(ErrorCode::ServiceUnavailable),
        Event::Request(request) => refuse(State::Completing { claim, loading }, &request),
        _ => Step::stay(State::Completing { claim, loading }),
    }
}

/// What a resync repaired: the step that followed reading the entry (`Synced`) in state
/// `from` changed the session's view, which a notice of the primary path should have
/// changed before. `None` when the view held (nothing was repaired). Observation only: the
/// session task reports it to the probe seam, the machine never reads it.
pub fn repair_of(from: &State, entry: Option<&PlayerEntry>, step: &Step) -> Option<Repair> {
    let announced = |loading: Uuid| {
        step.replies.iter().any(|reply| {
            matches!(reply, ServerMessage::StartLoading { loading_session_id } if *loading_session_id == loading)
        })
    };
    let entry_loading = || match entry.map(|entry| &entry.place) {
        Some(Place::Removed { loading, .. } | Place::Matched { loading, .. }) => Some(*loading),
        _ => None,
    };
    let believed = match from {
        State::InLoading { loading, .. } => Some(*loading),
        _ => None,
    };
    match (from, &step.state) {
        (State::Idle { .. }, _) => step
            .effect
            .as_ref()
            .filter(|effect| matches!(effect, Effect::Leave { .. }))
            .map(|_| Repair::StrayPlace),
        (State::InQueue { .. } | State::InLoading { .. }, State::InLoading { loading, .. })
            if believed != Some(*loading) =>
        {
            Some(if announced(*loading) {
                Repair::MissedLoading {
                    loading: *loading,
                    left: believed,
                }
            } else {
                Repair::FollowedLoading { loading: *loading }
            })
        }
        (State::InLoading { loading, .. }, State::InQueue { .. }) => {
            Some(Repair::MissedRequeue { loading: *loading })
        }
        (State::InQueue { .. } | State::InLoading { .. }, State::Idle { .. }) => {
            match entry.map(|entry| &entry.place) {
                Some(Place::Matched { loading, .. }) => {
                    Some(Repair::MissedMatch { loading: *loading })
                }
                _ => entry_loading().map(|loading| Repair::MissedRemoval { loading }),
            }
        }
        (State::InQueue { .. } | State::InLoading { .. }, State::Enqueuing { .. }) => {
            Some(Repair::EntryLost)
        }
        _ => None,
    }
}

/// The relations every step's result keeps, whatever the state and event: the first one
/// `step` (taken with `ctx`, as the step left it) breaks, by name, and how. The session task
/// checks every step with [`check!`](crate::check!); the unit tests check every (state,
/// event) pair.
pub fn broken_relation(step: &Step, ctx: &Context) -> Option<(&'static str, String)> {
    let state = &step.state;
    if step.close.is_some() && *state != State::Disconnecting {
        let detail = format!("a closing step lands in {}", state.name());
        return Some(("closing_step_disconnects", detail));
    }
    if let Some(claim) = state.claim() {
        if ctx.player != Some(claim.player) {
            let detail = format!("{} claims another player", state.name());
            return Some(("claim_is_the_sessions_player", detail));
        }
        if ctx.lease != LeaseHold::Held {
            let detail = format!("{} with the lease {:?}", state.name(), ctx.lease);
            return Some(("claim_needs_the_lease", detail));
        }
    }
    if let State::InLoading { loading, .. } | State::Completing { loading, .. } = state
        && !ctx.seen(*loading)
    {
        let detail = format!("{} in a loading session it never announced", state.name());
        return Some(("loading_was_announced", detail));
    }
    match &step.effect {
        Some(effect) if !effect_fits(effect, state, ctx) => {
            let detail = format!("{effect:?} in {}", state.name());
            Some(("effect_fits_the_state", detail))
        }
        _ => None,
    }
}

/// Whether `effect` is one `state` runs: the transitional state of its own effect, or a
/// cleanup or resync for the session's own player.
fn effect_fits(effect: &Effect, state: &State, ctx: &Context) -> bool {
    let own = |player: Uuid| ctx.player == Some(player);
    match (effect, state) {
        (
            Effect::Enqueue(claim),
            State::Enqueuing {
                claim: enqueuing, ..
            },
        ) => claim == enqueuing,
        (
            Effect::Complete { claim, loading },
            State::Completing {
                claim: completing,
                loading: current,
            },
        ) => claim == completing && loading == current,
        (
            Effect::AcquireLease { player },
            State::Acquiring {
                player: acquiring, ..
            },
        ) => player == acquiring,
        (
            Effect::Leave { claim, .. },
            State::Idle { .. } | State::Dequeuing { .. } | State::Disconnecting,
        ) => own(claim.player),
        (Effect::Resync { player }, State::Idle { .. } | State::InQueue { .. })
        | (Effect::Resync { player }, State::InLoading { .. }) => own(*player),
        _ => false,
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
