//! One task per WebSocket: reads frames and notices, feeds them to the pure
//! [`machine`], sends its replies and runs its effects one at a time.
//!
//! Effects run to completion before the next frame or notice is read, so the machine never
//! sees two effects in flight; frames wait in the socket meanwhile. The first event is
//! `Connected`, so an authenticated session holds its player lease before it reads a frame.
//! On any exit (close, error, idle timeout, oversized frame, shutdown, a lease held
//! elsewhere or lost) the machine's cleanup effect runs, then the player lease is released.
//!
//! The session owns its state: the machine's state and context live in its [`SessionCell`],
//! which the task alone changes and the notice router and the lease keeper only read
//! (through [`LocalSession`]). Every effect goes through one port, the
//! [`SessionPort`]; every step is checked against the machine's relations
//! ([`machine::broken_relation`]).

pub mod machine;
pub mod rate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use self::machine::{Close, Context, Effect, Event, State, Step};
use self::rate::TokenBucket;
use crate::auth::Identity;
use crate::limits;
use crate::matchmaker::SessionPort;
use crate::metrics::Family;
use crate::notify::{LocalSession, NoticeEvent, SessionNotice};
use crate::probe::{Act, Fact, Repair, RepairRule};
use crate::protocol::{ErrorCode, ServerMessage, parse_client_frame};

/// Why the connection ends, as the close frame tells the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    /// The client was silent past the idle timeout.
    Idle,
    /// A frame exceeded the size limit.
    TooBig,
    /// The client kept sending over its rate limit.
    Flooding,
    /// The server shuts down.
    Shutdown,
    /// The machine ended the connection (the player's lease is held elsewhere, or lost).
    Machine(Close),
}

/// Close code: another connection already plays as this player (`session_exists`).
pub const CLOSE_SESSION_EXISTS: u16 = 4009;
/// Close code: this connection lost its player lease (`session_lost`).
pub const CLOSE_SESSION_LOST: u16 = 4010;

