//! Tests of the oracle itself: hand-made histories that break each invariant must be
//! flagged, and a clean history must pass.

use std::collections::{BTreeMap, BTreeSet};

use match_server::matchmaker::entry::{Place, PlayerEntry};
use match_server::probe::Fact;
use match_server::protocol::{ErrorCode, ServerMessage};

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const MODE: &str = "Normal_1v1";

fn bounds() -> Bounds {
    let mut bounds = Bounds::new(
        &crate::world::sim_settings(),
        WorldTiming {
            tick_ms: 1,
            check_every_ms: 100,
            max_latency_ms: 2,
            max_clock_skew_ms: 400,
        },
    );
    bounds.crash_grace_ms = 5_000;
    bounds.stale_slack_ms = 1_000;
    bounds.lease_slack_ms = 500;
    bounds.players_per_mode = BTreeMap::from([(MODE.to_owned(), 2)]);
    bounds.match_bound_ms = 8_000;
    bounds
}

fn connected() -> ClientEvent {
    ClientEvent::Connected {
        server: "server-0".into(),
    }
}

/// Liveness at the end of a run: the budget ends, then the final verdict.
fn liveness(oracle: &mut Oracle, at_ms: u64, view: &RedisView) {
    oracle.at_budget_end(at_ms);
    oracle.finish(at_ms, view);
}

/// The lock facts of `events` (token, at, `Some(valid_ms)` to acquire, `None` to release),
/// handed to the oracle in order.
fn locks(oracle: &mut Oracle, events: &[(u128, u64, Option<u64>)]) {
    let records = events.iter().map(|(token, at_ms, valid)| {
        let (mode, token) = (MODE.to_owned(), id(*token));
        let fact = match valid {
            Some(valid_ms) => Fact::LockAcquired {
                mode,
                token,
                valid_ms: *valid_ms,
            },
            None => Fact::LockReleasing { mode, token },
        };
        FactRecord {
            at_ms: *at_ms,
            host: "server-0".into(),
            fact,
            witness: None,
        }
    });
    oracle.facts(records.collect::<Vec<_>>());
}

fn entry(place: Place, lease_deadline_ms: u64) -> PlayerEntry {
    PlayerEntry {
        place,
        mode: MODE.to_owned(),
        owner: id(99),
        lease_deadline_ms,
        last_requeue: None,
    }
}

fn oracle_with_players(players: &[u128]) -> Oracle {
    let mut oracle = Oracle::new(bounds());
    for player in players {
        oracle.add_player(id(*player), MODE, "client-0", true);
    }
    oracle
}

/// A clean history: two players enqueue, load, complete and are matched.
fn play_clean_match(oracle: &mut Oracle) {
    let loading = id(50);
    for player in [1, 2] {
        let p = id(player);
        oracle.client_event(p, 10, connected());
        oracle.client_event(p, 11, ClientEvent::SentEnqueue);
        oracle.client_event(p, 12, ClientEvent::Received(ServerMessage::Enqueued {}));
        oracle.client_event(
            p,
            20,
            ClientEvent::Received(ServerMessage::StartLoading {
                loading_session_id: loading,
            }),
        );
        oracle.client_event(p, 21, ClientEvent::SentLoadingComplete(loading));
        let found = ServerMessage::MatchFound {
            session_id: id(60),
            server_address: "gs:1".into(),
        };
        oracle.client_event(p, 30, ClientEvent::Received(found));
    }
}

/// Whether `oracle` flagged `invariant`, naming `player` when one is given.
fn flagged(oracle: &Oracle, invariant: Invariant, player: Option<u128>) -> bool {
    oracle.violations().iter().any(|v| {
        v.invariant == invariant && player.is_none_or(|p| v.detail.contains(&id(p).to_string()))
    })
}

fn loading_view(players: &[u128]) -> LoadingView {
    LoadingView {
        mode: MODE.to_owned(),
        state: "loading".into(),
        deadline_ms: 10_000,
        players: players.iter().map(|p| id(*p)).collect(),
    }
}

