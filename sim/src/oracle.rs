//! The oracle: the invariants of ARCHITECTURE.md, checked during the run (safety) and after
//! the faults heal and the world runs quiet (liveness).
//!
//! It sees what a user could: each client's message stream, and Redis's data (the fake's,
//! as a [`RedisView`]); and what the servers decided, as typed facts of the probe seam
//! (locks, acts under a player's lease, loading sessions created and ended). A violation
//! names the invariant, the ids and the sim time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use match_server::matchmaker::entry::{Place, PlayerEntry};
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use crate::loading_again::{self, FaultWindow};
use crate::one_session;
use crate::probe::FactRecord;

/// The invariants, numbered as in ARCHITECTURE.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1. Nothing panics, in any task.
    NoPanic,
    /// 2. A player is in at most one place.
    OnePlace,
    /// 3. Every loading session holds exactly the mode's player count, distinct, same mode.
    LoadingComposition,
    /// 4. Each client sees a legal message sequence.
    LegalMessages,
    /// 5. No ghosts: a disconnected player leaves the queue and joins no later match.
    NoGhosts,
    /// 6. A lock has at most one holder at a time.
    LockExclusive,
    /// 7. Every connected player that enqueued is queued, loading or matched.
    NoOneLost,
    /// 8. Enough waiting players and an idle game server lead to a match in time.
    MatchInTime,
    /// 9. Redis holds no loading session or lock past its timeout.
    NoStaleState,
    /// 10. At most one live session acts for a player (every act under its own lease).
    OneSession,
    /// 11. No player is sent through loading again without a cause the trace explains.
    LoadingAgain,
}

impl Invariant {
    /// Every invariant, for summaries.
    pub const ALL: [Self; 11] = [
        Self::NoPanic,
        Self::OnePlace,
        Self::LoadingComposition,
        Self::LegalMessages,
        Self::NoGhosts,
        Self::LockExclusive,
        Self::NoOneLost,
        Self::MatchInTime,
        Self::NoStaleState,
        Self::OneSession,
        Self::LoadingAgain,
    ];

    /// `<number>_<name>`, as the summary and failures print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoPanic => "1_no_panic",
            Self::OnePlace => "2_one_place",
            Self::LoadingComposition => "3_loading_composition",
            Self::LegalMessages => "4_legal_messages",
            Self::NoGhosts => "5_no_ghosts",
            Self::LockExclusive => "6_lock_exclusive",
            Self::NoOneLost => "7_no_one_lost",
            Self::MatchInTime => "8_match_in_time",
            Self::NoStaleState => "9_no_stale_state",
            Self::OneSession => "10_one_session",
            Self::LoadingAgain => "11_loading_again_has_cause",
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// Sim time in ms.
    pub at_ms: u64,
    /// What happened, naming player and session ids.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant {} violated at {} ms: {}",
            self.invariant.name(),
            self.at_ms,
            self.detail
        )
    }
}

/// A loading session as Redis holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadingView {
    /// Its mode.
    pub mode: String,
    /// `loading` or `allocating`.
    pub state: String,
    /// Its deadline (unix ms of the server clock that set it).
    pub deadline_ms: u64,
    /// Its players, in stored order.
    pub players: Vec<Uuid>,
}

/// Redis's matchmaking data at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisView {
    /// Redis's unix time (ms).
    pub now_ms: u64,
    /// Queue members by mode.
    pub queues: BTreeMap<String, BTreeSet<Uuid>>,
    /// Player entries (decodable ones).
    pub entries: BTreeMap<Uuid, PlayerEntry>,
    /// Loading sessions by id.
    pub loadings: BTreeMap<Uuid, LoadingView>,
    /// Locks by mode: remaining time to live (ms), `None` for no expiry.
    pub locks: BTreeMap<String, Option<u64>>,
}

impl RedisView {
    /// Where Redis says `player` is, counting only live entries (a dead entry is garbage that
    /// no script will act on).
    fn places(&self, player: Uuid) -> Vec<String> {
        let mut places = Vec::new();
        if let Some(entry) = self
            .entries
            .get(&player)
            .filter(|e| e.lease_deadline_ms >= self.now_ms)
        {
            if entry.place == Place::Queued
                && self
                    .queues
                    .get(&entry.mode)
                    .is_some_and(|queue| queue.contains(&player))
            {
                places.push(format!("queue {}", entry.mode));
            }
        }
        for (id, loading) in &self.loadings {
            if loading.players.contains(&player) {
                places.push(format!("loading {id}"));
            }
        }
        places
    }

