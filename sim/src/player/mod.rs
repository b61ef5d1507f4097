//! Simulated players: real WebSocket clients over turmoil TCP, each following a
//! [`Behavior`], recording what it sends and receives for the oracle and the trace.
//!
//! Every player behaves like a real client on top of its behavior: when its connection is
//! lost it reconnects (to another server) and enqueues again; when the service is briefly
//! unavailable it retries. Disruptive actions happen only before the world heals.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use match_server::limits;
use match_server::protocol::{ErrorCode, ServerMessage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

mod duplicate;

use crate::flow::FlowKind;
use crate::oracle::{ClientEvent, Oracle};
use crate::scenario::{Behavior, HEALED_LOADING_MAX_MS, PlayerPlan};
use crate::seams::{sim_elapsed_ms, uuid_from};
use crate::trace::{Source, TraceLog};

/// The port every server instance listens on.
pub const SERVER_PORT: u16 = 8080;

/// Frames a flooding player sends in one write: more than the burst allowance and the
/// consecutive rate-limited frames after which the server closes the connection.
const FLOOD_FRAMES: usize = 45;
const _: () = assert!(
    FLOOD_FRAMES > (limits::DEFAULT_MESSAGE_BURST + limits::MAX_RATE_LIMITED_IN_A_ROW) as usize,
    "a flood must outlast the burst and the rate-limited frames the server tolerates"
);

/// A client that hears nothing (not even a ping) for this long treats the connection as dead,
/// as real clients do; the simulated servers ping every 2 s.
const SILENCE_LIMIT_MS: u64 = 5_000;

/// Everything one player needs.
pub struct Player {
    /// Index in the scenario (for logs).
    pub index: usize,
    /// The player id, stable across reconnects.
    pub id: Uuid,
    /// The signed token the player connects with (its id, signed by the world's secret).
    pub token: String,
    /// What the scenario asks of it.
    pub plan: PlayerPlan,
    /// The client host it runs on.
    pub host: String,
    /// Server host names.
    pub servers: Vec<String>,
    /// Its game mode.
    pub mode: String,
    /// The mode a `switches_mode` player comes back for.
    pub other_mode: String,
    /// When the world heals: no disruptive action after this (sim ms).
    pub heal_at_ms: u64,
    /// The run's trace.
    pub log: TraceLog,
    /// The run's oracle.
    pub oracle: Rc<RefCell<Oracle>>,
    /// The player's own randomness.
    pub rng: ChaCha8Rng,
}

/// Something the player will do at a scheduled time.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    /// Send `enqueue`, `burst` times in one write.
    Enqueue { burst: u8 },
    /// Send `loading_complete`: `times` times, after one for a wrong session if asked.
    Complete {
        loading: Uuid,
        times: u8,
        wrong_first: bool,
    },
    /// Close the connection; come back after `reconnect_after_ms` unless `for_good`.
    Disconnect {
        for_good: bool,
        reconnect_after_ms: u64,
    },
    /// Send malformed frames, then enqueue.
    Garbage,
    /// Enqueue as a player other than the token's.
    Spoof,
    /// Send far more frames at once than the rate limit allows.
    Flood,
    /// Open a second connection for this player on another server.
    Duplicate,
}

/// How one connection ended.
enum Ending {
    /// The player closed its socket and left for good.
    ForGood,
    /// Come back after this long; `closed` when the player closed its socket itself (the
    /// server saw a close), false when the connection was lost or went silent.
    Reconnect {
        /// When to come back (ms).
        after_ms: u64,
        /// Whether the client closed the socket.
        closed: bool,
    },
}

/// What the player believes, to decide its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Idle,
    Waiting,
    Loading(Uuid),
}

/// A player's WebSocket over turmoil TCP.
pub type Ws = WebSocketStream<turmoil::net::TcpStream>;

/// Opens a WebSocket to `host` as the bearer of `token`, within two seconds.
pub async fn connect_ws(host: &str, token: &str) -> Option<Ws> {
    let connect = async {
        let stream = turmoil::net::TcpStream::connect((host, SERVER_PORT))
            .await
            .ok()?;
        let mut request = format!("ws://{host}:{SERVER_PORT}/ws")
            .into_client_request()
            .ok()?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        request.headers_mut().insert(AUTHORIZATION, bearer);
        // Frames are small; tungstenite's 128 KiB default buffer would dominate the run.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1_024);
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .ok()
            .map(|(ws, _)| ws)
    };
    tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .ok()
        .flatten()
}

