//! Tests of invariants 12 (message in time), 13 (codes have their cause) and 14 (views
//! agree at rest): hand-made histories each must flag, and their healthy twins it passes.

use match_server::probe::{EndCause, LeaseChange};

use super::*;
use crate::oracle::history::{RedisOp, SUBSCRIBER_DROP};
use crate::probe::{LoadingState, Witness};
use crate::world::EPOCH_SECS;

const LOADING: u128 = 50;

/// A fact reported by `host` at `at_ms`, with its witness.
fn fact(at_ms: u64, host: &str, fact: Fact, witness: Option<Witness>) -> FactRecord {
    FactRecord {
        at_ms,
        host: host.into(),
        fact,
        witness,
    }
}

/// The loading session as Redis holds it, with its deadline at sim ms `deadline_ms`.
fn loading_state(players: &[u128], deadline_ms: u64) -> LoadingState {
    LoadingState {
        players: players.iter().map(|p| id(*p)).collect(),
        deadline_ms: EPOCH_SECS * 1_000 + deadline_ms,
        ..LoadingState::default()
    }
}

/// Players 1 and 2 connect to server-0 (their sessions take their leases), enqueue and are told `start_loading` of a session
/// server-0 created at 20 ms with its deadline at 3,000 ms.
fn loading_pair() -> Oracle {
    let mut oracle = oracle_with_players(&[1, 2]);
    let players = vec![id(1), id(2)];
    let created = Fact::LoadingCreated {
        loading: id(LOADING),
        mode: MODE.into(),
        players,
    };
    let witness = Witness::Loading(Some(loading_state(&[1, 2], 3_000)));
    oracle.facts([fact(20, "server-0", created, Some(witness))]);
    for player in [1, 2] {
        let p = id(player);
        oracle.client_event(p, 10, connected());
        let taken = Fact::Lease {
            player: p,
            owner: id(70 + player),
            change: LeaseChange::Taken,
        };
        oracle.facts([fact(11, "server-0", taken, None)]);
        oracle.client_event(p, 11, ClientEvent::SentEnqueue);
        oracle.client_event(p, 12, ClientEvent::Received(ServerMessage::Enqueued {}));
        let start = ServerMessage::StartLoading {
            loading_session_id: id(LOADING),
        };
        oracle.client_event(p, 22, ClientEvent::Received(start));
    }
    oracle
}

fn error(code: ErrorCode) -> ClientEvent {
    ClientEvent::Received(ServerMessage::error(code))
}

fn closed() -> ClientEvent {
    ClientEvent::Disconnected {
        for_good: true,
        closed: true,
    }
}

/// An attempt to end the loading session for `cause`, which found it (deadline 3,000 ms).
fn ending(at_ms: u64, cause: EndCause) -> FactRecord {
    let ending = Fact::LoadingEnding {
        loading: id(LOADING),
        mode: MODE.into(),
        cause,
    };
    let witness = Witness::Loading(Some(loading_state(&[1, 2], 3_000)));
    fact(at_ms, "server-0", ending, Some(witness))
}

/// Goal: a co-player of a player who closed its socket while loading, told nothing for
/// seconds (the resync repaired it late), breaks the `disconnect_grace` bound.
#[test]
fn co_player_told_late_of_a_leave_is_flagged() {
    let mut oracle = loading_pair();
    oracle.client_event(id(1), 100, closed());
    oracle.client_event(id(2), 1_100, error(ErrorCode::LoadingCancelled));
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::InTime, Some(2)));
}

/// Goal: the same leave, told within the grace, passes; told late but with a fault on the
/// co-player's instance in between, is excused.
#[test]
fn co_player_told_in_time_or_after_a_fault_passes() {
    let mut oracle = loading_pair();
    oracle.client_event(id(1), 100, closed());
    oracle.client_event(id(2), 105, error(ErrorCode::LoadingCancelled));
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::InTime, None),
        "{:?}",
        oracle.violations()
    );

    let mut oracle = loading_pair();
    let scope = Scope::Instance("server-0".into());
    oracle
        .history_mut()
        .fault(105, Some(110), scope, "redis_error_before_effect".into());
    oracle.client_event(id(1), 100, closed());
    oracle.client_event(id(2), 1_100, error(ErrorCode::LoadingCancelled));
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::InTime, None),
        "{:?}",
        oracle.violations()
    );
}

