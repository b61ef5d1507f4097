//! Every bound the oracle holds the service to, in one place, each derived from the
//! service's configuration and the world's timing, and each named with the event it is
//! measured from. `match-sim bounds` prints the table; docs/bounds.md carries it, and a
//! test keeps the two equal.

use std::collections::BTreeMap;

use match_server::config::Settings;

/// The world's timing the bounds depend on besides the service's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldTiming {
    /// turmoil's step (ms): host clocks within one step differ by up to this much.
    pub tick_ms: u64,
    /// How often the oracle inspects Redis (ms).
    pub check_every_ms: u64,
    /// The largest one-way network latency a scenario draws (ms).
    pub max_latency_ms: u64,
    /// The largest clock jump a scenario draws (ms): instances agree on time within it.
    pub max_clock_skew_ms: u64,
}

/// Steps of the world a notice needs on a healthy path: the script's reply, the publish,
/// the subscriber, the session's queue, the socket write.
const PROMPT_STEPS: u64 = 8;

/// Tunables of the checks, from the service's settings and the world's timing.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// "Promptly": how long a notice may take on a healthy path, from the decision that
    /// sends it to the client's socket. Shorter than the resync interval, so a notice lost
    /// and repaired by the periodic resync is late.
    pub prompt_ms: u64,
    /// How long co-players may wait to hear `loading_cancelled` after a client closed its
    /// socket during loading.
    pub disconnect_grace_ms: u64,
    /// How long the players of a fully loaded session may wait for `match_found` or a
    /// "back in the queue" code after the last `loading_complete` was sent.
    pub allocation_ms: u64,
    /// The deadline `loading_complete.lua` gives a session whose group completed, from
    /// then: twice the allocation timeout.
    pub allocating_deadline_ms: u64,
    /// How long after its deadline a loading session's players may still believe they
    /// are loading (the sweep's period and the clock skew, plus a notice).
    pub loading_end_slack_ms: u64,
    /// How much earlier than its deadline (by true time) a loading timeout may be told:
    /// the clocks of instances differ by up to this much.
    pub clock_skew_ms: u64,
    /// Time a crashed server's entries need to be dead and swept.
    pub crash_grace_ms: u64,
    /// Slack for loading deadlines and lock TTLs in invariant 9 (sweep interval + tick).
    pub stale_slack_ms: u64,
    /// Host clocks within one step differ by up to a tick.
    pub tick_ms: u64,
    /// How far a lease may look expired to Redis yet live to a server: clock skew between
    /// instances plus the time between two inspections.
    pub lease_slack_ms: u64,
    /// Players per match, by mode.
    pub players_per_mode: BTreeMap<String, usize>,
    /// How long enough cooperative players may wait in a healthy world before a match.
    pub match_bound_ms: u64,
    /// How long a script call and its retries may take before a repair that follows it
    /// (a resync notice, a recovery) is judged: the faults in this window explain it.
    pub effect_span_ms: u64,
    /// How long before a lease was lost the fault that lost it may have struck: a player
    /// lease lives `player_lease_ttl_ms` from its last successful renewal, sent at most one
    /// renewal interval before.
    pub lease_loss_span_ms: u64,
    /// An entry's lease: a queued or loading entry whose lease ran out must have an
    /// owner that failed (a fault on its instance) within this long before.
    pub entry_lease_span_ms: u64,
    /// The entry lease TTL (ms).
    pub lease_ttl_ms: u64,
}

/// One row of the bounds table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundRow {
    /// The bound's name, as violations cite it.
    pub name: &'static str,
    /// Its value in the simulation (ms).
    pub value_ms: u64,
    /// How it derives from the configuration.
    pub formula: &'static str,
    /// The event it is measured from, and what must have happened by then.
    pub measured_from: &'static str,
}

