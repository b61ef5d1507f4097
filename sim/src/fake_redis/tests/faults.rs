//! Fault injection through the `Store` seam: each kind does what it says, is counted only
//! when injected, and stops when faults are disabled.

use std::time::Duration;

use match_server::scripts::Script;
use match_server::store::{Reply, Store, StoreError, Subscription};

use super::*;
use crate::fake_redis::{FakeRedis, FaultKind, FaultPlan, ScheduledFault};

/// A plan that injects only `kind`, always.
fn only(kind: FaultKind) -> FaultPlan {
    FaultPlan::default().with(kind, 1.0)
}

/// A script replying with a five-element array.
fn five() -> Script {
    test_script("return {'a', 'b', 'c', 'd', 'e'}")
}

/// A script from source, as the service would send it.
fn test_script(source: &str) -> Script {
    Script {
        name: "test",
        source: source.to_owned(),
        sha1: sha1_smol::Sha1::from(source).hexdigest(),
    }
}

/// Runs a test script through the seam.
async fn eval(redis: &FakeRedis, script: &Script) -> Result<Reply, StoreError> {
    redis.eval(script, &[], &[]).await
}

/// How often one kind was injected.
fn count(redis: &FakeRedis, kind: FaultKind) -> u64 {
    redis.fault_counts()[kind.name()]
}

/// Goal: `error_before_effect` fails the command and leaves no trace of it.
#[tokio::test]
async fn error_before_effect_has_no_effect() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::ErrorBeforeEffect));
    let result = redis.set_nx_px("lock", "v", 1000).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(redis.dump().is_empty());
    assert_eq!(count(&redis, FaultKind::ErrorBeforeEffect), 1);
}

/// Goal: `error_after_effect` applies the command but loses its reply.
#[tokio::test]
async fn error_after_effect_applies_then_fails() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::ErrorAfterEffect));
    let result = redis.set_nx_px("lock", "v", 1000).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        redis.with_data(|view| view.string("lock").map(<[u8]>::to_vec)),
        Some(b"v".to_vec())
    );
    assert_eq!(count(&redis, FaultKind::ErrorAfterEffect), 1);
}

/// Goal: `truncated_reply` cuts a script's array to a strict prefix; a non-array reply is
/// left alone and not counted.
#[tokio::test]
async fn truncated_reply_is_a_strict_prefix() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::TruncatedReply));
    let full = [bulk("a"), bulk("b"), bulk("c"), bulk("d"), bulk("e")];
    for _ in 0..20 {
        let Reply::Array(items) = eval(&redis, &five()).await.unwrap() else {
            panic!()
        };
        assert!(items.len() < full.len());
        assert_eq!(items[..], full[..items.len()]);
    }
    assert_eq!(
        eval(&redis, &test_script("return 7")).await,
        Ok(Reply::Int(7))
    );
    assert_eq!(count(&redis, FaultKind::TruncatedReply), 20);
}

/// Goal: `garbled_element` replaces exactly one element with junk (a non-UUID string, an
/// empty string, an integer or nil); the length is kept.
#[tokio::test]
async fn garbled_element_replaces_one_element() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::GarbledElement));
    let full = [bulk("a"), bulk("b"), bulk("c"), bulk("d"), bulk("e")];
    for _ in 0..30 {
        let Reply::Array(items) = eval(&redis, &five()).await.unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), full.len());
        let changed: Vec<&Reply> = items
            .iter()
            .zip(&full)
            .filter(|(got, want)| got != want)
            .map(|(got, _)| got)
            .collect();
        assert_eq!(changed.len(), 1, "{items:?}");
        let junk = changed[0];
        let is_junk = match junk {
            Reply::Nil | Reply::Int(_) => true,
            Reply::Bulk(bytes) => uuid::Uuid::try_parse_ascii(bytes).is_err(),
            _ => false,
        };
        assert!(is_junk, "{junk:?}");
    }
    assert_eq!(count(&redis, FaultKind::GarbledElement), 30);
}

/// Goal: `extra_element` appends one element and keeps the rest intact.
#[tokio::test]
async fn extra_element_appends_one() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::ExtraElement));
    let full = [bulk("a"), bulk("b"), bulk("c"), bulk("d"), bulk("e")];
    for _ in 0..10 {
        let Reply::Array(items) = eval(&redis, &five()).await.unwrap() else {
            panic!()
        };
        assert_eq!(items.len(), full.len() + 1);
        assert_eq!(items[..full.len()], full[..]);
    }
    assert_eq!(count(&redis, FaultKind::ExtraElement), 10);
}