impl Ending {
    fn close_frame(self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            Self::Gone => return None,
            Self::Idle => (CloseCode::Normal, "idle timeout"),
            Self::TooBig => (CloseCode::Size, "frame too large"),
            Self::Flooding => (CloseCode::Policy, "rate limit exceeded"),
            Self::Shutdown => (CloseCode::Away, "server shutting down"),
            Self::Machine(Close::SessionExists) => (
                CloseCode::from(CLOSE_SESSION_EXISTS),
                "session exists for this player",
            ),
            Self::Machine(Close::SessionLost) => {
                (CloseCode::from(CLOSE_SESSION_LOST), "player lease lost")
            }
            Self::Machine(Close::Unavailable) => (CloseCode::Again, "service unavailable"),
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

/// What the read side produced.
enum Input {
    /// An event for the machine.
    Event(Event),
    /// Nothing for the machine (ping, pong, a notice for another player, an idle tick).
    Nothing,
    /// The connection must end.
    End(Ending),
}

/// The machine's state and context: the session's own state.
struct Machine {
    /// Where the session is.
    state: State,
    /// What the machine knows about its surroundings.
    ctx: Context,
}

/// A step the machine took, with what the task logs and checks about it.
struct Stepped {
    /// The step.
    step: Step,
    /// The name of the state it left.
    from: &'static str,
    /// Whether the state changed (in any field).
    changed: bool,
    /// The machine relation the step broke, by name, and how (see
    /// [`machine::broken_relation`]).
    broken: Option<(&'static str, String)>,
    /// What the step repaired, when it followed a resync that found the view wrong (see
    /// [`machine::repair_of`]).
    repair: Option<Repair>,
}

/// The session's state, in one place: the session task alone changes it (one step at a
/// time); the notice router and the lease keeper read it through [`LocalSession`].
pub struct SessionCell {
    /// The machine's state and context.
    machine: Mutex<Machine>,
}

impl SessionCell {
    /// A session in `Idle` with the context `ctx`.
    fn new(ctx: Context) -> Self {
        Self {
            machine: Mutex::new(Machine {
                state: State::Idle { last: None },
                ctx,
            }),
        }
    }

    /// Feeds `event` to the machine and adopts the step's state; `lease_fenced` says the
    /// lease keeper wants the session stopped first (see [`machine::fenced`]).
    fn step(&self, event: Event, lease_fenced: bool) -> Option<Stepped> {
        let mut machine = self.machine.lock().ok()?;
        let Machine { state, ctx } = &mut *machine;
        let from = state.name();
        let event = machine::fenced(event, lease_fenced, ctx);
        let synced = match &event {
            Event::Synced(Ok(entry)) => Some(entry.clone()),
            _ => None,
        };
        let step = machine::step(state.clone(), event, ctx);
        let broken = machine::broken_relation(&step, ctx);
        let repair = synced.and_then(|entry| machine::repair_of(state, entry.as_ref(), &step));
        let changed = step.state != *state;
        *state = step.state.clone();
        Some(Stepped {
            step,
            from,
            changed,
            broken,
            repair,
        })
    }

    /// Reads the machine.
    fn read<T>(&self, read: impl FnOnce(&Machine) -> T) -> Option<T> {
        self.machine.lock().ok().map(|machine| read(&machine))
    }
}

impl LocalSession for SessionCell {
    fn claimed_player(&self) -> Option<Uuid> {
        self.read(|machine| machine.state.claim().map(|claim| claim.player))
            .flatten()
    }

    /// The lease is renewed while the session lives: from the moment it disconnects, it is
    /// only released.
    fn held_lease(&self) -> Option<Uuid> {
        self.read(|machine| match machine.state {
            State::Disconnecting => None,
            _ => machine.ctx.held_lease(),
        })
        .flatten()
    }
}

/// The safety net a resync asked for by `event` belongs to (see [`RepairRule`]).
fn resync_rule_of(event: &Event) -> Option<RepairRule> {
    match event {
        Event::ResyncDue => Some(RepairRule::PeriodicResync),
        Event::Notice(NoticeEvent::Resync) => Some(RepairRule::ToldToResync),
        Event::Notice(_) => Some(RepairRule::NoticeResync),
        Event::Enqueued(_) | Event::Completed(_) => Some(RepairRule::OutcomeResync),
        _ => None,
    }
}

/// One session's task state.
struct Session<S> {
    /// The session's effects, lease and registration.
    port: SessionPort,
    /// This session's token.
    owner: Uuid,
    /// The machine's state (shared read-only with the router and the lease keeper).
    cell: Arc<SessionCell>,
    /// Frames to the client.
    sink: SplitSink<WebSocketStream<S>, Message>,
    /// Notices for this session.
    notices: mpsc::Receiver<SessionNotice>,
    /// The client's message rate.
    bucket: TokenBucket,
    /// Rate-limited frames since the last accepted one.
    rate_limited_in_a_row: u32,
    /// When the client was last heard (frame or pong), for the idle timeout.
    last_heard: Instant,
}

/// Runs the session on an accepted WebSocket until it ends; cleans up its Redis state.
/// `identity` is who the upgrade authenticated (or `Anonymous` in dev mode).
pub async fn run<S>(
    ws: WebSocketStream<S>,
    port: SessionPort,
    shutdown: CancellationToken,
    peer: String,
    identity: Identity,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let owner = port.new_owner();
    let span = match identity {
        Identity::Player(player) => tracing::info_span!("session", %owner, %peer, %player),
        Identity::Anonymous => tracing::info_span!("session", %owner, %peer),
    };
    async move {
        tracing::info!("connected");
        port.metrics().add(Family::Connections, "", 1);
        let (sender, notices) = mpsc::channel(limits::SESSION_NOTICE_CAPACITY);
        let settings = port.settings().clone();
        let modes = settings.modes.iter().map(|m| m.name.clone()).collect();
        let ctx = match identity {
            Identity::Player(player) => Context::new(owner, modes).for_player(player),
            Identity::Anonymous => Context::new(owner, modes),
        };
        let cell = Arc::new(SessionCell::new(ctx));
        port.register(owner, sender, cell.clone());
        let (sink, stream) = ws.split();
        let limits = &settings.limits;
        let bucket = TokenBucket::new(limits.messages_per_second, limits.message_burst);
        let mut session = Session {
            port: port.clone(),
            owner,
            cell,
            sink,
            notices,
            bucket,
            rate_limited_in_a_row: 0,
            last_heard: Instant::now(),
        };
        let ending = session.serve(stream, shutdown).await;
        session.finish(ending).await;
        port.unregister(owner);
        port.metrics().add(Family::Connections, "", -1);
        tracing::info!(?ending, "disconnected");
    }
    .instrument(span)
    .await;
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// The main loop; returns why the connection ends.
    async fn serve(
        &mut self,
        mut stream: SplitStream<WebSocketStream<S>>,
        shutdown: CancellationToken,
    ) -> Ending {
        let timing = &self.port.settings().timing;
        // Both first tick one period from now, not at once.
        let mut resync = crate::clock::periodic(timing.resync_interval_ms);
        resync.reset();
        let mut heartbeat = crate::clock::periodic(timing.heartbeat_interval_ms);
        heartbeat.reset();
        // No frame is read before an authenticated session holds its player lease.
        if let Err(ending) = self.handle(Event::Connected).await {
            return ending;
        }
        loop {
            let input = tokio::select! {
                biased;
                () = shutdown.cancelled() => Input::End(Ending::Shutdown),
                frame = stream.next() => self.on_frame(frame),
                Some(notice) = self.notices.recv() => self.on_notice(notice),
                _ = resync.tick() => match self.cell.claimed_player() {
                    Some(_) => Input::Event(Event::ResyncDue),
                    None => Input::Nothing,
                },
                _ = heartbeat.tick() => self.on_heartbeat().await,
            };
            match input {
                Input::Event(event) => {
                    if let Err(ending) = self.handle(event).await {
                        return ending;
                    }
                }
                Input::Nothing => {}
                Input::End(ending) => return ending,
            }
        }
    }

    /// Feeds an event to the machine, then every effect it asks for, until it rests. When
    /// the machine ends the connection, its cleanup effect runs and the ending is returned.
    async fn handle(&mut self, event: Event) -> Result<(), Ending> {
        let mut next = Some(event);
        // Why the pending resync runs, for the repair its outcome may report.
        let mut resync_rule = None;
        while let Some(event) = next.take() {
            let rule = resync_rule_of(&event);
            let Some(stepped) = self.step(event) else {
                return Err(Ending::Gone);
            };
            if let Some(repair) = stepped.repair {
                self.repaired(resync_rule.unwrap_or(RepairRule::NoticeResync), repair);
            }
            if matches!(stepped.step.effect, Some(Effect::Resync { .. })) {
                resync_rule = rule;
            }
            if let Some(close) = stepped.step.close {
                tracing::info!(?close, "the session ends itself");
                let cleanup = stepped.step.effect.clone();
                // The state is `Disconnecting` now: clean up even if the client is gone.
                let _ = self.apply(stepped).await;
                self.cleanup(cleanup).await;
                return Err(Ending::Machine(close));
            }
            let effect = self.apply(stepped).await?;
            if let Some(effect) = effect {
                next = Some(self.run_effect(effect).await);
            }
        }
        Ok(())
    }

    /// Runs a cleanup effect, whose outcome only matters to the log.
    async fn cleanup(&self, effect: Option<Effect>) {
        if let Some(effect) = effect {
            let outcome = self.run_effect(effect).await;
            if let Event::Left(Err(error)) = outcome {
                tracing::warn!(%error, "cleanup incomplete; the entry expires with its lease");
            }
        }
    }

    /// Feeds `event` to the machine (whose state the cell adopts at once) and checks the
    /// step's relations; `None` if the cell is poisoned (a panic elsewhere), which ends the
    /// session.
    fn step(&self, event: Event) -> Option<Stepped> {
        // Only a session that holds its lease and still lives can be fenced (the cell's
        // `held_lease`); asking the keeper outside the cell's lock.
        let fenced = self
            .cell
            .held_lease()
            .is_some_and(|player| self.port.lease_fenced(self.owner, player));
        let stepped = self.cell.step(event, fenced)?;
        if let Some((relation, detail)) = &stepped.broken {
            crate::check!(self.port.checks(), relation, false, "{detail}");
        }
        Some(stepped)
    }

    /// Logs a step's change of state, sends its replies, and returns its effect.
    async fn apply(&mut self, stepped: Stepped) -> Result<Option<Effect>, Ending> {
        let Stepped {
            step,
            from,
            changed,
            ..
        } = stepped;
        if changed {
            tracing::debug!(from, to = step.state.name(), "state");
        }
        for reply in step.replies {
            self.send(&reply).await.map_err(|()| Ending::Gone)?;
        }
        Ok(step.effect)
    }

    /// Reports an act for `player` to the probe (see [`Fact::Acted`]).
    fn acted(&self, player: Uuid, act: Act) {
        let owner = self.owner;
        self.port.record(Fact::Acted { player, owner, act });
    }

    /// Reports a repair a resync made for this session's player (see [`Fact::Repaired`]).
    fn repaired(&self, rule: RepairRule, what: Repair) {
        if let Some(player) = self.player() {
            self.port.record(Fact::Repaired {
                rule,
                player: Some(player),
                owner: Some(self.owner),
                what,
            });
        }
    }

    /// The player the connection acts for, once bound.
    fn player(&self) -> Option<Uuid> {
        self.cell.read(|machine| machine.ctx.player).flatten()
    }

    /// Runs one effect and turns its outcome into the machine's next event.
    async fn run_effect(&self, effect: Effect) -> Event {
        let port = &self.port;
        let owner = self.owner;
        match effect {
            Effect::Enqueue(claim) => {
                // The client asked for it, or the session repairs an entry Redis lost; the
                // port reports the act before every attempt (an attempt is when it lands).
                let requested = self
                    .cell
                    .read(|m| matches!(m.state, State::Enqueuing { announce: true, .. }))
                    .unwrap_or(false);
                Event::Enqueued(
                    port.enqueue(owner, claim.player, &claim.mode, requested)
                        .await,
                )
            }
            Effect::Leave { claim, loading } => {
                Event::Left(port.leave(owner, claim.player, &claim.mode, loading).await)
            }
            Effect::Complete { claim, loading } => {
                // The port reports the act before every attempt, and sends none once the
                // lease fence is gone; the script refuses one that lands after the lease.
                Event::Completed(
                    port.loading_complete(owner, claim.player, &claim.mode, loading)
                        .await,
                )
            }
            Effect::Resync { player } => Event::Synced(port.read_entry(player).await),
            Effect::AcquireLease { player } => {
                Event::LeaseAcquired(port.acquire_lease(owner, player).await)
            }
        }
    }

    /// Turns one read from the socket into input for the loop.
    fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Input {
        let message = match frame {
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return Input::End(Ending::Gone);
            }
            Some(Err(WsError::Capacity(error))) => {
                tracing::warn!(%error, "oversized frame; closing");
                return Input::End(Ending::TooBig);
            }
            Some(Err(error)) => {
                tracing::info!(%error, "connection error");
                return Input::End(Ending::Gone);
            }
            Some(Ok(message)) => message,
        };
        self.last_heard = Instant::now();
        match message {
            Message::Text(_) | Message::Binary(_) => self.on_data(message),
            Message::Close(_) => Input::End(Ending::Gone),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Input::Nothing,
        }
    }

    /// A data frame: rate limit, then parse.
    fn on_data(&mut self, message: Message) -> Input {
        if !self.bucket.try_take() {
            self.rate_limited_in_a_row = self.rate_limited_in_a_row.saturating_add(1);
            if self.rate_limited_in_a_row > limits::MAX_RATE_LIMITED_IN_A_ROW {
                return Input::End(Ending::Flooding);
            }
            return Input::Event(Event::BadFrame(ErrorCode::RateLimited));
        }
        self.rate_limited_in_a_row = 0;
        let Message::Text(text) = message else {
            return Input::Event(Event::BadFrame(ErrorCode::BinaryNotSupported));
        };
        match parse_client_frame(text.as_str()) {
            Ok(request) => {
                tracing::debug!(?request, "request");
                Input::Event(Event::Request(request))
            }
            Err(error) => Input::Event(Event::BadFrame(error.code)),
        }
    }

    /// A notice is for this session only if it is about the connection's player (every
    /// claim of a session is for that player).
    fn on_notice(&self, notice: SessionNotice) -> Input {
        if self.player() == Some(notice.player) {
            Input::Event(Event::Notice(notice.event))
        } else {
            Input::Nothing
        }
    }

    /// Pings the client, or ends a connection silent past the idle timeout.
    async fn on_heartbeat(&mut self) -> Input {
        let idle_ms = self.port.settings().timing.idle_timeout_ms;
        if self.last_heard.elapsed() >= Duration::from_millis(idle_ms) {
            return Input::End(Ending::Idle);
        }
        let ping = tokio::time::timeout(
            Duration::from_millis(limits::SEND_TIMEOUT_MS),
            self.sink.send(Message::Ping(Vec::new().into())),
        );
        match ping.await {
            Ok(Ok(())) => Input::Nothing,
            _ => Input::End(Ending::Gone),
        }
    }

    /// Sends one frame; `Err` when the connection is gone.
    async fn send(&mut self, message: &ServerMessage) -> Result<(), ()> {
        match (message, self.player()) {
            (ServerMessage::Error { code, .. }, _) => {
                self.port.metrics().incr(Family::Errors, code.as_str());
            }
            (ServerMessage::Enqueued {}, Some(player)) => self.acted(player, Act::ToldEnqueued),
            (ServerMessage::StartLoading { loading_session_id }, Some(player)) => {
                let loading = *loading_session_id;
                self.acted(player, Act::ToldStartLoading { loading });
            }
            _ => {}
        }
        tracing::debug!(?message, "reply");
        let frame = Message::Text(message.to_json().into());
        match tokio::time::timeout(
            Duration::from_millis(limits::SEND_TIMEOUT_MS),
            self.sink.send(frame),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    /// Cleans up Redis state through the machine, then closes the socket.
    async fn finish(&mut self, ending: Ending) {
        let event = if ending == Ending::Shutdown {
            Event::Shutdown
        } else {
            Event::Closed
        };
        // The state is `Disconnecting` from here on: the lease is no longer renewed.
        let step = self.step(event).map(|stepped| stepped.step);
        let (replies, effect) = step.map(|s| (s.replies, s.effect)).unwrap_or_default();
        if ending != Ending::Gone {
            for reply in &replies {
                if self.send(reply).await.is_err() {
                    break;
                }
            }
        }
        self.cleanup(effect).await;
        // After the cleanup, so a reconnect that takes the lease finds the entries gone;
        // before the close frame, so a client that reconnects on it finds the lease free.
        let lease = self.cell.read(|m| m.ctx.lease_to_release()).flatten();
        if let Some(player) = lease {
            self.port.release_lease(self.owner, player).await;
        }
        if let Some(frame) = ending.close_frame() {
            let close = self.sink.send(Message::Close(Some(frame)));
            let _ =
                tokio::time::timeout(Duration::from_millis(limits::SEND_TIMEOUT_MS), close).await;
        }
        let _ = self.sink.close().await;
    }
}
