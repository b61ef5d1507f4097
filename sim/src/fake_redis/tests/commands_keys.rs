//! Generic key commands, server commands and command-table errors, against Redis 7.0's
//! replies (each expectation was checked on a real redis-server 7.0.15).

use std::collections::BTreeSet;

use match_server::store::Reply;

use super::*;

/// Goal: DEL counts each existing key once; EXISTS counts every mention.
#[test]
fn del_and_exists_count_like_redis() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "a", "1"]);
    ok(&redis, &["SADD", "s", "m"]);
    assert_eq!(
        ok(&redis, &["EXISTS", "a", "a", "s", "missing"]),
        Reply::Int(3)
    );
    assert_eq!(
        ok(&redis, &["DEL", "a", "a", "s", "missing"]),
        Reply::Int(2)
    );
    assert_eq!(ok(&redis, &["EXISTS", "a", "s"]), Reply::Int(0));
}

/// Goal: EXPIRE's NX/XX/GT/LT conditions, PERSIST and TTL/PTTL replies, incl. -1 and -2.
#[test]
fn expire_conditions_and_ttl_replies() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["EXPIRE", "k", "100"]), Reply::Int(0));
    ok(&redis, &["SET", "k", "v"]);
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(-1));
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(-1));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "100", "XX"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "100", "GT"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "100", "NX"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "200", "NX"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(100));
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(100_000));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "50", "GT"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "50", "LT"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["EXPIRE", "k", "60", "LT"]), Reply::Int(0));
    assert_eq!(
        ok(&redis, &["EXPIRE", "k", "70", "xx", "gt"]),
        Reply::Int(1)
    );
    assert_eq!(ok(&redis, &["PERSIST", "k"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["PERSIST", "k"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["PERSIST", "missing"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["TTL", "missing"]), Reply::Int(-2));
    assert_eq!(ok(&redis, &["PTTL", "missing"]), Reply::Int(-2));
}

/// Goal: an expiry at or before now deletes the key at once (and still replies 1).
#[test]
fn expire_in_the_past_deletes() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "a", "v"]);
    ok(&redis, &["SET", "b", "v"]);
    ok(&redis, &["SET", "c", "v"]);
    assert_eq!(ok(&redis, &["EXPIRE", "a", "-1"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["PEXPIRE", "b", "0"]), Reply::Int(1));
    let now = START_MS.to_string();
    assert_eq!(ok(&redis, &["PEXPIREAT", "c", &now]), Reply::Int(1));
    assert_eq!(ok(&redis, &["EXISTS", "a", "b", "c"]), Reply::Int(0));
}

/// Goal: TTL rounds like Redis (`(ms + 500) / 1000`); EXPIREAT and PEXPIREAT are absolute.
#[test]
fn ttl_rounding_and_absolute_expiry() {
    let (redis, clock) = fake();
    ok(&redis, &["SET", "k", "v"]);
    ok(&redis, &["PEXPIRE", "k", "1500"]);
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(2));
    clock.advance_ms(1);
    assert_eq!(ok(&redis, &["TTL", "k"]), Reply::Int(1));
    let at_ms = (START_MS + 50).to_string();
    assert_eq!(ok(&redis, &["PEXPIREAT", "k", &at_ms]), Reply::Int(1));
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(49));
    let at_s = (START_MS / 1000 + 10).to_string();
    assert_eq!(ok(&redis, &["EXPIREAT", "k", &at_s]), Reply::Int(1));
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(9_999));
}

/// Goal: EXPIRE's errors carry Redis's texts, options checked before the time.
#[test]
fn expire_errors() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "k", "v"]);
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "007"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "x", "foo"]),
        "ERR Unsupported option foo"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "1", "nx", "xx"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "1", "gt", "lt"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err(&redis, &["PEXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(
        err(&redis, &["EXPIRE", "k"]),
        "ERR wrong number of arguments for 'expire' command"
    );
}

/// Goal: TYPE answers with status replies, `none` for missing keys.
#[test]
fn type_names() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "v"]);
    ok(&redis, &["SADD", "set", "m"]);
    ok(&redis, &["HSET", "hash", "f", "v"]);
    for (key, name) in [
        ("str", "string"),
        ("set", "set"),
        ("hash", "hash"),
        ("missing", "none"),
    ] {
        assert_eq!(ok(&redis, &["TYPE", key]), Reply::Status(name.to_owned()));
    }
}

/// Goal: KEYS applies Redis globs and lists keys of every type.
#[test]
fn keys_filters_by_glob() {
    let (redis, _clock) = fake();
    for key in ["a1", "a[", "a\\", "b1"] {
        ok(&redis, &["SET", key, "1"]);
    }
    assert_eq!(ok(&redis, &["KEYS", "a?"]), bulks(&["a1", "a[", "a\\"]));
    assert_eq!(ok(&redis, &["KEYS", "a[^1]"]), bulks(&["a[", "a\\"]));
    assert_eq!(ok(&redis, &["KEYS", "a\\["]), bulks(&["a["]));
    assert_eq!(ok(&redis, &["KEYS", "*1"]), bulks(&["a1", "b1"]));
    assert_eq!(ok(&redis, &["KEYS", "nothing*"]), Reply::Array(Vec::new()));
}

