//! Script errors with Redis 7.0's texts: raised by `redis.call`, returned by
//! `redis.pcall`, caught by `pcall`, runtime and compile errors, and EVAL/EVALSHA/SCRIPT.
//! Every expected text was checked on a real redis-server 7.0.15.

use match_server::store::Reply;

use super::*;

/// The suffix Redis appends to an error raised while a script runs.
fn at(source: &str, line: u32) -> String {
    format!(" script: {}, on @user_script:{line}.", sha1(source))
}

/// Goal: `redis.call` raises the command's error; uncaught, it is the script's error with
/// the sha and the user's line, also when the call is a tail call (`return redis.call`).
#[test]
fn call_raises_command_errors() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "abc"]);
    let source = "return redis.call('incr', 'str')";
    assert_eq!(
        error_text(run(&redis, source)),
        format!(
            "ERR value is not an integer or out of range{}",
            at(source, 1)
        )
    );
    let source = "local x = 1\n\nredis.call('sadd', 'str', 'm')\nreturn x";
    assert_eq!(
        error_text(run(&redis, source)),
        format!(
            "WRONGTYPE Operation against a key holding the wrong kind of value{}",
            at(source, 3)
        )
    );
}

/// Goal: the script-side errors of `redis.call` (unknown command, arity, argument types,
/// no arguments, forbidden commands) have Redis's texts, raised or returned by pcall.
#[test]
fn call_argument_errors() {
    let (redis, _clock) = fake();
    let cases = [
        (
            "redis.call('nosuch')",
            "ERR Unknown Redis command called from script",
        ),
        (
            "redis.call('get')",
            "ERR Wrong number of args calling Redis command from script",
        ),
        (
            "redis.call('get', {})",
            "ERR Lua redis lib command arguments must be strings or integers",
        ),
        (
            "redis.call()",
            "ERR Please specify at least one argument for this redis lib call",
        ),
        (
            "redis.call('eval', 'return 1', 0)",
            "ERR This Redis command is not allowed from script",
        ),
        (
            "redis.call('psubscribe', 'x')",
            "ERR This Redis command is not allowed from script",
        ),
    ];
    for (call, text) in cases {
        let source = format!("return {call}");
        assert_eq!(
            error_text(run(&redis, &source)),
            format!("{text}{}", at(&source, 1))
        );
        let pcall = format!("return {}", call.replacen("redis.call", "redis.pcall", 1));
        assert_eq!(error_text(run(&redis, &pcall)), text, "{pcall}");
    }
}

/// Goal: Lua's own `pcall` sees a `redis.call` error as its message string, `xpcall`
/// handlers see the `{err = ...}` table, and an error table nested in a reply stays an
/// error element.
#[test]
fn pcall_and_xpcall_views() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "abc"]);
    let message = "ERR value is not an integer or out of range";
    assert_eq!(
        run(
            &redis,
            "local ok, e = pcall(redis.call, 'incr', 'str') return {tostring(ok), e}"
        ),
        Ok(bulks(&["false", message]))
    );
    assert_eq!(
        run(&redis, "return select(2, pcall(error, {err = 'E'}))"),
        Ok(bulk("E"))
    );
    assert_eq!(
        run(&redis, "return type(select(2, pcall(error, {err = 5})))"),
        Ok(bulk("number"))
    );
    let xpcall = "return select(2, xpcall(function() redis.call('incr', 'str') end, \
                  function(e) return type(e) .. ':' .. e.err end))";
    assert_eq!(run(&redis, xpcall), Ok(bulk(&format!("table:{message}"))));
    assert_eq!(
        run(&redis, "return {1, redis.pcall('incr', 'str'), 3}"),
        Ok(Reply::Array(vec![
            Reply::Int(1),
            Reply::Error(message.to_owned()),
            Reply::Int(3)
        ]))
    );
    assert_eq!(
        run(&redis, "return {pcall(function() return io end)}"),
        Ok(Reply::Array(vec![
            Reply::Nil,
            bulk("user_script:1: Script attempted to access nonexistent global variable 'io'")
        ]))
    );
}

