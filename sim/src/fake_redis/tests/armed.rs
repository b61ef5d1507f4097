//! Armed process faults: a stall that strikes right after its instance takes a match lock,
//! a crash that strikes right after its instance's next script that owes a notice.

use match_server::scripts::Script;
use match_server::store::Store;

use super::*;

/// A script named `name` (the fake tells scripts apart by the service's names) that
/// answers `reply` (Lua).
fn script(name: &'static str, reply: &str) -> Script {
    let source = format!("return {reply}");
    Script {
        name,
        sha1: sha1(&source),
        source,
    }
}

/// Goal: an armed stall waits for the lock: a plain `SET` and a `SET NX` of another key
/// leave the instance running, the `SET NX` of a match lock stalls it (its next requests
/// are held), and other instances are never touched.
#[tokio::test]
async fn stall_after_lock_strikes_when_the_lock_is_taken() {
    let (redis, _clock) = fake();
    let server = redis.for_client("server-0");
    redis.stall_after_lock("server-0");
    server.set_nx_px("{mm}:lease:p1", "t", 1_000).await.unwrap();
    assert!(!redis.is_stalled("server-0"));
    let other = redis.for_client("server-1");
    assert!(other.set_nx_px("{mm}:lock:duel", "o", 2_000).await.unwrap());
    assert!(!redis.is_stalled("server-1"));
    assert!(
        !server
            .set_nx_px("{mm}:lock:duel", "t", 2_000)
            .await
            .unwrap()
    );
    assert!(!redis.is_stalled("server-0"), "a refused lock is not taken");
    assert!(
        server
            .set_nx_px("{mm}:lock:solo", "t", 2_000)
            .await
            .unwrap()
    );
    assert!(redis.is_stalled("server-0"));
    assert_eq!(redis.release("server-0"), 0);
}

/// Goal: an armed crash strikes after the first script whose reply owes a notice (a group
/// formed, a session cancelled or matched), not after one that owes none; the struck
/// instance's later requests are held for good and die with it.
#[tokio::test]
async fn crash_after_script_strikes_after_a_script_that_owes_a_notice() {
    let (redis, _clock) = fake();
    let server = redis.for_client("server-0");
    redis.crash_after_notice_script("server-0");
    let waiting = script("try_match", "{'waiting', 0, 0}");
    server.eval(&waiting, &[], &[]).await.unwrap();
    let gone = script("finish_match", "{'gone'}");
    server.eval(&gone, &[], &[]).await.unwrap();
    assert!(redis.take_struck_crashes().is_empty());
    let other = redis.for_client("server-1");
    let cancelled = script("cancel_loading", "{'cancelled', 0, 0}");
    other.eval(&cancelled, &[], &[]).await.unwrap();
    assert!(redis.take_struck_crashes().is_empty(), "another instance");
    server.eval(&cancelled, &[], &[]).await.unwrap();
    assert_eq!(redis.take_struck_crashes(), vec!["server-0".to_owned()]);
    assert!(redis.is_stalled("server-0"));
    assert!(redis.take_struck_crashes().is_empty(), "struck once");
    assert_eq!(redis.forget_crashed("server-0"), 0);
    assert!(!redis.is_stalled("server-0"));
}

/// Goal: a stall that never struck ends with its resume: a lock taken after it does not
/// stall the instance (else it would stay stalled with no fault on record).
#[tokio::test]
async fn a_stall_that_never_struck_ends_at_resume() {
    let (redis, _clock) = fake();
    let server = redis.for_client("server-0");
    redis.stall_after_lock("server-0");
    assert_eq!(redis.release("server-0"), 0);
    assert!(
        server
            .set_nx_px("{mm}:lock:solo", "t", 2_000)
            .await
            .unwrap()
    );
    assert!(!redis.is_stalled("server-0"));
}

/// Goal: a crash that never struck is disarmed, and only once.
#[test]
fn an_armed_crash_that_never_struck_is_disarmed() {
    let (redis, _clock) = fake();
    redis.crash_after_notice_script("server-0");
    assert!(redis.disarm_crash("server-0"));
    assert!(!redis.disarm_crash("server-0"));
}

/// A `loading_complete` call for player `p1` as session `owner` of loading session `l1`.
fn loading_complete_call() -> (Script, Vec<String>, Vec<String>) {
    let keys = ["{mm}:loading:l1", "{mm}:players", "{mm}:session:p1"];
    let args = ["p1", "owner", "l1", "0"];
    (
        script("loading_complete", "{'lease_lost'}"),
        keys.map(str::to_owned).to_vec(),
        args.map(str::to_owned).to_vec(),
    )
}

/// Goal: an armed stall past a lease fails its instance's player-lease renewals (only
/// its own), passes a `loading_complete` whose lease outlives the loading session's
/// deadline, holds the first one whose lease runs out before it (the stall strikes once),
/// and tells the driver when that lease has run out, so the held call lands after it.
#[tokio::test]
async fn a_stall_past_a_lease_holds_a_loading_complete_until_its_lease_ran_out() {
    use futures_util::FutureExt;
    let (redis, clock) = fake();
    let server = redis.for_client("server-0");
    redis.stall_past_lease("server-0");
    let renew = script("renew_player_leases", "{1}");
    assert!(
        server.eval(&renew, &[], &[]).await.is_err(),
        "renewals fail"
    );
    let other = redis.for_client("server-1");
    assert!(other.eval(&renew, &[], &[]).await.is_ok(), "only its own");

    let lease_ms = 4_000;
    let deadline = |ms: u64| (START_MS + ms).to_string();
    redis
        .cmd(&["SET", "{mm}:session:p1", "owner", "PX", "4000"])
        .unwrap();
    let (call, keys, args) = loading_complete_call();
    redis
        .cmd(&[
            "HSET",
            "{mm}:loading:l1",
            "deadline_ms",
            &deadline(lease_ms - 500),
        ])
        .unwrap();
    server.eval(&call, &keys, &args).await.unwrap();
    assert!(
        !redis.is_stalled("server-0"),
        "the lease outlives the loading session"
    );

    redis
        .cmd(&[
            "HSET",
            "{mm}:loading:l1",
            "deadline_ms",
            &deadline(lease_ms + 500),
        ])
        .unwrap();
    assert!(
        server.eval(&call, &keys, &args).now_or_never().is_none(),
        "held"
    );
    assert!(redis.is_stalled("server-0"));
    assert_eq!(redis.take_struck_stalls(), vec!["server-0".to_owned()]);
    assert!(!redis.held_lease_lapsed("server-0"));
    clock.advance_ms(lease_ms + 1);
    assert!(redis.held_lease_lapsed("server-0"));
    assert_eq!(redis.release("server-0"), 1);
    assert!(
        server.eval(&renew, &[], &[]).await.is_ok(),
        "struck once, then disarmed"
    );
}
