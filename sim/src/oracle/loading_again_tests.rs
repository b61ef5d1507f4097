//! Hand-made histories for invariant 11: every cause of a loading session's end that lets
//! a player be grouped again passes, and a player grouped again without one is flagged -
//! above all the old loading-timeout policy of seed 719533, which requeued the player who
//! never loaded together with those who had.

use std::collections::BTreeSet;

use match_server::probe::{Act, EndCause, Fact};
use match_server::protocol::ErrorCode;
use uuid::Uuid;

use super::{FaultWindow, check, check_with_landings};
use crate::oracle::{Invariant, RedisOp, Violation};
use crate::probe::{FactRecord, LoadingState, Witness};

const MODE: &str = "Normal_2v2";

fn p(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Loading sessions.
const FIRST: Uuid = Uuid::from_u128(0x51);
const SECOND: Uuid = Uuid::from_u128(0x52);

/// A history under construction, in the order the service reported it.
#[derive(Default)]
struct History(Vec<FactRecord>);

impl History {
    fn push(mut self, at_ms: u64, fact: Fact, witness: Option<Witness>) -> Self {
        self.0.push(FactRecord {
            at_ms,
            host: "server-0".into(),
            fact,
            witness,
        });
        self
    }

    fn created(self, at_ms: u64, loading: Uuid, players: &[u128]) -> Self {
        let players = players.iter().map(|n| p(*n)).collect();
        let fact = Fact::LoadingCreated {
            loading,
            mode: MODE.into(),
            players,
        };
        self.push(at_ms, fact, None)
    }

    /// An attempt to end `loading` for `cause` that found it in Redis with these players
    /// and these of them ready.
    fn ending(
        self,
        at_ms: u64,
        loading: Uuid,
        cause: EndCause,
        players: &[u128],
        ready: &[u128],
    ) -> Self {
        let state = LoadingState {
            players: players.iter().map(|n| p(*n)).collect(),
            ready: ready.iter().map(|n| p(*n)).collect::<BTreeSet<_>>(),
            ..LoadingState::default()
        };
        let fact = Fact::LoadingEnding {
            loading,
            mode: MODE.into(),
            cause,
        };
        self.push(at_ms, fact, Some(Witness::Loading(Some(state))))
    }

    /// An attempt that found `loading` already gone (it ended nothing).
    fn ending_gone(self, at_ms: u64, loading: Uuid, cause: EndCause) -> Self {
        let fact = Fact::LoadingEnding {
            loading,
            mode: MODE.into(),
            cause,
        };
        self.push(at_ms, fact, Some(Witness::Loading(None)))
    }

    fn enqueue(self, at_ms: u64, player: u128, requested: bool) -> Self {
        let fact = Fact::Acted {
            player: p(player),
            owner: p(1_000 + player),
            act: Act::Enqueue { requested },
        };
        self.push(at_ms, fact, None)
    }

    fn violations(&self, faults: &[FaultWindow]) -> Vec<Violation> {
        let (checks, violations) = check(&self.0, faults);
        assert!(checks > 0, "no pair of loading sessions was judged");
        assert!(
            violations
                .iter()
                .all(|v| v.invariant == Invariant::LoadingAgain)
        );
        violations
    }
}

/// Seed 719533's first timeout: P3, P4 and P7 loaded, P8 never did.
fn afk_times_out() -> History {
    History::default()
        .created(6_520, FIRST, &[3, 8, 4, 7])
        .ending(9_980, FIRST, EndCause::TimedOut, &[3, 8, 4, 7], &[3, 4, 7])
}

/// Goal: the old policy of seed 719533 is flagged: the AFK player, requeued by the timeout
/// with those who loaded, is grouped with them again at once without enqueueing again. The
/// violation names the AFK player and the players held hostage.
#[test]
fn the_afk_player_grouped_again_with_those_who_loaded_is_flagged() {
    let history = afk_times_out().created(10_000, SECOND, &[8, 4, 7, 3]);
    let violations = history.violations(&[]);
    assert_eq!(violations.len(), 1, "{violations:?}");
    let detail = &violations[0].detail;
    assert!(detail.starts_with(&format!("player {}", p(8))), "{detail}");
    assert!(detail.contains("had not loaded"), "{detail}");
    for hostage in [3, 4, 7] {
        assert!(detail.contains(&p(hostage).to_string()), "{detail}");
    }
    assert_eq!(violations[0].at_ms, 10_000);
}

/// Goal: under the new policy the same players pass: those who loaded are grouped again
/// (the timeout kept them in the queue), and the AFK player joins them only after it
/// enqueued again - a new attempt.
#[test]
fn the_afk_player_who_enqueues_again_is_a_new_attempt() {
    let history = afk_times_out()
        .enqueue(10_300, 8, true)
        .created(10_320, SECOND, &[8, 4, 7, 3]);
    assert_eq!(history.violations(&[]), vec![]);
    // Those who loaded may be grouped again without any new attempt of their own.
    let without_afk = afk_times_out().created(10_000, SECOND, &[4, 7, 3, 9]);
    assert_eq!(without_afk.violations(&[]), vec![]);
}

/// Goal: only an enqueue the client asked for is a new attempt: the session re-enqueueing
/// the removed player on its own (a repair) does not explain the regroup.
#[test]
fn a_silent_re_enqueue_is_no_new_attempt() {
    let history = afk_times_out()
        .enqueue(10_300, 8, false)
        .created(10_320, SECOND, &[8, 4, 7, 3]);
    assert_eq!(history.violations(&[]).len(), 1);
}

/// Goal: a co-player who left explains the regroup of the others (`loading_cancelled`),
/// but not of the leaver itself until it enqueues again.
#[test]
fn a_leaver_explains_the_others_regroup_but_not_its_own() {
    let left = History::default().created(100, FIRST, &[1, 2]).ending(
        400,
        FIRST,
        EndCause::Left { player: p(1) },
        &[1, 2],
        &[2],
    );
    let others = left.created(500, SECOND, &[2, 3]);
    assert_eq!(others.violations(&[]), vec![]);
    let leaver = History::default()
        .created(100, FIRST, &[1, 2])
        .ending(400, FIRST, EndCause::Left { player: p(1) }, &[1, 2], &[2])
        .created(500, SECOND, &[1, 3]);
    let violations = leaver.violations(&[]);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].detail.contains("it left"));
    let came_back = History::default()
        .created(100, FIRST, &[1, 2])
        .ending(400, FIRST, EndCause::Left { player: p(1) }, &[1, 2], &[2])
        .enqueue(450, 1, true)
        .created(500, SECOND, &[1, 3]);
    assert_eq!(came_back.violations(&[]), vec![]);
}

