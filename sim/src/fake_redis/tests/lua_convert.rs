//! Reply conversion in both directions, rule by rule, as Redis 7.0 converts.

use match_server::store::Reply;

use super::*;

/// Goal: Lua numbers become integers truncated toward zero; strings bulk; true 1; false
/// and nil the nil reply.
#[test]
fn scalars_to_replies() {
    let (redis, _clock) = fake();
    assert_eq!(run(&redis, "return 3.99"), Ok(Reply::Int(3)));
    assert_eq!(run(&redis, "return -3.99"), Ok(Reply::Int(-3)));
    assert_eq!(run(&redis, "return 42"), Ok(Reply::Int(42)));
    // Out of range: Redis's C cast on x86-64 gives the minimum (checked on 7.0.15).
    assert_eq!(run(&redis, "return 1e20"), Ok(Reply::Int(i64::MIN)));
    assert_eq!(run(&redis, "return -1e20"), Ok(Reply::Int(i64::MIN)));
    assert_eq!(run(&redis, "return 'text'"), Ok(bulk("text")));
    assert_eq!(run(&redis, "return true"), Ok(Reply::Int(1)));
    assert_eq!(run(&redis, "return false"), Ok(Reply::Nil));
    assert_eq!(run(&redis, "return nil"), Ok(Reply::Nil));
    assert_eq!(run(&redis, "return"), Ok(Reply::Nil));
    assert_eq!(run(&redis, "return 1, 2"), Ok(Reply::Int(1)));
}

/// Goal: an array stops at its first nil; false inside becomes a nil element; nested
/// tables convert recursively; non-array keys are ignored.
#[test]
fn tables_to_arrays() {
    let (redis, _clock) = fake();
    let ints = |values: &[i64]| Reply::Array(values.iter().map(|v| Reply::Int(*v)).collect());
    assert_eq!(run(&redis, "return {1, 2, nil, 3}"), Ok(ints(&[1, 2])));
    assert_eq!(
        run(&redis, "return {1, false, 2}"),
        Ok(Reply::Array(vec![Reply::Int(1), Reply::Nil, Reply::Int(2)]))
    );
    assert_eq!(
        run(&redis, "return {1.9, {2, {3, 'x'}}, {}}"),
        Ok(Reply::Array(vec![
            Reply::Int(1),
            Reply::Array(vec![
                Reply::Int(2),
                Reply::Array(vec![Reply::Int(3), bulk("x")])
            ]),
            Reply::Array(Vec::new()),
        ]))
    );
    assert_eq!(run(&redis, "return {a = 1, 7}"), Ok(ints(&[7])));
    assert_eq!(run(&redis, "return {}"), Ok(Reply::Array(Vec::new())));
}

/// Goal: `{ok = s}` is a status, `{err = s}` an error (top level: the script's error;
/// nested: an error element); non-string fields fall back to arrays; line breaks become
/// spaces.
#[test]
fn ok_and_err_tables() {
    let (redis, _clock) = fake();
    assert_eq!(
        run(&redis, "return {ok = 'FINE'}"),
        Ok(Reply::Status("FINE".to_owned()))
    );
    assert_eq!(
        error_text(run(&redis, "return {err = 'MY boom'}")),
        "MY boom"
    );
    assert_eq!(
        run(&redis, "return {1, {err = 'E'}, {ok = 'O'}}"),
        Ok(Reply::Array(vec![
            Reply::Int(1),
            Reply::Error("E".to_owned()),
            Reply::Status("O".to_owned())
        ]))
    );
    assert_eq!(run(&redis, "return {ok = 5}"), Ok(Reply::Array(Vec::new())));
    assert_eq!(
        run(&redis, "return {err = 5}"),
        Ok(Reply::Array(Vec::new()))
    );
    assert_eq!(
        run(&redis, "return {ok = 'a\\nb'}"),
        Ok(Reply::Status("a b".to_owned()))
    );
    assert_eq!(error_text(run(&redis, "return {err = 'a\\nb'}")), "a b");
}