impl Player {
    fn note(&self, text: String) {
        self.log.note(
            &self.host,
            Source::Client,
            format!("P{} {text}", self.index),
        );
    }

    fn observe(&self, event: ClientEvent) {
        self.oracle
            .borrow_mut()
            .client_event(self.id, sim_elapsed_ms(), event);
    }

    /// Tells the oracle the client wrote `frames` data frames now (the server's rate limit
    /// and idle timer are judged against them).
    fn sent(&self, frames: usize) {
        let frames = u32::try_from(frames).unwrap_or(u32::MAX);
        self.observe(ClientEvent::SentFrames { frames });
    }

    /// A connection that ended without the client closing it: come back soon.
    fn lost(&mut self) -> Ending {
        Ending::Reconnect {
            after_ms: self.rng.random_range(300..800),
            closed: false,
        }
    }

    fn before_heal(&self) -> bool {
        sim_elapsed_ms() < self.heal_at_ms
    }

    /// Plays until the run stops: connect, play, reconnect when the connection is lost.
    pub async fn run(mut self) {
        tokio::time::sleep(Duration::from_millis(u64::from(self.plan.start_ms))).await;
        let mut rounds_left = self.plan.rounds;
        let mut first = true;
        let mut server = usize::from(self.plan.server) % self.servers.len().max(1);
        loop {
            let Some(ws) = self.connect(server).await else {
                server = (server + 1) % self.servers.len().max(1);
                let backoff = self.rng.random_range(200..800);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                continue;
            };
            match self.play(ws, first, &mut rounds_left).await {
                Ending::ForGood => {
                    self.observe(ClientEvent::Disconnected {
                        for_good: true,
                        closed: true,
                    });
                    self.note("leaves for good".into());
                    return;
                }
                Ending::Reconnect { after_ms, closed } => {
                    let switching = first && closed && self.plan.behavior == Behavior::SwitchesMode;
                    if switching {
                        self.switch_mode();
                    }
                    // Some players give up when their connection breaks during the faults;
                    // their entries must then die with their lease, never be matched.
                    if self.before_heal() && self.plan.quits_on_loss && !switching {
                        self.observe(ClientEvent::Disconnected {
                            for_good: true,
                            closed,
                        });
                        self.note("gives up after losing the connection".into());
                        return;
                    }
                    self.observe(ClientEvent::Disconnected {
                        for_good: false,
                        closed,
                    });
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                }
            }
            first = false;
            server = self.rng.random_range(0..self.servers.len().max(1));
        }
    }

    /// A `switches_mode` player comes back for the other mode (the oracle follows).
    fn switch_mode(&mut self) {
        std::mem::swap(&mut self.mode, &mut self.other_mode);
        self.note(format!("switches to {}", self.mode));
        self.observe(ClientEvent::SwitchedMode {
            mode: self.mode.clone(),
        });
    }

    async fn connect(&mut self, server: usize) -> Option<Ws> {
        let host = self.servers.get(server)?.clone();
        let ws = connect_ws(&host, &self.token).await;
        match &ws {
            Some(_) => {
                self.note(format!("connected to {host}"));
                self.log.player_connected(self.index, &host);
                self.observe(ClientEvent::Connected {
                    server: host.clone(),
                });
            }
            None => self.note(format!("cannot connect to {host}")),
        }
        ws
    }

