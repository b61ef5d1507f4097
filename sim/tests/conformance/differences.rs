//! The differences `docs/fake-redis.md` lists, checked to still be differences where a test
//! can observe them: when one goes away (the fake learned something), a test here fails
//! and says to update the document, so it never goes stale silently.

use match_server::store::Reply;
use match_sim::conformance::{Outcome, fake_outcome};
use match_sim::fake_redis::{FakeRedis, ManualClock};

use crate::real_redis::RealRedis;

/// A fresh fake.
fn fake() -> FakeRedis {
    FakeRedis::new(3, ManualClock::new(1_000_000)).unwrap()
}

/// `EVAL source 0` on the fake.
fn fake_eval(fake: &FakeRedis, source: &str) -> Outcome {
    fake_outcome(fake.cmd(&["EVAL", source, "0"]))
}

/// Fails with a pointer to the document when a listed difference has gone away.
fn still_differs(what: &str, fake: &Outcome, real: &Outcome) {
    assert_ne!(
        fake, real,
        "{what}: the fake now behaves like Redis; remove it from the differences in \
         docs/fake-redis.md (and from this test)"
    );
}

/// Goal: the Lua libraries Redis bundles (cjson, bit, struct, cmsgpack) are still
/// missing from the fake, as documented.
#[test]
fn lua_libraries_are_missing() {
    let fake = fake();
    let mut real = RealRedis::connect();
    for library in ["cjson", "bit", "struct", "cmsgpack"] {
        let source = format!("return type({library})");
        let real_outcome = real.cmd(&["EVAL", &source, "0"]);
        assert_eq!(real_outcome, Ok(Reply::bulk("table")), "{library} on Redis");
        still_differs(library, &fake_eval(&fake, &source), &real_outcome);
    }
}

/// Goal: `redis.setresp(3)` still fails in the fake (it speaks RESP2 only), as documented.
#[test]
fn resp3_is_refused() {
    let source = "redis.setresp(3); return 1";
    let real = RealRedis::connect().cmd(&["EVAL", source, "0"]);
    assert_eq!(real, Ok(Reply::Int(1)));
    still_differs("redis.setresp(3)", &fake_eval(&fake(), source), &real);
}

/// Goal: MULTI, WATCH and SELECT are still unknown to the fake, as documented.
#[test]
fn transactions_and_databases_are_unknown() {
    let fake = fake();
    let mut real = RealRedis::connect();
    for (command, undo) in [
        ("MULTI", "DISCARD"),
        ("WATCH", "UNWATCH"),
        ("SELECT", "PING"),
    ] {
        let argv: Vec<&str> = match command {
            "WATCH" => vec![command, "conformance-watch"],
            "SELECT" => vec![command, "0"],
            _ => vec![command],
        };
        let real_outcome = real.cmd(&argv);
        assert_eq!(
            real_outcome,
            Ok(Reply::Status("OK".to_owned())),
            "{command}"
        );
        let _ = real.cmd(&[undo]);
        still_differs(command, &fake_outcome(fake.cmd(&argv)), &real_outcome);
    }
}

/// Goal: a small hash still comes back whole, with cursor 0, from one HSCAN on Redis
/// (listpack encoding), while the fake pages it by COUNT, as documented.
#[test]
fn small_collections_are_paged_by_the_fake() {
    let fake = fake();
    let mut real = RealRedis::connect();
    let key = format!("{}small", crate::process_namespace("paging"));
    let mut hset = vec!["HSET".to_owned(), key.clone()];
    for field in 0..20 {
        hset.extend([format!("f{field}"), "v".to_owned()]);
    }
    let hset: Vec<&str> = hset.iter().map(String::as_str).collect();
    let _ = fake.cmd(&hset);
    let _ = real.cmd(&hset);
    let page = ["HSCAN", key.as_str(), "0", "COUNT", "2"];
    let real_page = real.cmd(&page);
    let _ = real.cmd(&["DEL", &key]);
    let Ok(Reply::Array(parts)) = &real_page else {
        panic!("HSCAN answered {real_page:?}");
    };
    assert_eq!(
        parts[0],
        Reply::bulk("0"),
        "Redis ends the iteration at once"
    );
    assert!(matches!(&parts[1], Reply::Array(items) if items.len() == 40));
    still_differs(
        "HSCAN page shapes",
        &fake_outcome(fake.cmd(&page)),
        &real_page,
    );
}

/// Goal: `SUBSCRIBE` through `execute` still fails (subscriptions go through
/// `subscribe_pattern`), as documented.
#[test]
fn subscribe_needs_the_api() {
    let outcome = fake_outcome(fake().cmd(&["SUBSCRIBE", "channel"]));
    assert!(outcome.is_err(), "{outcome:?}");
}

/// Goal: a status with bytes that are not UTF-8 is still made lossy by the fake (Redis
/// sends the bytes, which the redis crate itself refuses to parse), as documented.
#[test]
fn non_utf8_statuses_are_lossy() {
    let outcome = fake_eval(&fake(), "return {ok = '\\255'}");
    assert_eq!(outcome, Ok(Reply::Status("\u{fffd}".to_owned())));
}

/// Goal: `error({})`, which crashes redis-server 7.0.15, is a plain script error in the
/// fake (never sent to the real server), as documented.
#[test]
fn error_with_an_empty_table_does_not_crash_the_fake() {
    let outcome = fake_eval(&fake(), "error({})");
    assert!(outcome.is_err(), "{outcome:?}");
}

/// Goal: a runaway script still fails in the fake once it spends its instruction budget
/// (Redis keeps running it and answers BUSY to other clients), as documented.
#[test]
fn runaway_scripts_fail() {
    let fake = fake();
    fake.set_script_instruction_limit(2_000_000);
    let outcome = fake_eval(&fake, "while true do end");
    assert!(
        matches!(&outcome, Err(text) if text.contains("budget")),
        "{outcome:?}"
    );
}
