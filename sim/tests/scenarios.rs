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
/// the stale loading session is cancelled and both players are told: the one who loaded
/// `loading_timeout` (requeued), the one who never loads `loading_not_completed`.
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
    assert_eq!(
        lines_with(&timeline, &["P0 <- error loading_timeout"]).len(),
        1
    );
    assert_eq!(
        lines_with(&timeline, &["P1 <- error loading_not_completed"]).len(),
        1
    );
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

/// Goal: a loading session one player never completes times out: the one who loaded gets
/// `loading_timeout` and is requeued, the other gets `loading_not_completed` (never a
/// "back in the queue" code) and is out of the queue; the cooperative one is matched with
/// a newcomer, never grouped again with the absent one.
#[test]
fn loading_timeout() {
    let (_, timeline) = run("loading_timeout");
    assert_eq!(
        lines_with(&timeline, &["P0 <- error loading_timeout"]).len(),
        1,
        "{timeline}"
    );
    assert_eq!(
        lines_with(&timeline, &["P1 <- error loading_not_completed"]).len(),
        1
    );
    assert!(lines_with(&timeline, &["P1 <- error loading_timeout"]).is_empty());
    assert_eq!(lines_with(&timeline, &["P1 <- start_loading"]).len(), 1);
    assert_eq!(lines_with(&timeline, &["P0 <- match_found"]).len(), 1);
}

/// Goal: seed 719533's loading loop cannot happen: three players of a 2v2 load, the fourth
/// never does. At the timeout the three get `loading_timeout` and are requeued, the AFK
/// player gets `loading_not_completed` and is not grouped with them again until it
/// enqueues again (a new attempt, which ends the same way); a newcomer then completes
/// their match.
#[test]
fn afk_player_removed_at_loading_timeout() {
    let (_, timeline) = run("afk_player_removed_at_loading_timeout");
    for loaded in ["P0", "P1", "P2"] {
        let told = format!("{loaded} <- error loading_timeout");
        assert_eq!(lines_with(&timeline, &[&told]).len(), 2, "{timeline}");
        let found = format!("{loaded} <- match_found");
        assert_eq!(lines_with(&timeline, &[&found]).len(), 1);
    }
    assert_eq!(
        lines_with(&timeline, &["P3 <- error loading_not_completed"]).len(),
        2
    );
    assert!(lines_with(&timeline, &["P3 <- error loading_timeout"]).is_empty());
    // Grouped again only after each new attempt of its own: one per start_loading.
    let attempts = lines_with(&timeline, &["P3 -> enqueue"]).len();
    assert_eq!(attempts, 2);
    assert_eq!(
        lines_with(&timeline, &["P3 <- start_loading"]).len(),
        attempts
    );
    assert!(lines_with(&timeline, &["requeued=3 removed=1"]).len() == 2);
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

/// The frozen scenario files of seeds whose failures were fixed (`sim/regressions/`), by
/// name, with their timelines.
fn regressions() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let scenario: match_sim::scenario::Scenario = serde_json::from_str(&text).unwrap();
            let report = world::run(&scenario, &RunConfig::default());
            let timeline = render_replay(&report, false);
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                report.passed(),
                "regression {name} fails again:\n{timeline}"
            );
            (name, timeline)
        })
        .collect()
}

