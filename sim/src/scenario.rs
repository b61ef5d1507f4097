//! Scenarios: everything a run does, drawn from a seed by proptest strategies, so a failing
//! one can be shrunk and saved as JSON for `replay --scenario`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fake_redis::ScheduledFault;
use crate::seams::{AllocatorFaults, uuid_from};

/// How a simulated player behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    /// Enqueue, complete loading, play the configured rounds.
    Normal,
    /// Send 2-3 `enqueue` frames in one burst, then play normally.
    EnqueueBurst,
    /// Enqueue, then disconnect for good at a random point.
    EnqueueThenDisconnect,
    /// Disconnect for good during loading.
    DisconnectDuringLoading,
    /// Never send `loading_complete`.
    NeverCompletes,
    /// Send `loading_complete` twice.
    CompletesTwice,
    /// Send `loading_complete` for another session first.
    WrongSession,
    /// Disconnect and reconnect with the same player id.
    Reconnect,
    /// Send garbage frames before playing.
    Garbage,
    /// First enqueue as another player than its token's (must be refused), then play.
    SpoofedId,
    /// Open a second connection for itself on another server (must be refused), then play.
    DuplicateSession,
    /// Send a burst of frames far over the rate limit, then play.
    Flood,
    /// Enqueue, disconnect, and come back for the *other* mode: with the first cleanup of
    /// the run failing (see [`SWITCH_CLEANUP_FAULTS`]) its entry dies in the old mode's
    /// queue while it enqueues in the new one (the window of R3, dead entry replaced).
    SwitchesMode,
}

impl Behavior {
    /// Every behavior, for summaries.
    pub const ALL: [Self; 13] = [
        Self::Normal,
        Self::EnqueueBurst,
        Self::EnqueueThenDisconnect,
        Self::DisconnectDuringLoading,
        Self::NeverCompletes,
        Self::CompletesTwice,
        Self::WrongSession,
        Self::Reconnect,
        Self::Garbage,
        Self::SpoofedId,
        Self::DuplicateSession,
        Self::Flood,
        Self::SwitchesMode,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::EnqueueBurst => "enqueue_burst",
            Self::EnqueueThenDisconnect => "enqueue_then_disconnect",
            Self::DisconnectDuringLoading => "disconnect_during_loading",
            Self::NeverCompletes => "never_completes",
            Self::CompletesTwice => "completes_twice",
            Self::WrongSession => "wrong_session",
            Self::Reconnect => "reconnect",
            Self::Garbage => "garbage",
            Self::SpoofedId => "spoofed_id",
            Self::DuplicateSession => "duplicate_session",
            Self::Flood => "flood",
            Self::SwitchesMode => "switches_mode",
        }
    }

    /// Whether a player of this behavior completes every loading session it is in once the
    /// faults have healed (the liveness bound only counts such players).
    pub fn completes_loading(self) -> bool {
        !matches!(
            self,
            Self::NeverCompletes | Self::DisconnectDuringLoading | Self::EnqueueThenDisconnect
        )
    }
}

/// One player's part in the scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerPlan {
    /// Client host, modulo the number of client hosts.
    pub host: u8,
    /// First server to connect to, modulo the number of servers.
    pub server: u8,
    /// Game mode, modulo the number of modes.
    pub mode: u8,
    /// What the player does.
    pub behavior: Behavior,
    /// When the player connects, ms after the start.
    pub start_ms: u32,
    /// How long loading takes the player.
    pub loading_ms: u32,
    /// When the behavior's disruptive action happens, ms after connecting.
    pub action_ms: u32,
    /// How many matches the player wants.
    pub rounds: u8,
    /// Whether the player gives up (leaves for good) when its connection breaks during the
    /// faults, instead of reconnecting; its entries must then die, never be matched.
    #[serde(default)]
    pub quits_on_loss: bool,
}

