//! The oracle: a registry of invariants, each in a file of its own with its own state,
//! checked during the run (safety), once the healed world rests (liveness), and over the
//! whole run's history (cause and time).
//!
//! It sees what a user could - each client's message stream ([`clients`]) and Redis's data
//! ([`RedisView`]) - and what the servers decided, as typed facts of the probe seam, beside
//! the faults the world injected and what the fake Redis served ([`history`]). A violation
//! names the invariant, the ids and the sim time.
//!
//! Shape (turmoil's `Workload {setup, run, verify}`): the [`catalogue`] table lists every
//! invariant and builds one [`Check`] per row (setup); the driver feeds each hook as the run
//! goes (client events, facts, Redis snapshots); [`Oracle::at_budget_end`] and
//! [`Oracle::finish`] verify. To add an invariant: write `oracle/<name>.rs` with a type
//! implementing [`Check`] (a `new(&Bounds)` and the hooks it needs), add its `mod` line
//! below and one row to the catalogue table (docs/design.md, "How to add an invariant").

mod bounds;
mod catalogue;
pub mod clients;
pub mod history;
mod redis_model;

mod close_has_cause;
mod code_has_cause;
mod in_time;
mod legal_messages;
mod loading_again;
mod loading_composition;
mod lock_exclusive;
mod match_in_time;
mod no_ghosts;
mod no_one_lost;
mod no_panic;
mod no_stale_state;
mod one_place;
mod one_session;
mod repair_has_cause;
mod views_agree;

use std::fmt;

use uuid::Uuid;

pub use bounds::{BoundRow, Bounds, WorldTiming, markdown as bounds_markdown};
pub use catalogue::Invariant;
pub use clients::{ClientEvent, ClientModel, ClientState, Clients};
pub use history::{FaultRecord, History, Path, RedisOp, Scope};
pub use loading_again::FaultWindow;
pub use redis_model::{LoadingView, RedisView};

use crate::probe::FactRecord;

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

/// What every hook may read: the bounds, the shared client model and the run's history.
#[derive(Clone, Copy, Debug)]
pub struct Cx<'a> {
    /// The bounds.
    pub bounds: &'a Bounds,
    /// Every client's view (before the event being dispatched, for client hooks).
    pub clients: &'a Clients,
    /// Facts, faults and what the fake served, so far.
    pub history: &'a History,
}

/// Where a check reports: counts its checks and tags its violations with its invariant.
#[derive(Debug)]
pub struct Findings<'a> {
    /// The invariant reporting.
    invariant: Invariant,
    /// Checks made by every invariant.
    checks: &'a mut u64,
    /// Violations of every invariant, in the order found.
    violations: &'a mut Vec<Violation>,
}

impl Findings<'_> {
    /// Counts `count` individual checks.
    pub fn checked(&mut self, count: u64) {
        *self.checks += count;
    }

    /// Records a violation of this invariant.
    pub fn violate(&mut self, at_ms: u64, detail: String) {
        self.violations.push(Violation {
            invariant: self.invariant,
            at_ms,
            detail,
        });
    }
}

/// One invariant's check: its own state, and the hooks it needs (every hook does nothing
/// by default).
pub trait Check: fmt::Debug {
    /// A client event, before the shared model follows it (`cx.clients` holds the state
    /// the event meets).
    fn on_client(
        &mut self,
        _cx: &Cx<'_>,
        _player: Uuid,
        _at_ms: u64,
        _event: &ClientEvent,
        _out: &mut Findings<'_>,
    ) {
    }

    /// A fact of the service, in the order reported (already in `cx.history.facts`).
    fn on_fact(&mut self, _cx: &Cx<'_>, _record: &FactRecord, _out: &mut Findings<'_>) {}

    /// A Redis snapshot taken at `at_ms`; `settled` once faults healed and sweeps had time.
    fn on_snapshot(
        &mut self,
        _cx: &Cx<'_>,
        _at_ms: u64,
        _view: &RedisView,
        _settled: bool,
        _out: &mut Findings<'_>,
    ) {
    }

    /// Whether something this invariant would flag now may still resolve by waiting (a
    /// notice in flight, a group about to form): the world is not at rest while it is.
    fn unsettled(&self, _cx: &Cx<'_>, _now_ms: u64, _view: &RedisView) -> bool {
        false
    }

    /// Whether some client's view differs from Redis in a way a notice still in flight may
    /// resolve: once the budget is over, the run waits a bounded grace while this holds.
    fn in_flight(&self, _cx: &Cx<'_>, _view: &RedisView) -> bool {
        false
    }

