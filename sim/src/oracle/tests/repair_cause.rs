//! Tests of invariant 15 (no repair without a cause): hand-made histories of repairs the
//! check must flag (nothing on record could have broken the state), and their twins with a
//! cause on record (a fault on the path, a recorded drop, a notice still in flight) that it
//! passes.

use match_server::probe::{Act, EndCause, Repair, RepairRule};

use super::*;
use crate::oracle::history::{RedisOp, SUBSCRIBER_DROP};
use crate::probe::{LoadingState, Witness};

const LOADING: u128 = 50;
const OWNER: u128 = 71;

fn record(at_ms: u64, host: &str, fact: Fact, witness: Option<Witness>) -> FactRecord {
    FactRecord {
        at_ms,
        host: host.into(),
        fact,
        witness,
    }
}

/// Player 1's session (owner 71, on server-1) enqueues at 10 ms; server-0 creates the
/// loading session at 1,000 ms (its `try_match` served then).
fn created_on_server_0() -> Oracle {
    let mut oracle = oracle_with_players(&[1, 2]);
    let enqueue = Fact::Acted {
        player: id(1),
        owner: id(OWNER),
        act: Act::Enqueue { requested: true },
    };
    oracle.facts([record(10, "server-1", enqueue, None)]);
    oracle.redis_ops([RedisOp {
        loading: Some(id(LOADING)),
        ..RedisOp::answered(1_000, "server-0", "try_match", "matched")
    }]);
    let created = Fact::LoadingCreated {
        loading: id(LOADING),
        mode: MODE.into(),
        players: vec![id(1), id(2)],
    };
    oracle.facts([record(1_000, "server-0", created, None)]);
    oracle
}

/// Player 1's session repairs `what` at `at_ms` on server-1, found by its periodic resync.
fn repaired(oracle: &mut Oracle, at_ms: u64, what: Repair) {
    let fact = Fact::Repaired {
        rule: RepairRule::PeriodicResync,
        player: Some(id(1)),
        owner: Some(id(OWNER)),
        what,
    };
    oracle.facts([record(at_ms, "server-1", fact, None)]);
}

/// server-0's matchmaker recovers the loading session its lost `try_match` reply created,
/// at `at_ms` (it reads the session back and orders its players' resync).
fn recovered_on_server_0(oracle: &mut Oracle, at_ms: u64) {
    let recovered = Fact::Repaired {
        rule: RepairRule::LostReplyRecovery,
        player: None,
        owner: None,
        what: Repair::LoadingRecovered {
            loading: id(LOADING),
        },
    };
    oracle.facts([record(at_ms, "server-0", recovered, None)]);
}

fn missed_loading() -> Repair {
    Repair::MissedLoading {
        loading: id(LOADING),
        left: None,
    }
}

