//! Following a real Redis's choices: the fake takes Redis's picks, orders and pages when
//! they are choices it could make itself, and reports every one it cannot follow.

use match_server::store::Reply;

use super::*;
use crate::fake_redis::Recorded;

/// A recorded call from text arguments and a reply.
fn recorded(argv: &[&str], reply: Reply) -> Recorded {
    Recorded {
        argv: argv.iter().map(|arg| arg.as_bytes().to_vec()).collect(),
        reply,
    }
}

/// Runs `argv` following `record`; returns the reply and the problems.
fn follow(redis: &FakeRedis, record: Vec<Recorded>, argv: &[&str]) -> (Reply, Vec<String>) {
    redis.follow(record);
    let reply = ok(redis, argv);
    (reply, redis.stop_following())
}

/// A fake holding the set `s` = {a, b, c, d}.
fn with_set() -> FakeRedis {
    let (redis, _) = fake();
    ok(&redis, &["SADD", "s", "a", "b", "c", "d"]);
    redis
}

/// Goal: SPOP takes Redis's picks in Redis's order, and removes exactly those.
#[test]
fn spop_takes_the_members_redis_popped() {
    let redis = with_set();
    let popped = bulks(&["d", "a"]);
    let (reply, problems) = follow(
        &redis,
        vec![recorded(&["SPOP", "s", "2"], popped.clone())],
        &["SPOP", "s", "2"],
    );
    assert_eq!(problems, Vec::<String>::new());
    assert_eq!(reply, popped);
    assert_eq!(ok(&redis, &["SMEMBERS", "s"]), bulks(&["b", "c"]));
    let (reply, problems) = follow(
        &redis,
        vec![recorded(&["spop", "s"], bulk("c"))],
        &["spop", "s"],
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(reply, bulk("c"));
}

/// Goal: a pick the fake cannot make is reported: a member the set does not hold, more
/// members than the fake's count allows, fewer than it needs, a pick from a missing key.
#[test]
fn impossible_picks_are_problems() {
    let cases = [
        (
            vec!["SPOP", "s", "1"],
            bulks(&["z"]),
            "which the fake could not pick",
        ),
        (vec!["SPOP", "s", "1"], bulks(&["a", "b"]), "also picked"),
        (
            vec!["SPOP", "s", "3"],
            bulks(&["a", "b"]),
            "picked more members",
        ),
        (vec!["SPOP", "s", "2"], bulks(&["a", "a"]), "could not pick"),
        (
            vec!["SRANDMEMBER", "s", "2"],
            bulks(&["a", "a"]),
            "could not pick",
        ),
        (vec!["SPOP", "missing"], bulk("a"), "the fake chose nothing"),
    ];
    for (argv, reply, problem) in cases {
        let redis = with_set();
        let (_, problems) = follow(&redis, vec![recorded(&argv, reply)], &argv);
        assert!(
            problems.iter().any(|text| text.contains(problem)),
            "{argv:?}: {problems:?}"
        );
    }
}

/// Goal: SRANDMEMBER follows picks with repeats (negative count) and without, and
/// Redis's order of the whole set when the count covers it.
#[test]
fn srandmember_follows_picks_and_orders() {
    let redis = with_set();
    for (argv, reply) in [
        (vec!["SRANDMEMBER", "s", "-3"], bulks(&["b", "b", "d"])),
        (vec!["SRANDMEMBER", "s", "2"], bulks(&["c", "a"])),
        (vec!["SRANDMEMBER", "s", "9"], bulks(&["c", "a", "d", "b"])),
        (vec!["SRANDMEMBER", "s"], bulk("d")),
    ] {
        let (followed, problems) = follow(&redis, vec![recorded(&argv, reply.clone())], &argv);
        assert!(problems.is_empty(), "{argv:?}: {problems:?}");
        assert_eq!(followed, reply);
    }
    assert_eq!(ok(&redis, &["SCARD", "s"]), Reply::Int(4));
}

/// Goal: free orders (SMEMBERS, HGETALL, HKEYS, HVALS, KEYS) take Redis's order only when
/// it holds the same elements (HGETALL's fields with their own values).
#[test]
fn orders_must_be_permutations() {
    let redis = with_set();
    ok(&redis, &["HSET", "h", "f", "1", "g", "2"]);
    for (argv, reply) in [
        (vec!["SMEMBERS", "s"], bulks(&["c", "a", "d", "b"])),
        (vec!["HGETALL", "h"], bulks(&["g", "2", "f", "1"])),
        (vec!["HKEYS", "h"], bulks(&["g", "f"])),
        (vec!["KEYS", "*"], bulks(&["s", "h"])),
    ] {
        let (followed, problems) = follow(&redis, vec![recorded(&argv, reply.clone())], &argv);
        assert!(problems.is_empty(), "{argv:?}: {problems:?}");
        assert_eq!(followed, reply);
    }
    for (argv, reply) in [
        (vec!["SMEMBERS", "s"], bulks(&["c", "a", "d"])),
        (vec!["HGETALL", "h"], bulks(&["g", "1", "f", "2"])),
        (vec!["HVALS", "h"], bulks(&["2", "2"])),
    ] {
        let (followed, problems) = follow(&redis, vec![recorded(&argv, reply)], &argv);
        assert_eq!(problems.len(), 1, "{argv:?}: {problems:?}");
        assert_eq!(followed, ok(&redis, &argv), "the fake's own reply");
    }
}

/// Goal: SCAN-family pages are Redis's when every element is one the fake holds and
/// matches; a missing key's page must be the empty one.
#[test]
fn pages_hold_only_what_the_fake_holds() {
    let redis = with_set();
    ok(&redis, &["HSET", "h", "f", "1", "g", "2"]);
    let page = |cursor: &str, items: &[&str]| Reply::Array(vec![bulk(cursor), bulks(items)]);
    for (argv, reply) in [
        (vec!["HSCAN", "h", "0"], page("12", &["g", "2"])),
        (
            vec!["SSCAN", "s", "0", "MATCH", "[ab]"],
            page("0", &["b", "a"]),
        ),
        (vec!["SCAN", "0", "TYPE", "hash"], page("3", &["h"])),
        (vec!["HSCAN", "missing", "0"], page("0", &[])),
    ] {
        let (followed, problems) = follow(&redis, vec![recorded(&argv, reply.clone())], &argv);
        assert!(problems.is_empty(), "{argv:?}: {problems:?}");
        assert_eq!(followed, reply);
    }
    for (argv, reply) in [
        (vec!["HSCAN", "h", "0"], page("0", &["g", "1"])),
        (vec!["HSCAN", "h", "0"], page("0", &["g"])),
        (vec!["SSCAN", "s", "0", "MATCH", "[ab]"], page("0", &["c"])),
        (vec!["SCAN", "0", "TYPE", "hash"], page("0", &["s"])),
        (vec!["SSCAN", "s", "0"], page("x", &[])),
        (vec!["HSCAN", "missing", "0"], page("0", &["f", "1"])),
    ] {
        let (_, problems) = follow(&redis, vec![recorded(&argv, reply)], &argv);
        assert_eq!(problems.len(), 1, "{argv:?}: {problems:?}");
    }
}

/// Goal: the fake and the record must make the same calls in the same order: another
/// call, a call Redis never made, and a recorded call the fake never made are problems.
#[test]
fn calls_must_line_up() {
    let redis = with_set();
    let (_, problems) = follow(
        &redis,
        vec![recorded(&["SPOP", "t", "1"], bulks(&["a"]))],
        &["SPOP", "s", "1"],
    );
    assert!(problems[0].contains("where Redis ran"), "{problems:?}");
    let (_, problems) = follow(&redis, Vec::new(), &["SPOP", "s", "1"]);
    assert!(
        problems[0].contains("Redis made no such call"),
        "{problems:?}"
    );
    let (_, problems) = follow(
        &redis,
        vec![recorded(&["SPOP", "s"], bulk("a"))],
        &["SCARD", "s"],
    );
    assert!(problems[0].contains("the fake never did"), "{problems:?}");
    // An error comes before any choice: it takes nothing from the record.
    let redis = with_set();
    redis.follow(vec![recorded(&["SPOP", "s"], bulk("b"))]);
    assert!(redis.cmd(&["SPOP", "s", "x"]).is_err());
    assert_eq!(ok(&redis, &["SPOP", "s"]), bulk("b"));
    assert!(redis.stop_following().is_empty());
}

/// Goal: a script follows too, call by call, and after following the fake is back on
/// its seed.
#[test]
fn scripts_follow_call_by_call() {
    let redis = with_set();
    let source = "local first = redis.call('SPOP', KEYS[1]) \
        return {first, redis.call('SPOP', KEYS[1], 2)}";
    redis.follow(vec![
        recorded(&["SPOP", "s"], bulk("c")),
        recorded(&["SPOP", "s", "2"], bulks(&["a", "d"])),
    ]);
    let reply = redis.eval_source(source, &["s"], &[] as &[&str]).unwrap();
    assert!(redis.stop_following().is_empty());
    assert_eq!(reply, Reply::Array(vec![bulk("c"), bulks(&["a", "d"])]));
    assert_eq!(ok(&redis, &["SPOP", "s"]), bulk("b"));
}