/// Goal: every frozen regression case passes, for the reason it was fixed: 211246's
/// refusal that a crash swallowed is a refusal (no act of the second connection), 216272's
/// second connection held the lease only after the first instance shut down, 719533's AFK
/// player is removed at each timeout while those who loaded are requeued, and in 2902
/// (skewed clocks) and 7350 (a failing clock) a player who had not loaded is removed even
/// though its entry's lease had run out, instead of being re-enqueued by its session; and in
/// 345540 an enqueue retried after a lost reply counts as a new attempt from when it lands.
/// In 1111 P1's old session's entry (its cleanup failed with its server's clock) is grouped
/// while P1's new connection meets `player_busy`: that connection is owed no
/// `start_loading` until it is grouped itself. In 1396 P6's `match_found` is late after a
/// truncated `finish_match` reply, and P3's leave after the match is judged from the match.
/// In 843 a session whose lease was fenced during a stall stops before its next step.
#[test]
fn frozen_regressions_pass_for_the_right_reason() {
    let timelines: std::collections::BTreeMap<String, String> = regressions().into_iter().collect();
    let timeline = |name: &str| timelines.get(name).unwrap().as_str();
    let crash = timeline("seed-211246");
    assert_eq!(
        lines_with(crash, &["server-2", "player=P7", "close=SessionExists"]).len(),
        1,
        "{crash}"
    );
    assert_eq!(lines_with(crash, &["server-2 crashes"]).len(), 1);
    let shutdown = timeline("seed-216272");
    assert_eq!(lines_with(shutdown, &["server-1 shuts down"]).len(), 1);
    assert!(!lines_with(shutdown, &["P1 <- error session_exists"]).is_empty());
    let afk = timeline("seed-719533");
    assert!(!lines_with(afk, &["P8 <- error loading_not_completed"]).is_empty());
    assert!(
        lines_with(afk, &["P8 <- error loading_timeout"]).is_empty(),
        "{afk}"
    );
    for loaded in ["P3", "P4", "P7"] {
        let told = format!("{loaded} <- error loading_timeout");
        assert!(!lines_with(afk, &[&told]).is_empty(), "{afk}");
    }
    let skewed = timeline("seed-2902");
    assert_eq!(
        lines_with(skewed, &["P1 <- error loading_not_completed"]).len(),
        1,
        "{skewed}"
    );
    assert!(lines_with(skewed, &["P1 <- error loading_cancelled"]).is_empty());
    let clock = timeline("seed-7350");
    assert_eq!(
        lines_with(clock, &["P3 <- error loading_not_completed"]).len(),
        1,
        "{clock}"
    );
    // P0's last loading_complete took effect once the clock was back: it had loaded.
    assert!(lines_with(clock, &["P0 <- error loading_not_completed"]).is_empty());
    assert_eq!(lines_with(clock, &["P0 <- match_found"]).len(), 1); // 345540: P4's server crashed while it was loading; its reconnection's enqueue is
    // retried after a truncated reply and lands after the timeout removed the crashed
    // session's entry - a new attempt, so grouping it again is legal.
    let ghost = timeline("seed-1111");
    assert!(!lines_with(ghost, &["P1 <- error player_busy"]).is_empty());
    assert_eq!(
        lines_with(ghost, &["P1 <- start_loading"]).len(),
        3,
        "{ghost}"
    );
    let truncated = timeline("seed-1396");
    assert_eq!(lines_with(truncated, &["P6 <- match_found"]).len(), 1);
    let retried = timeline("seed-345540");
    assert_eq!(
        lines_with(
            retried,
            &["player=P4", "bad script reply", "script=enqueue"]
        )
        .len(),
        1,
        "{retried}"
    );
    assert_eq!(lines_with(retried, &["P4 <- match_found"]).len(), 1);
    // 843 (a stall of server-0): P10's resync is held past the fence of its player lease;
    // the session ends with `session_lost` when the resync gives up, before it could act on
    // an outcome (re-enqueue, `enqueued`), not after the held requests land.
    let stalled = timeline("seed-843-stall");
    assert_eq!(lines_with(stalled, &["stall server-0"]).len(), 1);
    let lost = lines_with(stalled, &["P10 <- error session_lost"]);
    assert_eq!(lost.len(), 1, "{stalled}");
    assert!(lost[0].contains("5.840s"), "{stalled}");
}

/// Goal: watching the service changes nothing: reading the witnesses of its facts from the
/// fake Redis (for invariants 10 and 11) leaves every named scenario's and every frozen
/// regression's trace exactly as a run without them.
#[test]
fn reading_witnesses_changes_no_run() {
    let unwatched = RunConfig {
        witnesses: false,
        ..RunConfig::default()
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut scenarios: Vec<match_sim::scenario::Scenario> =
        named::all().into_iter().map(|(_, s)| s).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        scenarios.push(serde_json::from_str(&text).unwrap());
    }
    for scenario in scenarios {
        let watched = world::run(&scenario, &RunConfig::default());
        let plain = world::run(&scenario, &unwatched);
        assert_eq!(
            watched.trace_hash, plain.trace_hash,
            "seed {}",
            scenario.seed
        );
        assert_eq!(watched.matches, plain.matches);
    }
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
