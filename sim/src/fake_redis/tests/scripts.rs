//! The service's own scripts (`match_server::scripts::all()`) run through `Store::eval`
//! on small scenarios, checking their replies and the data they leave behind.
//!
//! `try_match` is called with a lock key and token as well (KEYS[5], ARGV[7]): newer
//! versions of the script check them, older ones ignore extra KEYS and ARGV.

use std::collections::BTreeSet;

use match_server::scripts::{self, Script};
use match_server::store::{Reply, Store};

use super::*;
use crate::fake_redis::FakeRedis;

/// The players hash.
const PLAYERS: &str = "players";
/// The queue of the `duel` mode.
const QUEUE: &str = "queue:duel";
/// The loading session created by the scenario.
const LOADING: &str = "loading:L1";
/// The index of loading sessions of the mode.
const INDEX: &str = "loading_index:duel";
/// The mode's match lock.
const LOCK: &str = "lock:duel";
/// The time the scenario runs at, as the service passes it to scripts.
const NOW_MS: &str = "1000";
/// The lease deadline given at enqueue.
const LEASE_MS: &str = "5000";

/// Runs a service script with text keys and arguments; the reply must not be an error.
async fn eval(redis: &FakeRedis, script: &Script, keys: &[&str], args: &[&str]) -> Reply {
    let keys: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    redis
        .eval(script, &keys, &args)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", script.name))
}

/// A player's raw record in the players hash.
fn record(redis: &FakeRedis, player: &str) -> Option<String> {
    redis.with_data(|view| {
        let fields = view.hash(PLAYERS)?;
        fields
            .get(player.as_bytes())
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
    })
}

/// A hash field as text.
fn field(redis: &FakeRedis, key: &str, name: &str) -> Option<String> {
    redis.with_data(|view| {
        view.hash(key)?
            .get(name.as_bytes())
            .map(|raw| String::from_utf8_lossy(raw).into_owned())
    })
}