/// One partition between a client host and a server, repaired after `duration_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// When it starts.
    pub at_ms: u32,
    /// How long it lasts.
    pub duration_ms: u32,
    /// Client host index (modulo).
    pub client_host: u8,
    /// Server index (modulo).
    pub server: u8,
}

/// A clock fault on one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockFaultKind {
    /// Every read fails (time before the epoch) for a while.
    Fail {
        /// How long.
        duration_ms: u32,
    },
    /// The clock jumps by an offset until the world heals.
    Jump {
        /// The jump, within what NTP-synchronised instances can see.
        offset_ms: i32,
    },
}

/// A clock fault at a time on a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFault {
    /// When.
    pub at_ms: u32,
    /// Server index (modulo).
    pub server: u8,
    /// What.
    pub kind: ClockFaultKind,
}

/// What happens to a server process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessFaultKind {
    /// The process dies at once; no cleanup runs.
    Crash,
    /// SIGTERM: the process cleans up and exits.
    Shutdown,
    /// The process (or its Redis connection) freezes: every Redis request it sends is held
    /// and takes effect, in order, only when it resumes - past its lock and lease TTLs when
    /// the stall is long, while it still believes it holds them.
    Stall,
    /// The process freezes (a GC pause, a VM migration) right after it next takes a match
    /// lock: every Redis request it sends from then on is held with no timeout (a frozen
    /// process cannot notice that a reply is late) and lands, in order, when it resumes;
    /// it then goes on with what it believed - its lock valid, its leases held. Armed at
    /// `at_ms`; it resumes at `at_ms + restart_after_ms` whether or not it froze.
    Freeze,
    /// A stall aimed at a lock holder: armed at `at_ms`, it strikes right after the process
    /// next takes a match lock (its Redis requests held, each given up after the response
    /// timeout as in any stall, landing in order when it resumes at `at_ms +
    /// restart_after_ms`), so the holder outlives its lock (W6) - the window a stall at a
    /// random time opens only when it happens to fall inside a match round.
    StallAfterLock,
    /// A crash aimed between a script and its notice: armed at `at_ms`, it strikes right
    /// after the process's next script that owes a notice (a group formed, a loading
    /// session cancelled, a match recorded) took effect, before it could publish (W7); the
    /// process restarts at `at_ms + restart_after_ms`, and nothing happens if no such
    /// script ran by then.
    CrashAfterScript,
    /// A stall aimed at a `loading_complete` that lands after its caller's lease expired
    /// (W9): armed at `at_ms`, the process's player-lease renewals fail from then on (its
    /// Redis errors before their effect), and it stalls right before its next
    /// `loading_complete` whose caller's lease runs out before the loading session's
    /// deadline - that call held first, every later request after it - until that lease
    /// ran out (at most `restart_after_ms`); the held call then lands while the loading
    /// session still lives. A stall after just any `loading_complete` rarely opens the
    /// window: a lease renewed within the last interval outlives a loading session created
    /// before it. Disarmed (renewals work again) at the heal if it never struck.
    StallPastLease,
}

/// A process fault; the server comes back (or resumes) after `restart_after_ms` (at the
/// latest at heal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFault {
    /// When.
    pub at_ms: u32,
    /// Server index (modulo).
    pub server: u8,
    /// What.
    pub kind: ProcessFaultKind,
    /// How long until it restarts.
    pub restart_after_ms: u32,
}

/// Per-mille rates of the fake Redis's fault kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisFaults {
    /// Error before the effect.
    pub error_before_effect: u16,
    /// Error after the effect (reply lost).
    pub error_after_effect: u16,
    /// Array reply cut short.
    pub truncated_reply: u16,
    /// One array element garbled.
    pub garbled_element: u16,
    /// One element added.
    pub extra_element: u16,
    /// Reply delayed.
    pub slow_reply: u16,
    /// Pub/sub subscriber connection dropped.
    pub subscriber_drop: u16,
    /// Longest slow-reply delay.
    pub slow_reply_max_ms: u32,
}

