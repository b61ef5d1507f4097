//! The typed `Store` methods on the fake, and their parity with `RedisStore`.

use std::collections::BTreeSet;

use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError};

use super::*;

/// Goal: an error element nested in a script's reply fails the whole call through the
/// seam, as the `redis` crate does under `RedisStore`; the raw entry point keeps the shape
/// Redis sends.
#[tokio::test]
async fn nested_errors_fail_the_call_like_redis_store() {
    let (redis, _clock) = fake();
    let source = "return {1, redis.pcall('nosuch')}";
    let script = Script {
        name: "nested",
        source: source.to_owned(),
        sha1: sha1(source),
    };
    let text = "ERR Unknown Redis command called from script";
    assert_eq!(
        redis.eval(&script, &[], &[]).await,
        Err(StoreError::Server(text.to_owned()))
    );
    assert_eq!(
        run(&redis, source),
        Ok(Reply::Array(vec![
            Reply::Int(1),
            Reply::Error(text.to_owned())
        ]))
    );
}

/// Goal: GET, HGET, SMEMBERS and SCARD through the seam give typed values, and a wrong
/// type is a server error.
#[tokio::test]
async fn typed_reads() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "v"]);
    ok(&redis, &["HSET", "h", "f", "x"]);
    ok(&redis, &["SADD", "s", "b", "a"]);
    assert_eq!(redis.get("str").await, Ok(Some(b"v".to_vec())));
    assert_eq!(redis.get("missing").await, Ok(None));
    assert_eq!(redis.hget("h", "f").await, Ok(Some(b"x".to_vec())));
    assert_eq!(redis.hget("h", "g").await, Ok(None));
    assert_eq!(
        redis.smembers("s").await,
        Ok(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(redis.scard("s").await, Ok(2));
    assert_eq!(redis.scard("missing").await, Ok(0));
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(
        redis.get("s").await,
        Err(StoreError::Server(wrongtype.to_owned()))
    );
}

/// Goal: a SCAN loop through the seam visits every matching key (pages may repeat keys or
/// be empty), and COUNT 0 is refused as Redis refuses it.
#[tokio::test]
async fn scan_through_the_seam() {
    let (redis, _clock) = fake();
    for i in 0..30 {
        ok(&redis, &["SET", &format!("dedicated_server:{i}"), "{}"]);
        ok(&redis, &["SET", &format!("other:{i}"), "x"]);
    }
    let mut cursor = 0;
    let mut seen = BTreeSet::new();
    loop {
        let (next, page) = redis.scan(cursor, "dedicated_server:*", 4).await.unwrap();
        seen.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let expected: BTreeSet<String> = (0..30).map(|i| format!("dedicated_server:{i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        redis.scan(0, "*", 0).await,
        Err(StoreError::Server("ERR syntax error".to_owned()))
    );
}
