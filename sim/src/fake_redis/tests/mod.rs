//! Unit tests of the fake, one file per area, sharing the helpers below.

mod armed;
mod commands_hashes;
mod commands_keys;
mod commands_sets;
mod commands_strings;
mod determinism;
mod expiry;
mod faults;
mod fleet_calls;
mod follow;
mod lua_convert;
mod lua_errors;
mod pubsub;
mod sandbox;
mod scripts;
mod store_seam;
mod typed_calls;

use match_server::store::{Reply, StoreError};

use super::{FakeRedis, ManualClock};

/// The start time of test clocks (any value works; a round one reads well).
pub const START_MS: u64 = 1_000_000;

/// A fresh fake with seed 7 and a manual clock at [`START_MS`].
pub fn fake() -> (FakeRedis, ManualClock) {
    let clock = ManualClock::new(START_MS);
    (FakeRedis::new(7, clock.clone()).unwrap(), clock)
}

/// Runs a script without keys or arguments.
pub fn run(redis: &FakeRedis, source: &str) -> Result<Reply, StoreError> {
    redis.eval_source(source, &[] as &[&str], &[] as &[&str])
}

/// The SHA1 Redis names a script by.
pub fn sha1(source: &str) -> String {
    sha1_smol::Sha1::from(source).hexdigest()
}

/// Runs a command that must succeed.
pub fn ok(redis: &FakeRedis, args: &[&str]) -> Reply {
    redis
        .cmd(args)
        .unwrap_or_else(|error| panic!("{args:?} failed: {error}"))
}

/// Runs a command that must fail, returning its error text.
pub fn err(redis: &FakeRedis, args: &[&str]) -> String {
    error_text(redis.cmd(args))
}

/// A bulk reply from text.
pub fn bulk(text: &str) -> Reply {
    Reply::bulk(text)
}

/// An array of bulk replies from texts.
pub fn bulks(texts: &[&str]) -> Reply {
    Reply::Array(texts.iter().map(|text| bulk(text)).collect())
}

/// The `OK` status.
pub fn status_ok() -> Reply {
    Reply::Status("OK".to_owned())
}

/// The text of an error reply; fails the test on anything else.
pub fn error_text(result: Result<Reply, StoreError>) -> String {
    match result {
        Err(StoreError::Server(text)) => text,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// The bulk strings of an array reply, as text.
pub fn texts(reply: &Reply) -> Vec<String> {
    let Reply::Array(items) = reply else {
        panic!("not an array: {reply:?}")
    };
    items
        .iter()
        .map(|item| item.as_text().unwrap().to_owned())
        .collect()
}

/// Runs a full SCAN-family iteration (`prefix` is the command and key, `options` follow the
/// cursor) and returns every element returned, duplicates included.
pub fn scan_all(redis: &FakeRedis, prefix: &[&str], options: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_owned();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut args: Vec<&str> = prefix.to_vec();
        args.push(&cursor);
        args.extend_from_slice(options);
        let reply = ok(redis, &args);
        let Reply::Array(parts) = reply else {
            panic!("bad scan reply")
        };
        let [next, page] = parts.as_slice() else {
            panic!("bad scan reply")
        };
        seen.extend(texts(page));
        cursor = next.as_text().unwrap().to_owned();
        if cursor == "0" {
            return seen;
        }
    }
    panic!("scan did not finish");
}
