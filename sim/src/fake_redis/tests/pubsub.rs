//! Pattern pub/sub: glob delivery, PUBLISH counts, connection drops and lost messages.

use std::time::Duration;

use match_server::store::{PubSubMessage, Reply, Store, Subscription};

use super::*;
use crate::fake_redis::SUBSCRIBER_BUFFER_MESSAGES;

/// A message as the subscriber receives it.
fn message(channel: &str, payload: &str) -> PubSubMessage {
    PubSubMessage {
        channel: channel.to_owned(),
        payload: payload.as_bytes().to_vec(),
    }
}

/// Goal: messages reach exactly the subscriptions whose glob matches the channel, and
/// PUBLISH counts every receiving subscription.
#[tokio::test]
async fn pattern_delivery_and_counts() {
    let (redis, _clock) = fake();
    let mut players = redis.psubscribe("player:*").await.unwrap();
    let mut single = redis.psubscribe("other:?").await.unwrap();
    let mut everything = redis.psubscribe("*").await.unwrap();
    assert_eq!(redis.publish("player:42", b"hello").await.unwrap(), 2);
    assert_eq!(redis.publish("other:ab", b"no").await.unwrap(), 1);
    assert_eq!(redis.publish("other:a", b"yes").await.unwrap(), 2);
    assert_eq!(
        players.next_message().await,
        Some(message("player:42", "hello"))
    );
    assert_eq!(single.next_message().await, Some(message("other:a", "yes")));
    assert_eq!(
        everything.next_message().await,
        Some(message("player:42", "hello"))
    );
    assert_eq!(
        everything.next_message().await,
        Some(message("other:ab", "no"))
    );
    assert_eq!(
        everything.next_message().await,
        Some(message("other:a", "yes"))
    );
}

/// Goal: a drop ends every live subscription (after what was already delivered), and what
/// is published while nobody listens is lost, even for a later subscription.
#[tokio::test]
async fn drop_ends_subscriptions_and_loses_messages() {
    let (redis, _clock) = fake();
    let mut first = redis.psubscribe("n:*").await.unwrap();
    assert_eq!(redis.publish("n:1", b"before").await.unwrap(), 1);
    assert_eq!(redis.drop_subscribers(), 1);
    assert_eq!(redis.live_subscriptions(), 0);
    assert_eq!(first.next_message().await, Some(message("n:1", "before")));
    assert_eq!(first.next_message().await, None);
    assert_eq!(redis.publish("n:1", b"lost").await.unwrap(), 0);
    let mut second = redis.psubscribe("n:*").await.unwrap();
    assert_eq!(redis.publish("n:1", b"after").await.unwrap(), 1);
    assert_eq!(second.next_message().await, Some(message("n:1", "after")));
}

/// Goal: a subscription whose client end was dropped no longer counts as a receiver.
#[tokio::test]
async fn dropped_client_end_is_not_counted() {
    let (redis, _clock) = fake();
    let subscription = redis.psubscribe("x").await.unwrap();
    assert_eq!(redis.live_subscriptions(), 1);
    drop(subscription);
    assert_eq!(redis.live_subscriptions(), 0);
    assert_eq!(redis.publish("x", b"m").await.unwrap(), 0);
}

/// Goal: `next_message` waits for a message published later by another task, with plain
/// tokio primitives (as inside a turmoil host).
#[tokio::test]
async fn next_message_awaits_a_later_publish() {
    let (redis, _clock) = fake();
    let mut subscription = redis.subscribe_pattern("later");
    let publisher = redis.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        publisher.publish("later", b"m").await
    });
    assert_eq!(
        subscription.next_message().await,
        Some(message("later", "m"))
    );
    assert_eq!(task.await.unwrap(), Ok(1));
}

/// Goal: PUBLISH from inside a script delivers and returns the count to the script.
#[tokio::test]
async fn publish_from_a_script() {
    let (redis, _clock) = fake();
    let mut subscription = redis.subscribe_pattern("notify:*");
    let reply = redis.eval_source(
        "return redis.call('publish', KEYS[1], ARGV[1])",
        &["notify:p1"],
        &["hi"],
    );
    assert_eq!(reply, Ok(Reply::Int(1)));
    assert_eq!(
        subscription.next_message().await,
        Some(message("notify:p1", "hi"))
    );
}

/// Goal: a subscriber that never reads is disconnected once its buffer is full, as
/// Redis's output buffer limit does, instead of growing without bound.
#[tokio::test]
async fn a_full_buffer_disconnects_the_subscriber() {
    let (redis, _clock) = fake();
    let mut subscription = redis.subscribe_pattern("flood");
    for _ in 0..SUBSCRIBER_BUFFER_MESSAGES {
        assert_eq!(redis.publish("flood", b"m").await.unwrap(), 1);
    }
    assert_eq!(redis.publish("flood", b"m").await.unwrap(), 0);
    assert_eq!(redis.live_subscriptions(), 0);
    for _ in 0..SUBSCRIBER_BUFFER_MESSAGES {
        assert!(subscription.next_message().await.is_some());
    }
    assert_eq!(subscription.next_message().await, None);
}