/// Goal: a fault elsewhere (another instance's Redis path) excuses nothing.
#[test]
fn a_fault_elsewhere_excuses_nothing() {
    let mut oracle = loading_pair();
    let scope = Scope::Instance("server-1".into());
    oracle
        .history_mut()
        .fault(105, Some(110), scope, "redis_error_before_effect".into());
    oracle.client_event(id(1), 100, closed());
    oracle.client_event(id(2), 1_100, error(ErrorCode::LoadingCancelled));
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::InTime, Some(2)));
}

/// Goal: one player of a match told `match_found` long after the match was recorded (the
/// notice path missed it) is flagged; the player told promptly is not.
#[test]
fn match_found_told_late_is_flagged() {
    let mut oracle = loading_pair();
    oracle.facts([ending(500, EndCause::Matched)]);
    let found = ServerMessage::MatchFound {
        session_id: id(60),
        server_address: "gs:1".into(),
    };
    oracle.client_event(id(1), 505, ClientEvent::Received(found.clone()));
    oracle.client_event(id(2), 1_500, ClientEvent::Received(found));
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::InTime, Some(2)));
    assert!(!flagged(&oracle, Invariant::InTime, Some(1)));
}

/// Players 1 and 2 connect to server-0 and take their leases as sessions 71 and 72;
/// server-0 groups player 1's entry and player 2's entry of session `owner_of_2`. Only
/// player 1 is told `start_loading`.
fn grouped_with_owner(owner_of_2: u128) -> Oracle {
    let mut oracle = oracle_with_players(&[1, 2]);
    let mut state = loading_state(&[1, 2], 3_000);
    state.owners = [(id(1), id(71)), (id(2), id(owner_of_2))].into();
    let created = Fact::LoadingCreated {
        loading: id(LOADING),
        mode: MODE.into(),
        players: vec![id(1), id(2)],
    };
    oracle.facts([fact(
        20,
        "server-0",
        created,
        Some(Witness::Loading(Some(state))),
    )]);
    for player in [1, 2] {
        let p = id(player);
        oracle.client_event(p, 10, connected());
        let taken = Fact::Lease {
            player: p,
            owner: id(70 + player),
            change: LeaseChange::Taken,
        };
        oracle.facts([fact(11, "server-0", taken, None)]);
    }
    let start = ServerMessage::StartLoading {
        loading_session_id: id(LOADING),
    };
    oracle.client_event(id(1), 22, ClientEvent::Received(start));
    oracle
}

/// Goal: `start_loading` is owed to the session whose entry was grouped. A player whose
/// current connection (holding the lease) was never grouped - an older session's entry,
/// left behind by a failed cleanup, was - is owed nothing (seeds 1111 and 2886); the
/// same silence towards the grouped session itself is flagged.
#[test]
fn start_loading_is_owed_to_the_grouped_session_only() {
    let mut oracle = grouped_with_owner(99);
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::InTime, None),
        "{:?}",
        oracle.violations()
    );

    let mut oracle = grouped_with_owner(72);
    liveness(&mut oracle, 2_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::InTime, Some(2)));
}

/// Goal: a leave from a session that was already matched (the leaver had not heard)
/// owes the co-player the match's notice: a fault on the matching instance's Redis path
/// since the match (a truncated `finish_match` reply, seed 1396) excuses it being late;
/// without the fault it is flagged.
#[test]
fn leave_after_the_match_is_judged_from_the_match() {
    for fault in [true, false] {
        let mut oracle = loading_pair();
        oracle.facts([ending(500, EndCause::Matched)]);
        oracle.history_mut().ops.push(RedisOp {
            loading: Some(id(LOADING)),
            fault: fault.then_some("redis_truncated_reply"),
            ..RedisOp::answered(500, "server-0", "finish_match", "matched")
        });
        if fault {
            let scope = Scope::Instance("server-0".into());
            oracle
                .history_mut()
                .fault(505, Some(505), scope, "redis_truncated_reply".into());
        }
        oracle.client_event(id(1), 600, closed());
        let found = ServerMessage::MatchFound {
            session_id: id(60),
            server_address: "gs:1".into(),
        };
        oracle.client_event(id(2), 1_400, ClientEvent::Received(found));
        liveness(&mut oracle, 2_000, &RedisView::default());
        assert_eq!(
            flagged(&oracle, Invariant::InTime, Some(2)),
            !fault,
            "{:?}",
            oracle.violations()
        );
    }
}

