//! Named scenarios: hand-written worlds that each put one race or fault on stage. Their
//! canonical timelines are kept as reviewed insta snapshots (`snapshots/`), and
//! `match-sim replay --named NAME` prints any of them.

use crate::fake_redis::{FaultKind, ScheduledFault};
use crate::scenario::{
    Behavior, ClockFault, ClockFaultKind, Faults, PlayerPlan, ProcessFault, ProcessFaultKind,
    QUIET_PHASE_MS, Scenario,
};
use crate::seams::AllocatorFaults;

/// Mode index of `Normal_1v1` in the simulation's settings.
const ONE_V_ONE: u8 = 0;
/// Mode index of `Normal_2v2` in the simulation's settings.
const TWO_V_TWO: u8 = 1;

/// A player of `behavior` connecting to `server` at `start_ms`, loading in 300 ms.
fn player(behavior: Behavior, server: u8, start_ms: u32) -> PlayerPlan {
    PlayerPlan {
        host: 0,
        server,
        mode: ONE_V_ONE,
        behavior,
        start_ms,
        loading_ms: 300,
        action_ms: 200,
        rounds: 1,
        quits_on_loss: false,
    }
}

/// A world of `servers` instances, one client host, no faults unless added.
fn world(seed: u64, servers: u8, players: Vec<PlayerPlan>) -> Scenario {
    Scenario {
        seed,
        servers,
        client_hosts: 1,
        players,
        faults: Faults::default(),
        fault_phase_ms: 6_000,
        quiet_phase_ms: QUIET_PHASE_MS,
    }
}

/// Two players of 1v1 on one server, the classic pair most scenarios start from.
fn pair(seed: u64) -> Scenario {
    world(
        seed,
        1,
        vec![
            player(Behavior::Normal, 0, 100),
            player(Behavior::Normal, 0, 200),
        ],
    )
}

/// Every named scenario, in a stable order.
pub fn all() -> Vec<(&'static str, Scenario)> {
    vec![
        ("enqueue_burst", enqueue_burst()),
        (
            "truncated_try_match_reply",
            with_scheduled(pair(2), on_matched(FaultKind::TruncatedReply, Some(4))),
        ),
        (
            "garbled_player_id",
            with_scheduled(pair(3), on_matched(FaultKind::GarbledElement, Some(3))),
        ),
        (
            "reply_lost_after_try_match",
            with_scheduled(pair(4), on_matched(FaultKind::ErrorAfterEffect, None)),
        ),
        (
            "clock_failure_during_try_match",
            clock_failure_during_try_match(),
        ),
        (
            "clock_failure_during_stale_sweep",
            clock_failure_during_stale_sweep(),
        ),
        ("disconnect_during_loading", disconnect_during_loading()),
        (
            "disconnect_racing_loading_complete",
            disconnect_racing_loading_complete(),
        ),
        ("loading_timeout", loading_timeout()),
        (
            "afk_player_removed_at_loading_timeout",
            afk_player_removed_at_loading_timeout(),
        ),
        ("allocation_failure", allocation_failure()),
        (
            "server_crash_with_players_loading",
            server_shutdown(ProcessFaultKind::Crash),
        ),
        (
            "graceful_shutdown_with_players_loading",
            server_shutdown(ProcessFaultKind::Shutdown),
        ),
        ("duplicate_session_on_two_instances", duplicate_session()),
        ("spoofed_id_and_flood", spoofed_id_and_flood()),
    ]
}

/// The named scenario `name`.
pub fn get(name: &str) -> Option<Scenario> {
    all()
        .into_iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, scenario)| scenario)
}

/// A fault on the first `try_match` that forms a group.
fn on_matched(kind: FaultKind, element: Option<usize>) -> ScheduledFault {
    let fault = ScheduledFault::on_reply("try_match", "matched", 1, kind);
    match element {
        Some(element) => fault.at_element(element),
        None => fault,
    }
}

fn with_scheduled(mut scenario: Scenario, fault: ScheduledFault) -> Scenario {
    scenario.faults.scheduled.push(fault);
    scenario
}

/// Three `enqueue` frames in one write on one connection: one `enqueued`, two refusals.
fn enqueue_burst() -> Scenario {
    let mut burst = player(Behavior::EnqueueBurst, 0, 100);
    burst.action_ms = 201; // an odd action time makes the burst three frames long
    world(1, 1, vec![burst, player(Behavior::Normal, 0, 300)])
}

/// The first match attempt (on server 1, where the players are) fails with a Redis error,
/// so server 0's periodic round is the next to try - while its clock fails. It logs the
/// failure with its context, releases the lock and stops; server 1 matches the players on
/// its next round.
fn clock_failure_during_try_match() -> Scenario {
    let players = vec![
        player(Behavior::Normal, 1, 100),
        player(Behavior::Normal, 1, 200),
    ];
    let mut scenario = world(5, 2, players);
    scenario.faults.clock.push(ClockFault {
        at_ms: 0,
        server: 0,
        kind: ClockFaultKind::Fail { duration_ms: 2_000 },
    });
    let first_attempt = ScheduledFault::on_call("try_match", 1, FaultKind::ErrorBeforeEffect);
    scenario.faults.scheduled.push(first_attempt);
    scenario
}

