//! The service's typed script calls (`match_server::scripts::<name>`), sent through the one
//! call path ([`ScriptRunner`]) to the real Lua running in the fake: each test builds a call
//! from named fields, runs it, and checks the typed outcome and the entry it leaves behind.
//! A call that fills a slot with the wrong value (two arguments swapped) changes what the
//! script does, so these tests catch it where a comparison with a hand-copied KEYS/ARGV
//! array would copy the mistake (see `defects/enqueue-swapped-lease-arguments.patch`).

use std::sync::Arc;

use match_server::check::Checks;
use match_server::config::GameMode;
use match_server::keys::Keys;
use match_server::matchmaker::entry::{Place, PlayerEntry};
use match_server::metrics::Metrics;
use match_server::probe::NoProbe;
use match_server::scripts::enqueue::{Enqueue, EnqueueReply};
use match_server::scripts::leave_queue::{LeaveQueue, LeaveReply};
use match_server::scripts::loading_complete::{CompleteReply, LoadingComplete};
use match_server::scripts::try_match::{TryMatch, TryMatchReply};
use match_server::scripts::{Member, ScriptRunner};
use uuid::Uuid;

use super::*;
use crate::fake_redis::FakeRedis;

/// The key prefix of the tests.
const PREFIX: &str = "{mm}";
/// The time of the first call (unix ms).
const NOW_MS: u64 = 1_000;
/// How long an entry lives without renewal.
const LEASE_TTL_MS: u64 = 4_000;

/// The one mode: two players per match.
fn duel() -> GameMode {
    GameMode {
        name: "duel".to_owned(),
        players: 2,
    }
}

/// A runner on a fresh fake, with its metrics (to show that no check failed).
fn runner() -> (FakeRedis, ScriptRunner, Arc<Metrics>) {
    let (redis, _clock) = fake();
    let metrics = Arc::new(Metrics::default());
    let checks = Checks::new(metrics.clone(), Arc::new(NoProbe));
    let keys = Keys::new(PREFIX);
    let runner = ScriptRunner::new(Arc::new(redis.clone()), keys, metrics.clone(), checks);
    (redis, runner, metrics)
}

/// The typed call that enqueues `player` for `owner` at `now_ms`.
fn enqueue<'a>(modes: &'a [GameMode], player: Uuid, owner: Uuid, now_ms: u64) -> Enqueue<'a> {
    Enqueue {
        player,
        owner,
        mode: "duel",
        now_ms,
        lease_deadline_ms: now_ms + LEASE_TTL_MS,
        max_queue_len: 10,
        modes,
    }
}

/// The decoded entry of `player`, if any.
fn entry(redis: &FakeRedis, player: Uuid) -> Option<PlayerEntry> {
    let players = Keys::new(PREFIX).players();
    redis.with_data(|view| {
        let raw = view
            .hash(&players)?
            .get(player.to_string().as_bytes())?
            .clone();
        PlayerEntry::decode(&raw)
    })
}

/// Goal: an enqueue records the owner and the lease deadline it was given; while that lease
/// lives another session is refused (`Taken`) and the owner's repeat is `AlreadyQueued`;
/// once it ran out, another session takes the player over.
#[tokio::test]
async fn enqueue_keeps_the_lease_it_was_given() {
    let (redis, runner, metrics) = runner();
    let modes = [duel()];
    let (player, owner, other) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let first = runner.call(&enqueue(&modes, player, owner, NOW_MS)).await;
    assert_eq!(first, Ok(EnqueueReply::Enqueued { queue_len: 1 }));
    let stored = entry(&redis, player).unwrap();
    assert_eq!(stored.owner, owner);
    assert_eq!(stored.lease_deadline_ms, NOW_MS + LEASE_TTL_MS);
    assert_eq!(
        (stored.place, stored.mode.as_str()),
        (Place::Queued, "duel")
    );

    let while_live = NOW_MS + LEASE_TTL_MS / 2;
    let refused = runner
        .call(&enqueue(&modes, player, other, while_live))
        .await;
    assert_eq!(refused, Ok(EnqueueReply::Taken));
    let repeat = runner
        .call(&enqueue(&modes, player, owner, while_live))
        .await;
    let mode = "duel".to_owned();
    assert_eq!(repeat, Ok(EnqueueReply::AlreadyQueued { mode }));

    let after_expiry = NOW_MS + LEASE_TTL_MS + 1;
    let taken_over = runner
        .call(&enqueue(&modes, player, other, after_expiry))
        .await;
    assert_eq!(taken_over, Ok(EnqueueReply::Enqueued { queue_len: 1 }));
    assert_eq!(entry(&redis, player).unwrap().owner, other);
    assert!(!metrics.render().contains("match_assertion_failures_total{"));
}

