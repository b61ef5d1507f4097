//! Set commands against Redis 7.0's replies (checked on a real redis-server 7.0.15).

use std::collections::BTreeSet;

use match_server::store::Reply;

use super::*;

/// Goal: SADD/SREM count only real changes; SCARD, SMEMBERS, SISMEMBER and SMISMEMBER
/// answer like Redis; removing the last member deletes the key.
#[test]
fn membership_commands() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["SADD", "s", "a", "b", "a"]), Reply::Int(2));
    assert_eq!(ok(&redis, &["SADD", "s", "b", "c"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["SCARD", "s"]), Reply::Int(3));
    assert_eq!(ok(&redis, &["SMEMBERS", "s"]), bulks(&["a", "b", "c"]));
    assert_eq!(ok(&redis, &["SISMEMBER", "s", "a"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["SISMEMBER", "s", "z"]), Reply::Int(0));
    assert_eq!(
        ok(&redis, &["SMISMEMBER", "s", "a", "z"]),
        Reply::Array(vec![Reply::Int(1), Reply::Int(0)])
    );
    assert_eq!(ok(&redis, &["SREM", "s", "a", "z"]), Reply::Int(1));
    assert_eq!(ok(&redis, &["SREM", "s", "b", "c"]), Reply::Int(2));
    assert_eq!(ok(&redis, &["EXISTS", "s"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["SREM", "s", "a"]), Reply::Int(0));
    assert_eq!(ok(&redis, &["SCARD", "missing"]), Reply::Int(0));
    assert_eq!(
        ok(&redis, &["SMEMBERS", "missing"]),
        Reply::Array(Vec::new())
    );
    assert_eq!(ok(&redis, &["SISMEMBER", "missing", "a"]), Reply::Int(0));
}

/// Goal: set commands on a key of another type reply WRONGTYPE and change nothing.
#[test]
fn wrong_type() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "v"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["SADD", "str", "m"][..],
        &["SREM", "str", "m"],
        &["SCARD", "str"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "m"],
        &["SPOP", "str"],
        &["SPOP", "str", "2"],
        &["SRANDMEMBER", "str"],
        &["SSCAN", "str", "0"],
    ] {
        assert_eq!(err(&redis, args), wrongtype, "{args:?}");
    }
    assert_eq!(ok(&redis, &["GET", "str"]), bulk("v"));
}

/// Goal: SPOP's replies: nil / empty array on a missing key, count 0, count errors, popping
/// everything deletes the key.
#[test]
fn spop_replies() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["SPOP", "missing"]), Reply::Nil);
    assert_eq!(
        ok(&redis, &["SPOP", "missing", "3"]),
        Reply::Array(Vec::new())
    );
    ok(&redis, &["SADD", "s", "a", "b", "c"]);
    assert_eq!(ok(&redis, &["SPOP", "s", "0"]), Reply::Array(Vec::new()));
    let positive = "ERR value is out of range, must be positive";
    assert_eq!(err(&redis, &["SPOP", "s", "-1"]), positive);
    assert_eq!(err(&redis, &["SPOP", "s", "x"]), positive);
    assert_eq!(err(&redis, &["SPOP", "s", "1", "2"]), "ERR syntax error");
    let Reply::Bulk(one) = ok(&redis, &["SPOP", "s"]) else {
        panic!("not a bulk")
    };
    let rest: BTreeSet<String> = texts(&ok(&redis, &["SPOP", "s", "10"]))
        .into_iter()
        .collect();
    assert_eq!(rest.len(), 2);
    let one = String::from_utf8(one).unwrap();
    assert!(!rest.contains(&one));
    let all: BTreeSet<String> = rest.into_iter().chain([one]).collect();
    assert_eq!(all, ["a", "b", "c"].map(String::from).into());
    assert_eq!(ok(&redis, &["EXISTS", "s"]), Reply::Int(0));
}

/// Goal: SRANDMEMBER's replies: distinct picks for a positive count, the whole set when
/// the count is larger, repeats allowed for a negative count, the set unchanged.
#[test]
fn srandmember_replies() {
    let (redis, _clock) = fake();
    assert_eq!(ok(&redis, &["SRANDMEMBER", "missing"]), Reply::Nil);
    assert_eq!(
        ok(&redis, &["SRANDMEMBER", "missing", "2"]),
        Reply::Array(Vec::new())
    );
    ok(&redis, &["SADD", "s", "a", "b", "c", "d"]);
    assert_eq!(
        ok(&redis, &["SRANDMEMBER", "s", "0"]),
        Reply::Array(Vec::new())
    );
    let two = texts(&ok(&redis, &["SRANDMEMBER", "s", "2"]));
    assert_eq!(two.iter().collect::<BTreeSet<_>>().len(), 2);
    assert_eq!(
        ok(&redis, &["SRANDMEMBER", "s", "10"]),
        bulks(&["a", "b", "c", "d"])
    );
    let many = texts(&ok(&redis, &["SRANDMEMBER", "s", "-20"]));
    assert_eq!(many.len(), 20);
    assert!(
        many.iter()
            .all(|m| ["a", "b", "c", "d"].contains(&m.as_str()))
    );
    let single = ok(&redis, &["SRANDMEMBER", "s"]);
    assert!(["a", "b", "c", "d"].contains(&single.as_text().unwrap()));
    assert_eq!(
        err(&redis, &["SRANDMEMBER", "s", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&redis, &["SRANDMEMBER", "s", "1", "2"]),
        "ERR syntax error"
    );
    assert_eq!(ok(&redis, &["SCARD", "s"]), Reply::Int(4));
}

/// Goal: a full SSCAN returns every member; a missing key scans as empty.
#[test]
fn sscan_iterates() {
    let (redis, _clock) = fake();
    let members: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "s"];
    args.extend(members.iter().map(String::as_str));
    ok(&redis, &args);
    let seen: BTreeSet<String> = scan_all(&redis, &["SSCAN", "s"], &["COUNT", "4"])
        .into_iter()
        .collect();
    assert_eq!(seen, members.into_iter().collect());
    assert!(scan_all(&redis, &["SSCAN", "missing"], &[]).is_empty());
}
