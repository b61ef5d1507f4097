//! Pattern pub/sub: PSUBSCRIBE registrations, PUBLISH delivery by Redis glob, and
//! connection drops. Delivery uses plain tokio channels, so it works inside turmoil hosts.

use std::collections::BTreeMap;

use async_trait::async_trait;
use match_server::store::{PubSubMessage, Subscription};
use tokio::sync::mpsc;

use super::glob::glob_match;

/// Messages a subscriber may leave unread before it is disconnected, like Redis's
/// `client-output-buffer-limit pubsub`.
pub const SUBSCRIBER_BUFFER_MESSAGES: usize = 4096;

/// One live pattern subscription, as the server side sees it.
#[derive(Debug)]
struct Subscriber {
    /// The glob the subscriber asked for.
    pattern: Vec<u8>,
    /// Where its messages go; dropping it ends the subscription.
    sender: mpsc::Sender<PubSubMessage>,
}

/// Every live subscription.
#[derive(Debug, Default)]
pub struct PubSub {
    /// Subscriptions by creation number, so delivery order is deterministic.
    subscribers: BTreeMap<u64, Subscriber>,
    /// The number the next subscription gets.
    next_id: u64,
}

impl PubSub {
    /// Registers a pattern subscription and returns its client end.
    pub fn psubscribe(&mut self, pattern: &[u8]) -> FakeSubscription {
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER_MESSAGES);
        self.subscribers.insert(
            self.next_id,
            Subscriber {
                pattern: pattern.to_vec(),
                sender,
            },
        );
        self.next_id += 1;
        FakeSubscription { receiver }
    }

    /// Delivers to every matching live subscription; returns how many received it.
    /// A subscriber whose buffer is full is disconnected instead, as Redis does.
    pub fn publish(&mut self, channel: &[u8], payload: &[u8]) -> u64 {
        let mut received = 0;
        let mut disconnected = Vec::new();
        for (id, subscriber) in &self.subscribers {
            if subscriber.sender.is_closed() {
                disconnected.push(*id);
                continue;
            }
            if !glob_match(&subscriber.pattern, channel) {
                continue;
            }
            let message = PubSubMessage {
                channel: String::from_utf8_lossy(channel).into_owned(),
                payload: payload.to_vec(),
            };
            match subscriber.sender.try_send(message) {
                Ok(()) => received += 1,
                Err(_) => disconnected.push(*id),
            }
        }
        for id in disconnected {
            self.subscribers.remove(&id);
        }
        received
    }

    /// Ends every live subscription (their connections drop); returns how many ended.
    pub fn drop_all(&mut self) -> usize {
        let live = self.live();
        self.subscribers.clear();
        live
    }

    /// How many subscriptions are live (the client end still held).
    pub fn live(&self) -> usize {
        self.subscribers
            .values()
            .filter(|subscriber| !subscriber.sender.is_closed())
            .count()
    }
}

/// The client end of a pattern subscription; `next_message` returns `None` once the fake
/// dropped the connection and the messages already delivered have been read.
#[derive(Debug)]
pub struct FakeSubscription {
    /// Messages delivered to this subscription.
    receiver: mpsc::Receiver<PubSubMessage>,
}

#[async_trait]
impl Subscription for FakeSubscription {
    async fn next_message(&mut self) -> Option<PubSubMessage> {
        self.receiver.recv().await
    }
}
