//! The shared client-protocol model: what each client has been told, followed as a user
//! would follow it. Invariants read it; none of them changes it.

use std::collections::{BTreeMap, BTreeSet};

use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

/// What a client has been told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// Not queued.
    Idle,
    /// Told `enqueued`, waiting.
    Waiting,
    /// Told `start_loading`; `completed` once it sent `loading_complete`.
    Loading {
        /// The loading session.
        loading: Uuid,
        /// Whether the client reported completion.
        completed: bool,
    },
}

/// What a client did or saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Connected (a new connection) to the server host `server`.
    Connected {
        /// The server host of the connection.
        server: String,
    },
    /// Sent `enqueue`.
    SentEnqueue,
    /// Sent `dequeue`.
    SentDequeue,
    /// Sent `loading_complete` for this loading session.
    SentLoadingComplete(Uuid),
    /// Wrote `frames` data frames in one go on the current connection: every data frame
    /// the client sends, whatever its kind (the kind's own event, if any, comes too), so
    /// the server's rate limit and idle timer can be judged against what it was sent.
    SentFrames {
        /// How many data frames.
        frames: u32,
    },
    /// The server closed the connection with this close code (the `Disconnected` that
    /// follows ends the connection).
    ClosedByServer {
        /// The close frame's code (0 when the frame had none).
        code: u16,
    },
    /// Received a frame.
    Received(ServerMessage),
    /// The connection ended; `for_good` when the player will not come back. `closed` when
    /// the client itself closed the socket (the server sees the close), false when the
    /// connection was lost or the client went silent.
    Disconnected {
        /// Whether the player leaves for good.
        for_good: bool,
        /// Whether the client closed the socket itself.
        closed: bool,
    },
    /// The player comes back for another game mode (the `switches_mode` behaviour): it
    /// counts as waiting in that mode from now on.
    SwitchedMode {
        /// The new mode.
        mode: String,
    },
    /// The frame that decided the fate of the player's second connection (the
    /// `duplicate_session` behaviour), which the server must refuse with `session_exists`.
    DuplicateReceived {
        /// The server host of the second connection.
        server: String,
        /// When it opened (sim ms).
        opened_ms: u64,
        /// The frame.
        message: ServerMessage,
    },
}

/// Codes after which a loading player is back in the queue.
pub const REQUEUE_CODES: [ErrorCode; 5] = [
    ErrorCode::LoadingCancelled,
    ErrorCode::LoadingTimeout,
    ErrorCode::NoServerAvailable,
    ErrorCode::AllocationFailed,
    ErrorCode::AllocationTimeout,
];

/// One player's view, as the oracle follows it.
#[derive(Clone, Debug)]
pub struct ClientModel {
    /// What the client believes.
    pub state: ClientState,
    /// Whether a connection is open.
    pub connected: bool,
    /// The client host the player runs on.
    pub client_host: String,
    /// The server host of the current (or last) connection.
    pub server: Option<String>,
    /// When the current connection opened (sim ms).
    pub connected_at_ms: u64,
    /// Frames received on the current connection.
    pub frames_on_connection: u32,
    /// `enqueue` frames sent and not yet answered, on the current connection.
    pub pending_enqueues: u32,
    /// Loading sessions announced to this player, ever.
    pub announced: BTreeSet<Uuid>,
    /// Game sessions announced to this player, ever.
    pub matches: BTreeSet<Uuid>,
    /// The game session of the last `match_found`, until the client enqueues again.
    pub last_match: Option<Uuid>,
    /// When the player left for good, if it did.
    pub left_at_ms: Option<u64>,
    /// Whether the player completes loading sessions (counts for the liveness bound).
    pub cooperative: bool,
    /// Its mode.
    pub mode: String,
    /// Since when the client has been waiting (sim ms).
    pub waiting_since_ms: u64,
    /// Every event of the player, in order, with its sim time: the timeline the checks of
    /// cause and time read.
    pub events: Vec<(u64, ClientEvent)>,
    /// Every change of [`Self::state`], in order, with its sim time (starting `Idle` at 0).
    pub changes: Vec<(u64, ClientState)>,
}