/// Every fault of a scenario: swarm testing draws which kinds are on, and how often.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Fake Redis faults.
    pub redis: RedisFaults,
    /// Largest network latency (0: turmoil's default).
    pub latency_max_ms: u32,
    /// Partitions between client hosts and servers.
    pub partitions: Vec<Partition>,
    /// Clock faults.
    pub clock: Vec<ClockFault>,
    /// Game server allocation faults.
    pub allocator: AllocatorFaults,
    /// Crashes and graceful shutdowns.
    pub process: Vec<ProcessFault>,
    /// Faults aimed at exactly one request (named scenarios use these).
    #[serde(default)]
    pub scheduled: Vec<ScheduledFault>,
}

/// One run of the world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The seed: derives player ids and the fakes' randomness.
    pub seed: u64,
    /// Server instances.
    pub servers: u8,
    /// Client hosts (each runs many players).
    pub client_hosts: u8,
    /// The players.
    pub players: Vec<PlayerPlan>,
    /// The faults, all within the fault phase.
    pub faults: Faults,
    /// How long faults may happen.
    pub fault_phase_ms: u32,
    /// How long the healed world runs quiet before liveness is judged.
    pub quiet_phase_ms: u32,
}

impl Scenario {
    /// The id of player `index` (drawn from the seed, stable under shrinking).
    pub fn player_ids(&self) -> Vec<Uuid> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ PLAYER_ID_SALT);
        (0..self.players.len())
            .map(|_| uuid_from(&mut rng))
            .collect()
    }

    /// The names of the fault kinds this scenario turns on.
    pub fn fault_kinds(&self) -> Vec<&'static str> {
        let f = &self.faults;
        let r = &f.redis;
        let a = &f.allocator;
        let flags = [
            ("redis_error_before_effect", r.error_before_effect > 0),
            ("redis_error_after_effect", r.error_after_effect > 0),
            ("redis_truncated_reply", r.truncated_reply > 0),
            ("redis_garbled_element", r.garbled_element > 0),
            ("redis_extra_element", r.extra_element > 0),
            ("redis_slow_reply", r.slow_reply > 0),
            ("redis_subscriber_drop", r.subscriber_drop > 0),
            ("network_latency", f.latency_max_ms > 0),
            ("network_partition", !f.partitions.is_empty()),
            (
                "clock_failure",
                f.clock
                    .iter()
                    .any(|c| matches!(c.kind, ClockFaultKind::Fail { .. })),
            ),
            (
                "clock_jump",
                f.clock
                    .iter()
                    .any(|c| matches!(c.kind, ClockFaultKind::Jump { .. })),
            ),
            ("alloc_none_idle", a.none_idle > 0),
            ("alloc_http_500", a.http_500 > 0),
            ("alloc_timeout", a.timeout > 0),
            ("alloc_malformed_body", a.malformed > 0),
            (
                "server_crash",
                f.process.iter().any(|p| p.kind == ProcessFaultKind::Crash),
            ),
            (
                "server_shutdown",
                f.process
                    .iter()
                    .any(|p| p.kind == ProcessFaultKind::Shutdown),
            ),
            (
                "server_stall",
                f.process.iter().any(|p| p.kind == ProcessFaultKind::Stall),
            ),
            (
                "server_freeze",
                f.process.iter().any(|p| p.kind == ProcessFaultKind::Freeze),
            ),
            (
                "server_stall_after_lock",
                f.process
                    .iter()
                    .any(|p| p.kind == ProcessFaultKind::StallAfterLock),
            ),
            (
                "server_crash_after_script",
                f.process
                    .iter()
                    .any(|p| p.kind == ProcessFaultKind::CrashAfterScript),
            ),
            (
                "server_stall_past_lease",
                f.process
                    .iter()
                    .any(|p| p.kind == ProcessFaultKind::StallPastLease),
            ),
            ("scheduled_redis_fault", !f.scheduled.is_empty()),
        ];
        flags
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name)
            .collect()
    }
}

