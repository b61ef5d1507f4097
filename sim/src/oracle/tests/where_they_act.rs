//! Tests of the checks that judge a recovery rule where it acts, not by its outcome
//! long after: `try_match` grouping a dead entry (R4), a dead entry outliving the sweep
//! (R14), a lost completion's retry (R6) and a graceful end's cleanup (R20). Each
//! hand-made history is flagged, and its twin with the rule kept (or a cause on record)
//! passes.

use match_server::probe::LeaseChange;

use super::*;
use crate::oracle::history::{RedisOp, SERVER_SHUTDOWN};

const LOADING: u128 = 50;
/// The owner token `entry()` gives every entry.
const OWNER: u128 = 99;

/// A `try_match` of server-0 at 1,000 ms that created the loading session, grouping
/// `dead` players whose entry lease had run out by its clock.
fn try_match(dead: &[u128]) -> RedisOp {
    RedisOp {
        loading: Some(id(LOADING)),
        grouped_dead: dead.iter().map(|p| id(*p)).collect(),
        ..RedisOp::answered(1_000, "server-0", "try_match", "matched")
    }
}

/// Goal: a `try_match` that grouped a player whose entry lease had run out (the
/// `try-match-ignores-lease` defect) is flagged at once, naming the player; one that
/// grouped only live entries passes.
#[test]
fn try_match_grouping_a_dead_entry_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    oracle.redis_ops([try_match(&[1])]);
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::NoGhosts, Some(1)));
    assert!(!flagged(&oracle, Invariant::NoGhosts, Some(2)));

    let mut oracle = oracle_with_players(&[1, 2]);
    oracle.redis_ops([try_match(&[])]);
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(!flagged(&oracle, Invariant::NoGhosts, None));
}

/// A settled snapshot at `now_ms` holding player 1's entry at `place`, lease until 1,000.
fn dead_entry_view(place: Place, now_ms: u64) -> RedisView {
    RedisView {
        now_ms,
        entries: BTreeMap::from([(id(1), entry(place, 1_000))]),
        ..RedisView::default()
    }
}

/// Goal: a queued entry still in Redis longer than the stale slack after its lease ran out
/// (the `sweep-players-skips-queued` defect) is flagged; within the slack, in a loading
/// session (the stale loading sweep's) or in a snapshot before the world settled, it is
/// not.
#[test]
fn dead_entry_outliving_the_sweep_is_flagged() {
    let slack_ms = bounds().stale_slack_ms;
    let mut oracle = oracle_with_players(&[1]);
    oracle.snapshot(0, &dead_entry_view(Place::Queued, 1_001 + slack_ms), true);
    assert!(flagged(&oracle, Invariant::NoStaleState, Some(1)));

    let loading = Place::Loading {
        loading: id(LOADING),
    };
    let passing = [
        (dead_entry_view(Place::Queued, 1_000 + slack_ms), true),
        (dead_entry_view(loading, 9_000 + slack_ms), true),
        (dead_entry_view(Place::Queued, 9_000 + slack_ms), false),
    ];
    for (view, settled) in passing {
        let mut oracle = oracle_with_players(&[1]);
        oracle.snapshot(0, &view, settled);
        assert!(
            !flagged(&oracle, Invariant::NoStaleState, None),
            "{view:?}: {:?}",
            oracle.violations()
        );
    }
}

/// A `loading_complete` of player `caller` from `host` at `at_ms` that took effect `effect`
/// and was answered `reply`.
fn completion(at_ms: u64, host: &str, caller: u128, effect: &str, reply: &str) -> RedisOp {
    RedisOp {
        loading: Some(id(LOADING)),
        caller: Some(id(caller)),
        reply_tag: Some(reply.to_owned()),
        fault: (effect != reply).then_some("error_after_effect"),
        ..RedisOp::answered(at_ms, host, "loading_complete", effect)
    }
}

