//! What the oracle knows of a run besides the clients' views: the service's facts (probe),
//! the faults the world injected with the part of the world each one hit, and what the fake
//! Redis served to each instance (script calls, publishes, injected faults). Invariants read
//! it to judge cause and time; the driver appends to it as the run goes.
//!
//! A late message or a repair is excused only by a fault that hit *that* player's path -
//! its instance, its connection, or an instance's Redis path that the message depends on -
//! between the cause and the deadline ([`History::excuse`]). A fault elsewhere excuses
//! nothing.

use std::collections::BTreeMap;

use match_server::notify::Notice;
use match_server::probe::{EndCause, Fact, LeaseChange};
use uuid::Uuid;

use crate::probe::{FactRecord, LoadingState, Witness};

/// The part of the world a fault hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One server instance: its process, its clock or its Redis connection.
    Instance(String),
    /// The network between one client host and one server.
    Link {
        /// The client host.
        client_host: String,
        /// The server.
        server: String,
    },
    /// Every instance's Redis path (a pub/sub connection drop ends every subscription).
    AllInstances,
}

/// One fault, over the time it could delay anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// When it began (sim ms).
    pub from_ms: u64,
    /// When it ended (sim ms); `u64::MAX` while it lasts.
    pub to_ms: u64,
    /// What it hit.
    pub scope: Scope,
    /// What it was, for violation details (`server_crash`, `redis_slow_reply on try_match`).
    pub what: String,
}

/// One request the fake Redis served to an instance, as far as the oracle cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisOp {
    /// When it took effect (sim ms; after any stall that held it).
    pub at_ms: u64,
    /// The instance that sent it.
    pub host: String,
    /// The script's name (`try_match`) or the command's (`PUBLISH`).
    pub target: String,
    /// The loading session its keys name, if any.
    pub loading: Option<Uuid>,
    /// The first element of its reply (`matched`, `gone`, ...), `error` for an error reply,
    /// `None` when the request failed before its effect.
    pub reply_tag: Option<String>,
    /// The first element of the reply the request itself produced: `reply_tag`, unless a
    /// fault replaced that reply with an error after the effect (then what Redis did).
    pub effect_tag: Option<String>,
    /// For a script that acts for a player's session (`loading_complete`): whether the
    /// player's lease held the caller's token when it took effect. A request held by a
    /// stalled connection lands late; this is judged where it lands, not where it was sent.
    pub caller_held_lease: Option<bool>,
    /// For a script that acts for one player's session (`loading_complete`, `enqueue`): that player,
    /// so a retry can be told from a co-player's call.
    pub caller: Option<Uuid>,
    /// For a `try_match` that grouped players: those whose entry lease had run out by the
    /// script's own clock as it took effect - ghosts it must have dropped (R4).
    pub grouped_dead: Vec<Uuid>,
    /// The fault injected into it, by name.
    pub fault: Option<&'static str>,
    /// Whether every live subscription (every instance's) was dropped right before it.
    pub dropped_subscribers: bool,
    /// How long its reply was delayed (a slow reply), ms.
    pub delay_ms: u64,
    /// For a PUBLISH of a notice: the notice.
    pub notice: Option<Notice>,
    /// How long a stall held it before it took effect (ms).
    pub held_ms: u64,
}

impl RedisOp {
    /// A call of `target` from `host` that took effect at `at_ms` and answered `tag` (its
    /// effect's tag too), struck by no fault: what hand-made histories start from.
    pub fn answered(at_ms: u64, host: &str, target: &str, tag: &str) -> Self {
        Self {
            at_ms,
            host: host.to_owned(),
            target: target.to_owned(),
            reply_tag: Some(tag.to_owned()),
            effect_tag: Some(tag.to_owned()),
            ..Self::default()
        }
    }
}

/// The path a message or a repair depends on: the instances whose processes, clocks or
/// Redis connections it needs, and the client connections it travels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    /// Instances (server host names).
    pub instances: Vec<String>,
    /// Client connections: (client host, server, when the connection opened). A partition
    /// of the link delays it; a crash or shutdown of its server since it opened kills it
    /// (its frames go nowhere until the client notices).
    pub connections: Vec<(String, String, u64)>,
}