/// Every client's model.
#[derive(Clone, Debug, Default)]
pub struct Clients {
    /// Models by player.
    pub models: BTreeMap<Uuid, ClientModel>,
    /// When a client last did or saw anything (sim ms).
    pub last_event_ms: u64,
}

impl Clients {
    /// Declares a player before it acts.
    pub fn add(&mut self, player: Uuid, mode: &str, client_host: &str, cooperative: bool) {
        self.models.insert(
            player,
            ClientModel {
                state: ClientState::Idle,
                connected: false,
                client_host: client_host.to_owned(),
                server: None,
                connected_at_ms: 0,
                frames_on_connection: 0,
                pending_enqueues: 0,
                announced: BTreeSet::new(),
                matches: BTreeSet::new(),
                last_match: None,
                left_at_ms: None,
                cooperative,
                mode: mode.to_owned(),
                waiting_since_ms: 0,
                events: Vec::new(),
                changes: vec![(0, ClientState::Idle)],
            },
        );
    }

    /// The model of `player`.
    pub fn get(&self, player: Uuid) -> Option<&ClientModel> {
        self.models.get(&player)
    }

    /// Follows one event of `player` (after the invariants saw it with the state before).
    pub fn follow(&mut self, player: Uuid, at_ms: u64, event: &ClientEvent) {
        // A second connection's verdict changes no view: it does not delay the rest.
        if matches!(event, ClientEvent::DuplicateReceived { .. }) {
            return;
        }
        self.last_event_ms = self.last_event_ms.max(at_ms);
        let Some(model) = self.models.get_mut(&player) else {
            return;
        };
        let before = model.state.clone();
        model.follow(at_ms, event);
        if model.state != ClientState::Waiting {
            model.waiting_since_ms = at_ms;
        }
        if model.state != before {
            model.changes.push((at_ms, model.state.clone()));
        }
        model.events.push((at_ms, event.clone()));
    }
}

impl ClientModel {
    fn follow(&mut self, at_ms: u64, event: &ClientEvent) {
        match event {
            ClientEvent::Connected { server } => {
                self.connected = true;
                self.left_at_ms = None;
                self.pending_enqueues = 0;
                self.server = Some(server.clone());
                self.connected_at_ms = at_ms;
                self.frames_on_connection = 0;
            }
            ClientEvent::SentEnqueue => {
                self.pending_enqueues += 1;
                self.last_match = None;
            }
            ClientEvent::SentDequeue
            | ClientEvent::DuplicateReceived { .. }
            | ClientEvent::SentFrames { .. }
            | ClientEvent::ClosedByServer { .. } => {}
            ClientEvent::SwitchedMode { mode } => mode.clone_into(&mut self.mode),
            ClientEvent::SentLoadingComplete(loading) => {
                if let ClientState::Loading {
                    loading: current,
                    completed,
                } = &mut self.state
                    && current == loading
                {
                    *completed = true;
                }
            }
            ClientEvent::Received(message) => {
                self.frames_on_connection += 1;
                self.received(message);
            }
            ClientEvent::Disconnected { for_good, .. } => {
                self.connected = false;
                self.state = ClientState::Idle;
                if *for_good {
                    self.left_at_ms = Some(at_ms);
                }
            }
        }
    }

    fn received(&mut self, message: &ServerMessage) {
        match message {
            ServerMessage::Enqueued {} => {
                self.pending_enqueues = self.pending_enqueues.saturating_sub(1);
                self.state = ClientState::Waiting;
            }
            ServerMessage::StartLoading { loading_session_id } => {
                self.announced.insert(*loading_session_id);
                self.state = ClientState::Loading {
                    loading: *loading_session_id,
                    completed: false,
                };
            }
            ServerMessage::MatchFound { session_id, .. } => {
                self.matches.insert(*session_id);
                self.last_match = Some(*session_id);
                self.state = ClientState::Idle;
            }
            ServerMessage::Dequeued {} => self.state = ClientState::Idle,
            ServerMessage::Error { code, .. } => self.received_error(*code),
        }
    }