/// Goal: runtime errors, `error()` with strings, tables, numbers and nil, and library
/// argument errors become the error replies Redis 7.0 sends.
#[test]
fn runtime_errors() {
    let (redis, _clock) = fake();
    let cases = [
        (
            "return nil + 1",
            "ERR user_script:1: attempt to perform arithmetic on a nil value",
        ),
        ("error('boom')", "ERR user_script:1: boom"),
        ("error('x', 0)", "ERR x"),
        ("error(5)", "ERR user_script:1: 5"),
        ("error(nil)", "ERR nil"),
        ("error({err = 'MY boom'})", "MY boom"),
        (
            "return math.random(0)",
            "ERR user_script:1: bad argument #1 to 'random' (interval is empty)",
        ),
        ("return redis.sha1hex()", "ERR wrong number of arguments"),
        (
            "redis.log(1)",
            "ERR redis.log() requires two arguments or more.",
        ),
        (
            "redis.log('a', 'b')",
            "ERR First argument must be a number (log level).",
        ),
        ("redis.log(99, 'b')", "ERR Invalid debug level."),
    ];
    for (source, text) in cases {
        assert_eq!(
            error_text(run(&redis, source)),
            format!("{text}{}", at(source, 1))
        );
    }
    assert_eq!(
        run(&redis, "return redis.log(redis.LOG_WARNING, 'x')"),
        Ok(Reply::Nil)
    );
    assert_eq!(
        run(&redis, "return redis.sha1hex('')"),
        Ok(bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"))
    );
}

/// Goal: a compile error is reported like Redis and nothing runs.
#[test]
fn compile_errors() {
    let (redis, _clock) = fake();
    assert_eq!(
        error_text(run(&redis, "return +")),
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'"
    );
}

/// Goal: a script's writes before its error stay (Redis never rolls back a script).
#[test]
fn effects_before_an_error_stay() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", "str", "abc"]);
    assert!(
        run(
            &redis,
            "redis.call('set', 'a', '1') redis.call('incr', 'str')"
        )
        .is_err()
    );
    assert_eq!(ok(&redis, &["GET", "a"]), bulk("1"));
}

/// Goal: EVAL, EVALSHA and SCRIPT through the generic entry point: numkeys checks,
/// NOSCRIPT, caching by SHA1 (case-insensitive), SCRIPT EXISTS and FLUSH.
#[test]
fn eval_evalsha_and_script() {
    let (redis, _clock) = fake();
    let source = "return {KEYS[1], ARGV[1]}";
    assert_eq!(
        ok(&redis, &["EVAL", source, "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    assert_eq!(
        err(&redis, &["EVAL", source, "-1"]),
        "ERR Number of keys can't be negative"
    );
    assert_eq!(
        err(&redis, &["EVAL", source, "2", "k"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        err(&redis, &["EVAL", source, "x"]),
        "ERR value is not an integer or out of range"
    );
    let sha = sha1(source);
    assert_eq!(
        ok(&redis, &["EVALSHA", &sha.to_uppercase(), "1", "k", "a"]),
        bulks(&["k", "a"])
    );
    let other = sha1("return 2");
    assert_eq!(
        ok(&redis, &["SCRIPT", "EXISTS", &sha, &other]),
        Reply::Array(vec![Reply::Int(1), Reply::Int(0)])
    );
    assert_eq!(
        err(&redis, &["EVALSHA", &other, "0"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(ok(&redis, &["SCRIPT", "LOAD", "return 2"]), bulk(&other));
    assert_eq!(ok(&redis, &["EVALSHA", &other, "0"]), Reply::Int(2));
    assert_eq!(ok(&redis, &["SCRIPT", "FLUSH"]), status_ok());
    assert_eq!(
        err(&redis, &["EVALSHA", &other, "0"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        err(&redis, &["SCRIPT", "FLUSH", "x"]),
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
    assert_eq!(
        err(&redis, &["SCRIPT", "NOPE"]),
        "ERR unknown subcommand 'NOPE'. Try SCRIPT HELP."
    );
}

/// Goal: a runaway script fails with an error once past its instruction budget (instead
/// of hanging the simulation), its line is named, and the next script runs normally.
#[test]
fn runaway_scripts_hit_the_instruction_budget() {
    let (redis, _clock) = fake();
    redis.set_script_instruction_limit(2_000_000);
    let source = "local n = 0\nwhile true do n = n + 1 end";
    let text = error_text(run(&redis, source));
    assert!(
        text.starts_with("ERR fake redis: script ran past its budget of 2000000"),
        "{text}"
    );
    assert!(text.ends_with(&at(source, 2)), "{text}");
    assert_eq!(run(&redis, "return 1"), Ok(Reply::Int(1)));
    let counting = "local n = 0 for i = 1, 300000 do n = n + i end return n";
    assert_eq!(run(&redis, counting), Ok(Reply::Int(45_000_150_000)));
}