/// The largest network latency a scenario draws is below this (ms).
pub const MAX_LATENCY_MS: u32 = 60;

/// How much longer than other process faults an armed one (a freeze, a stall after a
/// lock, a crash after a script) lasts (ms): it is armed at its time and strikes only when
/// its instance next does what it waits for; a freeze or stall must then outlast the lock's
/// TTL (2 s in the sim) to reach the window it exists for.
const FREEZE_EXTRA_MS: u32 = 2_000;

/// Percent of scenarios with a process fault when stalls are on: the kinds of the mix
/// before the targeted ones (crash, shutdown, stall) keep their 10 % each, and the three
/// targeted kinds (stall after a lock, crash after a script, stall past a lease) add 5 %
/// each.
const PROCESS_FAULT_PERCENT: u32 = 45;

/// How much longer than the player lease's TTL a stall past a lease lasts after it struck
/// (ms): long enough that a lease renewed right before the strike has run out when the held
/// requests land, short enough that a loading session created a second or more after the
/// strike still lives then (the loading timeout is shorter than the lease's TTL).
const PAST_LEASE_MARGIN_MS: (u32, u32) = (50, 600);

/// A stall past a lease is armed at the latest this long before the heal plus its length,
/// so that, striking at the next enqueue, it can run its course before the world heals.
const PAST_LEASE_ARM_LEAD_MS: u32 = 1_000;

/// Percent of scenarios with a process fault in the mix before stalls (`--no-stalls`).
const PROCESS_FAULT_PERCENT_BEFORE_STALLS: u32 = 30;

/// Keeps player ids independent of the other uses of the seed.
const PLAYER_ID_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// The size of the worlds a campaign draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Fewest and most players.
    pub players: (usize, usize),
    /// Fewest and most servers.
    pub servers: (u8, u8),
    /// Fewest and most client hosts.
    pub client_hosts: (u8, u8),
    /// Whether faults are drawn at all (off for pure throughput runs).
    pub faults: bool,
    /// Whether process faults include stalls (on by default; `--no-stalls` turns them
    /// off). Off, the draws are those of the fault mix before stalls existed.
    pub stalls: bool,
    /// Whether process faults include freezes (`--freezes`, off by default): they reach
    /// the lock's validity rule (R11) but also a player who had not loaded being grouped
    /// again after its instance froze (seed 251 with `--freezes`), not yet resolved.
    pub freezes: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            players: (4, 12),
            servers: (2, 3),
            client_hosts: (2, 3),
            faults: true,
            stalls: true,
            freezes: false,
        }
    }
}

/// Off with probability `100 - on_percent`, else a rate in `1..=max`.
fn rate(on_percent: u32, max: u16) -> impl Strategy<Value = u16> {
    prop_oneof![
        100 - on_percent => Just(0u16),
        on_percent => 1..=max,
    ]
}

fn behavior() -> impl Strategy<Value = Behavior> {
    prop_oneof![
        6 => Just(Behavior::Normal),
        1 => Just(Behavior::EnqueueBurst),
        1 => Just(Behavior::EnqueueThenDisconnect),
        1 => Just(Behavior::DisconnectDuringLoading),
        1 => Just(Behavior::NeverCompletes),
        1 => Just(Behavior::CompletesTwice),
        1 => Just(Behavior::WrongSession),
        1 => Just(Behavior::Reconnect),
        1 => Just(Behavior::Garbage),
        1 => Just(Behavior::SpoofedId),
        1 => Just(Behavior::DuplicateSession),
        1 => Just(Behavior::Flood),
        1 => Just(Behavior::SwitchesMode),
    ]
}

/// How many `leave_queue` calls of a run with a `switches_mode` player fail before their
/// effect: the first leave's every attempt (the service tries an effect at most 3 times),
/// so its session's entry outlives its cleanup and dies in its queue. A targeted fault, not
/// a rate: drawn at random, three failures in a row are too rare to reach R3's window.
pub const SWITCH_CLEANUP_FAULTS: u32 = 3;