/// Goal: a history where everything goes right raises nothing.
#[test]
fn clean_history_passes() {
    let mut oracle = oracle_with_players(&[1, 2]);
    play_clean_match(&mut oracle);
    let view = RedisView {
        now_ms: 1_000,
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        entries: BTreeMap::from([
            (id(1), entry(Place::Loading { loading: id(50) }, 5_000)),
            (id(2), entry(Place::Loading { loading: id(50) }, 5_000)),
        ]),
        ..RedisView::default()
    };
    oracle.snapshot(25, &view, true);
    locks(
        &mut oracle,
        &[(0xa, 0, Some(100)), (0xa, 50, None), (0xb, 60, Some(100))],
    );
    liveness(&mut oracle, 40, &RedisView::default());
    assert_eq!(oracle.violations(), &[]);
    assert!(oracle.checks_made > 0);
}

/// Goal: a player both queued and in a loading session is a duplicate.
#[test]
fn duplicate_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    let view = RedisView {
        now_ms: 1_000,
        queues: BTreeMap::from([(MODE.to_owned(), BTreeSet::from([id(1)]))]),
        entries: BTreeMap::from([(id(1), entry(Place::Queued, 5_000))]),
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    assert!(flagged(&oracle, Invariant::OnePlace, Some(1)));
}