/// Goal: a full SCAN returns every matching key (duplicates allowed), honours MATCH and
/// TYPE, and its errors match Redis.
#[test]
fn scan_iterates_with_match_and_type() {
    let (redis, _clock) = fake();
    for i in 0..40 {
        ok(&redis, &["SET", &format!("user:{i}"), "v"]);
        ok(&redis, &["HSET", &format!("hash:{i}"), "f", "v"]);
    }
    let users: BTreeSet<String> = scan_all(&redis, &["SCAN"], &["MATCH", "user:*", "COUNT", "5"])
        .into_iter()
        .collect();
    assert_eq!(users, (0..40).map(|i| format!("user:{i}")).collect());
    let hashes: BTreeSet<String> = scan_all(&redis, &["SCAN"], &["TYPE", "HASH"])
        .into_iter()
        .collect();
    assert_eq!(hashes, (0..40).map(|i| format!("hash:{i}")).collect());
    assert!(scan_all(&redis, &["SCAN"], &["TYPE", "nosuchtype"]).is_empty());
    assert_eq!(err(&redis, &["SCAN", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&redis, &["SCAN", "18446744073709551616"]),
        "ERR invalid cursor"
    );
    assert_eq!(
        err(&redis, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&redis, &["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&redis, &["SCAN", "0", "MATCH"]), "ERR syntax error");
    assert_eq!(err(&redis, &["SCAN", "0", "foo"]), "ERR syntax error");
}

/// Goal: an empty cursor is the cursor 0 for SCAN, SSCAN and HSCAN, as `strtoul` makes it
/// on Redis 7.0 (found by the conformance suite: the fake answered "invalid cursor").
#[test]
fn empty_cursor_starts_an_iteration() {
    // Two fakes of one seed make the same choices, so their first pages are comparable.
    let replies = |cursor: &str| {
        let (redis, _clock) = fake();
        for i in 0..30 {
            ok(&redis, &["SET", &format!("k{i}"), "v"]);
            ok(&redis, &["SADD", "s", &format!("m{i}")]);
            ok(&redis, &["HSET", "h", &format!("f{i}"), "v"]);
        }
        [
            ok(&redis, &["SCAN", cursor, "COUNT", "5"]),
            ok(&redis, &["SSCAN", "s", cursor]),
            ok(&redis, &["HSCAN", "h", cursor, "MATCH", "f1*"]),
        ]
    };
    assert_eq!(replies(""), replies("0"));
    let (redis, _clock) = fake();
    assert_eq!(err(&redis, &["SCAN", "-"]), "ERR invalid cursor");
    assert_eq!(err(&redis, &["SSCAN", "s", "+"]), "ERR invalid cursor");
}

/// Goal: FLUSHALL empties the keyspace and accepts only ASYNC or SYNC.
#[test]
fn flushall_and_dbsize() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "a", "1"]);
    ok(&redis, &["SADD", "s", "m"]);
    assert_eq!(ok(&redis, &["DBSIZE"]), Reply::Int(2));
    assert_eq!(err(&redis, &["FLUSHALL", "foo"]), "ERR syntax error");
    assert_eq!(ok(&redis, &["FLUSHALL", "async"]), status_ok());
    assert_eq!(ok(&redis, &["DBSIZE"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["FLUSHALL"]), status_ok());
}

/// Goal: unknown commands and bad arities get Redis's exact texts; names are
/// case-insensitive; PING and PUBLISH without subscribers answer like Redis.
#[test]
fn command_table_errors_and_ping() {
    let (redis, _clock) = fake();
    assert_eq!(
        err(&redis, &["FOO", "a", "b"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        err(&redis, &["foo"]),
        "ERR unknown command 'foo', with args beginning with: "
    );
    assert_eq!(
        err(&redis, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&redis, &["GET", "a", "b"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(ok(&redis, &["get", "a"]), Reply::Nil);
    assert_eq!(ok(&redis, &["PING"]), Reply::Status("PONG".to_owned()));
    assert_eq!(ok(&redis, &["PING", "hi"]), bulk("hi"));
    assert_eq!(ok(&redis, &["PUBLISH", "ch", "m"]), Reply::Int(0));
    let long = "x".repeat(200);
    let text = err(&redis, &["FOO", &long]);
    assert_eq!(
        text,
        format!(
            "ERR unknown command 'FOO', with args beginning with: '{}' ",
            "x".repeat(128)
        )
    );
}
