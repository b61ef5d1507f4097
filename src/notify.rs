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
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::keys::Keys;
use crate::metrics::{Family, Metrics};
use crate::probe::{Fact, NoProbe, Probe, Repair, RepairRule};
use crate::protocol::ErrorCode;
use crate::scripts::Member;
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

impl NoticeEvent {
    /// The loading session the event is about, if any.
    pub fn loading(&self) -> Option<Uuid> {
        match self {
            Self::StartLoading { loading }
            | Self::MatchFound { loading, .. }
            | Self::Requeued { loading, .. }
            | Self::Removed { loading, .. } => Some(*loading),
            Self::Resync | Self::LeaseLost => None,
        }
    }
}

/// What the router and the lease keeper read of a local session: views of state the
/// session owns (its machine's state), never copies of it.
pub trait LocalSession: Send + Sync {
    /// The player whose entry the session may hold (its queue claim), if any: its entry's
    /// lease is renewed, and notices that name only the player reach it.
    fn claimed_player(&self) -> Option<Uuid>;
    /// The player whose player lease the session holds and wants renewed, if any.
    fn held_lease(&self) -> Option<Uuid>;
}

/// A local session as the router knows it.
struct Route {
    /// Delivers notices to the session task.
    sender: mpsc::Sender<SessionNotice>,
    /// The session's own state, read when routing and renewing.
    session: Arc<dyn LocalSession>,
}

/// Local sessions by owner token: routes notices to them, and tells the lease keeper who
/// holds what.
pub struct Router {
    /// Sessions by token; a BTreeMap so iteration (renewal batches) is deterministic.
    routes: Mutex<BTreeMap<Uuid, Route>>,
    /// Where the router reports notices it drops and resyncs it orders (observation only).
    probe: Arc<dyn Probe>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new(Arc::new(NoProbe))
    }
}

impl Router {
    /// A router with no session yet, reporting to `probe`.
    pub fn new(probe: Arc<dyn Probe>) -> Self {
        Self {
            routes: Mutex::default(),
            probe,
        }
    }

    /// Registers a session; notices for `owner` go to `sender`, and `session` is read for
    /// its claim and lease.
    pub fn register(
        &self,
        owner: Uuid,
        sender: mpsc::Sender<SessionNotice>,
        session: Arc<dyn LocalSession>,
    ) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(owner, Route { sender, session });
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, owner: Uuid) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&owner);
        }
    }

    /// Every (player, owner) whose player lease a live local session holds.
    pub fn leases(&self) -> Vec<Member> {
        self.members(|session| session.held_lease())
    }

    /// Every (player, owner) whose entry a live local session may hold.
    pub fn claims(&self) -> Vec<Member> {
        self.members(|session| session.claimed_player())
    }

    /// Every (player, owner) for which `player_of` names a player of the owner's session.
    fn members(&self, player_of: impl Fn(&dyn LocalSession) -> Option<Uuid>) -> Vec<Member> {
        let Ok(routes) = self.routes.lock() else {
            return Vec::new();
        };
        routes
            .iter()
            .filter_map(|(owner, route)| {
                player_of(route.session.as_ref()).map(|player| Member {
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
                    .find(|route| route.session.claimed_player() == Some(target.player))
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
                    self.probe.record(Fact::NoticeDropped {
                        player: target.player,
                        owner: target.owner,
                        loading: notice.event.loading(),
                    });
                }
            }
        }
    }

    /// Tells every local session to resync (after pub/sub was down); `resubscribed` when
    /// the subscriber had subscribed before (then the resync is a repair: notices may have
    /// been lost meanwhile), false at the first subscription.
    pub fn resync_all(&self, resubscribed: bool) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        for (owner, route) in routes.iter() {
            if let Some(player) = route.session.claimed_player() {
                if resubscribed {
                    self.probe.record(Fact::Repaired {
                        rule: RepairRule::Resubscribe,
                        player: Some(player),
                        owner: Some(*owner),
                        what: Repair::ResyncOrdered,
                    });
                }
                if route
                    .sender
                    .try_send(SessionNotice {
                        player,
                        event: NoticeEvent::Resync,
                    })
                    .is_err()
                {
                    self.probe.record(Fact::NoticeDropped {
                        player,
                        owner: *owner,
                        loading: None,
                    });
                }
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
    let mut subscribed_before = false;
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
                router.resync_all(subscribed_before);
                subscribed_before = true;
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