/// A set's members as text.
fn members(redis: &FakeRedis, key: &str) -> BTreeSet<String> {
    redis.with_data(|view| {
        view.set(key)
            .map(|set| {
                set.iter()
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Enqueues `player` for `owner` in the duel queue.
async fn enqueue(redis: &FakeRedis, player: &str, owner: &str) -> Reply {
    let args = [player, owner, "duel", NOW_MS, LEASE_MS, "100"];
    eval(redis, &scripts::enqueue::SCRIPT, &[QUEUE, PLAYERS], &args).await
}

/// Runs try_match for a group of two, holding the lock.
async fn try_match(redis: &FakeRedis) -> Reply {
    ok(redis, &["SET", LOCK, "token"]);
    let keys = [QUEUE, PLAYERS, LOADING, INDEX, LOCK];
    let args = ["duel", "2", "L1", NOW_MS, "9000", "10", "token"];
    eval(redis, &scripts::try_match::SCRIPT, &keys, &args).await
}

/// Marks `player` ready in the loading session, for the session `owner`, which holds the
/// player's lease.
async fn loading_complete(redis: &FakeRedis, player: &str, owner: &str) -> Reply {
    let lease = format!("session:{player}");
    ok(redis, &["SET", &lease, owner]);
    let args = [player, owner, "L1", "20000"];
    eval(
        redis,
        &scripts::loading_complete::SCRIPT,
        &[LOADING, PLAYERS, &lease],
        &args,
    )
    .await
}

/// Enqueues p1 and p2 and matches them into loading session L1.
async fn matched_pair(redis: &FakeRedis) {
    enqueue(redis, "p1", "o1").await;
    enqueue(redis, "p2", "o2").await;
    try_match(redis).await;
}

/// Goal: enqueue adds a player once, recognises its own entry, refuses another owner's
/// live entry, and stores the encoded record.
#[tokio::test]
async fn enqueue_once_per_owner() {
    let (redis, _clock) = fake();
    assert_eq!(
        enqueue(&redis, "p1", "o1").await,
        Reply::Array(vec![bulk("enqueued"), Reply::Int(1)])
    );
    assert_eq!(
        enqueue(&redis, "p2", "o2").await,
        Reply::Array(vec![bulk("enqueued"), Reply::Int(2)])
    );
    assert_eq!(
        enqueue(&redis, "p1", "o1").await,
        bulks(&["already", "queued", "duel", ""])
    );
    assert_eq!(enqueue(&redis, "p1", "intruder").await, bulks(&["taken"]));
    assert_eq!(
        record(&redis, "p1").as_deref(),
        Some("queued|duel|o1|5000|||||")
    );
    assert_eq!(
        members(&redis, QUEUE),
        ["p1", "p2"].map(String::from).into()
    );
}

/// Goal: try_match pops both players into a new loading session, empties the queue and
/// indexes the session.
#[tokio::test]
async fn try_match_creates_the_loading_session() {
    let (redis, _clock) = fake();
    enqueue(&redis, "p1", "o1").await;
    enqueue(&redis, "p2", "o2").await;
    let Reply::Array(reply) = try_match(&redis).await else {
        panic!("not an array")
    };
    assert_eq!(reply[..3], [bulk("matched"), bulk("L1"), Reply::Int(0)]);
    let pairs: BTreeSet<String> = texts(&Reply::Array(reply[3..].to_vec()))
        .chunks(2)
        .map(|pair| pair.join("="))
        .collect();
    assert_eq!(pairs, ["p1=o1".to_owned(), "p2=o2".to_owned()].into());
    assert_eq!(ok(&redis, &["EXISTS", QUEUE]), Reply::Int(0));
    assert_eq!(field(&redis, LOADING, "state").as_deref(), Some("loading"));
    assert_eq!(field(&redis, LOADING, "ready:p1").as_deref(), Some("0"));
    assert_eq!(members(&redis, INDEX), ["L1".to_owned()].into());
    assert_eq!(
        record(&redis, "p1").as_deref(),
        Some("loading|duel|o1|5000|L1||||")
    );
}

/// Goal: loading_complete twice reaches all_ready; finish_match records the game server
/// for both players and ends the session.
#[tokio::test]
async fn loading_complete_then_finish_match() {
    let (redis, _clock) = fake();
    matched_pair(&redis).await;
    let waiting = Reply::Array(vec![bulk("waiting"), Reply::Int(1), Reply::Int(2)]);
    assert_eq!(loading_complete(&redis, "p1", "o1").await, waiting);
    assert_eq!(
        loading_complete(&redis, "p1", "o1").await,
        bulks(&["already_ready"])
    );
    assert_eq!(
        loading_complete(&redis, "p9", "o9").await,
        bulks(&["not_member"])
    );
    let Reply::Array(all_ready) = loading_complete(&redis, "p2", "o2").await else {
        panic!()
    };
    assert_eq!(all_ready[..2], [bulk("all_ready"), bulk("duel")]);
    assert_eq!(all_ready.len(), 6);
    assert_eq!(
        field(&redis, LOADING, "state").as_deref(),
        Some("allocating")
    );
    assert_eq!(
        field(&redis, LOADING, "deadline_ms").as_deref(),
        Some("20000")
    );

    let args = ["L1", "S1", "10.0.0.1:7777", "30000"];
    let Reply::Array(finished) = eval(
        &redis,
        &scripts::finish_match::SCRIPT,
        &[LOADING, PLAYERS, INDEX],
        &args,
    )
    .await
    else {
        panic!("not an array")
    };
    assert_eq!(finished[0], bulk("matched"));
    assert_eq!(finished.len(), 5);
    assert_eq!(ok(&redis, &["EXISTS", LOADING, INDEX]), Reply::Int(0));
    assert_eq!(
        record(&redis, "p2").as_deref(),
        Some("matched|duel|o2|30000|L1|S1|10.0.0.1:7777||")
    );
    let again = eval(
        &redis,
        &scripts::finish_match::SCRIPT,
        &[LOADING, PLAYERS, INDEX],
        &args,
    )
    .await;
    assert_eq!(again, bulks(&["gone"]));
}

/// Goal: cancel_loading with a leaving player drops that player, requeues the other,
/// and removes the session and its index entry.
#[tokio::test]
async fn cancel_loading_requeues_the_rest() {
    let (redis, _clock) = fake();
    matched_pair(&redis).await;
    let keys = [LOADING, PLAYERS, INDEX, QUEUE];
    let args = ["L1", "p1", "o1", NOW_MS, "0", "0", "loading_cancelled"];
    let reply = eval(&redis, &scripts::cancel_loading::SCRIPT, &keys, &args).await;
    assert_eq!(
        reply,
        Reply::Array(vec![
            bulk("cancelled"),
            Reply::Int(0),
            Reply::Int(1),
            bulk("p2"),
            bulk("o2")
        ])
    );
    assert_eq!(record(&redis, "p1"), None);
    assert_eq!(
        record(&redis, "p2").as_deref(),
        Some("queued|duel|o2|5000||||L1|loading_cancelled")
    );
    assert_eq!(members(&redis, QUEUE), ["p2".to_owned()].into());
    assert_eq!(ok(&redis, &["EXISTS", LOADING, INDEX]), Reply::Int(0));
    let again = eval(&redis, &scripts::cancel_loading::SCRIPT, &keys, &args).await;
    assert_eq!(again, bulks(&["gone"]));
}

/// Goal: leave_queue removes a queued player's entry and queue membership.
#[tokio::test]
async fn leave_queue_removes_the_entry() {
    let (redis, _clock) = fake();
    enqueue(&redis, "p1", "o1").await;
    let keys = [QUEUE, PLAYERS];
    assert_eq!(
        eval(
            &redis,
            &scripts::leave_queue::SCRIPT,
            &keys,
            &["p1", "other", "duel"]
        )
        .await,
        bulks(&["none"])
    );
    let reply = eval(
        &redis,
        &scripts::leave_queue::SCRIPT,
        &keys,
        &["p1", "o1", "duel"],
    )
    .await;
    assert_eq!(reply, bulks(&["left", "queued"]));
    assert_eq!(ok(&redis, &["EXISTS", QUEUE, PLAYERS]), Reply::Int(0));
}

/// Goal: renew_leases extends owned entries and reports the lost ones.
#[tokio::test]
async fn renew_leases_reports_lost_players() {
    let (redis, _clock) = fake();
    enqueue(&redis, "p1", "o1").await;
    enqueue(&redis, "p2", "o2").await;
    let args = ["9999", "p1", "o1", "p2", "wrong", "p3", "o3"];
    let reply = eval(&redis, &scripts::renew_leases::SCRIPT, &[PLAYERS], &args).await;
    assert_eq!(
        reply,
        Reply::Array(vec![bulk("renewed"), Reply::Int(1), bulk("p2"), bulk("p3")])
    );
    assert_eq!(
        record(&redis, "p1").as_deref(),
        Some("queued|duel|o1|9999|||||")
    );
    assert_eq!(
        record(&redis, "p2").as_deref(),
        Some("queued|duel|o2|5000|||||")
    );
}

/// Goal: sweep_players, paging through HSCAN until the cursor comes back to 0, removes
/// exactly the expired queued entries (and their queue membership), never loading ones.
#[tokio::test]
async fn sweep_players_removes_expired_entries() {
    let (redis, _clock) = fake();
    for i in 0..20 {
        let lease = if i % 2 == 0 { "500" } else { "5000" };
        let player = format!("p{i}");
        ok(&redis, &["SADD", QUEUE, &player]);
        ok(
            &redis,
            &[
                "HSET",
                PLAYERS,
                &player,
                &format!("queued|duel|o|{lease}|||"),
            ],
        );
    }
    ok(
        &redis,
        &["HSET", PLAYERS, "loader", "loading|duel|o|500|L9||"],
    );
    let mut cursor = "0".to_owned();
    let mut removed = 0;
    for _ in 0..1000 {
        let args = [NOW_MS, cursor.as_str(), "3", "duel"];
        let Reply::Array(reply) = eval(
            &redis,
            &scripts::sweep_players::SCRIPT,
            &[PLAYERS, QUEUE],
            &args,
        )
        .await
        else {
            panic!("not an array")
        };
        assert_eq!(reply[0], bulk("swept"));
        let Reply::Int(count) = reply[2] else {
            panic!("count")
        };
        removed += count;
        cursor = reply[1].as_text().unwrap().to_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!((cursor.as_str(), removed), ("0", 10));
    let queue = members(&redis, QUEUE);
    assert_eq!(
        queue,
        (0..20)
            .filter(|i| i % 2 == 1)
            .map(|i| format!("p{i}"))
            .collect()
    );
    assert!(record(&redis, "loader").is_some());
    assert_eq!(record(&redis, "p0"), None);
}

/// Goal: release_lock deletes the lock only for the token that holds it.
#[tokio::test]
async fn release_lock_compares_the_token() {
    let (redis, _clock) = fake();
    ok(&redis, &["SET", LOCK, "mine", "PX", "1000"]);
    assert_eq!(
        eval(&redis, &scripts::release_lock::SCRIPT, &[LOCK], &["theirs"]).await,
        Reply::Int(0)
    );
    assert_eq!(
        eval(&redis, &scripts::release_lock::SCRIPT, &[LOCK], &["mine"]).await,
        Reply::Int(1)
    );
    assert_eq!(ok(&redis, &["EXISTS", LOCK]), Reply::Int(0));
    assert_eq!(
        eval(&redis, &scripts::release_lock::SCRIPT, &[LOCK], &["mine"]).await,
        Reply::Int(0)
    );
}

/// Goal: every service script compiles in the fake's Lua (no syntax the fake rejects).
#[test]
fn every_script_compiles() {
    let (redis, _clock) = fake();
    for script in scripts::all() {
        let reply = redis.cmd(&["SCRIPT", "LOAD", &script.source]).unwrap();
        assert_eq!(reply, bulk(&script.sha1), "{}", script.name);
    }
}