    /// Whether `player` is waiting in `mode` with a live entry.
    fn is_queued(&self, player: Uuid) -> bool {
        self.places(player)
            .iter()
            .any(|place| place.starts_with("queue"))
    }
}

/// What a client has been told, as a user would follow it.
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
    /// Connected (a new connection).
    Connected,
    /// Sent `enqueue`.
    SentEnqueue,
    /// Sent `dequeue`.
    SentDequeue,
    /// Sent `loading_complete` for this loading session.
    SentLoadingComplete(Uuid),
    /// Received a frame.
    Received(ServerMessage),
    /// The connection ended; `for_good` when the player will not come back.
    Disconnected {
        /// Whether the player leaves for good.
        for_good: bool,
    },
}

/// One player's view, followed by the oracle.
#[derive(Clone, Debug)]
struct ClientModel {
    /// What the client believes.
    state: ClientState,
    /// Whether a connection is open.
    connected: bool,
    /// `enqueue` frames sent and not yet answered, on the current connection.
    pending_enqueues: u32,
    /// Loading sessions announced to this player, ever.
    announced: BTreeSet<Uuid>,
    /// Game sessions announced to this player, ever.
    matches: BTreeSet<Uuid>,
    /// When the player left for good, if it did.
    left_at_ms: Option<u64>,
    /// Whether the player completes loading sessions (counts for the liveness bound).
    cooperative: bool,
    /// Its mode.
    mode: String,
    /// Since when the client has been waiting (sim ms).
    waiting_since_ms: u64,
}

/// Codes after which a loading player is back in the queue.
const REQUEUE_CODES: [ErrorCode; 5] = [
    ErrorCode::LoadingCancelled,
    ErrorCode::LoadingTimeout,
    ErrorCode::NoServerAvailable,
    ErrorCode::AllocationFailed,
    ErrorCode::AllocationTimeout,
];

/// A lock acquisition or release, from the service's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEvent {
    /// Sim time.
    pub at_ms: u64,
    /// The mode the lock guards.
    pub mode: String,
    /// The holder's token.
    pub token: String,
    /// `Some(ms the holder may act)` for an acquisition, `None` for a release.
    pub acquired_valid_ms: Option<u64>,
}

/// Tunables of the checks, from the world's timing.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Time a disconnect may take to be processed when its server stays up.
    pub disconnect_grace_ms: u64,
    /// Time after which even a crashed server's entries are dead (lease + sweep).
    pub crash_grace_ms: u64,
    /// Slack for loading deadlines and lock TTLs (sweep interval + tick).
    pub stale_slack_ms: u64,
    /// Host clocks within one step differ by up to this much.
    pub tick_ms: u64,
    /// How far a lease may look expired to Redis yet live to a server: clock skew between
    /// instances plus the time between two inspections.
    pub lease_slack_ms: u64,
    /// Players per match, by mode.
    pub players_per_mode: BTreeMap<String, usize>,
    /// How long enough cooperative players may wait in a healthy world before a match.
    pub match_bound_ms: u64,
}

/// The oracle of one run.
#[derive(Debug)]
pub struct Oracle {
    /// Checking tunables.
    bounds: Bounds,
    /// Player models by id.
    clients: BTreeMap<Uuid, ClientModel>,
    /// When each loading session was first seen.
    first_seen: BTreeMap<Uuid, u64>,
    /// Violations found, in order.
    violations: Vec<Violation>,
    /// When a client last did or saw anything.
    last_client_event_ms: u64,
    /// How many individual checks ran, for the summary.
    pub checks: u64,
}