/// The fault record of a subscriber drop, per instance, open until it subscribes again.
pub const SUBSCRIBER_DROP: &str = "redis_subscriber_drop (until the instance subscribes again)";

/// The fault record of a graceful shutdown of an instance: the world driver records it,
/// the oracle recognises it (a shutdown ends every connection; invariant 5 judges its
/// cleanup rather than excusing it).
pub const SERVER_SHUTDOWN: &str = "server_shutdown";

/// Fault names that end every connection of their instance.
const CONNECTION_KILLERS: [&str; 2] = ["server_crash", SERVER_SHUTDOWN];

impl Path {
    /// A path through `instances` only.
    pub fn instances<'a>(instances: impl IntoIterator<Item = &'a str>) -> Self {
        let mut path = Self::default();
        for instance in instances {
            path.add_instance(instance);
        }
        path
    }

    /// Adds an instance (once).
    pub fn add_instance(&mut self, instance: &str) {
        if !self.instances.iter().any(|known| known == instance) {
            self.instances.push(instance.to_owned());
        }
    }

    /// Adds a client connection opened at `opened_ms`: its link and its server's instance.
    pub fn add_connection(&mut self, client_host: &str, server: &str, opened_ms: u64) {
        self.add_instance(server);
        let connection = (client_host.to_owned(), server.to_owned(), opened_ms);
        if !self.connections.contains(&connection) {
            self.connections.push(connection);
        }
    }

    /// Whether `fault` could delay something on this path between `from_ms` and `to_ms`.
    fn hit_by(&self, fault: &FaultRecord, from_ms: u64, to_ms: u64) -> bool {
        let overlaps = fault.from_ms <= to_ms && fault.to_ms >= from_ms;
        match &fault.scope {
            Scope::Instance(name) => {
                let killed = CONNECTION_KILLERS.iter().any(|k| fault.what.starts_with(k))
                    && self.connections.iter().any(|(_, server, opened_ms)| {
                        server == name && (*opened_ms..=to_ms).contains(&fault.from_ms)
                    });
                killed || (overlaps && self.instances.iter().any(|i| i == name))
            }
            Scope::Link {
                client_host,
                server,
            } => {
                overlaps
                    && self
                        .connections
                        .iter()
                        .any(|(c, s, _)| c == client_host && s == server)
            }
            Scope::AllInstances => overlaps && !self.instances.is_empty(),
        }
    }
}

/// A path, as a violation names it.
impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self.instances.clone();
        parts.extend(
            self.connections
                .iter()
                .map(|(c, s, at)| format!("{c}<->{s} since {at} ms")),
        );
        write!(f, "{}", parts.join(", "))
    }
}

/// Everything recorded about a run so far.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The service's facts, in the order reported.
    pub facts: Vec<FactRecord>,
    /// Faults, in the order they began.
    pub faults: Vec<FaultRecord>,
    /// What the fake served, in the order it took effect.
    pub ops: Vec<RedisOp>,
    /// When the world healed (sim ms), once it did.
    pub healed_at_ms: Option<u64>,
    /// The instances seen sending requests (a subscriber drop hits each of them).
    pub instances: Vec<String>,
    /// The instances that have subscribed to notices at least once.
    pub subscribed: Vec<String>,
}

impl History {
    /// Records a fault that began at `from_ms` and lasts until [`Self::end_fault`] (or
    /// ends at `to_ms` when known).
    pub fn fault(&mut self, from_ms: u64, to_ms: Option<u64>, scope: Scope, what: String) {
        self.faults.push(FaultRecord {
            from_ms,
            to_ms: to_ms.unwrap_or(u64::MAX),
            scope,
            what,
        });
    }

    /// Ends the open faults of `scope` whose name starts with `what`.
    pub fn end_fault(&mut self, at_ms: u64, scope: &Scope, what: &str) {
        for fault in &mut self.faults {
            if fault.to_ms == u64::MAX && fault.scope == *scope && fault.what.starts_with(what) {
                fault.to_ms = at_ms;
            }
        }
    }