/// Goal: a `loading_complete` that completed its group but lost its reply, whose retry is
/// answered `already_ready` (the `complete-retry-not-idempotent` defect: no one allocates),
/// is flagged; a retry answered `all_ready` again, or a co-player's own `already_ready`,
/// passes.
#[test]
fn lost_completion_whose_retry_is_refused_is_flagged() {
    let lost = completion(1_000, "server-0", 1, "all_ready", "error");
    let mut oracle = oracle_with_players(&[1, 2]);
    oracle.redis_ops([
        lost.clone(),
        completion(1_100, "server-0", 1, "already_ready", "already_ready"),
    ]);
    liveness(&mut oracle, 3_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::MatchInTime, Some(1)));

    let passing = [
        completion(1_100, "server-0", 1, "all_ready", "all_ready"),
        completion(1_100, "server-0", 2, "already_ready", "already_ready"),
    ];
    for retry in passing {
        let mut oracle = oracle_with_players(&[1, 2]);
        oracle.redis_ops([lost.clone(), retry.clone()]);
        liveness(&mut oracle, 3_000, &RedisView::default());
        assert!(
            !flagged(&oracle, Invariant::MatchInTime, None),
            "{retry:?}: {:?}",
            oracle.violations()
        );
    }
}

/// How a graceful end goes in the hand-made history.
#[derive(Clone, Copy, Debug)]
enum End {
    /// server-0 shuts down at 1,000 ms; the client hears `shutting_down` at 1,200 ms (its
    /// link was slow).
    Shutdown,
    /// The client closes its socket at 1,200 ms.
    Close,
}

/// Player 1's session (owner 99) on server-0 takes its lease at 20 ms, ends gracefully
/// (`end`), with `fault` on record; a snapshot taken past the grace holds its entry at
/// `place` under `owner`.
fn graceful_end(end: End, fault: Option<(u64, &str)>, place: Place, owner: u128) -> Oracle {
    let mut oracle = oracle_with_players(&[1]);
    let server = Scope::Instance("server-0".into());
    oracle.client_event(id(1), 10, connected());
    oracle.facts([FactRecord {
        at_ms: 20,
        host: "server-0".into(),
        fact: Fact::Lease {
            player: id(1),
            owner: id(OWNER),
            change: LeaseChange::Taken,
        },
        witness: None,
    }]);
    if let Some((at_ms, what)) = fault {
        oracle
            .history_mut()
            .fault(at_ms, Some(at_ms + 10), server.clone(), what.into());
    }
    let event = match end {
        End::Shutdown => {
            let what = SERVER_SHUTDOWN.to_owned();
            oracle.history_mut().fault(1_000, Some(5_000), server, what);
            ClientEvent::Received(ServerMessage::error(ErrorCode::ShuttingDown))
        }
        End::Close => ClientEvent::Disconnected {
            for_good: true,
            closed: true,
        },
    };
    oracle.client_event(id(1), 1_200, event);
    let mut left = entry(place, 9_000);
    left.owner = id(owner);
    let view = RedisView {
        now_ms: 1_500,
        entries: BTreeMap::from([(id(1), left)]),
        ..RedisView::default()
    };
    oracle.snapshot(1_300, &view, false);
    oracle
}

/// Goal: a session drained by a shutdown, or closed by its client, that leaves its entry
/// queued or loading past the grace (the `shutdown-skips-cleanup` defect: the players'
/// next session hears `player_busy` until the lease runs out) is flagged - the shutdown
/// itself excuses nothing.
#[test]
fn graceful_end_leaving_its_entry_is_flagged() {
    let loading = Place::Loading {
        loading: id(LOADING),
    };
    for end in [End::Shutdown, End::Close] {
        for place in [Place::Queued, loading.clone()] {
            let what = format!("{end:?} {place:?}");
            let oracle = graceful_end(end, None, place, OWNER);
            assert!(flagged(&oracle, Invariant::NoGhosts, Some(1)), "{what}");
        }
    }
}

/// Goal: the cleanup is excused by a fault on its path (a Redis fault on the drained
/// server's cleanup, even before the client heard), and an entry of a newer session
/// (another owner) is none of the ended session's business.
#[test]
fn graceful_end_with_a_cause_passes() {
    let redis_fault = Some((
        1_010,
        "redis_error_before_effect on leave_queue from server-0",
    ));
    let cases = [
        graceful_end(End::Shutdown, redis_fault, Place::Queued, OWNER),
        graceful_end(
            End::Close,
            Some((1_150, "server_crash")),
            Place::Queued,
            OWNER,
        ),
        graceful_end(End::Shutdown, None, Place::Queued, 7),
        graceful_end(End::Close, None, Place::Queued, 7),
    ];
    for oracle in cases {
        assert!(
            !flagged(&oracle, Invariant::NoGhosts, None),
            "{:?}",
            oracle.violations()
        );
    }
}