    /// The healed world has come to rest at `now_ms` with Redis as `view`: no client event
    /// for a while, no loading session, nothing any invariant still waits for. Judgements
    /// that need a quiet world (views and Redis agree exactly) belong here.
    fn at_rest(&mut self, _cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, _out: &mut Findings<'_>) {}

    /// The run's budget is over (liveness that a late event must not hide).
    fn at_budget_end(&mut self, _cx: &Cx<'_>, _now_ms: u64, _out: &mut Findings<'_>) {}

    /// The run is over: the world rests, or the budget and its grace ended.
    fn at_end(&mut self, _cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, _out: &mut Findings<'_>) {}
}

/// The oracle of one run: the registry of checks and what they share.
#[derive(Debug)]
pub struct Oracle {
    /// Checking tunables.
    bounds: Bounds,
    /// Every client's view.
    clients: Clients,
    /// Facts, faults and Redis operations so far.
    history: History,
    /// One check per invariant, in catalogue order.
    checks: Vec<(Invariant, Box<dyn Check>)>,
    /// Violations found, in order.
    violations: Vec<Violation>,
    /// How many individual checks ran, for the summary.
    pub checks_made: u64,
}

impl Oracle {
    /// An oracle with `bounds` and every invariant of the catalogue.
    pub fn new(bounds: Bounds) -> Self {
        let checks = catalogue::checks(&bounds);
        Self {
            bounds,
            clients: Clients::default(),
            history: History::default(),
            checks,
            violations: Vec::new(),
            checks_made: 0,
        }
    }

    /// Runs `hook` on every check with the shared context.
    fn each(&mut self, mut hook: impl FnMut(&mut dyn Check, &Cx<'_>, &mut Findings<'_>)) {
        let cx = Cx {
            bounds: &self.bounds,
            clients: &self.clients,
            history: &self.history,
        };
        for (invariant, check) in &mut self.checks {
            let mut out = Findings {
                invariant: *invariant,
                checks: &mut self.checks_made,
                violations: &mut self.violations,
            };
            hook(check.as_mut(), &cx, &mut out);
        }
    }

    /// Declares a player (running on `client_host`) before it acts.
    pub fn add_player(&mut self, player: Uuid, mode: &str, client_host: &str, cooperative: bool) {
        self.clients.add(player, mode, client_host, cooperative);
    }

    /// Violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Records a violation found outside the checks (a panic, a failed host).
    pub fn violate(&mut self, invariant: Invariant, at_ms: u64, detail: String) {
        self.violations.push(Violation {
            invariant,
            at_ms,
            detail,
        });
    }

    /// What the client `player` believes now.
    pub fn client_state(&self, player: Uuid) -> Option<ClientState> {
        self.clients.get(player).map(|c| c.state.clone())
    }

    /// The shared client model.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The run's history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The history, for the driver to record faults and what the fake served.
    pub fn history_mut(&mut self) -> &mut History {
        &mut self.history
    }

    /// Follows one client event: every check sees it first, then the shared model.
    pub fn client_event(&mut self, player: Uuid, at_ms: u64, event: ClientEvent) {
        if self.clients.get(player).is_none() {
            return;
        }
        self.each(|check, cx, out| check.on_client(cx, player, at_ms, &event, out));
        self.clients.follow(player, at_ms, &event);
    }

    /// Appends facts of the service (in the order reported) and lets every check see them.
    pub fn facts(&mut self, records: impl IntoIterator<Item = FactRecord>) {
        for record in records {
            self.history.facts.push(record.clone());
            self.each(|check, cx, out| check.on_fact(cx, &record, out));
        }
    }

    /// Appends what the fake Redis served (and the faults that struck it).
    pub fn redis_ops(&mut self, ops: impl IntoIterator<Item = RedisOp>) {
        for op in ops {
            self.history.add_op(op);
        }
    }

    /// Checks a Redis snapshot taken at `at_ms`; `settled` once faults have healed and
    /// sweeps had time to run.
    pub fn snapshot(&mut self, at_ms: u64, view: &RedisView, settled: bool) {
        self.each(|check, cx, out| check.on_snapshot(cx, at_ms, view, settled, out));
    }

    /// Whether the healed world has come to rest, so judging liveness now is as good as at
    /// the end of the quiet phase: no client event for `quiet_ms`, no loading session, and
    /// nothing any invariant is still waiting for.
    pub fn is_at_rest(&self, now_ms: u64, view: &RedisView, quiet_ms: u64) -> bool {
        if now_ms < self.clients.last_event_ms.saturating_add(quiet_ms) || !view.loadings.is_empty()
        {
            return false;
        }
        !self.unsettled(now_ms, view)
    }

    /// Whether some invariant still waits for something (a notice in flight, a group).
    pub fn unsettled(&self, now_ms: u64, view: &RedisView) -> bool {
        let cx = Cx {
            bounds: &self.bounds,
            clients: &self.clients,
            history: &self.history,
        };
        self.checks
            .iter()
            .any(|(_, check)| check.unsettled(&cx, now_ms, view))
    }

    /// Whether some client's view differs from Redis so that a notice in flight may still
    /// change it (the run waits for it a bounded grace after its budget).
    pub fn in_flight(&self, view: &RedisView) -> bool {
        let cx = Cx {
            bounds: &self.bounds,
            clients: &self.clients,
            history: &self.history,
        };
        self.checks
            .iter()
            .any(|(_, check)| check.in_flight(&cx, view))
    }

    /// The healed world came to rest at `now_ms` with Redis as `view` (the run ends now).
    pub fn at_rest(&mut self, now_ms: u64, view: &RedisView) {
        self.each(|check, cx, out| check.at_rest(cx, now_ms, view, out));
    }

    /// The run's budget ended at `now_ms`.
    pub fn at_budget_end(&mut self, now_ms: u64) {
        self.each(|check, cx, out| check.at_budget_end(cx, now_ms, out));
    }

    /// The run is over at `now_ms` with Redis as `view`: every check's final verdict.
    pub fn finish(&mut self, now_ms: u64, view: &RedisView) {
        self.each(|check, cx, out| check.at_end(cx, now_ms, view, out));
    }
}

#[cfg(test)]
mod tests;