/// A process fault aimed at the moment a player has just enqueued on its server (players
/// queued, a match round about to run): its fault time is moved there.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    /// Whether the fault is anchored at all.
    on: bool,
    /// Which player (modulo the players).
    player: prop::sample::Index,
    /// How long after that player's start.
    after_ms: u32,
}

fn anchor() -> impl Strategy<Value = Anchor> {
    (
        proptest::bool::weighted(0.6),
        any::<prop::sample::Index>(),
        150u32..1_200,
    )
        .prop_map(|(on, player, after_ms)| Anchor {
            on,
            player,
            after_ms,
        })
}

/// The player lease's TTL in the simulation (ms): `lease_ttl_ms + lease_renew_interval_ms`.
fn player_lease_ttl_ms() -> u32 {
    let timing = crate::world::sim_settings().timing;
    u32::try_from(timing.lease_ttl_ms + timing.lease_renew_interval_ms).unwrap_or(u32::MAX)
}

/// Applies the targeted faults: an anchored process fault hits the anchored player's
/// server right after it enqueued (a stall past a lease is armed as it connects, to strike
/// at its enqueue); a `switches_mode` player gets the first leave's cleanup failed.
fn target_faults(
    mut faults: Faults,
    players: &[PlayerPlan],
    anchor: Anchor,
    fault_phase_ms: u32,
) -> Faults {
    if anchor.on && !players.is_empty() {
        let plan = anchor.player.get(players);
        for process in &mut faults.process {
            let after_ms = match process.kind {
                ProcessFaultKind::StallPastLease => 0,
                _ => anchor.after_ms,
            };
            process.at_ms = (plan.start_ms + after_ms).min(fault_phase_ms.saturating_sub(1));
            process.server = plan.server;
        }
    }
    for process in &mut faults.process {
        if process.kind == ProcessFaultKind::StallPastLease {
            let latest_ms = fault_phase_ms
                .saturating_sub(process.restart_after_ms)
                .saturating_sub(PAST_LEASE_ARM_LEAD_MS);
            process.at_ms = process.at_ms.min(latest_ms);
        }
    }
    if players.iter().any(|p| p.behavior == Behavior::SwitchesMode) {
        for occurrence in 1..=SWITCH_CLEANUP_FAULTS {
            faults.scheduled.push(ScheduledFault::on_call(
                "leave_queue",
                occurrence,
                crate::fake_redis::FaultKind::ErrorBeforeEffect,
            ));
        }
    }
    faults
}

/// How long a player takes to load: mostly well within the loading timeout, sometimes
/// about as long as it (before the heal only, see the player), so `loading_complete`
/// races the stale sweep (W4).
fn loading_ms() -> impl Strategy<Value = u32> {
    prop_oneof![
        9 => 50u32..1_500,
        1 => SLOW_LOADING_MS.0..SLOW_LOADING_MS.1,
    ]
}

/// The range of a slow loader's loading time: around the simulation's 3 s loading timeout.
pub const SLOW_LOADING_MS: (u32, u32) = (2_500, 3_500);

/// Once the world has healed a player loads within this (a slow loader too), so the
/// liveness bound holds for every cooperative player.
pub const HEALED_LOADING_MAX_MS: u32 = 1_500;

fn player(fault_phase_ms: u32) -> impl Strategy<Value = PlayerPlan> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        behavior(),
        0..fault_phase_ms / 2,
        loading_ms(),
        0u32..4_000,
        1u8..=2,
        proptest::bool::weighted(0.3),
    )
        .prop_map(
            |(host, server, mode, behavior, start_ms, loading_ms, action_ms, rounds, quits)| {
                PlayerPlan {
                    host,
                    server,
                    mode,
                    behavior,
                    start_ms,
                    loading_ms,
                    action_ms,
                    rounds,
                    quits_on_loss: quits,
                }
            },
        )
}