/// Goal: a player queued (live entry) in one mode and left behind in another mode's queue
/// set is in two places; left behind with a dead entry (garbage the sweep owns) it is not.
#[test]
fn left_behind_in_another_modes_queue_is_flagged() {
    let other = "Other_mode".to_owned();
    let queues = BTreeMap::from([
        (MODE.to_owned(), BTreeSet::from([id(1)])),
        (other, BTreeSet::from([id(1)])),
    ]);
    let mut oracle = oracle_with_players(&[1]);
    let view = RedisView {
        now_ms: 1_000,
        queues: queues.clone(),
        entries: BTreeMap::from([(id(1), entry(Place::Queued, 5_000))]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    assert!(flagged(&oracle, Invariant::OnePlace, Some(1)));

    let mut oracle = oracle_with_players(&[1]);
    let view = RedisView {
        now_ms: 1_000,
        queues,
        entries: BTreeMap::from([(id(1), entry(Place::Queued, 500))]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    assert!(!flagged(&oracle, Invariant::OnePlace, None));
}

/// Goal: a new loading session holding a player whose lease ran out (its session died) is
/// flagged: a dead session's player must never be matched.
#[test]
fn dead_session_in_new_loading_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    let view = RedisView {
        now_ms: 10_000,
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        entries: BTreeMap::from([
            (id(1), entry(Place::Loading { loading: id(50) }, 2_000)),
            (id(2), entry(Place::Loading { loading: id(50) }, 12_000)),
        ]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    let ghosts: Vec<_> = oracle
        .violations()
        .iter()
        .filter(|v| v.invariant == Invariant::NoGhosts)
        .collect();
    assert_eq!(ghosts.len(), 1, "{ghosts:?}");
    assert!(ghosts[0].detail.contains(&id(1).to_string()));
}

/// Goal: a loading session with a player twice or the wrong count breaks invariant 3.
#[test]
fn bad_loading_composition_is_flagged() {
    let mut oracle = oracle_with_players(&[1]);
    let view = RedisView {
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 1]))]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    assert!(flagged(&oracle, Invariant::LoadingComposition, None));
}

/// Goal: a player who left for good and shows up in a later loading session is a ghost.
#[test]
fn ghost_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    oracle.client_event(id(1), 10, connected());
    oracle.client_event(
        id(1),
        20,
        ClientEvent::Disconnected {
            for_good: true,
            closed: true,
        },
    );
    let view = RedisView {
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        ..RedisView::default()
    };
    oracle.snapshot(20 + 5_001, &view, false);
    assert!(flagged(&oracle, Invariant::NoGhosts, Some(1)));
}

/// Goal: a ghost within the processing bound is not (yet) a violation.
#[test]
fn recent_disconnect_is_not_a_ghost() {
    let mut oracle = oracle_with_players(&[1, 2]);
    oracle.client_event(
        id(1),
        10,
        ClientEvent::Disconnected {
            for_good: true,
            closed: true,
        },
    );
    let view = RedisView {
        now_ms: 100,
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        entries: BTreeMap::from([
            (id(1), entry(Place::Loading { loading: id(50) }, 5_000)),
            (id(2), entry(Place::Loading { loading: id(50) }, 5_000)),
        ]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, false);
    assert_eq!(oracle.violations(), &[]);
}

/// Goal: a connected, waiting player that Redis has nowhere is lost.
#[test]
fn lost_player_is_flagged() {
    let mut oracle = oracle_with_players(&[1]);
    oracle.client_event(id(1), 10, connected());
    oracle.client_event(id(1), 11, ClientEvent::SentEnqueue);
    oracle.client_event(id(1), 12, ClientEvent::Received(ServerMessage::Enqueued {}));
    liveness(
        &mut oracle,
        20_000,
        &RedisView {
            now_ms: 100,
            ..RedisView::default()
        },
    );
    assert!(flagged(&oracle, Invariant::NoOneLost, None));
}

/// Goal: enough cooperative players waiting too long break the match bound.
#[test]
fn stuck_queue_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    let mut queue = BTreeSet::new();
    let mut entries = BTreeMap::new();
    for player in [1, 2] {
        oracle.client_event(id(player), 10, connected());
        oracle.client_event(id(player), 11, ClientEvent::SentEnqueue);
        oracle.client_event(
            id(player),
            12,
            ClientEvent::Received(ServerMessage::Enqueued {}),
        );
        queue.insert(id(player));
        entries.insert(id(player), entry(Place::Queued, 50_000));
    }
    let view = RedisView {
        now_ms: 100,
        queues: BTreeMap::from([(MODE.to_owned(), queue)]),
        entries,
        ..RedisView::default()
    };
    liveness(&mut oracle, 20_000, &view);
    assert!(flagged(&oracle, Invariant::MatchInTime, None));
    assert!(!flagged(&oracle, Invariant::NoOneLost, None));
}

/// Goal: each illegal message sequence is flagged: two enqueued for one burst, a second
/// start_loading for one session, match_found without loading, a requeue error while idle.
#[test]
fn illegal_sequences_are_flagged() {
    let cases: Vec<(&str, Vec<ClientEvent>)> = vec![
        (
            "double enqueued",
            vec![
                ClientEvent::SentEnqueue,
                ClientEvent::SentEnqueue,
                ClientEvent::Received(ServerMessage::Enqueued {}),
                ClientEvent::Received(ServerMessage::Enqueued {}),
            ],
        ),
        (
            "second start_loading",
            vec![
                ClientEvent::SentEnqueue,
                ClientEvent::Received(ServerMessage::Enqueued {}),
                ClientEvent::Received(ServerMessage::StartLoading {
                    loading_session_id: id(50),
                }),
                ClientEvent::Received(ServerMessage::StartLoading {
                    loading_session_id: id(50),
                }),
            ],
        ),
        (
            "match_found without loading",
            vec![
                ClientEvent::SentEnqueue,
                ClientEvent::Received(ServerMessage::Enqueued {}),
                ClientEvent::Received(ServerMessage::MatchFound {
                    session_id: id(60),
                    server_address: "a:1".into(),
                }),
            ],
        ),
        (
            "requeue error while idle",
            vec![ClientEvent::Received(ServerMessage::error(
                ErrorCode::LoadingTimeout,
            ))],
        ),
        (
            "enqueued never asked for",
            vec![ClientEvent::Received(ServerMessage::Enqueued {})],
        ),
    ];
    for (name, events) in cases {
        let mut oracle = oracle_with_players(&[1]);
        oracle.client_event(id(1), 1, connected());
        for (at, event) in events.into_iter().enumerate() {
            oracle.client_event(id(1), 2 + at as u64, event);
        }
        assert!(
            flagged(&oracle, Invariant::LegalMessages, None),
            "{name} was not flagged"
        );
    }
}

/// Goal: a second holder taking a lock while the first still holds it is flagged.
#[test]
fn double_lock_holder_is_flagged() {
    let mut oracle = oracle_with_players(&[]);
    locks(
        &mut oracle,
        &[(0xa, 0, Some(1_000)), (0xb, 500, Some(1_000))],
    );
    assert!(flagged(&oracle, Invariant::LockExclusive, None));
}

/// Goal: a lock taken after the previous holder's TTL ran out is legitimate.
#[test]
fn lock_after_expiry_passes() {
    let mut oracle = oracle_with_players(&[]);
    locks(
        &mut oracle,
        &[(0xa, 0, Some(1_000)), (0xb, 1_001, Some(1_000))],
    );
    assert_eq!(oracle.violations(), &[]);
}

/// Goal: a loading session past its deadline, once settled, is stale state.
#[test]
fn stale_loading_is_flagged() {
    let mut oracle = oracle_with_players(&[1, 2]);
    let view = RedisView {
        now_ms: 20_000,
        loadings: BTreeMap::from([(id(50), loading_view(&[1, 2]))]),
        ..RedisView::default()
    };
    oracle.snapshot(100, &view, true);
    assert!(flagged(&oracle, Invariant::NoStaleState, None));
}

/// Goal: a `loading_complete` answered `service_unavailable` may still have taken effect;
/// the `match_found` that follows is legal, not flagged.
#[test]
fn match_found_after_an_unconfirmed_loading_complete_is_legal() {
    let mut oracle = oracle_with_players(&[1]);
    let p = id(1);
    oracle.client_event(p, 1, connected());
    oracle.client_event(p, 2, ClientEvent::SentEnqueue);
    oracle.client_event(p, 3, ClientEvent::Received(ServerMessage::Enqueued {}));
    oracle.client_event(
        p,
        4,
        ClientEvent::Received(ServerMessage::StartLoading {
            loading_session_id: id(50),
        }),
    );
    oracle.client_event(p, 5, ClientEvent::SentLoadingComplete(id(50)));
    oracle.client_event(
        p,
        6,
        ClientEvent::Received(ServerMessage::error(ErrorCode::ServiceUnavailable)),
    );
    let found = ServerMessage::MatchFound {
        session_id: id(60),
        server_address: "gs:1".into(),
    };
    oracle.client_event(p, 7, ClientEvent::Received(found));
    assert_eq!(oracle.violations(), &[]);
}

/// Goal: the world is never declared at rest while a connected player believes something
/// Redis does not hold (its server may be dead and the client not know yet).
#[test]
fn not_at_rest_while_a_player_is_lost() {
    let mut oracle = oracle_with_players(&[1]);
    oracle.client_event(id(1), 10, connected());
    oracle.client_event(id(1), 11, ClientEvent::SentEnqueue);
    oracle.client_event(id(1), 12, ClientEvent::Received(ServerMessage::Enqueued {}));
    let empty = RedisView {
        now_ms: 100,
        ..RedisView::default()
    };
    assert!(!oracle.is_at_rest(10_000, &empty, 2_000));
    let queued = RedisView {
        now_ms: 100,
        queues: BTreeMap::from([(MODE.to_owned(), BTreeSet::from([id(1)]))]),
        entries: BTreeMap::from([(id(1), entry(Place::Queued, 50_000))]),
        ..RedisView::default()
    };
    assert!(oracle.is_at_rest(10_000, &queued, 2_000));
}

/// Goal: the end of a run waits for notices in flight, and only for them: a client whose
/// loading session was just swept and regrouped (its `loading_timeout` and new
/// `start_loading` still on their way, seed 719533 at its budget's end) differs from Redis
/// until they arrive, then agrees; a client that never hears them is still flagged by
/// invariant 7 - the wait hides no stuck player. A client told `loading_not_completed`
/// agrees with its `removed` entry.
#[test]
fn views_differ_while_notices_are_in_flight() {
    let (first, second) = (id(50), id(51));
    let mut oracle = oracle_with_players(&[1, 2]);
    for player in [1, 2] {
        let p = id(player);
        oracle.client_event(p, 10, connected());
        oracle.client_event(p, 11, ClientEvent::SentEnqueue);
        oracle.client_event(p, 12, ClientEvent::Received(ServerMessage::Enqueued {}));
        let start = ServerMessage::StartLoading {
            loading_session_id: first,
        };
        oracle.client_event(p, 20, ClientEvent::Received(start));
    }
    let removed = Place::Removed {
        loading: first,
        code: ErrorCode::LoadingNotCompleted,
    };
    let view = RedisView {
        now_ms: 1_000,
        loadings: BTreeMap::from([(second, loading_view(&[1, 3]))]),
        entries: BTreeMap::from([
            (id(1), entry(Place::Loading { loading: second }, 5_000)),
            (id(2), entry(removed, 5_000)),
        ]),
        ..RedisView::default()
    };
    assert!(oracle.in_flight(&view), "player 1's notices are in flight");
    let timeout = ServerMessage::error(ErrorCode::LoadingTimeout);
    oracle.client_event(id(1), 30, ClientEvent::Received(timeout));
    let start = ServerMessage::StartLoading {
        loading_session_id: second,
    };
    oracle.client_event(id(1), 30, ClientEvent::Received(start));
    assert!(!oracle.in_flight(&view), "{:?}", oracle.violations());
    // Player 2 never hears of its removal: its view still matches (the removal of the
    // session it loads), until it is told; a player left believing it waits is stuck.
    let told = ServerMessage::error(ErrorCode::LoadingNotCompleted);
    oracle.client_event(id(2), 31, ClientEvent::Received(told));
    assert!(!oracle.in_flight(&view));
    let mut stuck = oracle_with_players(&[1]);
    stuck.client_event(id(1), 10, connected());
    stuck.client_event(id(1), 11, ClientEvent::SentEnqueue);
    stuck.client_event(id(1), 12, ClientEvent::Received(ServerMessage::Enqueued {}));
    let nowhere = RedisView {
        now_ms: 1_000,
        entries: BTreeMap::from([(id(1), entry(removed_place(), 5_000))]),
        ..RedisView::default()
    };
    assert!(stuck.in_flight(&nowhere));
    stuck.finish(2_000, &nowhere);
    assert!(flagged(&stuck, Invariant::NoOneLost, Some(1)));
    assert_eq!(oracle.violations(), &[]);
}

fn removed_place() -> Place {
    Place::Removed {
        loading: id(50),
        code: ErrorCode::LoadingNotCompleted,
    }
}

/// Goal: `loading_not_completed` is legal for a loading client, and for a waiting one
/// whose `start_loading` never arrived; it is illegal for an idle client (nothing to be
/// removed from).
#[test]
fn loading_not_completed_is_legal_only_for_a_loading_or_waiting_client() {
    let mut oracle = oracle_with_players(&[1, 2]);
    let told = || ClientEvent::Received(ServerMessage::error(ErrorCode::LoadingNotCompleted));
    for player in [1, 2] {
        oracle.client_event(id(player), 10, connected());
    }
    oracle.client_event(id(1), 11, ClientEvent::SentEnqueue);
    oracle.client_event(id(1), 12, ClientEvent::Received(ServerMessage::Enqueued {}));
    oracle.client_event(id(1), 20, told());
    assert_eq!(oracle.client_state(id(1)), Some(ClientState::Idle));
    assert_eq!(oracle.violations(), &[]);
    oracle.client_event(id(2), 20, told());
    assert!(flagged(&oracle, Invariant::LegalMessages, Some(2)));
}
mod cause_and_time;
mod repair_cause;
mod where_they_act;