/// Goal: `try_match` groups two live players under the loading id and lock token it was
/// given (the players' entries name that loading session), refuses to act without the
/// lock, and `loading_complete` then marks each player of the group ready in turn - only
/// for a session that holds the player's lease.
#[tokio::test]
async fn try_match_then_loading_complete() {
    let (redis, runner, metrics) = runner();
    let modes = [duel()];
    let group = [
        (Uuid::from_u128(11), Uuid::from_u128(21)),
        (Uuid::from_u128(12), Uuid::from_u128(22)),
    ];
    for (player, owner) in group {
        let queued = runner.call(&enqueue(&modes, player, owner, NOW_MS)).await;
        assert!(
            matches!(queued, Ok(EnqueueReply::Enqueued { .. })),
            "{queued:?}"
        );
    }
    let token = Uuid::from_u128(99);
    let lock = Keys::new(PREFIX).lock("duel");
    ok(&redis, &["SET", &lock, &token.to_string()]);
    let loading = Uuid::from_u128(77);
    let call = |lock_token| TryMatch {
        mode: &modes[0],
        loading,
        now_ms: NOW_MS + 1,
        deadline_ms: NOW_MS + 10_000,
        lock_token,
        players_per_match: 2,
    };
    let without_lock = runner.call(&call(Uuid::from_u128(98))).await;
    assert_eq!(without_lock, Ok(TryMatchReply::LockLost));
    let Ok(TryMatchReply::Matched {
        loading: got,
        members,
        ..
    }) = runner.call(&call(token)).await
    else {
        panic!("no match")
    };
    assert_eq!(got, loading);
    let mut members: Vec<(Uuid, Uuid)> = members.iter().map(|m| (m.player, m.owner)).collect();
    members.sort();
    assert_eq!(members, group.to_vec());
    for (player, _) in group {
        assert_eq!(
            entry(&redis, player).unwrap().place,
            Place::Loading { loading }
        );
    }

    let complete = |(player, owner): (Uuid, Uuid)| LoadingComplete {
        player,
        owner,
        loading,
        allocation_deadline_ms: NOW_MS + 20_000,
        players_per_match: 2,
    };
    let [first, second] = group;
    // Fenced on the player lease: while another session's token holds it, nothing is marked
    // (the first real call below is still the one that marks the player ready).
    let lease = |player: Uuid| Keys::new(PREFIX).player_lease(player);
    let stranger = Uuid::from_u128(55).to_string();
    ok(&redis, &["SET", &lease(first.0), &stranger]);
    assert_eq!(
        runner.call(&complete(first)).await,
        Ok(CompleteReply::LeaseLost)
    );
    for (player, owner) in group {
        ok(&redis, &["SET", &lease(player), &owner.to_string()]);
    }
    assert_eq!(
        runner.call(&complete(first)).await,
        Ok(CompleteReply::Waiting)
    );
    assert_eq!(
        runner.call(&complete(first)).await,
        Ok(CompleteReply::AlreadyReady)
    );
    let Ok(CompleteReply::AllReady { members }) = runner.call(&complete(second)).await else {
        panic!("the group did not complete")
    };
    let players: Vec<Uuid> = members.iter().map(|m: &Member| m.player).collect();
    assert!(players.contains(&first.0) && players.contains(&second.0));
    assert!(!metrics.render().contains("match_assertion_failures_total{"));
}

/// Goal: `leave_queue` removes only the owner's entry, from the mode's queue, and tells
/// another session that there is nothing of its own to remove.
#[tokio::test]
async fn leave_queue_removes_the_owners_entry() {
    let (redis, runner, _metrics) = runner();
    let modes = [duel()];
    let (player, owner) = (Uuid::from_u128(1), Uuid::from_u128(2));
    runner
        .call(&enqueue(&modes, player, owner, NOW_MS))
        .await
        .unwrap();
    let leave = |owner| LeaveQueue {
        player,
        owner,
        mode: "duel",
        modes: &modes,
    };
    assert_eq!(
        runner.call(&leave(Uuid::from_u128(3))).await,
        Ok(LeaveReply::Absent)
    );
    assert!(entry(&redis, player).is_some());
    assert_eq!(runner.call(&leave(owner)).await, Ok(LeaveReply::Left));
    assert!(entry(&redis, player).is_none());
    let queue = Keys::new(PREFIX).queue("duel");
    assert_eq!(ok(&redis, &["SCARD", &queue]), Reply::Int(0));
}