/// Goal: a failed allocation explains everyone's regroup; a match explains none without a
/// new enqueue.
#[test]
fn allocation_failures_keep_players_and_matches_do_not() {
    let failed = History::default()
        .created(100, FIRST, &[1, 2])
        .ending(
            900,
            FIRST,
            EndCause::AllocationFailed {
                code: ErrorCode::NoServerAvailable,
            },
            &[1, 2],
            &[1, 2],
        )
        .created(1_000, SECOND, &[1, 2]);
    assert_eq!(failed.violations(&[]), vec![]);
    let matched = History::default()
        .created(100, FIRST, &[1, 2])
        .ending(900, FIRST, EndCause::Matched, &[1, 2], &[1, 2])
        .enqueue(1_500, 1, true)
        .created(2_000, SECOND, &[1, 2]);
    let violations = matched.violations(&[]);
    assert_eq!(violations.len(), 1, "player 2 never enqueued again");
    assert!(violations[0].detail.contains("it was matched"));
    assert!(
        violations[0]
            .detail
            .starts_with(&format!("player {}", p(2)))
    );
}

/// Goal: a player in a new loading session while nothing on record ended its previous one
/// is flagged - an attempt that found the session already gone ended nothing - unless a
/// recorded fault that can end loading sessions by itself covers it.
#[test]
fn a_regroup_with_no_end_on_record_is_flagged_unless_a_fault_explains_it() {
    let history = History::default()
        .created(100, FIRST, &[1, 2])
        .ending_gone(400, FIRST, EndCause::TimedOut)
        .created(500, SECOND, &[1, 2]);
    let violations = history.violations(&[]);
    assert_eq!(violations.len(), 2);
    assert!(violations[0].detail.contains("nothing on record ended"));
    let failover = FaultWindow {
        from_ms: 200,
        to_ms: 300,
        what: "a Redis failover lost writes".into(),
    };
    assert_eq!(history.violations(&[failover]), vec![]);
}

