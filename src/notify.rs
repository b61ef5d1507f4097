//! Notices between instances: published on Redis pub/sub, routed to the local session that
//! owns each target player.
//!
//! Notices are hints. Pub/sub drops messages while a subscriber is disconnected, so after a
//! reconnect every local session is told to resync with its entry in Redis, the truth.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::keys::Keys;
use crate::matchmaker::replies::Member;
use crate::metrics::{Family, Metrics};
use crate::protocol::ErrorCode;
use crate::store::Store;

/// What happened to a group of players, as published on pub/sub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The players concerned and the sessions that own them.
    pub targets: Vec<Member>,
    /// What happened.
    pub event: NoticeEvent,
}

/// The event a notice carries; each target's session receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeEvent {
    /// A loading session was created for the targets.
    StartLoading {
        /// The loading session.
        loading: Uuid,
    },
    /// The loading session got a game server.
    MatchFound {
        /// The finished loading session.
        loading: Uuid,
        /// The game server's session.
        session_id: Uuid,
        /// The game server's address.
        server_address: String,
    },
    /// The loading session ended without a match; the targets are back in the queue.
    Requeued {
        /// The ended loading session.
        loading: Uuid,
        /// Why, as the client will see it.
        code: ErrorCode,
    },
    /// The loading session timed out before the targets loaded: they are out of the queue
    /// (not back in it) and must enqueue again. Added after the first release: an instance
    /// that predates it cannot parse the notice and drops it (its sessions learn from the
    /// entry at their next resync); so it is always published apart from `Requeued`.
    Removed {
        /// The ended loading session.
        loading: Uuid,
        /// Why, as the client will see it (`loading_not_completed`).
        code: ErrorCode,
    },
    /// Something may have been missed: compare with Redis now.
    Resync,
    /// Local only, never published: lease renewal found that the target session no longer
    /// holds its player's lease (it ran out, or another connection holds it now).
    #[serde(skip)]
    LeaseLost,
}

/// Publishes notices on the channel of a mode.
#[derive(Clone)]
pub struct Publisher {
    /// Where to publish.
    store: Arc<dyn Store>,
    /// Channel names.
    keys: Keys,
    /// Counts failed publishes.
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// A publisher on `store`.
    pub fn new(store: Arc<dyn Store>, keys: Keys, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            keys,
            metrics,
        }
    }

    /// Publishes `event` to `targets`. A failure is logged: sessions recover by resync.
    pub async fn publish(&self, mode: &str, targets: Vec<Member>, event: NoticeEvent) {
        if targets.is_empty() {
            return;
        }
        let notice = Notice { targets, event };
        let Ok(payload) = serde_json::to_vec(&notice) else {
            return;
        };
        if let Err(error) = self
            .store
            .publish(&self.keys.notice_channel(mode), &payload)
            .await
        {
            self.metrics.incr(Family::StoreErrors, "publish");
            tracing::warn!(%error, ?notice, "publish failed; sessions will resync");
        }
    }
}

/// A notice as one session receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionNotice {
    /// The player the notice is about (a session acts for one player at a time).
    pub player: Uuid,
    /// What happened.
    pub event: NoticeEvent,
}

/// A local session as the router knows it.
struct Route {
    /// Delivers notices to the session task.
    sender: mpsc::Sender<SessionNotice>,
    /// The player whose entry the session may hold, for lease renewal.
    claim: Option<Uuid>,
    /// The player whose player lease the session holds, for its renewal.
    lease: Option<Uuid>,
    /// Until when the player lease surely lives: its TTL counted from when the last
    /// successful take or renewal was sent. Past it another connection may hold the
    /// player, so the session must have stopped acting before (self-fencing).
    lease_valid_until: Option<Instant>,
}

/// Local sessions by owner token.
#[derive(Default)]
pub struct Router {
    /// Sessions by token; a BTreeMap so iteration (renewal batches) is deterministic.
    routes: Mutex<BTreeMap<Uuid, Route>>,
}