    /// Appends what the fake served, with the faults that struck it as fault records: a
    /// command fault hits its instance's Redis path (until a slow reply arrives); a
    /// subscriber drop hits every instance's notices until that instance subscribes again
    /// (a PSUBSCRIBE that took effect), since notices published meanwhile are lost.
    pub fn add_op(&mut self, op: RedisOp) {
        if !self.instances.contains(&op.host) && !op.host.is_empty() {
            self.instances.push(op.host.clone());
        }
        if let Some(fault) = op.fault {
            let what = format!("redis_{fault} on {} from {}", op.target, op.host);
            let to_ms = op.at_ms.saturating_add(op.delay_ms);
            self.fault(
                op.at_ms,
                Some(to_ms),
                Scope::Instance(op.host.clone()),
                what,
            );
        }
        if op.dropped_subscribers {
            for instance in self.instances.clone() {
                let scope = Scope::Instance(instance);
                let open = self
                    .faults
                    .iter()
                    .any(|f| f.to_ms == u64::MAX && f.scope == scope && f.what == SUBSCRIBER_DROP);
                if !open {
                    self.fault(op.at_ms, None, scope, SUBSCRIBER_DROP.to_owned());
                }
            }
        }
        if op.target == "PSUBSCRIBE" {
            self.subscription(&op);
        }
        self.ops.push(op);
    }

    /// Follows an instance's PSUBSCRIBE: a failed one leaves its notices out (a fault until
    /// it subscribes), a successful one ends that; before its first success the instance
    /// heard no notice at all.
    fn subscription(&mut self, op: &RedisOp) {
        let scope = Scope::Instance(op.host.clone());
        let done_ms = op.at_ms.saturating_add(op.delay_ms);
        if !matches!(op.fault, None | Some("slow_reply")) {
            let open = self
                .faults
                .iter()
                .any(|f| f.to_ms == u64::MAX && f.scope == scope && f.what == SUBSCRIBER_DROP);
            if !open {
                self.fault(op.at_ms, None, scope, SUBSCRIBER_DROP.to_owned());
            }
            return;
        }
        self.end_fault(done_ms, &scope, SUBSCRIBER_DROP);
        if !self.subscribed.contains(&op.host) {
            self.subscribed.push(op.host.clone());
            self.fault(0, Some(done_ms), scope, SUBSCRIBER_DROP.to_owned());
        }
    }

    /// Ends every open fault (the world heals).
    /// A subscriber dropped before the heal stays out until it subscribes again.
    pub fn heal(&mut self, at_ms: u64) {
        self.healed_at_ms = Some(at_ms);
        for fault in &mut self.faults {
            if fault.to_ms == u64::MAX && fault.what != SUBSCRIBER_DROP {
                fault.to_ms = at_ms;
            }
        }
    }

    /// The first fault that hit `path` between `from_ms` and `to_ms`, if any: the one
    /// that excuses a delay or a repair there.
    pub fn excuse(&self, path: &Path, from_ms: u64, to_ms: u64) -> Option<&FaultRecord> {
        self.faults
            .iter()
            .find(|fault| path.hit_by(fault, from_ms, to_ms))
    }

