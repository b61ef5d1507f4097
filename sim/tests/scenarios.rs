//! The named scenarios as tests: each must pass every invariant, show the behaviour it is
//! named for, and keep its canonical timeline as a reviewed insta snapshot in `snapshots/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use match_sim::campaign::render_replay;
use match_sim::named;
use match_sim::world::{self, RunConfig, RunReport};

/// Runs a named scenario, asserts it passed, snapshots its timeline and returns it.
fn run(name: &str) -> (RunReport, String) {
    let scenario = named::get(name).unwrap_or_else(|| panic!("no named scenario {name}"));
    let report = world::run(&scenario, &RunConfig::default());
    let timeline = render_replay(&report, false);
    assert!(report.passed(), "{name} broke an invariant:\n{timeline}");
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, timeline);
    });
    (report, timeline)
}

/// Lines of the timeline that contain every one of `needles`.
fn lines_with<'a>(timeline: &'a str, needles: &[&str]) -> Vec<&'a str> {
    timeline
        .lines()
        .filter(|line| needles.iter().all(|needle| line.contains(needle)))
        .collect()
}

/// Goal: three `enqueue` frames in one write give exactly one `enqueued` and two
/// `already_queued` refusals, and the player is matched once.
#[test]
fn enqueue_burst() {
    let (_, timeline) = run("enqueue_burst");
    assert_eq!(
        lines_with(&timeline, &["P0 <- enqueued"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(
        lines_with(&timeline, &["P0 <- error already_queued"]).len(),
        2
    );
    assert_eq!(lines_with(&timeline, &["P0 <- start_loading"]).len(), 1);
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
}

/// Goal: a truncated `try_match` reply is logged as a bad reply, and the loading session
/// it created is recovered: both players still load and get their match.
#[test]
fn truncated_try_match_reply() {
    let (_, timeline) = run("truncated_try_match_reply");
    assert_eq!(
        lines_with(&timeline, &["bad script reply", "try_match"]).len(),
        1
    );
    assert_eq!(
        lines_with(&timeline, &["<- match_found"]).len(),
        2,
        "{timeline}"
    );
}

/// Goal: a garbled player id in a `try_match` reply is refused by the parser, never sent to
/// anyone, and both players are still matched.
#[test]
fn garbled_player_id() {
    let (_, timeline) = run("garbled_player_id");
    assert_eq!(
        lines_with(&timeline, &["bad script reply", "try_match", "player id"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: when the reply of a `try_match` that popped players is lost, the players are in a
/// loading session all the same and learn about it.
#[test]
fn reply_lost_after_try_match() {
    let (_, timeline) = run("reply_lost_after_try_match");
    assert_eq!(
        lines_with(&timeline, &["recovering a loading session"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["<- start_loading"]).len(), 2);
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: a failing clock during match rounds is logged with its context and skips the
/// round (the lock is released), while the healthy instance matches the players.
#[test]
fn clock_failure_during_try_match() {
    let (_, timeline) = run("clock_failure_during_try_match");
    assert!(
        !lines_with(
            &timeline,
            &["server-0", "cannot read the unix time", "context=try_match"]
        )
        .is_empty(),
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: a failing clock during the stale sweep postpones the sweep; once the clock is back
/// the stale loading session is cancelled and both players are told.
#[test]
fn clock_failure_during_stale_sweep() {
    let (_, timeline) = run("clock_failure_during_stale_sweep");
    assert!(
        !lines_with(
            &timeline,
            &["cannot read the unix time", "context=sweep_loading"]
        )
        .is_empty(),
        "{timeline}"
    );
    assert!(lines_with(&timeline, &["<- error loading_timeout"]).len() >= 2);
}

/// Goal: a disconnect during loading cancels the session; the other player is told with
/// `loading_cancelled`, requeued, and matched with a newcomer.
#[test]
fn disconnect_during_loading() {
    let (_, timeline) = run("disconnect_during_loading");
    assert_eq!(
        lines_with(&timeline, &["P0 <- error loading_cancelled"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
    assert!(lines_with(&timeline, &["P1 <- match_found"]).is_empty());
}

/// Goal: a disconnect racing the other player's `loading_complete` leaves nobody waiting:
/// the one who stayed is told and later matched.
#[test]
fn disconnect_racing_loading_complete() {
    let (_, timeline) = run("disconnect_racing_loading_complete");
    assert_eq!(
        lines_with(&timeline, &["P0 <- error loading_cancelled"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
}

/// Goal: a loading session nobody completes times out: both players get `loading_timeout`
/// and are requeued, and the cooperative one is matched with a newcomer.
#[test]
fn loading_timeout() {
    let (_, timeline) = run("loading_timeout");
    assert!(
        !lines_with(&timeline, &["P0 <- error loading_timeout"]).is_empty(),
        "{timeline}"
    );
    assert!(!lines_with(&timeline, &["P1 <- error loading_timeout"]).is_empty());
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
}

/// Goal: with no idle game server the players get `no_server_available` and are requeued;
/// once a server is available they are matched.
#[test]
fn allocation_failure() {
    let (_, timeline) = run("allocation_failure");
    assert!(
        lines_with(&timeline, &["<- error no_server_available"]).len() >= 2,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: a crash with players loading loses nobody: the stale session is swept, the dead
/// entries expire, and the players play on through the other instance.
#[test]
fn server_crash_with_players_loading() {
    let (_, timeline) = run("server_crash_with_players_loading");
    assert_eq!(lines_with(&timeline, &["server-0 crashes"]).len(), 1);
    assert_eq!(
        lines_with(&timeline, &["stale loading session swept"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: a graceful shutdown with players loading tells them `shutting_down`, cancels the
/// loading session before exiting, and they are matched again elsewhere.
#[test]
fn graceful_shutdown_with_players_loading() {
    let (_, timeline) = run("graceful_shutdown_with_players_loading");
    assert_eq!(
        lines_with(&timeline, &["<- error shutting_down"]).len(),
        2,
        "{timeline}"
    );
    assert!(lines_with(&timeline, &["stale loading session swept"]).is_empty());
    assert_eq!(lines_with(&timeline, &["<- match_found"]).len(), 2);
}

/// Goal: every named scenario has a test here (a new one cannot be added unreviewed).
#[test]
fn every_named_scenario_is_tested() {
    let source = include_str!("scenarios.rs");
    for (name, _) in named::all() {
        assert!(
            source.contains(&format!("fn {name}()")),
            "named scenario {name} has no test"
        );
    }
}

/// Goal: the simulation checks itself: one scenario run twice gives the same trace hash.
#[test]
fn runs_are_deterministic() {
    let scenario = named::get("loading_timeout").unwrap();
    let first = world::run(&scenario, &RunConfig::default());
    let second = world::run(&scenario, &RunConfig::default());
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(!first.trace.is_empty());
}

/// Goal: a second connection for a player, opened on another instance while the first is
/// live, is refused with `session_exists`; the first connection keeps the player and is
/// matched once.
#[test]
fn duplicate_session_on_two_instances() {
    let (_, timeline) = run("duplicate_session_on_two_instances");
    assert_eq!(
        lines_with(
            &timeline,
            &["P0 (second connection) refused: session_exists"]
        )
        .len(),
        1,
        "{timeline}"
    );
    assert_eq!(
        lines_with(&timeline, &["server-1", "player=P0", "close=SessionExists"]).len(),
        1
    );
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
    assert_eq!(lines_with(&timeline, &["P1 <- match_found"]).len(), 1);
}

/// Goal: an `enqueue` for another player id is refused with `player_mismatch` and the
/// spoofer still plays as itself; a flood of frames is rate limited, then closed with
/// 1008, and the flooder reconnects and is matched - with the spoofer, once each.
#[test]
fn spoofed_id_and_flood() {
    let (_, timeline) = run("spoofed_id_and_flood");
    assert_eq!(
        lines_with(&timeline, &["P0 <- error player_mismatch"]).len(),
        1,
        "{timeline}"
    );
    assert!(!lines_with(&timeline, &["P1 <- error rate_limited"]).is_empty());
    assert_eq!(
        lines_with(&timeline, &["P1 closed by server (code 1008)"]).len(),
        1
    );
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
    assert_eq!(lines_with(&timeline, &["P1 <- match_found"]).len(), 1);
}