/// Goal: reply faults never touch plain commands, whose replies have no script to blame.
#[tokio::test]
async fn reply_faults_spare_plain_commands() {
    let (redis, _clock) = fake();
    ok(&redis, &["SADD", "s", "a", "b", "c"]);
    let plan = FaultPlan::default()
        .with(FaultKind::TruncatedReply, 0.4)
        .with(FaultKind::GarbledElement, 0.3)
        .with(FaultKind::ExtraElement, 0.3);
    redis.set_fault_plan(plan);
    for _ in 0..20 {
        assert_eq!(redis.smembers("s").await.unwrap(), ["a", "b", "c"]);
    }
    assert!(redis.fault_counts().values().all(|n| *n == 0));
}

/// Goal: `slow_reply` applies the effect at once and replies after a delay from the range.
#[tokio::test(start_paused = true)]
async fn slow_reply_delays_the_reply() {
    let (redis, _clock) = fake();
    let mut plan = only(FaultKind::SlowReply);
    plan.slow_reply_min_ms = 250;
    plan.slow_reply_max_ms = 250;
    redis.set_fault_plan(plan);
    let started = tokio::time::Instant::now();
    let writer = redis.clone();
    let task = tokio::spawn(async move { writer.set_nx_px("lock", "v", 10_000).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(
        redis.with_data(|view| view.string("lock").is_some()),
        "effect must come first"
    );
    assert_eq!(task.await.unwrap(), Ok(true));
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(count(&redis, FaultKind::SlowReply), 1);
}

/// Goal: `subscriber_drop` ends live subscriptions and is counted only when one ended.
#[tokio::test]
async fn subscriber_drop_ends_subscriptions() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::SubscriberDrop));
    assert_eq!(redis.scard("s").await, Ok(0));
    assert_eq!(count(&redis, FaultKind::SubscriberDrop), 0);
    let mut subscription = redis.subscribe_pattern("*");
    assert_eq!(redis.publish("ch", b"m").await, Ok(0));
    assert_eq!(subscription.next_message().await, None);
    assert_eq!(count(&redis, FaultKind::SubscriberDrop), 1);
}

/// Goal: psubscribe itself can fail, and a failed one delivers nothing.
#[tokio::test]
async fn psubscribe_can_fail() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(only(FaultKind::ErrorAfterEffect));
    assert!(redis.psubscribe("*").await.is_err());
    redis.set_faults_enabled(false);
    assert_eq!(redis.publish("ch", b"m").await, Ok(0));
}

/// Goal: disabling faults stops every kind at once; counters and the command count go on.
#[tokio::test]
async fn disabling_faults_heals() {
    let (redis, _clock) = fake();
    redis.set_fault_plan(FaultPlan::uniform(0.5));
    redis.set_faults_enabled(false);
    assert!(!redis.faults_enabled());
    for _ in 0..50 {
        assert_eq!(redis.get("k").await, Ok(None));
        assert_eq!(eval(&redis, &five()).await.map(|r| texts(&r).len()), Ok(5));
    }
    assert!(redis.fault_counts().values().all(|n| *n == 0));
    assert_eq!(redis.commands_executed(), 100);
    let names: Vec<&str> = redis.fault_counts().keys().copied().collect();
    let mut expected: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.name()).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
}

/// Goal: a scheduled fault strikes exactly the n-th call of its target, and only it.
#[tokio::test(start_paused = true)]
async fn scheduled_fault_hits_the_nth_call() {
    let (redis, _clock) = fake();
    redis.schedule_fault(ScheduledFault::on_call(
        "test",
        2,
        FaultKind::ErrorBeforeEffect,
    ));
    let script = five();
    assert!(eval(&redis, &script).await.is_ok());
    assert!(matches!(
        eval(&redis, &script).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(eval(&redis, &script).await.is_ok());
    assert_eq!(count(&redis, FaultKind::ErrorBeforeEffect), 1);
}

/// Goal: a fault aimed at a reply tag counts only replies with that tag, and an aimed
/// truncation keeps exactly the asked number of elements.
#[tokio::test(start_paused = true)]
async fn scheduled_fault_on_reply_tag_truncates_exactly() {
    let (redis, _clock) = fake();
    let fault = ScheduledFault::on_reply("test", "b", 1, FaultKind::TruncatedReply).at_element(1);
    redis.schedule_fault(fault);
    let first = test_script("return {'a', 'x'}");
    let second = test_script("return {'b', 'y', 'z'}");
    assert_eq!(
        eval(&redis, &first).await.unwrap(),
        Reply::Array(vec![Reply::bulk("a"), Reply::bulk("x")])
    );
    assert_eq!(
        eval(&redis, &second).await.unwrap(),
        Reply::Array(vec![Reply::bulk("b")])
    );
    assert_eq!(
        eval(&redis, &second).await.unwrap().to_string(),
        "[\"b\", \"y\", \"z\"]"
    );
}