/// Goal: a leave from a session that another player's leave had already cancelled in
/// Redis - though that instance never heard the reply (`error_after_effect`, seed 5607) -
/// is judged from that cancel, whose fault excuses the co-player's late notice. An attempt
/// that failed before its effect ended nothing: then the leave is the cause, and the same
/// fault on another instance excuses nothing.
#[test]
fn leave_after_a_cancel_whose_reply_was_lost_is_judged_from_the_cancel() {
    for took_effect in [true, false] {
        let mut oracle = loading_pair();
        let effect = if took_effect { "cancelled" } else { "error" };
        oracle.history_mut().ops.push(RedisOp {
            loading: Some(id(LOADING)),
            reply_tag: Some("error".into()),
            fault: Some("redis_error_after_effect"),
            ..RedisOp::answered(500, "server-1", "cancel_loading", effect)
        });
        let scope = Scope::Instance("server-1".into());
        oracle
            .history_mut()
            .fault(500, Some(500), scope, "redis_error_after_effect".into());
        oracle.client_event(id(1), 600, closed());
        oracle.client_event(id(2), 1_400, error(ErrorCode::LoadingCancelled));
        liveness(&mut oracle, 2_000, &RedisView::default());
        assert_eq!(
            flagged(&oracle, Invariant::InTime, Some(2)),
            !took_effect,
            "{:?}",
            oracle.violations()
        );
    }
}

/// Goal: a subscriber drop excuses a co-player's late `loading_cancelled` only until its
/// instance's resubscribe resync had time to run (R7): told right after the resubscription
/// it passes; told a second later (by the periodic resync, not the resubscribe one) it is
/// flagged, as a broken resubscribe resync would be.
#[test]
fn subscriber_drop_excuses_a_late_notice_only_until_the_resubscribe_resync() {
    let b = bounds();
    let resubscribed_ms = 600 + b.disconnect_grace_ms + 100;
    let cases = [
        (resubscribed_ms + b.prompt_ms / 2, true),
        (resubscribed_ms + b.prompt_ms + 1_000, false),
    ];
    for (told_ms, excused) in cases {
        let mut oracle = loading_pair();
        oracle.facts([ending(600, EndCause::Left { player: id(1) })]);
        let scope = Scope::Instance("server-0".into());
        oracle
            .history_mut()
            .fault(590, Some(resubscribed_ms), scope, SUBSCRIBER_DROP.into());
        oracle.client_event(id(1), 600, closed());
        oracle.client_event(id(2), told_ms, error(ErrorCode::LoadingCancelled));
        liveness(&mut oracle, told_ms + 2_000, &RedisView::default());
        assert_eq!(
            flagged(&oracle, Invariant::InTime, Some(2)),
            !excused,
            "told at {told_ms} ms: {:?}",
            oracle.violations()
        );
    }
}

/// Goal: a `loading_complete` held by a stalled connection is judged where it lands:
/// marking the caller ready after its session lost the player's lease is flagged
/// (invariant 10); under the lease, or refused by the script's fence, it passes.
#[test]
fn loading_complete_landing_without_the_lease_is_flagged() {
    let cases = [
        ("waiting", false, true),
        ("all_ready", false, true),
        ("waiting", true, false),
        ("lease_lost", false, false),
    ];
    for (tag, held, expected) in cases {
        let mut oracle = loading_pair();
        oracle.history_mut().ops.push(RedisOp {
            loading: Some(id(LOADING)),
            caller_held_lease: Some(held),
            held_ms: 1_500,
            ..RedisOp::answered(900, "server-0", "loading_complete", tag)
        });
        liveness(&mut oracle, 2_000, &RedisView::default());
        assert_eq!(
            flagged(&oracle, Invariant::OneSession, None),
            expected,
            "{tag}, lease held: {held}: {:?}",
            oracle.violations()
        );
    }
}

/// Goal: `loading_timeout` told a second before the session's deadline (beyond the allowed
/// clock skew) is flagged; told after the deadline it passes.
#[test]
fn loading_timeout_before_the_deadline_is_flagged() {
    let mut oracle = loading_pair();
    oracle.facts([ending(1_900, EndCause::TimedOut)]);
    oracle.client_event(id(1), 1_920, error(ErrorCode::LoadingTimeout));
    oracle.client_event(id(2), 1_920, error(ErrorCode::LoadingNotCompleted));
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::CodeHasCause, Some(1)));
    assert!(flagged(&oracle, Invariant::CodeHasCause, Some(2)));

    let mut oracle = loading_pair();
    oracle.facts([ending(3_010, EndCause::TimedOut)]);
    oracle.client_event(id(1), 3_020, error(ErrorCode::LoadingTimeout));
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );
}

