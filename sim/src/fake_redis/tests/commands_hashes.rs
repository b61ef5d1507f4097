//! Hash commands against Redis 7.0's replies (checked on a real redis-server 7.0.15).

use std::collections::BTreeMap;

use match_server::store::Reply;

use super::*;

/// Goal: HSET counts only new fields over several pairs; the read commands answer like
/// Redis; HDEL of the last field deletes the key.
#[test]
fn field_commands() {
    let (redis, _clock) = fake();
    assert_eq!(
        ok(&redis, &["HSET", "h", "a", "1", "b", "2"]),
        Reply::Int(2)
    );
    assert_eq!(
        ok(&redis, &["HSET", "h", "a", "3", "c", "4"]),
        Reply::Int(1)
    );
    assert_eq!(ok(&redis, &["HGET", "h", "a"]), bulk("3"));
    assert_eq!(ok(&redis, &["HGET", "h", "z"]), Reply::Nil);
    assert_eq!(ok(&redis, &["HGET", "missing", "a"]), Reply::Nil);
    assert_eq!(
        ok(&redis, &["HGETALL", "h"]),
        bulks(&["a", "3", "b", "2", "c", "4"])
    );
    assert_eq!(
        ok(&redis, &["HGETALL", "missing"]),
        Reply::Array(Vec::new())
    );
    assert_eq!(ok(&redis, &["HKEYS", "h"]), bulks(&["a", "b", "c"]));
    assert_eq!(ok(&redis, &["HVALS", "h"]), bulks(&["3", "2", "4"]));
    assert_eq!(
        ok(&redis, &["HMGET", "h", "a", "z"]),
        Reply::Array(vec![bulk("3"), Reply::Nil])
    );
    assert_eq!(ok(&redis, &["HLEN", "h"]), Reply::Int(3));
    assert_eq!(ok(&redis, &["HLEN", "missing"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["HEXISTS", "h", "b"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["HEXISTS", "h", "z"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["HDEL", "h", "a", "z"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["HDEL", "h", "b", "c"]), Reply::Int(2));
    assert_eq!(ok(&redis, &["EXISTS", "h"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["HDEL", "h", "a"]), Reply::Int(0));
}

/// Goal: HSET's arity and the WRONGTYPE error on every hash command.
#[test]
fn hash_errors() {
    let (redis, _clock) = fake();
    let arity = "ERR wrong number of arguments for 'hset' command";
    assert_eq!(err(&redis, &["HSET", "h", "f"]), arity);
    assert_eq!(err(&redis, &["HSET", "h", "f", "v", "g"]), arity);
    assert_eq!(ok(&redis, &["EXISTS", "h"]), Reply::Int(0));
    ok(&redis, &["SADD", "s", "m"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["HSET", "s", "f", "v"][..],
        &["HGET", "s", "f"],
        &["HGETALL", "s"],
        &["HDEL", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HLEN", "s"],
        &["HSCAN", "s", "0"],
        &["HINCRBY", "s", "f", "1"],
    ] {
        assert_eq!(err(&redis, args), wrongtype, "{args:?}");
    }
}

/// Goal: HINCRBY counts from 0 and reports non-integers and overflow like Redis.
#[test]
fn hincrby() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["HINCRBY", "h", "n", "5"]), Reply::Int(5));
    assert_eq!(ok(&redis, &["HINCRBY", "h", "n", "-7"]), Reply::Int(-2));
    ok(
        &redis,
        &["HSET", "h", "s", "abc", "max", "9223372036854775807"],
    );
    assert_eq!(
        err(&redis, &["HINCRBY", "h", "s", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        err(&redis, &["HINCRBY", "h", "n", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&redis, &["HINCRBY", "h", "max", "1"]),
        "ERR increment or decrement would overflow"
    );
}

/// Goal: a full HSCAN returns every field with its value and honours MATCH; a missing key
/// scans as empty before options are even parsed; a bad cursor is refused first.
#[test]
fn hscan_iterates() {
    let (redis, _clock) = fake();
    let mut expected = BTreeMap::new();
    for i in 0..25 {
        let (field, value) = (format!("f{i}"), format!("v{i}"));
        ok(&redis, &["HSET", "h", &field, &value]);
        expected.insert(field, value);
    }
    let flat = scan_all(&redis, &["HSCAN", "h"], &["COUNT", "3"]);
    let pairs: BTreeMap<String, String> = flat
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    assert_eq!(pairs, expected);
    let matched = scan_all(&redis, &["HSCAN", "h"], &["MATCH", "f1*"]);
    let fields: Vec<&String> = matched.iter().step_by(2).collect();
    assert!(!fields.is_empty() && fields.iter().all(|field| field.starts_with("f1")));
    let empty = Reply::Array(vec![bulk("0"), Reply::Array(Vec::new())]);
    assert_eq!(ok(&redis, &["HSCAN", "missing", "0", "COUNT", "0"]), empty);
    assert_eq!(err(&redis, &["HSCAN", "h", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&redis, &["HSCAN", "h", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&redis, &["HSCAN", "h", "0", "TYPE", "hash"]),
        "ERR syntax error"
    );
}