impl Router {
    /// Registers a session; notices for `owner` go to `sender`.
    pub fn register(&self, owner: Uuid, sender: mpsc::Sender<SessionNotice>) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(
                owner,
                Route {
                    sender,
                    claim: None,
                    lease: None,
                    lease_valid_until: None,
                },
            );
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, owner: Uuid) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&owner);
        }
    }

    /// Records which player's entry the session may hold (for lease renewal).
    pub fn set_claim(&self, owner: Uuid, claim: Option<Uuid>) {
        if let Ok(mut routes) = self.routes.lock()
            && let Some(route) = routes.get_mut(&owner)
        {
            route.claim = claim;
        }
    }

    /// Records which player's lease the session holds (for its renewal).
    pub fn set_lease(&self, owner: Uuid, lease: Option<Uuid>) {
        if let Ok(mut routes) = self.routes.lock()
            && let Some(route) = routes.get_mut(&owner)
        {
            route.lease = lease;
            if lease.is_none() {
                route.lease_valid_until = None;
            }
        }
    }

    /// Records that the player leases of `owners` live at least until `until` (a take or
    /// renewal sent before `until - ttl` succeeded).
    pub fn extend_leases(&self, owners: impl IntoIterator<Item = Uuid>, until: Instant) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        for owner in owners {
            if let Some(route) = routes.get_mut(&owner) {
                route.lease_valid_until =
                    Some(route.lease_valid_until.map_or(until, |t| t.max(until)));
            }
        }
    }

    /// Every (player, owner) whose held player lease may be gone by `by`: no renewal has
    /// succeeded recently enough, so the session must stop acting for the player.
    pub fn expiring_leases(&self, by: Instant) -> Vec<Member> {
        self.members(|route| {
            route
                .lease
                .filter(|_| route.lease_valid_until.is_none_or(|until| until <= by))
        })
    }

    /// Every (player, owner) whose player lease a live local session holds.
    pub fn leases(&self) -> Vec<Member> {
        self.members(|route| route.lease)
    }

    /// Every (player, owner) whose entry a live local session may hold.
    pub fn claims(&self) -> Vec<Member> {
        self.members(|route| route.claim)
    }

    /// Every (player, owner) for which `player_of` names a player of the owner's route.
    fn members(&self, player_of: impl Fn(&Route) -> Option<Uuid>) -> Vec<Member> {
        let Ok(routes) = self.routes.lock() else {
            return Vec::new();
        };
        routes
            .iter()
            .filter_map(|(owner, route)| {
                player_of(route).map(|player| Member {
                    player,
                    owner: *owner,
                })
            })
            .collect()
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.routes.lock().map(|routes| routes.len()).unwrap_or(0)
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands a notice to each local target. A full or closed session queue drops it: the
    /// session recovers at its next resync.
    pub fn deliver(&self, notice: &Notice) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        for target in &notice.targets {
            // A nil owner comes from recovery paths that only know the player.
            let route = if target.owner.is_nil() {
                routes
                    .values()
                    .find(|route| route.claim == Some(target.player))
            } else {
                routes.get(&target.owner)
            };
            if let Some(route) = route {
                let item = SessionNotice {
                    player: target.player,
                    event: notice.event.clone(),
                };
                if route.sender.try_send(item).is_err() {
                    tracing::warn!(player = %target.player, "session notice queue full; dropped");
                }
            }
        }
    }

    /// Tells every local session to resync (after pub/sub was down).
    pub fn resync_all(&self) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        for (owner, route) in routes.iter() {
            if let Some(player) = route.claim {
                let _ = route.sender.try_send(SessionNotice {
                    player,
                    event: NoticeEvent::Resync,
                });
            } else {
                tracing::trace!(%owner, "idle session needs no resync");
            }
        }
    }
}

/// Receives notices from pub/sub and routes them, reconnecting with backoff until shutdown.
pub async fn run_subscriber(
    store: Arc<dyn Store>,
    keys: Keys,
    router: Arc<Router>,
    retry_ms: u64,
    shutdown: CancellationToken,
) {
    const MAX_BACKOFF_DOUBLINGS: u32 = 10;
    let mut failures: u32 = 0;
    let pattern = keys.notice_pattern();
    loop {
        let subscription = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            subscription = store.psubscribe(&pattern) => subscription,
        };
        match subscription {
            Ok(mut subscription) => {
                failures = 0;
                // Anything published while we were away is lost: everyone compares with Redis.
                router.resync_all();
                loop {
                    let message = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return,
                        message = subscription.next_message() => message,
                    };
                    let Some(message) = message else { break };
                    match serde_json::from_slice::<Notice>(&message.payload) {
                        Ok(notice) => router.deliver(&notice),
                        Err(error) => {
                            tracing::warn!(%error, channel = %message.channel, "ignored malformed notice")
                        }
                    }
                }
                tracing::warn!("pub/sub subscription lost; reconnecting");
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "pub/sub subscribe failed; retrying");
            }
        }
        let delay_ms = retry_ms.saturating_mul(1 << failures.min(MAX_BACKOFF_DOUBLINGS));
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: self-fencing sees exactly the sessions whose held lease no take or renewal
    /// extended past the horizon; a session without a lease is never fenced, and a later
    /// renewal lifts the fence.
    #[test]
    fn expiring_leases_are_those_not_extended_past_the_horizon() {
        let router = Router::default();
        let (sender, _receiver) = mpsc::channel(4);
        let [a, b, c] = [1_u128, 2, 3].map(Uuid::from_u128);
        for owner in [a, b, c] {
            router.register(owner, sender.clone());
        }
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(5);
        router.extend_leases([a], soon);
        router.extend_leases([b], later);
        router.set_lease(a, Some(a));
        router.set_lease(b, Some(b));
        let horizon = now + Duration::from_secs(2);
        let fenced: Vec<Uuid> = router
            .expiring_leases(horizon)
            .iter()
            .map(|m| m.owner)
            .collect();
        assert_eq!(
            fenced,
            vec![a],
            "c holds no lease; b is renewed past the horizon"
        );
        router.extend_leases([a], later);
        assert_eq!(router.expiring_leases(horizon), vec![]);
        router.extend_leases([a], soon);
        assert_eq!(
            router.expiring_leases(horizon),
            vec![],
            "an earlier time never shortens"
        );
        router.set_lease(a, None);
        router.set_lease(a, Some(a));
        assert_eq!(
            router.expiring_leases(horizon).len(),
            1,
            "a new lease starts unproven"
        );
    }
}