    /// Every fault that hit `path` between `from_ms` and `to_ms`, in the order they began.
    pub fn excuses<'a>(
        &'a self,
        path: &'a Path,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = &'a FaultRecord> + 'a {
        self.faults
            .iter()
            .filter(move |fault| path.hit_by(fault, from_ms, to_ms))
    }

    /// Every loading session on record, by id: its creation, the attempts to end it that
    /// found it, and when its group completed (from the facts and what the fake served).
    pub fn loadings(&self) -> BTreeMap<Uuid, LoadingRecord<'_>> {
        let mut loadings: BTreeMap<Uuid, LoadingRecord<'_>> = BTreeMap::new();
        for record in &self.facts {
            match (&record.fact, &record.witness) {
                (
                    Fact::LoadingCreated {
                        loading,
                        mode,
                        players,
                    },
                    witness,
                ) => {
                    let created = match witness {
                        Some(Witness::Loading(Some(state))) => Some(state),
                        _ => None,
                    };
                    loadings.entry(*loading).or_insert(LoadingRecord {
                        created_ms: record.at_ms,
                        creator: &record.host,
                        mode,
                        players,
                        // A creation reported late (its reply was slow) may be witnessed
                        // after its group went allocating, which moved the deadline: the
                        // deadline as created is then unknown.
                        deadline_unix_ms: created
                            .filter(|state| !state.allocating)
                            .map(|state| state.deadline_ms),
                        owners: created.map(|state| &state.owners),
                        endings: Vec::new(),
                        all_ready: None,
                    });
                }
                (
                    Fact::LoadingEnding { loading, cause, .. },
                    Some(Witness::Loading(Some(state))),
                ) => {
                    if let Some(entry) = loadings.get_mut(loading) {
                        entry.endings.push(Ending {
                            at_ms: record.at_ms,
                            host: &record.host,
                            cause: *cause,
                            state,
                        });
                    }
                }
                _ => {}
            }
        }
        for op in &self.ops {
            if op.target == "loading_complete"
                && op.reply_tag.as_deref() == Some("all_ready")
                && let Some(entry) = op.loading.and_then(|l| loadings.get_mut(&l))
                && entry.all_ready.is_none()
            {
                entry.all_ready = Some((op.at_ms, &op.host));
            }
        }
        loadings
    }

    /// The session tokens that took `player`'s lease on `server` in `from_ms..=to_ms`, in
    /// the order reported: the sessions one connection of the player held there.
    pub fn lease_takers<'a>(
        &'a self,
        player: Uuid,
        server: &'a str,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = Uuid> + 'a {
        self.facts
            .iter()
            .filter(move |fact| fact.host == server && (from_ms..=to_ms).contains(&fact.at_ms))
            .filter_map(move |fact| match &fact.fact {
                Fact::Lease {
                    player: p,
                    owner,
                    change: LeaseChange::Taken,
                } if *p == player => Some(*owner),
                _ => None,
            })
    }

    /// The instance that reported facts for `owner` (the session token), if any.
    pub fn host_of_owner(&self, owner: Uuid) -> Option<&str> {
        self.facts.iter().find_map(|record| match &record.fact {
            match_server::probe::Fact::Acted { owner: o, .. }
            | match_server::probe::Fact::Lease { owner: o, .. }
                if *o == owner =>
            {
                Some(record.host.as_str())
            }
            _ => None,
        })
    }
}

/// A loading session as the history knows it.
#[derive(Clone, Debug)]
pub struct LoadingRecord<'a> {
    /// When the service reported it created (sim ms).
    pub created_ms: u64,
    /// The instance that created it.
    pub creator: &'a str,
    /// Its mode.
    pub mode: &'a str,
    /// Its players.
    pub players: &'a [Uuid],
    /// Its deadline as set at creation (unix ms of the creator's clock), when witnessed.
    pub deadline_unix_ms: Option<u64>,
    /// The owner token of each player's entry as grouped, when witnessed: the session the
    /// session's announcements are for (an older session's entry may be grouped while a
    /// newer connection of the player waits to replace it).
    pub owners: Option<&'a BTreeMap<Uuid, Uuid>>,
    /// The attempts to end it that found it in Redis, in order.
    pub endings: Vec<Ending<'a>>,
    /// When (sim ms) and where the last `loading_complete` completed its group.
    pub all_ready: Option<(u64, &'a str)>,
}

/// An attempt to end a loading session that found it in Redis.
#[derive(Clone, Debug)]
pub struct Ending<'a> {
    /// When (sim ms).
    pub at_ms: u64,
    /// Which instance.
    pub host: &'a str,
    /// Why.
    pub cause: EndCause,
    /// The session as Redis held it right then.
    pub state: &'a LoadingState,
}