/// Goal: a `start_loading` lost with no fault anywhere on its path, announced by the
/// periodic resync seconds later, is flagged (the canary of "publish to nobody").
#[test]
fn missed_start_without_a_fault_is_flagged() {
    let mut oracle = created_on_server_0();
    repaired(&mut oracle, 4_000, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
}

/// Goal: a fault elsewhere in the run (another instance, or before the cause) excuses
/// nothing.
#[test]
fn fault_elsewhere_excuses_nothing() {
    let mut oracle = created_on_server_0();
    let history = oracle.history_mut();
    history.fault(
        2_000,
        Some(2_100),
        Scope::Instance("server-2".into()),
        "server_crash".into(),
    );
    history.fault(
        100,
        Some(200),
        Scope::Instance("server-1".into()),
        "redis_error_before_effect on renew_leases from server-1".into(),
    );
    repaired(&mut oracle, 4_000, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
}

/// Goal: the same repair passes when its cause is on record: the creator's Redis path
/// failed, the repairing instance's subscriber was down, the service dropped the notice
/// from a full queue, or the resync read the entry while the notice was still in flight.
#[test]
fn missed_start_with_a_cause_passes() {
    let faults = [
        (
            "server-0",
            "redis_lost_reply on PUBLISH from server-0",
            1_010,
        ),
        ("server-1", SUBSCRIBER_DROP, 3_990),
    ];
    for (instance, what, to_ms) in faults {
        let mut oracle = created_on_server_0();
        let scope = Scope::Instance(instance.into());
        oracle
            .history_mut()
            .fault(1_001, Some(to_ms), scope, what.into());
        repaired(&mut oracle, 4_000, missed_loading());
        liveness(&mut oracle, 6_000, &RedisView::default());
        assert!(
            !flagged(&oracle, Invariant::RepairHasCause, None),
            "{what}: {:?}",
            oracle.violations()
        );
    }

    let mut oracle = created_on_server_0();
    let dropped = Fact::NoticeDropped {
        player: id(1),
        owner: id(OWNER),
        loading: Some(id(LOADING)),
    };
    oracle.facts([record(1_005, "server-1", dropped, None)]);
    repaired(&mut oracle, 4_000, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(!flagged(&oracle, Invariant::RepairHasCause, None));

    let mut oracle = created_on_server_0();
    repaired(&mut oracle, 1_010, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(!flagged(&oracle, Invariant::RepairHasCause, None));
}

/// Goal: a subscriber drop excuses what its instance missed only until its resubscribe
/// resync had time to run (R7): a repair by the periodic resync long after the subscriber
/// was back stands for a broken resubscribe resync, and is flagged.
#[test]
fn subscriber_drop_excuses_only_until_the_resubscribe_resync() {
    let mut oracle = created_on_server_0();
    let scope = Scope::Instance("server-1".into());
    oracle
        .history_mut()
        .fault(900, Some(1_010), scope, SUBSCRIBER_DROP.into());
    repaired(&mut oracle, 4_000, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
}

/// Goal: a loading session whose `try_match` reply was lost and which the matchmaker
/// recovered owes its players the recovery's resync: the lost reply excuses the missed
/// `start_loading` only until the recovery, not a repair a second later.
#[test]
fn lost_reply_excuses_only_until_the_recovery() {
    let mut oracle = created_on_server_0();
    let scope = Scope::Instance("server-0".into());
    oracle.history_mut().fault(
        1_000,
        Some(1_001),
        scope,
        "redis_lost_reply on try_match from server-0".into(),
    );
    recovered_on_server_0(&mut oracle, 1_050);
    repaired(&mut oracle, 2_500, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
    // The recovery itself is excused by the lost reply.
    assert_eq!(
        oracle
            .violations()
            .iter()
            .filter(|v| v.invariant == Invariant::RepairHasCause)
            .count(),
        1
    );
}

/// server-0 records the match of the loading session at 3,000 ms (its `finish_match`).
fn matched_on_server_0(oracle: &mut Oracle) {
    let state = LoadingState {
        players: vec![id(1), id(2)],
        ..LoadingState::default()
    };
    let ending = Fact::LoadingEnding {
        loading: id(LOADING),
        mode: MODE.into(),
        cause: EndCause::Matched,
    };
    let witness = Witness::Loading(Some(state));
    oracle.facts([record(3_000, "server-0", ending, Some(witness))]);
}

/// Goal: a `match_found` the session learns only from its entry (the notice path skipped
/// it), with no fault since the match, is flagged; a crash of the matching instance right
/// after the match (before its publish) excuses it.
#[test]
fn missed_match_needs_a_fault_after_the_match() {
    let missed = Repair::MissedMatch {
        loading: id(LOADING),
    };
    let mut oracle = created_on_server_0();
    matched_on_server_0(&mut oracle);
    repaired(&mut oracle, 5_000, missed);
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));

    let mut oracle = created_on_server_0();
    matched_on_server_0(&mut oracle);
    let scope = Scope::Instance("server-0".into());
    oracle
        .history_mut()
        .fault(3_001, None, scope, "server_crash".into());
    repaired(&mut oracle, 5_000, missed);
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(!flagged(&oracle, Invariant::RepairHasCause, None));
}

/// Goal: an entry lost under a live session with no fault is flagged; a clock jump on any
/// instance (a sweeper judging the lease by a skewed clock) or a failed renewal on the
/// session's own instance excuses it.
#[test]
fn lost_entry_needs_a_renewal_or_clock_fault() {
    let mut oracle = created_on_server_0();
    repaired(&mut oracle, 5_000, Repair::EntryLost);
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));

    for (instance, what) in [
        ("server-2", "clock_jump"),
        (
            "server-1",
            "redis_error_before_effect on renew_leases from server-1",
        ),
    ] {
        let mut oracle = created_on_server_0();
        let scope = Scope::Instance(instance.into());
        oracle
            .history_mut()
            .fault(2_000, Some(2_001), scope, what.into());
        repaired(&mut oracle, 5_000, Repair::EntryLost);
        liveness(&mut oracle, 6_000, &RedisView::default());
        assert!(
            !flagged(&oracle, Invariant::RepairHasCause, None),
            "{what}: {:?}",
            oracle.violations()
        );
    }
}

/// Goal: orders to resync and the dead-entry sweep are on record but not judged (their
/// outcome is judged where a session repairs), so they never fail a run by themselves.
#[test]
fn orders_to_resync_are_not_judged() {
    let mut oracle = created_on_server_0();
    repaired(&mut oracle, 5_000, Repair::ResyncOrdered);
    repaired(&mut oracle, 5_000, Repair::DeadEntries { count: 3 });
    liveness(&mut oracle, 6_000, &RedisView::default());
    assert!(!flagged(&oracle, Invariant::RepairHasCause, None));
}

/// server-0's `try_match` reply is lost at 1,050 ms, stamped at the very instant its
/// recovery reads the loading session back (as in the simulation, where both happen in one
/// step); player 1's session on server-1 repairs the missed start at `repair_ms`.
fn recovered_at_once(repair_ms: u64, fault: Option<(&str, &str, u64)>) -> Oracle {
    let mut oracle = created_on_server_0();
    oracle.history_mut().fault(
        1_050,
        Some(1_050),
        Scope::Instance("server-0".into()),
        "redis_garbled_element on try_match from server-0".into(),
    );
    if let Some((instance, what, at_ms)) = fault {
        let scope = Scope::Instance(instance.into());
        oracle
            .history_mut()
            .fault(at_ms, Some(at_ms + 10), scope, what.into());
    }
    recovered_on_server_0(&mut oracle, 1_050);
    repaired(&mut oracle, repair_ms, missed_loading());
    liveness(&mut oracle, 6_000, &RedisView::default());
    oracle
}

/// Goal: the fault a recovery answers never excuses the recovery's missing resync, even
/// stamped at the recovery's own instant (the `try-match-lost-reply-no-resync` defect: the
/// players learn only at their periodic resync), nor does a Redis fault on the repairing
/// instance after the resync was due.
#[test]
fn recovery_owes_its_resync_despite_the_fault_it_answers() {
    let oracle = recovered_at_once(2_000, None);
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
    let late = (
        "server-1",
        "redis_error_before_effect on SCARD from server-1",
        1_800,
    );
    let oracle = recovered_at_once(2_000, Some(late));
    assert!(flagged(&oracle, Invariant::RepairHasCause, Some(1)));
}

/// Goal: the recovery's resync is excused by what can stop it: a fault on the recovering
/// instance's Redis path while its notice was due (its PUBLISH), a failed resync read on
/// the repairing instance then, or a later crash of the repairing instance.
#[test]
fn recovery_resync_with_a_cause_passes() {
    let causes = [
        (
            "server-0",
            "redis_error_before_effect on PUBLISH from server-0",
            1_060,
        ),
        (
            "server-1",
            "redis_error_before_effect on HGET from server-1",
            1_060,
        ),
        ("server-1", "server_stall", 1_500),
    ];
    for cause in causes {
        let oracle = recovered_at_once(2_000, Some(cause));
        assert!(
            !flagged(&oracle, Invariant::RepairHasCause, None),
            "{cause:?}: {:?}",
            oracle.violations()
        );
    }
}