    fn received_error(&mut self, code: ErrorCode) {
        match code {
            code if REQUEUE_CODES.contains(&code) => self.state = ClientState::Waiting,
            ErrorCode::LoadingNotCompleted | ErrorCode::SessionExists | ErrorCode::SessionLost => {
                self.state = ClientState::Idle;
            }
            ErrorCode::AlreadyQueued
            | ErrorCode::UnknownGameMode
            | ErrorCode::InvalidPlayerId
            | ErrorCode::PlayerMismatch => {
                self.pending_enqueues = self.pending_enqueues.saturating_sub(1);
            }
            ErrorCode::PlayerBusy | ErrorCode::QueueFull => {
                self.pending_enqueues = self.pending_enqueues.saturating_sub(1);
                self.state = ClientState::Idle;
            }
            // A failed loading_complete may still have taken effect: the client did send it,
            // so a match_found that follows is legal.
            ErrorCode::ServiceUnavailable if !matches!(self.state, ClientState::Loading { .. }) => {
                self.pending_enqueues = self.pending_enqueues.saturating_sub(1);
                self.state = ClientState::Idle;
            }
            ErrorCode::ShuttingDown => self.state = ClientState::Idle,
            _ => {}
        }
    }

    /// The loading session the client believes it is in.
    pub fn loading(&self) -> Option<Uuid> {
        match self.state {
            ClientState::Loading { loading, .. } => Some(loading),
            _ => None,
        }
    }

    /// What the client believed at `at_ms` (after every event of that instant).
    pub fn state_at(&self, at_ms: u64) -> &ClientState {
        let after = self.changes.partition_point(|(t, _)| *t <= at_ms);
        self.changes
            .get(after.saturating_sub(1))
            .map_or(&ClientState::Idle, |(_, state)| state)
    }

    /// Whether the client believed it loads `loading` at `at_ms`.
    pub fn loads_at(&self, loading: Uuid, at_ms: u64) -> bool {
        matches!(self.state_at(at_ms), ClientState::Loading { loading: l, .. } if *l == loading)
    }

    /// The server host of the connection open at `at_ms`, if one was.
    pub fn server_at(&self, at_ms: u64) -> Option<&str> {
        self.connection_at(at_ms).map(|(server, _)| server)
    }

    /// The connection open at `at_ms`, if one was: its server and when it opened.
    pub fn connection_at(&self, at_ms: u64) -> Option<(&str, u64)> {
        let mut connection = None;
        for (t, event) in &self.events {
            if *t > at_ms {
                break;
            }
            match event {
                ClientEvent::Connected { server } => connection = Some((server.as_str(), *t)),
                ClientEvent::Disconnected { .. } => connection = None,
                _ => {}
            }
        }
        connection
    }

    /// Adds the connection open at `at_ms`, if any, to `path`.
    pub fn add_connection_at(&self, path: &mut super::Path, at_ms: u64) {
        if let Some((server, opened_ms)) = self.connection_at(at_ms) {
            path.add_connection(&self.client_host, server, opened_ms);
        }
    }

    /// Whether a connection of the client ended in `from_ms..=to_ms`.
    pub fn disconnected_within(&self, from_ms: u64, to_ms: u64) -> bool {
        self.events.iter().any(|(t, event)| {
            (from_ms..=to_ms).contains(t) && matches!(event, ClientEvent::Disconnected { .. })
        })
    }

    /// When the client first received a frame matching `wanted` at or after `from_ms`.
    pub fn received_after(
        &self,
        from_ms: u64,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> Option<u64> {
        self.events.iter().find_map(|(t, event)| match event {
            ClientEvent::Received(message) if *t >= from_ms && wanted(message) => Some(*t),
            _ => None,
        })
    }

    /// When the client stopped believing it loads `loading`, at or after `from_ms`.
    pub fn left_loading_after(&self, loading: Uuid, from_ms: u64) -> Option<u64> {
        let start = self.changes.partition_point(|(t, _)| *t < from_ms);
        self.changes.get(start..).and_then(|later| {
            later.iter().find_map(|(t, state)| {
                (!matches!(state, ClientState::Loading { loading: l, .. } if *l == loading))
                    .then_some(*t)
            })
        })
    }
}
