//! Expiry on the injected clock, with Redis's boundary rule: a key set with PX t at t0
//! still exists at t0 + t and is gone one millisecond later.

use match_server::store::{Reply, Store};

use super::*;
use crate::fake_redis::{Entry, Value};

/// Goal: the key exists at exactly its deadline (PTTL 0) and is gone right after.
#[test]
fn px_boundary_is_inclusive() {
    let (redis, clock) = fake();
    ok(&redis, &["SET", "k", "v", "PX", "100"]);
    clock.advance_ms(100);
    assert_eq!(ok(&redis, &["GET", "k"]), bulk("v"));
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["EXISTS", "k"]), Reply::Int(1));
    clock.advance_ms(1);
    assert_eq!(ok(&redis, &["GET", "k"]), Reply::Nil);
    assert_eq!(ok(&redis, &["EXISTS", "k"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(-2));
}

/// Goal: expired keys are invisible to every reader (KEYS, SCAN, DBSIZE, TYPE, the
/// oracle's view and dump), even before anything purges them.
#[test]
fn expired_keys_are_invisible_everywhere() {
    let (redis, clock) = fake();
    ok(&redis, &["SET", "gone", "v", "PX", "10"]);
    ok(&redis, &["SET", "kept", "v"]);
    clock.advance_ms(11);
    assert_eq!(ok(&redis, &["KEYS", "*"]), bulks(&["kept"]));
    assert_eq!(scan_all(&redis, &["SCAN"], &[]), vec!["kept".to_owned()]);
    assert_eq!(ok(&redis, &["DBSIZE"]), Reply::Int(1));
    assert_eq!(
        ok(&redis, &["TYPE", "gone"]),
        Reply::Status("none".to_owned())
    );
    assert!(redis.with_data(|view| view.entry("gone").is_none() && view.string("kept").is_some()));
    let dump = redis.dump();
    assert_eq!(
        dump.keys().cloned().collect::<Vec<_>>(),
        vec![b"kept".to_vec()]
    );
}

/// Goal: an expired set or hash behaves as missing; writing to it starts a fresh key
/// without the old expiry; EXPIRE on it replies 0.
#[test]
fn expired_collections_start_fresh() {
    let (redis, clock) = fake();
    ok(&redis, &["SADD", "s", "a", "b"]);
    ok(&redis, &["HSET", "h", "f", "v"]);
    ok(&redis, &["PEXPIRE", "s", "10"]);
    ok(&redis, &["PEXPIRE", "h", "10"]);
    clock.advance_ms(11);
    assert_eq!(ok(&redis, &["SCARD", "s"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["EXPIRE", "h", "100"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["SADD", "s", "c"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["SMEMBERS", "s"]), bulks(&["c"]));
    assert_eq!(ok(&redis, &["TTL", "s"]), Reply::Int(-1));
    assert_eq!(ok(&redis, &["HSET", "h", "g", "w"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["HGETALL", "h"]), bulks(&["g", "w"]));
}

/// Goal: the inspection view shows typed values with their absolute expiry.
#[test]
fn dump_shows_values_and_deadlines() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "lock", "token", "PX", "500"]);
    ok(&redis, &["SADD", "queue", "p1", "p2"]);
    let dump = redis.dump();
    assert_eq!(
        dump.get(b"lock".as_slice()),
        Some(&Entry {
            value: Value::String(b"token".to_vec()),
            expires_at_ms: Some(START_MS + 500)
        })
    );
    let queue = redis.with_data(|view| view.set("queue").cloned()).unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(redis.with_data(|view| view.now_ms()), START_MS);
}

/// Goal: the lock primitive of the seam (`SET NX PX`) can be taken again exactly one
/// millisecond after its deadline, not at the deadline.
#[tokio::test]
async fn set_nx_px_reacquires_only_after_the_deadline() {
    let (redis, clock) = fake();
    assert!(redis.set_nx_px("lock", "a", 1000).await.unwrap());
    assert!(!redis.set_nx_px("lock", "b", 1000).await.unwrap());
    clock.advance_ms(1000);
    assert!(!redis.set_nx_px("lock", "b", 1000).await.unwrap());
    clock.advance_ms(1);
    assert!(redis.set_nx_px("lock", "b", 1000).await.unwrap());
    assert_eq!(redis.get("lock").await.unwrap(), Some(b"b".to_vec()));
    let error = redis.set_nx_px("other", "v", 0).await.unwrap_err();
    assert_eq!(
        error,
        match_server::store::StoreError::Server("ERR invalid expire time in 'set' command".into())
    );
}