/// Goal: the end that counts is the last attempt that still found the session: an earlier
/// attempt for another cause that Redis declined (the session had not expired) does not
/// decide who was kept.
#[test]
fn the_last_attempt_that_found_the_session_is_its_end() {
    let history = History::default()
        .created(100, FIRST, &[1, 2])
        .ending(3_100, FIRST, EndCause::TimedOut, &[1, 2], &[])
        .ending(3_200, FIRST, EndCause::Left { player: p(2) }, &[1, 2], &[])
        .ending_gone(3_300, FIRST, EndCause::TimedOut)
        .created(3_400, SECOND, &[1, 3]);
    assert_eq!(history.violations(&[]), vec![]);
}

/// Goal: two co-players who leave at once may be requeued by each other's leave (whichever
/// lands first requeues the other, whose own leave then finds nothing to end), so a leaver
/// grouped again is explained when another attempt that found the session kept it - but a
/// lone leaver still is not (seed 5323: both leaves were held by a stalled connection).
#[test]
fn a_co_leaver_who_landed_first_explains_the_regroup() {
    let two_left = History::default()
        .created(100, FIRST, &[1, 2, 3])
        .ending(400, FIRST, EndCause::Left { player: p(2) }, &[1, 2, 3], &[])
        .ending(420, FIRST, EndCause::Left { player: p(1) }, &[1, 2, 3], &[])
        .created(900, SECOND, &[1, 3]);
    assert_eq!(two_left.violations(&[]), vec![]);
    let alone = History::default()
        .created(100, FIRST, &[1, 2, 3])
        .ending(420, FIRST, EndCause::Left { player: p(1) }, &[1, 2, 3], &[])
        .ending(430, FIRST, EndCause::Left { player: p(1) }, &[1, 2, 3], &[])
        .created(900, SECOND, &[1, 3]);
    let violations = alone.violations(&[]);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].detail.contains("it left"));
}

/// Goal: a creation whose report came late (the matcher heard `try_match`'s reply after the
/// session had been told, left and ended) takes its place from the earliest evidence of it,
/// so the player's new attempt after leaving explains the next session (seeds 8895, 9938);
/// without a new attempt the regroup is still flagged.
#[test]
fn a_late_creation_report_is_ordered_by_its_first_evidence() {
    let told = |history: History, at_ms: u64| {
        let fact = Fact::Acted {
            player: p(1),
            owner: p(1_001),
            act: Act::ToldStartLoading { loading: FIRST },
        };
        history.push(at_ms, fact, None)
    };
    let late = told(History::default(), 100)
        .ending(400, FIRST, EndCause::Left { player: p(1) }, &[1, 2], &[])
        .enqueue(500, 1, true)
        .created(600, SECOND, &[1, 3])
        .created(900, FIRST, &[1, 2]);
    assert_eq!(late.violations(&[]), vec![]);
    let no_new_attempt = told(History::default(), 100)
        .ending(400, FIRST, EndCause::Left { player: p(1) }, &[1, 2], &[])
        .created(600, SECOND, &[1, 3])
        .created(900, FIRST, &[1, 2]);
    let violations = no_new_attempt.violations(&[]);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].detail.contains("it left"));
}

/// Goal: an enqueue the client sent before the timeout, held by a stalled connection until
/// after it, is the AFK player's new attempt where it lands (seed 8024 of the merged
/// generator); one that landed before the timeout is not, and nor is a landing that
/// queued no one.
#[test]
fn an_enqueue_that_landed_after_the_end_is_a_new_attempt() {
    let history = afk_times_out().created(10_320, SECOND, &[8, 4, 7, 3]);
    let landed = |at_ms: u64, tag: &str| RedisOp {
        caller: Some(p(8)),
        held_ms: 2_000,
        ..RedisOp::answered(at_ms, "server-0", "enqueue", tag)
    };
    let judge = |ops: &[RedisOp]| check_with_landings(&history.0, &[], ops).1;
    assert_eq!(judge(&[landed(10_300, "enqueued")]), vec![]);
    assert_eq!(judge(&[landed(9_900, "enqueued")]).len(), 1);
    assert_eq!(judge(&[landed(10_300, "taken")]).len(), 1);
}