    /// The actions to start a connection with.
    fn opening(&mut self, first: bool, rounds_left: u8) -> Vec<(Instant, Action)> {
        let now = Instant::now();
        let mut actions = Vec::new();
        let behavior = self.plan.behavior;
        let action_at = now + Duration::from_millis(u64::from(self.plan.action_ms));
        let prelude = match behavior {
            Behavior::Garbage => Some(Action::Garbage),
            Behavior::SpoofedId => Some(Action::Spoof),
            Behavior::Flood => Some(Action::Flood),
            _ => None,
        };
        if let Some(prelude) = prelude.filter(|_| first) {
            // The enqueue follows once the server has answered the prelude.
            actions.push((now, prelude));
            if rounds_left > 0 {
                actions.push((
                    now + Duration::from_millis(300),
                    Action::Enqueue { burst: 1 },
                ));
            }
        } else if rounds_left > 0 {
            let burst = if first && behavior == Behavior::EnqueueBurst {
                2 + (self.plan.action_ms % 2) as u8
            } else {
                1
            };
            actions.push((now, Action::Enqueue { burst }));
        }
        if first && self.before_heal() {
            match behavior {
                Behavior::EnqueueThenDisconnect => {
                    actions.push((
                        action_at,
                        Action::Disconnect {
                            for_good: true,
                            reconnect_after_ms: 0,
                        },
                    ));
                }
                Behavior::DuplicateSession => actions.push((action_at, Action::Duplicate)),
                Behavior::Reconnect | Behavior::SwitchesMode => {
                    let after = 200 + u64::from(self.plan.action_ms % 800);
                    actions.push((
                        action_at,
                        Action::Disconnect {
                            for_good: false,
                            reconnect_after_ms: after,
                        },
                    ));
                }
                _ => {}
            }
        }
        actions
    }

