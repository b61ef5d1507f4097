//! Determinism: one seed gives one SPOP order, one SCAN page sequence and one fault
//! sequence, run after run; another seed gives others.

use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError};

use super::*;
use crate::fake_redis::{FakeRedis, FaultPlan};

/// A fresh fake with the given seed.
fn seeded(seed: u64) -> FakeRedis {
    FakeRedis::new(seed, ManualClock::new(START_MS)).unwrap()
}

/// The order in which SPOP empties a set of 30 members.
fn spop_order(seed: u64) -> Vec<Reply> {
    let redis = seeded(seed);
    for i in 0..30 {
        ok(&redis, &["SADD", "s", &format!("m{i}")]);
    }
    (0..30).map(|_| ok(&redis, &["SPOP", "s"])).collect()
}

/// Goal: the same seed pops in the same order; another seed in another order.
#[test]
fn spop_order_follows_the_seed() {
    assert_eq!(spop_order(42), spop_order(42));
    assert_ne!(spop_order(42), spop_order(43));
}

/// Goal: SCAN pages (shape, duplicates, cursors) repeat exactly for one seed.
#[test]
fn scan_pages_follow_the_seed() {
    let pages = |seed| {
        let redis = seeded(seed);
        for i in 0..50 {
            ok(&redis, &["SET", &format!("k{i}"), "v"]);
        }
        scan_all(&redis, &["SCAN"], &["COUNT", "3"])
    };
    assert_eq!(pages(5), pages(5));
    assert_ne!(pages(5), pages(6));
}

/// The outcomes of a fixed mix of commands under a busy fault plan.
async fn faulty_run(seed: u64) -> (Vec<Result<Reply, StoreError>>, Vec<(&'static str, u64)>) {
    let redis = seeded(seed);
    redis.set_fault_plan(FaultPlan::uniform(0.1));
    let source = "redis.call('sadd', KEYS[1], ARGV[1]) return redis.call('smembers', KEYS[1])";
    let script = Script {
        name: "test",
        source: source.to_owned(),
        sha1: sha1_smol::Sha1::from(source).hexdigest(),
    };
    let mut outcomes = Vec::new();
    for i in 0..200 {
        let key = vec!["s".to_owned()];
        let member = vec![format!("m{}", i % 7)];
        outcomes.push(redis.eval(&script, &key, &member).await);
        let taken = redis.set_nx_px(&format!("lock{}", i % 5), "t", 50).await;
        outcomes.push(taken.map(|taken| Reply::Int(i64::from(taken))));
    }
    (outcomes, redis.fault_counts().into_iter().collect())
}

/// Goal: the same seed injects the same faults at the same commands, with the same
/// corrupted replies; another seed differs.
#[tokio::test(start_paused = true)]
async fn fault_sequence_follows_the_seed() {
    let first = faulty_run(11).await;
    assert_eq!(first, faulty_run(11).await);
    assert_ne!(first.0, faulty_run(12).await.0);
    assert!(
        first
            .1
            .iter()
            .all(|(name, count)| *name == "subscriber_drop" || *count > 0),
        "{:?}",
        first.1
    );
}