fn redis_faults() -> impl Strategy<Value = RedisFaults> {
    (
        rate(50, 40),
        rate(50, 40),
        rate(40, 30),
        rate(40, 30),
        rate(40, 30),
        rate(50, 60),
        rate(30, 20),
        1u32..1_500,
    )
        .prop_map(
            |(before, after, truncated, garbled, extra, slow, drop, slow_max)| RedisFaults {
                error_before_effect: before,
                error_after_effect: after,
                truncated_reply: truncated,
                garbled_element: garbled,
                extra_element: extra,
                slow_reply: slow,
                subscriber_drop: drop,
                slow_reply_max_ms: slow_max,
            },
        )
}

fn faults(fault_phase_ms: u32, stalls: bool, freezes: bool) -> impl Strategy<Value = Faults> {
    let partition = (0..fault_phase_ms, 100u32..3_000, any::<u8>(), any::<u8>()).prop_map(
        |(at_ms, duration_ms, client_host, server)| Partition {
            at_ms,
            duration_ms,
            client_host,
            server,
        },
    );
    let clock_kind = prop_oneof![
        (100u32..2_000).prop_map(|duration_ms| ClockFaultKind::Fail { duration_ms }),
        (-1_500i32..1_500).prop_map(|offset_ms| ClockFaultKind::Jump { offset_ms }),
    ];
    let clock =
        (0..fault_phase_ms, any::<u8>(), clock_kind).prop_map(|(at_ms, server, kind)| ClockFault {
            at_ms,
            server,
            kind,
        });
    let process_kind = if stalls && freezes {
        prop_oneof![
            2 => Just(ProcessFaultKind::Crash),
            2 => Just(ProcessFaultKind::Shutdown),
            2 => Just(ProcessFaultKind::Stall),
            1 => Just(ProcessFaultKind::StallAfterLock),
            1 => Just(ProcessFaultKind::CrashAfterScript),
            1 => Just(ProcessFaultKind::StallPastLease),
            2 => Just(ProcessFaultKind::Freeze)
        ]
        .boxed()
    } else if stalls {
        prop_oneof![
            2 => Just(ProcessFaultKind::Crash),
            2 => Just(ProcessFaultKind::Shutdown),
            2 => Just(ProcessFaultKind::Stall),
            1 => Just(ProcessFaultKind::StallAfterLock),
            1 => Just(ProcessFaultKind::CrashAfterScript),
            1 => Just(ProcessFaultKind::StallPastLease)
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(ProcessFaultKind::Crash),
            Just(ProcessFaultKind::Shutdown)
        ]
        .boxed()
    };
    let lease_ttl_ms = player_lease_ttl_ms();
    let process = (
        500..fault_phase_ms,
        any::<u8>(),
        process_kind,
        200u32..4_000,
    )
        .prop_map(
            move |(at_ms, server, kind, restart_after_ms)| ProcessFault {
                at_ms,
                server,
                kind,
                // An armed fault only matters once it outlasts a lock's TTL after it struck
                // (or, for a crash, once it had time to strike); a stall past a lease lasts
                // just past the player lease's TTL from when it struck.
                restart_after_ms: match kind {
                    ProcessFaultKind::Freeze
                    | ProcessFaultKind::StallAfterLock
                    | ProcessFaultKind::CrashAfterScript => {
                        restart_after_ms.saturating_add(FREEZE_EXTRA_MS)
                    }
                    ProcessFaultKind::StallPastLease => {
                        let (low, high) = PAST_LEASE_MARGIN_MS;
                        lease_ttl_ms + low + restart_after_ms % (high - low)
                    }
                    _ => restart_after_ms,
                },
            },
        );
    let allocator = (rate(30, 300), rate(30, 300), rate(20, 200), rate(30, 300)).prop_map(
        |(none_idle, http_500, timeout, malformed)| AllocatorFaults {
            none_idle,
            http_500,
            timeout,
            malformed,
        },
    );
    let process_percent = if stalls {
        PROCESS_FAULT_PERCENT
    } else {
        PROCESS_FAULT_PERCENT_BEFORE_STALLS
    };
    let sometimes = |on_percent: u32, max: usize| prop_oneof![100 - on_percent => Just(0usize), on_percent => 1..=max];
    (
        redis_faults(),
        prop_oneof![Just(0u32), 1u32..MAX_LATENCY_MS],
        sometimes(40, 2).prop_flat_map(move |n| vec(partition.clone(), n)),
        sometimes(40, 2).prop_flat_map(move |n| vec(clock.clone(), n)),
        allocator,
        sometimes(process_percent, 1).prop_flat_map(move |n| vec(process.clone(), n)),
    )
        .prop_map(
            |(redis, latency_max_ms, partitions, clock, allocator, process)| Faults {
                redis,
                latency_max_ms,
                partitions,
                clock,
                allocator,
                process,
                scheduled: Vec::new(),
            },
        )
}