/// Goal: `redis.status_reply` and `redis.error_reply` build the tables Redis builds,
/// including the ERR code for bare messages and the argument check.
#[test]
fn reply_helpers() {
    let (redis, _clock) = fake();
    assert_eq!(
        run(&redis, "return redis.status_reply('FINE')"),
        Ok(Reply::Status("FINE".into()))
    );
    assert_eq!(
        error_text(run(&redis, "return redis.error_reply('x')")),
        "ERR x"
    );
    assert_eq!(
        error_text(run(&redis, "return redis.error_reply('-x')")),
        "ERR x"
    );
    assert_eq!(
        error_text(run(&redis, "return redis.error_reply('MY x')")),
        "MY x"
    );
    let wrong = "ERR wrong number or type of arguments";
    assert_eq!(error_text(run(&redis, "return redis.error_reply()")), wrong);
    assert_eq!(
        error_text(run(&redis, "return redis.status_reply(1)")),
        wrong
    );
}

/// Goal: replies reach Lua as Redis hands them over: integer -> number, bulk -> string,
/// nil -> false (also inside arrays), status -> {ok}, array -> table, error -> {err}
/// through pcall.
#[test]
fn replies_to_lua_values() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "a", "1"]);
    ok(&redis, &["SET", "str", "abc"]);
    ok(&redis, &["SADD", "s", "x", "y"]);
    let checks = [
        "return type(redis.call('incr', 'n')) == 'number'",
        "return redis.call('get', 'a') == '1'",
        "return redis.call('get', 'missing') == false",
        "return redis.call('spop', 'missing') == false",
        "return redis.call('set', 'b', '2').ok == 'OK'",
        "return #redis.call('smembers', 's') == 2",
        "return redis.call('mget', 'a', 'missing')[2] == false",
        "return redis.pcall('incr', 'str').err == 'ERR value is not an integer or out of range'",
        "return redis.call('type', 's').ok == 'set'",
        "return type(redis.call('hscan', 's2', '0')[2]) == 'table'",
    ];
    for check in checks {
        assert_eq!(run(&redis, check), Ok(Reply::Int(1)), "{check}");
    }
}

/// Goal: KEYS and ARGV arrive as string tables, and numbers passed to `redis.call` are
/// spelled as Redis spells them (`%.17g`).
#[test]
fn keys_argv_and_number_arguments() {
    let (redis, _clock) = fake();
    let reply = redis.eval_source(
        "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}",
        &["k1", "k2"],
        &["a1"],
    );
    assert_eq!(
        reply,
        Ok(Reply::Array(vec![
            bulk("k1"),
            bulk("k2"),
            bulk("a1"),
            Reply::Int(1)
        ]))
    );
    run(
        &redis,
        "redis.call('set', 'f', 1.5) redis.call('set', 'i', 3) redis.call('set', 'd', 0.1)",
    )
    .unwrap();
    assert_eq!(
        ok(&redis, &["MGET", "f", "i", "d"]),
        bulks(&["1.5", "3", "0.10000000000000001"])
    );
    assert_eq!(
        error_text(run(&redis, "return redis.call('set', 'a', 'b', 'px', 1.5)"))
            .split(" script:")
            .next(),
        Some("ERR value is not an integer or out of range")
    );
}

/// Goal: a table that contains itself converts without overflowing the stack.
#[test]
fn self_referencing_table_is_bounded() {
    let (redis, _clock) = fake();
    let mut reply = run(&redis, "local t = {} t[1] = t return t").unwrap();
    let mut depth = 0;
    while let Reply::Array(mut items) = reply {
        reply = items.pop().unwrap();
        depth += 1;
    }
    assert_eq!(
        reply,
        Reply::Error("ERR reached lua stack limit".to_owned())
    );
    assert!(depth >= 100);
}
