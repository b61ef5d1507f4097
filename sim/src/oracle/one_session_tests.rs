//! Hand-made histories for invariant 10: the seeds that raised false alarms when the oracle
//! judged a client's guess (211246, 216272) pass, and the same histories with a real double
//! session are flagged.

use match_server::probe::{Act, Fact, LeaseChange};
use uuid::Uuid;

use super::check;
use crate::oracle::Invariant;
use crate::probe::{FactRecord, Witness};

const PLAYER: Uuid = Uuid::from_u128(7);
/// The player's first connection.
const FIRST: Uuid = Uuid::from_u128(0xa);
/// Its second connection (the duplicate).
const SECOND: Uuid = Uuid::from_u128(0xb);
/// A reconnection of the player's first client.
const AGAIN: Uuid = Uuid::from_u128(0xc);
const LOADING: Uuid = Uuid::from_u128(0x50);

/// A history under construction, in the order the service reported it.
#[derive(Default)]
struct History(Vec<FactRecord>);

impl History {
    fn lease(mut self, at_ms: u64, host: &str, owner: Uuid, change: LeaseChange) -> Self {
        self.0.push(FactRecord {
            at_ms,
            host: host.into(),
            fact: Fact::Lease {
                player: PLAYER,
                owner,
                change,
            },
            witness: None,
        });
        self
    }

    /// `owner` acts while the lease key holds `holder`.
    fn act(mut self, at_ms: u64, host: &str, owner: Uuid, act: Act, holder: Option<Uuid>) -> Self {
        self.0.push(FactRecord {
            at_ms,
            host: host.into(),
            fact: Fact::Acted {
                player: PLAYER,
                owner,
                act,
            },
            witness: Some(Witness::LeaseHolder(holder.map(|h| h.to_string()))),
        });
        self
    }

    /// The first connection plays a round under its own lease.
    fn first_plays(self, from_ms: u64, host: &str) -> Self {
        let own = Some(FIRST);
        self.act(from_ms, host, FIRST, Act::Enqueue { requested: true }, own)
            .act(from_ms + 1, host, FIRST, Act::ToldEnqueued, own)
            .act(
                from_ms + 2,
                host,
                FIRST,
                Act::ToldStartLoading { loading: LOADING },
                own,
            )
            .act(
                from_ms + 900,
                host,
                FIRST,
                Act::LoadingCompleted { loading: LOADING },
                own,
            )
    }

    fn violations(&self) -> Vec<crate::oracle::Violation> {
        let (checks, violations) = check(&self.0);
        assert!(checks > 0, "no act was judged");
        assert!(
            violations
                .iter()
                .all(|v| v.invariant == Invariant::OneSession)
        );
        violations
    }
}

/// Seed 211246: the second connection is refused by server-2 (which takes no lease for it)
/// and server-2 crashes before the refusal reaches the client; the first connection plays
/// on under its lease.
fn seed_211246() -> History {
    History::default()
        .lease(2_020, "server-0", FIRST, LeaseChange::Taken)
        .first_plays(2_040, "server-0")
        .first_plays(10_000, "server-0")
}

/// Goal: 211246 as it happened passes: a refusal whose frame never arrived is no act, and
/// the first connection's acts all happened under its own lease.
#[test]
fn a_refusal_lost_in_a_crash_is_no_double_session() {
    assert_eq!(seed_211246().violations(), vec![]);
}

/// Goal: 211246 with a real double session - server-2 takes the refusal for the session's
/// own earlier attempt (the lease is not checked) and acts for the player while the first
/// connection holds the lease - is flagged at the second connection's first act.
#[test]
fn a_second_connection_acting_under_the_first_ones_lease_is_flagged() {
    let history = seed_211246()
        .lease(4_240, "server-2", SECOND, LeaseChange::Taken)
        .act(
            4_300,
            "server-2",
            SECOND,
            Act::Enqueue { requested: true },
            Some(FIRST),
        );
    let violations = history.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    let detail = &violations[0].detail;
    assert_eq!(violations[0].at_ms, 4_300);
    assert!(detail.contains(&PLAYER.to_string()), "{detail}");
    assert!(detail.contains(&SECOND.to_string()), "{detail}");
    assert!(detail.contains(&FIRST.to_string()), "{detail}");
}

/// Seed 216272: the first connection's instance shuts down (its lease is released); the
/// second connection then takes the lease legitimately and holds it; the player's own
/// reconnections are refused meanwhile, and once the second connection closes a
/// reconnection takes the lease and plays.
fn seed_216272() -> History {
    History::default()
        .lease(2_180, "server-1", FIRST, LeaseChange::Taken)
        .first_plays(2_180, "server-1")
        .lease(3_884, "server-1", FIRST, LeaseChange::Released)
        .lease(4_480, "server-0", SECOND, LeaseChange::Taken)
        .lease(11_500, "server-0", SECOND, LeaseChange::Released)
        .lease(11_900, "server-1", AGAIN, LeaseChange::Taken)
        .act(
            11_920,
            "server-1",
            AGAIN,
            Act::Enqueue { requested: true },
            Some(AGAIN),
        )
        .act(11_940, "server-1", AGAIN, Act::ToldEnqueued, Some(AGAIN))
}

/// Goal: 216272 as it happened passes: the second connection held the lease only after the
/// first had released it, and a refused reconnection (`session_exists`) is no act.
#[test]
fn a_second_connection_after_the_first_released_its_lease_passes() {
    assert_eq!(seed_216272().violations(), vec![]);
}

/// Goal: 216272 with a real double session - the reconnection acts while the second
/// connection holds the lease - is flagged, naming who held it and since when.
#[test]
fn a_reconnection_acting_while_another_connection_holds_the_lease_is_flagged() {
    let history = seed_216272().act(
        8_934,
        "server-0",
        AGAIN,
        Act::Enqueue { requested: true },
        Some(SECOND),
    );
    let violations = history.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].detail.contains("4480 ms on server-0"),
        "{}",
        violations[0].detail
    );
}

/// Goal: a session that goes on serving after its lease ran out (a frame sent after the
/// lease was lost) is flagged even when no other connection took the player yet; its
/// retirement (`session_lost`, a close) is no act and raises nothing.
#[test]
fn an_act_after_the_lease_ran_out_is_flagged() {
    let retired = History::default()
        .lease(1_000, "server-0", FIRST, LeaseChange::Taken)
        .first_plays(1_000, "server-0")
        .lease(6_000, "server-0", FIRST, LeaseChange::Lost);
    assert_eq!(retired.violations(), vec![]);
    let served_on = retired.act(
        6_100,
        "server-0",
        FIRST,
        Act::ToldStartLoading { loading: LOADING },
        None,
    );
    let violations = served_on.violations();
    assert_eq!(violations.len(), 1);
    assert!(violations[0].detail.contains("held no lease"));
}
