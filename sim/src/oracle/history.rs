//! What the oracle knows of a run besides the clients' views: the service's facts (probe),
//! the faults the world injected with the part of the world each one hit, and what the fake
//! Redis served to each instance (script calls, publishes, injected faults). Invariants read
//! it to judge cause and time; the driver appends to it as the run goes.
//!
//! A late message or a repair is excused only by a fault that hit *that* player's path -
//! its instance, its connection, or an instance's Redis path that the message depends on -
//! between the cause and the deadline ([`History::excuse`]). A fault elsewhere excuses
//! nothing.

use match_server::notify::Notice;
use uuid::Uuid;

use crate::probe::FactRecord;

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
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The fault injected into it, by name.
    pub fault: Option<&'static str>,
    /// For a PUBLISH of a notice: the notice.
    pub notice: Option<Notice>,
    /// How long a stall held it before it took effect (ms).
    pub held_ms: u64,
}

/// The path a message or a repair depends on: the instances whose processes, clocks or
/// Redis connections it needs, and the client connections it travels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    /// Instances (server host names).
    pub instances: Vec<String>,
    /// (client host, server) links.
    pub links: Vec<(String, String)>,
}

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

    /// Adds a client connection: the link and the server's instance.
    pub fn add_link(&mut self, client_host: &str, server: &str) {
        self.add_instance(server);
        let link = (client_host.to_owned(), server.to_owned());
        if !self.links.contains(&link) {
            self.links.push(link);
        }
    }

    fn hit_by(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Instance(name) => self.instances.iter().any(|i| i == name),
            Scope::Link {
                client_host,
                server,
            } => self
                .links
                .iter()
                .any(|(c, s)| c == client_host && s == server),
            Scope::AllInstances => !self.instances.is_empty(),
        }
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

    /// Ends every open fault (the world heals).
    pub fn heal(&mut self, at_ms: u64) {
        self.healed_at_ms = Some(at_ms);
        for fault in &mut self.faults {
            if fault.to_ms == u64::MAX {
                fault.to_ms = at_ms;
            }
        }
    }

    /// The first fault that hit `path` between `from_ms` and `to_ms`, if any: the one
    /// that excuses a delay or a repair there.
    pub fn excuse(&self, path: &Path, from_ms: u64, to_ms: u64) -> Option<&FaultRecord> {
        self.faults.iter().find(|fault| {
            fault.from_ms <= to_ms && fault.to_ms >= from_ms && path.hit_by(&fault.scope)
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