/// The strategy of scenarios of `shape` for `seed`.
pub fn strategy(seed: u64, shape: Shape) -> BoxedStrategy<Scenario> {
    let fault_phase_ms = 8_000u32;
    let faults = if shape.faults {
        faults(fault_phase_ms, shape.stalls, shape.freezes).boxed()
    } else {
        Just(Faults::default()).boxed()
    };
    let targeted = shape.faults;
    (
        shape.servers.0..=shape.servers.1,
        shape.client_hosts.0..=shape.client_hosts.1,
        vec(player(fault_phase_ms), shape.players.0..=shape.players.1),
        faults,
        anchor(),
    )
        .prop_map(move |(servers, client_hosts, players, faults, anchor)| {
            let faults = if targeted {
                target_faults(faults, &players, anchor, fault_phase_ms)
            } else {
                faults
            };
            Scenario {
                seed,
                servers,
                client_hosts,
                players,
                faults,
                fault_phase_ms,
                quiet_phase_ms: QUIET_PHASE_MS,
            }
        })
        .boxed()
}

/// How long the healed world runs before liveness is judged: enough for a dead entry's lease
/// to run out, a stale loading session to be swept, and a fresh match to load and allocate.
pub const QUIET_PHASE_MS: u32 = 15_000;

/// The value tree of the scenario for `seed`: `current()` is the scenario, and proptest can
/// shrink it.
pub fn tree(seed: u64, shape: Shape) -> Option<Box<dyn ValueTree<Value = Scenario>>> {
    let mut bytes = [0u8; 32];
    for (chunk, byte) in bytes.iter_mut().zip(seed.to_le_bytes().iter().cycle()) {
        *chunk = *byte;
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    strategy(seed, shape)
        .new_tree(&mut runner)
        .ok()
        .map(|tree| Box::new(tree) as Box<dyn ValueTree<Value = Scenario>>)
}

/// The scenario for `seed`.
pub fn generate(seed: u64, shape: Shape) -> Option<Scenario> {
    tree(seed, shape).map(|tree| tree.current())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a seed always yields the same scenario, and different seeds different ones.
    #[test]
    fn seeds_are_deterministic() {
        let shape = Shape::default();
        assert_eq!(generate(7, shape), generate(7, shape));
        assert_ne!(generate(7, shape), generate(8, shape));
        let scenario = generate(7, shape).unwrap();
        assert!(scenario.players.len() >= 4 && scenario.players.len() <= 12);
        assert_eq!(scenario.player_ids(), scenario.player_ids());
    }

    /// Goal: a scenario survives the JSON file `shrink` writes and `replay --scenario` reads.
    #[test]
    fn scenarios_round_trip_through_json() {
        let scenario = generate(42, Shape::default()).unwrap();
        let text = serde_json::to_string_pretty(&scenario).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&text).unwrap(), scenario);
    }
}