    /// Plays on one connection until it ends.
    async fn play(&mut self, mut ws: Ws, first: bool, rounds_left: &mut u8) -> Ending {
        let mut actions = self.opening(first, *rounds_left);
        let mut view = View::Idle;
        let mut last_heard = Instant::now();
        loop {
            actions.sort_by_key(|(at, _)| *at);
            let next_at = actions.first().map(|(at, _)| *at);
            let silence_at = last_heard + Duration::from_millis(SILENCE_LIMIT_MS);
            let wake = tokio::select! {
                biased;
                frame = ws.next() => Some(frame),
                () = sleep_until(next_at) => None,
                () = tokio::time::sleep_until(silence_at) => {
                    self.note("hears nothing from the server; reconnects".into());
                    return self.lost();
                }
            };
            if matches!(wake, Some(Some(Ok(_)))) {
                last_heard = Instant::now();
            }
            match wake {
                Some(Some(Ok(Message::Text(text)))) => {
                    let Ok(message) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
                        continue;
                    };
                    self.note(format!("<- {}", describe(&message)));
                    self.log
                        .player_frame(self.index, FlowKind::FrameOut, || describe(&message));
                    self.observe(ClientEvent::Received(message.clone()));
                    self.react(&message, &mut view, &mut actions, rounds_left);
                }
                Some(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    self.observe(ClientEvent::ClosedByServer { code });
                    self.note(format!("closed by server (code {code})"));
                    self.log.player_frame(self.index, FlowKind::Close, || {
                        format!("closed by server (code {code})")
                    });
                    return self.lost();
                }
                Some(Some(Ok(_))) => {}
                Some(Some(Err(_)) | None) => {
                    self.note("connection lost".into());
                    return self.lost();
                }
                None => {
                    if actions.is_empty() {
                        continue;
                    }
                    let (_, action) = actions.remove(0);
                    if let Some(ending) = self.act(&mut ws, action).await {
                        return ending;
                    }
                }
            }
        }
    }

    /// Follows a server frame: schedules loading completion, retries, next rounds.
    fn react(
        &mut self,
        message: &ServerMessage,
        view: &mut View,
        actions: &mut Vec<(Instant, Action)>,
        rounds_left: &mut u8,
    ) {
        let now = Instant::now();
        let behavior = self.plan.behavior;
        match message {
            ServerMessage::Enqueued {} => *view = View::Waiting,
            ServerMessage::StartLoading { loading_session_id } => {
                *view = View::Loading(*loading_session_id);
                // A slow loader races the loading timeout only while faults may happen.
                let loading_ms = if self.before_heal() {
                    self.plan.loading_ms
                } else {
                    self.plan.loading_ms.min(HEALED_LOADING_MAX_MS)
                };
                let loading_after = Duration::from_millis(u64::from(loading_ms));
                if behavior == Behavior::DisconnectDuringLoading && self.before_heal() {
                    let at = now
                        + Duration::from_millis(u64::from(
                            self.plan.action_ms % (self.plan.loading_ms + 1),
                        ));
                    actions.push((
                        at,
                        Action::Disconnect {
                            for_good: true,
                            reconnect_after_ms: 0,
                        },
                    ));
                } else if behavior != Behavior::NeverCompletes {
                    let times = if behavior == Behavior::CompletesTwice {
                        2
                    } else {
                        1
                    };
                    let wrong_first = behavior == Behavior::WrongSession;
                    actions.push((
                        now + loading_after,
                        Action::Complete {
                            loading: *loading_session_id,
                            times,
                            wrong_first,
                        },
                    ));
                }
            }
            ServerMessage::MatchFound { .. } => {
                *view = View::Idle;
                *rounds_left = rounds_left.saturating_sub(1);
                if *rounds_left > 0 {
                    actions.push((
                        now + Duration::from_millis(300),
                        Action::Enqueue { burst: 1 },
                    ));
                }
            }
            ServerMessage::Dequeued {} => *view = View::Idle,
            ServerMessage::Error {
                code: ErrorCode::LoadingNotCompleted,
                ..
            } => self.removed_from_queue(view, actions, rounds_left),
            ServerMessage::Error { code, .. } => {
                self.react_error(*code, view, actions, *rounds_left)
            }
        }
    }

    /// `loading_not_completed`: the loading timeout took the player out of the queue. An
    /// AFK player's every attempt ends this way, so each one counts against its rounds and
    /// it stops coming back; whoever still has rounds enqueues again - a new attempt.
    fn removed_from_queue(
        &mut self,
        view: &mut View,
        actions: &mut Vec<(Instant, Action)>,
        rounds_left: &mut u8,
    ) {
        *view = View::Idle;
        actions.retain(|(_, action)| !matches!(action, Action::Complete { .. }));
        if self.plan.behavior == Behavior::NeverCompletes {
            *rounds_left = rounds_left.saturating_sub(1);
        }
        if *rounds_left > 0 && !has_enqueue(actions) {
            let again = Instant::now() + Duration::from_millis(300);
            actions.push((again, Action::Enqueue { burst: 1 }));
        }
    }

    fn react_error(
        &mut self,
        code: ErrorCode,
        view: &mut View,
        actions: &mut Vec<(Instant, Action)>,
        rounds_left: u8,
    ) {
        let retry_at = Instant::now() + Duration::from_millis(self.rng.random_range(200..700));
        match code {
            ErrorCode::LoadingCancelled
            | ErrorCode::LoadingTimeout
            | ErrorCode::NoServerAvailable
            | ErrorCode::AllocationFailed
            | ErrorCode::AllocationTimeout => {
                *view = View::Waiting;
                actions.retain(|(_, action)| !matches!(action, Action::Complete { .. }));
            }
            ErrorCode::ServiceUnavailable => match *view {
                View::Loading(loading) => {
                    actions.push((
                        retry_at,
                        Action::Complete {
                            loading,
                            times: 1,
                            wrong_first: false,
                        },
                    ));
                }
                View::Idle | View::Waiting => {
                    *view = View::Idle;
                    if rounds_left > 0 && !has_enqueue(actions) {
                        actions.push((retry_at, Action::Enqueue { burst: 1 }));
                    }
                }
            },
            ErrorCode::PlayerBusy | ErrorCode::QueueFull => {
                *view = View::Idle;
                if rounds_left > 0 && !has_enqueue(actions) {
                    actions.push((retry_at, Action::Enqueue { burst: 1 }));
                }
            }
            _ => {}
        }
    }

    /// Performs one scheduled action; `Some` when the connection ends.
    async fn act(&mut self, ws: &mut Ws, action: Action) -> Option<Ending> {
        match action {
            Action::Enqueue { burst } => {
                let frame = enqueue_frame(self.id, &self.mode);
                self.note(format!("-> enqueue x{burst}"));
                self.log.player_frame(self.index, FlowKind::FrameIn, || {
                    format!("{frame} x{burst}")
                });
                self.sent(usize::from(burst));
                for _ in 0..burst {
                    self.observe(ClientEvent::SentEnqueue);
                    let _ = ws.feed(Message::Text(frame.clone().into())).await;
                }
                let _ = ws.flush().await;
            }
            Action::Complete {
                loading,
                times,
                wrong_first,
            } => {
                if wrong_first {
                    let other = uuid_from(&mut self.rng);
                    self.send_text(
                        ws,
                        format!(r#"{{"type":"loading_complete","loading_session_id":"{other}"}}"#),
                    )
                    .await;
                }
                for _ in 0..times {
                    self.sent(1);
                    self.observe(ClientEvent::SentLoadingComplete(loading));
                    self.note(format!("-> loading_complete {loading}"));
                    self.log.player_frame(self.index, FlowKind::FrameIn, || {
                        format!("loading_complete {loading}")
                    });
                    let frame = format!(
                        r#"{{"type":"loading_complete","loading_session_id":"{loading}"}}"#
                    );
                    let _ = ws.send(Message::Text(frame.into())).await;
                }
            }
            Action::Disconnect {
                for_good,
                reconnect_after_ms,
            } => {
                self.note(if for_good {
                    "disconnects".into()
                } else {
                    "disconnects to reconnect".into()
                });
                self.log
                    .player_frame(self.index, FlowKind::Close, || "close (disconnects)".into());
                let _ = ws.close(None).await;
                return Some(if for_good {
                    Ending::ForGood
                } else {
                    Ending::Reconnect {
                        after_ms: reconnect_after_ms,
                        closed: true,
                    }
                });
            }
            Action::Garbage => {
                for frame in [
                    "{not json".to_owned(),
                    r#"{"type":"fly"}"#.to_owned(),
                    r#"{"type":"enqueue","player_id":"nope","game_mode":"Normal_1v1"}"#.to_owned(),
                    enqueue_frame(self.id, "NoSuchMode"),
                ] {
                    if frame.contains("\"enqueue\"") {
                        self.observe(ClientEvent::SentEnqueue);
                    }
                    self.send_text(ws, frame).await;
                }
                self.sent(1);
                let _ = ws.send(Message::Binary(vec![0u8, 1, 2].into())).await;
            }
            Action::Spoof => {
                let other = uuid_from(&mut self.rng);
                self.observe(ClientEvent::SentEnqueue);
                let frame = enqueue_frame(other, &self.mode);
                self.send_text(ws, frame).await;
            }
            Action::Flood => {
                self.note(format!("-> {FLOOD_FRAMES} dequeue frames at once"));
                self.log.player_frame(self.index, FlowKind::FrameIn, || {
                    format!("{FLOOD_FRAMES} dequeue frames at once")
                });
                self.sent(FLOOD_FRAMES);
                for _ in 0..FLOOD_FRAMES {
                    let _ = ws.feed(Message::Text(r#"{"type":"dequeue"}"#.into())).await;
                }
                let _ = ws.flush().await;
            }
            Action::Duplicate => {
                let host = self
                    .servers
                    .get((self.index + 1) % self.servers.len().max(1))
                    .cloned();
                if let Some(host) = host {
                    let second = duplicate::Duplicate {
                        index: self.index,
                        client_host: self.host.clone(),
                        token: self.token.clone(),
                        host,
                        log: self.log.clone(),
                        player: self.id,
                        oracle: self.oracle.clone(),
                    };
                    tokio::task::spawn_local(second.run());
                }
            }
        }
        None
    }

    async fn send_text(&self, ws: &mut Ws, frame: String) {
        self.sent(1);
        self.note(format!("-> {frame}"));
        self.log
            .player_frame(self.index, FlowKind::FrameIn, || frame.clone());
        let _ = ws.send(Message::Text(frame.into())).await;
    }
}

/// An `enqueue` frame for `player` in `mode`.
fn enqueue_frame(player: Uuid, mode: &str) -> String {
    format!(r#"{{"type":"enqueue","player_id":"{player}","game_mode":"{mode}"}}"#)
}

fn has_enqueue(actions: &[(Instant, Action)]) -> bool {
    actions
        .iter()
        .any(|(_, action)| matches!(action, Action::Enqueue { .. }))
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A short rendering of a server frame for the trace.
pub fn describe(message: &ServerMessage) -> String {
    match message {
        ServerMessage::Enqueued {} => "enqueued".into(),
        ServerMessage::Dequeued {} => "dequeued".into(),
        ServerMessage::StartLoading { loading_session_id } => {
            format!("start_loading {loading_session_id}")
        }
        ServerMessage::MatchFound {
            session_id,
            server_address,
        } => format!("match_found {session_id} at {server_address}"),
        ServerMessage::Error { code, .. } => format!("error {}", code.as_str()),
    }
}