/// A loading session of players 1 and 2 that server-0 created at 520 ms, in the round that
/// took the mode's lock at 500 ms, with its deadline at `deadline_ms`.
fn created_after_lock(deadline_ms: u64) -> Oracle {
    created_after_lock_as(loading_state(&[1, 2], deadline_ms))
}

/// [`created_after_lock`], its creation witnessed with `state`.
fn created_after_lock_as(state: LoadingState) -> Oracle {
    let mut oracle = oracle_with_players(&[1, 2]);
    let lock = Fact::LockAcquired {
        mode: MODE.into(),
        token: id(90),
        valid_ms: 1_800,
    };
    let created = Fact::LoadingCreated {
        loading: id(LOADING),
        mode: MODE.into(),
        players: vec![id(1), id(2)],
    };
    let witness = Witness::Loading(Some(state));
    oracle.facts([
        fact(500, "server-0", lock, None),
        fact(520, "server-0", created, Some(witness)),
    ]);
    oracle
}

/// Goal: a creation whose report came late (slow `try_match` reply), witnessed after its
/// group went allocating, is not judged by the deadline it has then (the allocation's, set
/// by the last `loading_complete`: seed 2971 of the fleet campaign); the same deadline
/// witnessed before the group loaded is flagged.
#[test]
fn a_deadline_witnessed_after_the_group_loaded_is_not_the_created_one() {
    let timeout_ms = crate::world::sim_settings().timing.loading_timeout_ms;
    let short_ms = 500 + timeout_ms / 2;
    let mut oracle = created_after_lock(short_ms);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::CodeHasCause, None));

    let allocating = LoadingState {
        allocating: true,
        ..loading_state(&[1, 2], short_ms)
    };
    let mut oracle = created_after_lock_as(allocating);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );
}

/// Goal: a loading session whose deadline is half the loading timeout after its round took
/// the lock (the sweep would then time it out early by its own, consistent, deadline) is
/// flagged; the configured timeout passes, and so does a deadline up to the clock skew early
/// when a clock jump was open on its creator.
#[test]
fn a_deadline_short_of_the_loading_timeout_is_flagged() {
    let timeout_ms = crate::world::sim_settings().timing.loading_timeout_ms;
    let mut oracle = created_after_lock(500 + timeout_ms / 2);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::CodeHasCause, None));

    let mut oracle = created_after_lock(505 + timeout_ms);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );

    let mut oracle = created_after_lock(500 + timeout_ms - 300);
    oracle.history_mut().fault(
        100,
        None,
        Scope::Instance("server-0".into()),
        "clock_jump".into(),
    );
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );
}

/// Goal: `loading_timeout` with no timeout of that session on record (say, a leave told
/// with the wrong code) has no cause.
#[test]
fn loading_timeout_without_a_timeout_is_flagged() {
    let mut oracle = loading_pair();
    oracle.facts([ending(3_100, EndCause::Left { player: id(2) })]);
    oracle.client_event(id(1), 3_120, error(ErrorCode::LoadingTimeout));
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::CodeHasCause, Some(1)));
}

/// The frame that decided a second connection of player 1 on server-1, opened at 100 ms.
fn duplicate(oracle: &mut Oracle, code: ErrorCode) {
    let event = ClientEvent::DuplicateReceived {
        server: "server-1".into(),
        opened_ms: 100,
        message: ServerMessage::error(code),
    };
    oracle.client_event(id(1), 130, event);
}

/// Goal: a second connection refused with `session_lost` although its server never held
/// the lease is flagged; `session_exists` passes, and so does `session_lost` after that
/// server took the lease and lost it.
#[test]
fn duplicate_refused_with_the_wrong_code_is_flagged() {
    let mut oracle = loading_pair();
    duplicate(&mut oracle, ErrorCode::SessionLost);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(flagged(&oracle, Invariant::CodeHasCause, Some(1)));

    let mut oracle = loading_pair();
    duplicate(&mut oracle, ErrorCode::SessionExists);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );

    let mut oracle = loading_pair();
    let lost = Fact::Lease {
        player: id(1),
        owner: id(77),
        change: LeaseChange::Lost,
    };
    oracle.facts([fact(120, "server-1", lost, None)]);
    duplicate(&mut oracle, ErrorCode::SessionLost);
    liveness(&mut oracle, 5_000, &RedisView::default());
    assert!(
        !flagged(&oracle, Invariant::CodeHasCause, None),
        "{:?}",
        oracle.violations()
    );
}