impl Oracle {
    /// An oracle with `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            clients: BTreeMap::new(),
            first_seen: BTreeMap::new(),
            violations: Vec::new(),
            last_client_event_ms: 0,
            checks: 0,
        }
    }

    /// Declares a player before it acts.
    pub fn add_player(&mut self, player: Uuid, mode: &str, cooperative: bool) {
        self.clients.insert(
            player,
            ClientModel {
                state: ClientState::Idle,
                connected: false,
                pending_enqueues: 0,
                announced: BTreeSet::new(),
                matches: BTreeSet::new(),
                left_at_ms: None,
                cooperative,
                mode: mode.to_owned(),
                waiting_since_ms: 0,
            },
        );
    }

    /// Violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a violation.
    pub fn violate(&mut self, invariant: Invariant, at_ms: u64, detail: String) {
        self.violations.push(Violation {
            invariant,
            at_ms,
            detail,
        });
    }

    /// What the client `player` believes now.
    pub fn client_state(&self, player: Uuid) -> Option<ClientState> {
        self.clients.get(&player).map(|c| c.state.clone())
    }

    /// Follows one client event, checking invariant 4 on every received frame.
    pub fn client_event(&mut self, player: Uuid, at_ms: u64, event: ClientEvent) {
        let Some(mut model) = self.clients.remove(&player) else {
            return;
        };
        self.checks += 1;
        self.last_client_event_ms = self.last_client_event_ms.max(at_ms);
        match event {
            ClientEvent::Connected => {
                model.connected = true;
                model.left_at_ms = None;
                model.pending_enqueues = 0;
            }
            ClientEvent::SentEnqueue => model.pending_enqueues += 1,
            ClientEvent::SentDequeue => {}
            ClientEvent::SentLoadingComplete(loading) => {
                if let ClientState::Loading {
                    loading: current,
                    completed,
                } = &mut model.state
                    && *current == loading
                {
                    *completed = true;
                }
            }
            ClientEvent::Received(message) => self.received(player, at_ms, &mut model, message),
            ClientEvent::Disconnected { for_good } => {
                model.connected = false;
                model.state = ClientState::Idle;
                if for_good {
                    model.left_at_ms = Some(at_ms);
                }
            }
        }
        if model.state != ClientState::Waiting {
            model.waiting_since_ms = at_ms;
        }
        self.clients.insert(player, model);
    }

    /// Checks one received frame against the client's state (invariant 4).
    fn received(
        &mut self,
        player: Uuid,
        at_ms: u64,
        model: &mut ClientModel,
        message: ServerMessage,
    ) {
        let illegal = |oracle: &mut Self, what: String| {
            oracle.violate(
                Invariant::LegalMessages,
                at_ms,
                format!("player {player}: {what}"),
            );
        };
        match message {
            ServerMessage::Enqueued {} => {
                if model.pending_enqueues == 0 {
                    illegal(self, "enqueued without a pending enqueue".into());
                }
                model.pending_enqueues = model.pending_enqueues.saturating_sub(1);
                if model.state != ClientState::Idle {
                    illegal(
                        self,
                        format!("enqueued while {:?} (enqueued twice)", model.state),
                    );
                }
                model.state = ClientState::Waiting;
            }
            ServerMessage::StartLoading { loading_session_id } => {
                if !model.announced.insert(loading_session_id) {
                    illegal(
                        self,
                        format!("second start_loading for loading session {loading_session_id}"),
                    );
                }
                if model.state != ClientState::Waiting {
                    illegal(
                        self,
                        format!("start_loading {loading_session_id} while {:?}", model.state),
                    );
                }
                model.state = ClientState::Loading {
                    loading: loading_session_id,
                    completed: false,
                };
            }
            ServerMessage::MatchFound { session_id, .. } => {
                if !model.matches.insert(session_id) {
                    illegal(
                        self,
                        format!("second match_found for game session {session_id}"),
                    );
                }
                if !matches!(
                    model.state,
                    ClientState::Loading {
                        completed: true,
                        ..
                    }
                ) {
                    illegal(
                        self,
                        format!("match_found {session_id} while {:?}", model.state),
                    );
                }
                model.state = ClientState::Idle;
            }
            ServerMessage::Dequeued {} => model.state = ClientState::Idle,
            ServerMessage::Error { code, .. } => self.received_error(player, at_ms, model, code),
        }
    }

    fn received_error(
        &mut self,
        player: Uuid,
        at_ms: u64,
        model: &mut ClientModel,
        code: ErrorCode,
    ) {
        match code {
            code if REQUEUE_CODES.contains(&code) => {
                if !matches!(model.state, ClientState::Loading { .. }) {
                    self.violate(
                        Invariant::LegalMessages,
                        at_ms,
                        format!("player {player}: {} while {:?}", code.as_str(), model.state),
                    );
                }
                model.state = ClientState::Waiting;
            }
            // Out of the queue: legal for a loading session, or for one whose start_loading
            // never reached this client (it still waits).
            ErrorCode::LoadingNotCompleted => {
                if !matches!(
                    model.state,
                    ClientState::Loading { .. } | ClientState::Waiting
                ) {
                    self.violate(
                        Invariant::LegalMessages,
                        at_ms,
                        format!(
                            "player {player}: loading_not_completed while {:?}",
                            model.state
                        ),
                    );
                }
                model.state = ClientState::Idle;
            }
            ErrorCode::AlreadyQueued
            | ErrorCode::UnknownGameMode
            | ErrorCode::InvalidPlayerId
            | ErrorCode::PlayerMismatch => {
                model.pending_enqueues = model.pending_enqueues.saturating_sub(1);
            }
            ErrorCode::SessionExists | ErrorCode::SessionLost => model.state = ClientState::Idle,
            ErrorCode::PlayerBusy | ErrorCode::QueueFull => {
                model.pending_enqueues = model.pending_enqueues.saturating_sub(1);
                model.state = ClientState::Idle;
            }
            // A failed loading_complete may still have taken effect: the client did send it,
            // so a match_found that follows is legal.
            ErrorCode::ServiceUnavailable => match &mut model.state {
                ClientState::Loading { .. } => {}
                _ => {
                    model.pending_enqueues = model.pending_enqueues.saturating_sub(1);
                    model.state = ClientState::Idle;
                }
            },
            ErrorCode::ShuttingDown => model.state = ClientState::Idle,
            _ => {}
        }
    }

    /// Checks the safety invariants 2, 3 and 5 on a Redis snapshot taken at `at_ms`;
    /// `settled` adds invariant 9 (only once faults have healed and sweeps had time to run).
    pub fn check_redis(&mut self, at_ms: u64, view: &RedisView, settled: bool) {
        self.check_one_place(at_ms, view);
        self.check_loading_composition(at_ms, view);
        self.check_ghosts(at_ms, view);
        if settled {
            self.check_stale(at_ms, view);
        }
    }

    fn check_one_place(&mut self, at_ms: u64, view: &RedisView) {
        let mut players: BTreeSet<Uuid> = view.queues.values().flatten().copied().collect();
        players.extend(
            view.loadings
                .values()
                .flat_map(|l| l.players.iter().copied()),
        );
        for player in players {
            self.checks += 1;
            let places = view.places(player);
            if places.len() > 1 {
                self.violate(
                    Invariant::OnePlace,
                    at_ms,
                    format!("player {player} is in {}", places.join(" and ")),
                );
            }
        }
    }

    fn check_loading_composition(&mut self, at_ms: u64, view: &RedisView) {
        for (id, loading) in &view.loadings {
            self.checks += 1;
            let expected = self.bounds.players_per_mode.get(&loading.mode).copied();
            let distinct: BTreeSet<&Uuid> = loading.players.iter().collect();
            let wrong_mode: Vec<&Uuid> = loading
                .players
                .iter()
                .filter(|p| view.entries.get(p).is_some_and(|e| e.mode != loading.mode))
                .collect();
            if expected != Some(loading.players.len())
                || distinct.len() != loading.players.len()
                || !wrong_mode.is_empty()
            {
                self.violate(
                    Invariant::LoadingComposition,
                    at_ms,
                    format!(
                        "loading session {id} of mode {} holds {:?} (expected {expected:?} distinct players of that mode)",
                        loading.mode, loading.players
                    ),
                );
            }
        }
    }

    fn check_ghosts(&mut self, at_ms: u64, view: &RedisView) {
        let fresh: Vec<(Uuid, LoadingView)> = view
            .loadings
            .iter()
            .filter(|(id, _)| !self.first_seen.contains_key(id))
            .map(|(id, l)| (*id, l.clone()))
            .collect();
        for (id, loading) in fresh {
            self.first_seen.insert(id, at_ms);
            for player in loading.players {
                self.checks += 1;
                let lease = view
                    .entries
                    .get(&player)
                    .map(|entry| entry.lease_deadline_ms);
                if lease.is_none_or(|lease| {
                    lease.saturating_add(self.bounds.lease_slack_ms) < view.now_ms
                }) {
                    self.violate(
                        Invariant::NoGhosts,
                        at_ms,
                        format!("new loading session {id} holds player {player} whose session is gone (lease {lease:?}, now {})", view.now_ms),
                    );
                }
                if let Some(left) = self.left_long_ago(player, at_ms) {
                    self.violate(
                        Invariant::NoGhosts,
                        at_ms,
                        format!(
                            "player {player} left at {left} ms but is in new loading session {id}"
                        ),
                    );
                }
            }
        }
        let queued: Vec<Uuid> = view.queues.values().flatten().copied().collect();
        for player in queued {
            self.checks += 1;
            if let Some(left) = self.left_long_ago(player, at_ms)
                && view.is_queued(player)
            {
                self.violate(
                    Invariant::NoGhosts,
                    at_ms,
                    format!("player {player} left at {left} ms but is still queued"),
                );
            }
        }
    }

    /// When `player` left for good, if that is longer ago than any processing bound.
    fn left_long_ago(&self, player: Uuid, at_ms: u64) -> Option<u64> {
        let left = self.clients.get(&player)?.left_at_ms?;
        (at_ms > left.saturating_add(self.bounds.crash_grace_ms)).then_some(left)
    }

    fn check_stale(&mut self, at_ms: u64, view: &RedisView) {
        for (id, loading) in &view.loadings {
            self.checks += 1;
            if view.now_ms
                > loading
                    .deadline_ms
                    .saturating_add(self.bounds.stale_slack_ms)
            {
                self.violate(
                    Invariant::NoStaleState,
                    at_ms,
                    format!(
                        "loading session {id} is {} ms past its deadline",
                        view.now_ms - loading.deadline_ms
                    ),
                );
            }
        }
        for (mode, ttl) in &view.locks {
            self.checks += 1;
            if ttl.is_none() {
                self.violate(
                    Invariant::NoStaleState,
                    at_ms,
                    format!("lock of {mode} has no expiry"),
                );
            }
        }
    }

    /// Invariant 6 over the lock events of the whole run, in the order they happened: a
    /// holder acquiring a lock while another holder may still act under it (not released,
    /// validity not over) is a violation. Host clocks within one step differ by up to a
    /// tick, so the comparison of times allows that much.
    pub fn check_locks(&mut self, events: &[LockEvent]) {
        let mut holders: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
        for event in events {
            self.checks += 1;
            match event.acquired_valid_ms {
                Some(valid_ms) => {
                    if let Some((holder, until)) = holders.get(event.mode.as_str())
                        && event.at_ms.saturating_add(self.bounds.tick_ms) < *until
                    {
                        let detail = format!(
                            "lock of {} taken by {} while {holder} may act under it until {until} ms",
                            event.mode, event.token
                        );
                        self.violate(Invariant::LockExclusive, event.at_ms, detail);
                    }
                    holders.insert(
                        &event.mode,
                        (&event.token, event.at_ms.saturating_add(valid_ms)),
                    );
                }
                None => {
                    if holders
                        .get(event.mode.as_str())
                        .is_some_and(|(holder, _)| *holder == event.token)
                    {
                        holders.remove(event.mode.as_str());
                    }
                }
            }
        }
    }

    /// Whether the healed world has come to rest, so judging liveness now is as good as at
    /// the end of the quiet phase: no client event for `quiet_ms`, no loading session, and
    /// no mode with enough cooperative players waiting to form a group (those must be given
    /// the full bound, or a stuck queue would go unnoticed).
    pub fn is_at_rest(&self, now_ms: u64, view: &RedisView, quiet_ms: u64) -> bool {
        if now_ms < self.last_client_event_ms.saturating_add(quiet_ms) || !view.loadings.is_empty()
        {
            return false;
        }
        let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
        for model in self.clients.values() {
            if model.connected && model.cooperative && model.state == ClientState::Waiting {
                *waiting.entry(model.mode.as_str()).or_default() += 1;
            }
        }
        let no_group_left = waiting.iter().all(|(mode, count)| {
            self.bounds
                .players_per_mode
                .get(*mode)
                .is_some_and(|need| count < need)
        });
        no_group_left && self.match_findings(now_ms).1.is_empty() && !self.views_differ(view)
    }

    /// Liveness (invariants 7 and 8) at the end of the quiet phase.
    pub fn check_liveness(&mut self, at_ms: u64, view: &RedisView) {
        self.check_match_in_time(at_ms);
        self.check_no_one_lost(at_ms, view);
    }

    /// Invariant 8 at the end of the run's budget: enough cooperative players waiting in a
    /// mode longer than the bound is a violation.
    pub fn check_match_in_time(&mut self, at_ms: u64) {
        let (checks, findings) = self.match_findings(at_ms);
        self.checks += checks;
        self.violations.extend(findings);
    }

    /// Invariant 7: every connected client's view has its counterpart in Redis.
    pub fn check_no_one_lost(&mut self, at_ms: u64, view: &RedisView) {
        let (checks, findings) = self.lost_findings(at_ms, view);
        self.checks += checks;
        self.violations.extend(findings);
    }

    /// Whether some connected client's view differs from Redis now: a notice on its way, or
    /// a stuck player (which waiting never resolves).
    pub fn views_differ(&self, view: &RedisView) -> bool {
        !self.lost_findings(0, view).1.is_empty()
    }

    /// Invariant 7's violations as of now, without recording them, and how many checks
    /// that took.
    fn lost_findings(&self, at_ms: u64, view: &RedisView) -> (u64, Vec<Violation>) {
        let mut findings = Vec::new();
        let mut checks = 0;
        for (player, model) in self.clients.iter().filter(|(_, model)| model.connected) {
            checks += 1;
            if let Some(detail) = lost(*player, &model.state, view) {
                findings.push(Violation {
                    invariant: Invariant::NoOneLost,
                    at_ms,
                    detail,
                });
            }
        }
        (checks, findings)
    }

    /// Invariant 8's violations as of now, without recording them, and how many checks
    /// that took.
    fn match_findings(&self, at_ms: u64) -> (u64, Vec<Violation>) {
        let mut findings = Vec::new();
        let mut checks = 0;
        let mut waiting_by_mode: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for model in self.clients.values().filter(|model| model.connected) {
            if model.state == ClientState::Waiting {
                let counts = waiting_by_mode.entry(model.mode.as_str()).or_default();
                let long =
                    at_ms.saturating_sub(model.waiting_since_ms) > self.bounds.match_bound_ms;
                match (model.cooperative, long) {
                    (true, true) => counts.0 += 1,
                    (false, _) => counts.1 += 1,
                    (true, false) => {}
                }
            }
        }
        for (mode, (cooperative, other)) in waiting_by_mode {
            checks += 1;
            let need = self
                .bounds
                .players_per_mode
                .get(mode)
                .copied()
                .unwrap_or(usize::MAX);
            if other == 0 && cooperative >= need {
                let detail = format!(
                    "{cooperative} players still wait in {mode} (a match needs {need}) after the quiet phase"
                );
                findings.push(Violation {
                    invariant: Invariant::MatchInTime,
                    at_ms,
                    detail,
                });
            }
        }
        (checks, findings)
    }

    /// Invariants 10 and 11 over the service's facts of the whole run; `faults` are the
    /// recorded faults that may end loading sessions by themselves.
    pub fn check_facts(&mut self, records: &[FactRecord], faults: &[FaultWindow]) {
        for (checks, findings) in [
            one_session::check(records),
            loading_again::check(records, faults),
        ] {
            self.checks += checks;
            self.violations.extend(findings);
        }
    }
}

/// Why a connected client's belief has no counterpart in Redis, if it has none.
fn lost(player: Uuid, state: &ClientState, view: &RedisView) -> Option<String> {
    let entry = view
        .entries
        .get(&player)
        .filter(|e| e.lease_deadline_ms >= view.now_ms);
    match state {
        ClientState::Idle => None,
        ClientState::Waiting => {
            let in_loading = entry.is_some_and(|e| matches!(e.place, Place::Loading { .. }));
            (!view.is_queued(player) && !in_loading)
                .then(|| format!("player {player} waits but Redis has it nowhere ({entry:?})"))
        }
        ClientState::Loading { loading, .. } => {
            // A match or requeue whose message is still in flight is consistent too.
            let held = view
                .loadings
                .get(loading)
                .is_some_and(|l| l.players.contains(&player));
            let moved_on = entry.is_some_and(|e| match &e.place {
                Place::Matched { loading: done, .. } | Place::Removed { loading: done, .. } => {
                    done == loading
                }
                Place::Queued => true,
                Place::Loading { .. } => false,
            });
            (!held && !moved_on)
                .then(|| format!("player {player} loads {loading} which Redis does not hold"))
        }
    }
}

#[cfg(test)]
#[path = "oracle_tests.rs"]
mod tests;
