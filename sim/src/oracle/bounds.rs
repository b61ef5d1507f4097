//! Every bound the oracle holds the service to, in one place, each derived from the
//! service's configuration and the world's timing, and each named with the event it is
//! measured from. docs/design.md ("Bounds") carries the table as [`Bounds::rows`] prints
//! it for the simulation's settings, and a test keeps the two equal.

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
    /// The entry lease TTL (ms).
    pub lease_ttl_ms: u64,
    /// The configured loading timeout: a loading session's deadline is this long after its
    /// creator read its clock (invariant 13 judges the deadline itself by it).
    pub loading_timeout_ms: u64,
    /// The configured idle timeout: a connection is closed as idle only after this long
    /// without a frame from its client (invariant 16).
    pub idle_timeout_ms: u64,
    /// How long a frame may be in flight on a healthy link (max latency + a tick): the
    /// server may not have read a frame sent this recently when its idle timer fires.
    pub in_flight_ms: u64,
    /// Frames written at once beyond which the server must close the connection for
    /// flooding: the burst allowance plus the rate-limited frames tolerated in a row.
    pub flood_frames: u32,
    /// How long after a flood is written the server must have closed the connection (1008).
    pub flood_close_ms: u64,
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
            lease_ttl_ms: t.lease_ttl_ms,
            loading_timeout_ms: t.loading_timeout_ms,
            idle_timeout_ms: t.idle_timeout_ms,
            in_flight_ms: world.max_latency_ms + world.tick_ms,
            flood_frames: settings
                .limits
                .message_burst
                .saturating_add(match_server::limits::MAX_RATE_LIMITED_IN_A_ROW),
            flood_close_ms: prompt_ms + world.max_latency_ms,
        }
    }

    /// The named bounds, as docs/design.md lists them.
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
                name: "match",
                value_ms: self.match_bound_ms,
                formula: "loading_timeout_ms + 2 x allocation_timeout_ms + 4 x match_interval_ms + lease_ttl_ms",
                measured_from: "enough cooperative players of a mode waiting in a healed world with an idle game server; by then they are matched (invariant 8)",
            },
            BoundRow {
                name: "stale",
                value_ms: self.stale_slack_ms,
                formula: "2 x sweep_interval_ms + 2 s",
                measured_from: "a loading session's deadline or a lock's expiry; by then Redis no longer holds it (invariant 9)",
            },
            BoundRow {
                name: "idle",
                value_ms: self.idle_timeout_ms.saturating_sub(self.in_flight_ms),
                formula: "idle_timeout_ms - (max network latency + 1 tick)",
                measured_from: "the client's last data frame (or the connection's opening): a close for idleness (1000) comes no earlier, unless a partition of the link held a frame (invariant 16)",
            },
            BoundRow {
                name: "flood_close",
                value_ms: self.flood_close_ms,
                formula: "prompt + max network latency",
                measured_from: "a client writing more than message_burst + MAX_RATE_LIMITED_IN_A_ROW frames at once; by then the server closed the connection with 1008, unless a fault hit the connection's path (invariant 16)",
            },
        ]
    }
}

/// The bounds table as markdown, as docs/design.md carries it.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where docs/design.md carries the table.
    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/design.md");
    /// The markers around it.
    const BEGIN: &str = "<!-- bounds table: generated by the sim's bounds test -->\n";
    const END: &str = "<!-- end of bounds table -->";

    /// Goal: the bounds table in docs/design.md is the one the oracle holds the service to
    /// (names, values from the simulation's settings, what each is measured from).
    /// `MATCH_SIM_UPDATE_DOCS=1` rewrites it after a deliberate change.
    #[test]
    fn docs_carry_the_bounds_table() {
        let bounds = crate::world::oracle_bounds(&crate::world::RunConfig::default());
        let table = markdown(&bounds.rows());
        let doc = std::fs::read_to_string(DOC).unwrap();
        let start = doc
            .find(BEGIN)
            .expect("docs/design.md has the bounds markers")
            + BEGIN.len();
        let end = doc.find(END).unwrap();
        if std::env::var_os("MATCH_SIM_UPDATE_DOCS").is_some() {
            let updated = format!("{}{table}{}", &doc[..start], &doc[end..]);
            std::fs::write(DOC, updated).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..end],
            table,
            "rerun with MATCH_SIM_UPDATE_DOCS=1"
        );
    }

    /// Goal: `prompt` is shorter than the periodic resync, so a notice lost without a fault
    /// and repaired by the resync is late (the safety net cannot hide the primary path).
    #[test]
    fn prompt_is_shorter_than_the_resync() {
        let bounds = crate::world::oracle_bounds(&crate::world::RunConfig::default());
        let resync_ms = crate::world::sim_settings().timing.resync_interval_ms;
        assert!(
            bounds.prompt_ms < resync_ms,
            "{} >= {resync_ms}",
            bounds.prompt_ms
        );
    }
}