/// Goal: at rest, a connected client that still believes it loads a session Redis says
/// it was matched from is flagged by invariant 14 (invariant 7 forgives it: the entry
/// moved on); a client whose view matches Redis passes.
#[test]
fn stale_view_at_rest_is_flagged() {
    let mut oracle = loading_pair();
    let matched = Place::Matched {
        loading: id(LOADING),
        session_id: id(60),
        server_address: "gs:1".into(),
    };
    let found = ServerMessage::MatchFound {
        session_id: id(60),
        server_address: "gs:1".into(),
    };
    oracle.client_event(id(1), 500, ClientEvent::Received(found));
    let view = RedisView {
        now_ms: 1_000,
        entries: BTreeMap::from([
            (id(1), entry(matched.clone(), 5_000)),
            (id(2), entry(matched, 5_000)),
        ]),
        ..RedisView::default()
    };
    oracle.at_rest(3_000, &view);
    assert!(flagged(&oracle, Invariant::ViewsAgree, Some(2)));
    assert!(!flagged(&oracle, Invariant::ViewsAgree, Some(1)));
    oracle.finish(3_000, &view);
    assert!(!flagged(&oracle, Invariant::NoOneLost, None));
}

/// Goal: at rest, a waiting client that Redis holds in its queue passes, and one Redis
/// holds nowhere is flagged.
#[test]
fn waiting_view_at_rest_must_be_queued() {
    let mut oracle = oracle_with_players(&[1, 2]);
    for player in [1, 2] {
        oracle.client_event(id(player), 10, connected());
        oracle.client_event(id(player), 11, ClientEvent::SentEnqueue);
        oracle.client_event(
            id(player),
            12,
            ClientEvent::Received(ServerMessage::Enqueued {}),
        );
    }
    let view = RedisView {
        now_ms: 1_000,
        queues: BTreeMap::from([(MODE.to_owned(), BTreeSet::from([id(1)]))]),
        entries: BTreeMap::from([(id(1), entry(Place::Queued, 5_000))]),
        ..RedisView::default()
    };
    oracle.at_rest(3_000, &view);
    assert!(flagged(&oracle, Invariant::ViewsAgree, Some(2)));
    assert!(!flagged(&oracle, Invariant::ViewsAgree, Some(1)));
}

/// Goal: `loading_not_completed` told to a session that never heard of its player's later
/// loading session (a stall held its `start_loading`; seed 4522) is judged against that
/// later session: its timeout is the cause and passes; without that timeout, or with the
/// later session not holding the player, it is flagged.
#[test]
fn a_code_for_a_later_session_the_client_never_heard_of_is_judged_by_it() {
    const LATER: u128 = 51;
    for (holds_player, timed_out, expected) in [
        (true, true, false),
        (true, false, true),
        (false, true, true),
    ] {
        let mut oracle = loading_pair();
        oracle.facts([ending(300, EndCause::Left { player: id(2) })]);
        let players = if holds_player {
            vec![id(1), id(3)]
        } else {
            vec![id(2), id(3)]
        };
        let created = Fact::LoadingCreated {
            loading: id(LATER),
            mode: MODE.into(),
            players,
        };
        let state = Witness::Loading(Some(loading_state(&[1, 3], 3_400)));
        oracle.facts([fact(400, "server-0", created, Some(state.clone()))]);
        if timed_out {
            let ending = Fact::LoadingEnding {
                loading: id(LATER),
                mode: MODE.into(),
                cause: EndCause::TimedOut,
            };
            oracle.facts([fact(3_500, "server-0", ending, Some(state))]);
        }
        oracle.client_event(id(1), 3_520, error(ErrorCode::LoadingNotCompleted));
        liveness(&mut oracle, 5_000, &RedisView::default());
        assert_eq!(
            flagged(&oracle, Invariant::CodeHasCause, Some(1)),
            expected,
            "holds the player: {holds_player}, timed out: {timed_out}: {:?}",
            oracle.violations()
        );
    }
}