/// The only server's clock fails around the deadline of a loading session that will never
/// complete: the sweep skips while the clock is down and cancels it once it is back.
fn clock_failure_during_stale_sweep() -> Scenario {
    let mut scenario = world(
        6,
        1,
        vec![
            player(Behavior::Normal, 0, 100),
            player(Behavior::NeverCompletes, 0, 200),
        ],
    );
    scenario.faults.clock.push(ClockFault {
        at_ms: 3_000,
        server: 0,
        kind: ClockFaultKind::Fail { duration_ms: 1_500 },
    });
    scenario
}

/// A player leaves during loading; the other is told, requeued and matched with a third.
fn disconnect_during_loading() -> Scenario {
    let mut leaver = player(Behavior::DisconnectDuringLoading, 0, 200);
    leaver.action_ms = 100;
    world(
        7,
        1,
        vec![
            player(Behavior::Normal, 0, 100),
            leaver,
            player(Behavior::Normal, 0, 1_500),
        ],
    )
}

/// One player's `loading_complete` and the other's disconnect arrive at the same moment.
fn disconnect_racing_loading_complete() -> Scenario {
    let mut completer = player(Behavior::Normal, 0, 100);
    completer.loading_ms = 400;
    let mut leaver = player(Behavior::DisconnectDuringLoading, 0, 100);
    leaver.loading_ms = 400;
    leaver.action_ms = 400;
    world(
        8,
        1,
        vec![completer, leaver, player(Behavior::Normal, 0, 2_000)],
    )
}

/// A player never reports loading: the session times out, both are told and requeued, and
/// the cooperative one is matched with a newcomer.
fn loading_timeout() -> Scenario {
    world(
        9,
        1,
        vec![
            player(Behavior::Normal, 0, 100),
            player(Behavior::NeverCompletes, 0, 200),
            player(Behavior::Normal, 0, 4_000),
        ],
    )
}

/// Seed 719533's loading loop, on stage: three players of a 2v2 load, the fourth never
/// does. At the timeout the three are requeued (`loading_timeout`) and the AFK player is
/// removed (`loading_not_completed`), so they are not grouped with it again. It enqueues
/// once more - a new attempt - is grouped with them and removed again, and gives up; a
/// newcomer then completes their match.
fn afk_player_removed_at_loading_timeout() -> Scenario {
    let in_2v2 = |behavior, start_ms| PlayerPlan {
        mode: TWO_V_TWO,
        ..player(behavior, 0, start_ms)
    };
    let afk = PlayerPlan {
        rounds: 2,
        ..in_2v2(Behavior::NeverCompletes, 400)
    };
    let players = vec![
        in_2v2(Behavior::Normal, 100),
        in_2v2(Behavior::Normal, 200),
        in_2v2(Behavior::Normal, 300),
        afk,
        in_2v2(Behavior::Normal, 9_000),
    ];
    world(15, 1, players)
}

/// No game server is idle until the faults heal: players are told and requeued, then
/// matched once a server is available.
fn allocation_failure() -> Scenario {
    let mut scenario = pair(10);
    scenario.fault_phase_ms = 2_000;
    scenario.faults.allocator = AllocatorFaults {
        none_idle: 1_000,
        ..AllocatorFaults::default()
    };
    scenario
}

/// Server 0 crashes (or shuts down gracefully) while its two players are loading; they
/// reconnect to server 1 and are matched again.
fn server_shutdown(kind: ProcessFaultKind) -> Scenario {
    let mut first = player(Behavior::Normal, 0, 100);
    first.loading_ms = 2_000;
    let mut second = player(Behavior::Normal, 0, 200);
    second.loading_ms = 2_000;
    let seed = if kind == ProcessFaultKind::Crash {
        11
    } else {
        12
    };
    let newcomer = player(Behavior::Normal, 1, 2_000);
    let mut scenario = world(seed, 2, vec![first, second, newcomer]);
    scenario.faults.process.push(ProcessFault {
        at_ms: 1_000,
        server: 0,
        kind,
        restart_after_ms: 3_000,
    });
    scenario
}

/// A player connected to server 0 opens a second connection on server 1: the second is
/// refused with `session_exists`, the first keeps playing and is matched.
fn duplicate_session() -> Scenario {
    world(
        13,
        2,
        vec![
            player(Behavior::DuplicateSession, 0, 100),
            player(Behavior::Normal, 1, 200),
        ],
    )
}

/// One player enqueues as someone else (refused with `player_mismatch`), another floods
/// its connection with frames (rate limited); both then play normally and are matched.
fn spoofed_id_and_flood() -> Scenario {
    world(
        14,
        1,
        vec![
            player(Behavior::SpoofedId, 0, 100),
            player(Behavior::Flood, 0, 200),
        ],
    )
}