impl Bounds {
    /// The bounds of `settings` in a world of `world` timing.
    pub fn new(settings: &Settings, world: WorldTiming) -> Self {
        let t = &settings.timing;
        let prompt_ms = PROMPT_STEPS * world.tick_ms + 2 * world.max_latency_ms;
        let player_lease_ttl_ms = t.lease_ttl_ms + t.lease_renew_interval_ms;
        let effect_span_ms = u64::from(match_server::limits::MAX_EFFECT_ATTEMPTS)
            * (t.redis_command_timeout_ms + match_server::limits::EFFECT_RETRY_DELAY_MS);
        Self {
            prompt_ms,
            disconnect_grace_ms: prompt_ms + world.max_latency_ms,
            allocation_ms: t.allocation_timeout_ms + prompt_ms,
            allocating_deadline_ms: 2 * t.allocation_timeout_ms,
            loading_end_slack_ms: world.max_clock_skew_ms + 2 * t.sweep_interval_ms + prompt_ms,
            clock_skew_ms: world.max_clock_skew_ms + world.tick_ms,
            crash_grace_ms: t.lease_ttl_ms + 2 * t.sweep_interval_ms + 2_000,
            stale_slack_ms: 2 * t.sweep_interval_ms + 2_000,
            tick_ms: world.tick_ms,
            lease_slack_ms: world.max_clock_skew_ms + world.check_every_ms + world.tick_ms,
            players_per_mode: settings
                .modes
                .iter()
                .map(|m| {
                    let players = usize::try_from(m.players).unwrap_or(usize::MAX);
                    (m.name.clone(), players)
                })
                .collect(),
            match_bound_ms: t.loading_timeout_ms
                + 2 * t.allocation_timeout_ms
                + 4 * t.match_interval_ms
                + t.lease_ttl_ms,
            effect_span_ms,
            lease_loss_span_ms: player_lease_ttl_ms + t.lease_renew_interval_ms,
            entry_lease_span_ms: t.lease_ttl_ms + t.lease_renew_interval_ms,
            lease_ttl_ms: t.lease_ttl_ms,
        }
    }

    /// The bounds of invariants 12 to 14, as docs/bounds.md lists them.
    pub fn rows(&self) -> Vec<BoundRow> {
        vec![
            BoundRow {
                name: "prompt",
                value_ms: self.prompt_ms,
                formula: "8 ticks + 2 x max network latency",
                measured_from: "the decision that sends a notice (a loading session created, a match recorded); by then every player concerned is told (`start_loading`, `match_found`)",
            },
            BoundRow {
                name: "disconnect_grace",
                value_ms: self.disconnect_grace_ms,
                formula: "prompt + max network latency",
                measured_from: "a loading client closing its socket (the close reaches its server within one latency); by then every co-player still loading that session has heard how it ended (`loading_cancelled`, or a match or timeout that won the race)",
            },
            BoundRow {
                name: "allocation",
                value_ms: self.allocation_ms,
                formula: "allocation_timeout_ms + prompt",
                measured_from: "the last `loading_complete` of a loading session sent; by then every player has heard `match_found` or a \"back in the queue\" code",
            },
            BoundRow {
                name: "loading_end",
                value_ms: self.loading_end_slack_ms,
                formula: "max clock skew + 2 x sweep_interval_ms + prompt",
                measured_from: "a loading session's deadline (its creator's clock); by then no player still believes it loads that session. A silent player's lease running out does not end its loading session earlier: its co-players hear the timeout",
            },
            BoundRow {
                name: "clock_skew",
                value_ms: self.clock_skew_ms,
                formula: "max clock skew + 1 tick",
                measured_from: "a loading session's deadline: `loading_timeout` and `loading_not_completed` are never told earlier than this before it",
            },
            BoundRow {
                name: "effect_span",
                value_ms: self.effect_span_ms,
                formula: "MAX_EFFECT_ATTEMPTS x (redis_command_timeout_ms + EFFECT_RETRY_DELAY_MS)",
                measured_from: "a repair notice (`resync`) published by an instance; a fault on that instance's Redis path within this long before explains it",
            },
            BoundRow {
                name: "lease_loss_span",
                value_ms: self.lease_loss_span_ms,
                formula: "lease_ttl_ms + 2 x lease_renew_interval_ms",
                measured_from: "a session told its player lease is lost; a fault on its instance within this long before explains it",
            },
            BoundRow {
                name: "entry_lease_span",
                value_ms: self.entry_lease_span_ms,
                formula: "lease_ttl_ms + lease_renew_interval_ms",
                measured_from: "a queued or loading entry's lease deadline passing; a fault on its owner's instance within this long before explains it",
            },
        ]
    }
}

/// The bounds table as markdown, as docs/bounds.md carries it.
pub fn markdown(rows: &[BoundRow]) -> String {
    let mut out = String::from(
        "| bound | value in the simulation (ms) | derived from | measured from, and what must hold by then |\n|---|---|---|---|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.name, row.value_ms, row.formula, row.measured_from
        ));
    }
    out
}
