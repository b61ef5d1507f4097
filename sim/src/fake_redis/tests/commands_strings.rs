//! String commands against Redis 7.0's replies (checked on a real redis-server 7.0.15).

use match_server::store::Reply;

use super::*;

/// Goal: SET and GET basics; a plain SET replaces a key of any type.
#[test]
fn set_and_get() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["GET", "k"]), Reply::Nil);
    assert_eq!(ok(&redis, &["SET", "k", "v"]), status_ok());
    assert_eq!(ok(&redis, &["GET", "k"]), bulk("v"));
    ok(&redis, &["SADD", "s", "m"]);
    assert_eq!(ok(&redis, &["SET", "s", "v"]), status_ok());
    assert_eq!(
        ok(&redis, &["TYPE", "s"]),
        Reply::Status("string".to_owned())
    );
    ok(&redis, &["HSET", "h", "f", "v"]);
    assert_eq!(
        err(&redis, &["GET", "h"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
}

/// Goal: NX and XX conditions reply nil when they fail; NX twice is allowed, NX with XX
/// is a syntax error.
#[test]
fn set_conditions() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["SET", "k", "v", "XX"]), Reply::Nil);
    assert_eq!(ok(&redis, &["EXISTS", "k"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["SET", "k", "v", "NX"]), status_ok());
    assert_eq!(ok(&redis, &["SET", "k", "w", "NX"]), Reply::Nil);
    assert_eq!(ok(&redis, &["SET", "k", "w", "nx", "nx"]), Reply::Nil);
    assert_eq!(ok(&redis, &["GET", "k"]), bulk("v"));
    assert_eq!(ok(&redis, &["SET", "k", "w", "XX"]), status_ok());
    assert_eq!(ok(&redis, &["GET", "k"]), bulk("w"));
    assert_eq!(
        err(&redis, &["SET", "k", "v", "NX", "XX"]),
        "ERR syntax error"
    );
    assert_eq!(err(&redis, &["SET", "k", "v", "foo"]), "ERR syntax error");
}

/// Goal: SET GET replies with the old value whether or not the set happens, and refuses
/// (without changing anything) when the key holds another type.
#[test]
fn set_get_option() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["SET", "k", "v", "GET"]), Reply::Nil);
    assert_eq!(ok(&redis, &["SET", "k", "v2", "GET"]), bulk("v"));
    assert_eq!(ok(&redis, &["SET", "k", "v3", "NX", "GET"]), bulk("v2"));
    assert_eq!(ok(&redis, &["GET", "k"]), bulk("v2"));
    assert_eq!(ok(&redis, &["SET", "n", "v", "XX", "GET"]), Reply::Nil);
    assert_eq!(ok(&redis, &["EXISTS", "n"]), Reply::Int(0));
    ok(&redis, &["SADD", "s", "m"]);
    assert_eq!(
        err(&redis, &["SET", "s", "v", "GET"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(ok(&redis, &["TYPE", "s"]), Reply::Status("set".to_owned()));
}

/// Goal: every expiry option of SET sets the right deadline; a plain SET clears it and
/// KEEPTTL keeps it; the same option twice is allowed (the last one wins).
#[test]
fn set_expiry_options() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "k", "v", "PX", "100"]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(100));
    ok(&redis, &["SET", "k", "v", "EX", "2"]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(2000));
    ok(&redis, &["SET", "k", "v", "ex", "1", "ex", "3"]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(3000));
    ok(&redis, &["SET", "k", "v", "KEEPTTL"]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(3000));
    ok(&redis, &["SET", "k", "v"]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(-1));
    let at_ms = (START_MS + 40).to_string();
    ok(&redis, &["SET", "k", "v", "PXAT", &at_ms]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(40));
    let at_s = (START_MS / 1000 + 5).to_string();
    ok(&redis, &["SET", "k", "v", "EXAT", &at_s]);
    assert_eq!(ok(&redis, &["PTTL", "k"]), Reply::Int(5000));
    assert_eq!(ok(&redis, &["SET", "old", "v", "PXAT", "1"]), status_ok());
    assert_eq!(ok(&redis, &["EXISTS", "old"]), Reply::Int(0));
}

/// Goal: SET's expiry errors carry Redis's texts.
#[test]
fn set_expiry_errors() {
    let (redis, _clock) = fake();
    let invalid = "ERR invalid expire time in 'set' command";
    assert_eq!(err(&redis, &["SET", "k", "v", "PX", "0"]), invalid);
    assert_eq!(err(&redis, &["SET", "k", "v", "PX", "-5"]), invalid);
    assert_eq!(err(&redis, &["SET", "k", "v", "EXAT", "0"]), invalid);
    assert_eq!(
        err(&redis, &["SET", "k", "v", "EX", "9223372036854775"]),
        invalid
    );
    assert_eq!(
        err(&redis, &["SET", "k", "v", "EX", "9223372036854776"]),
        invalid
    );
    assert_eq!(
        err(&redis, &["SET", "k", "v", "PX", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&redis, &["SET", "k", "v", "PX"]), "ERR syntax error");
    assert_eq!(
        err(&redis, &["SET", "k", "v", "EX", "1", "PX", "2"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&redis, &["SET", "k", "v", "KEEPTTL", "PX", "5"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&redis, &["SET", "k", "v", "PX", "5", "KEEPTTL"]),
        "ERR syntax error"
    );
    assert_eq!(ok(&redis, &["EXISTS", "k"]), Reply::Int(0));
}

/// Goal: MGET answers nil for missing keys and keys of other types.
#[test]
fn mget_mixes_values_and_nils() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "a", "1"]);
    ok(&redis, &["SADD", "s", "m"]);
    assert_eq!(
        ok(&redis, &["MGET", "a", "missing", "s"]),
        Reply::Array(vec![bulk("1"), Reply::Nil, Reply::Nil])
    );
}

/// Goal: the INCR family counts from 0, keeps the expiry, and reports non-integers and
/// overflow with Redis's texts.
#[test]
fn incr_family() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["INCR", "n"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["INCRBY", "n", "5"]), Reply::Int(6));
    assert_eq!(ok(&redis, &["DECR", "n"]), Reply::Int(5));
    assert_eq!(ok(&redis, &["DECRBY", "n", "10"]), Reply::Int(-5));
    assert_eq!(ok(&redis, &["GET", "n"]), bulk("-5"));
    ok(&redis, &["PEXPIRE", "n", "100"]);
    ok(&redis, &["INCR", "n"]);
    assert_eq!(ok(&redis, &["PTTL", "n"]), Reply::Int(100));
    ok(&redis, &["SET", "s", "abc"]);
    assert_eq!(
        err(&redis, &["INCR", "s"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&redis, &["INCRBY", "n", "x"]),
        "ERR value is not an integer or out of range"
    );
    ok(&redis, &["SET", "max", "9223372036854775807"]);
    assert_eq!(
        err(&redis, &["INCR", "max"]),
        "ERR increment or decrement would overflow"
    );
}
