//! Match attempts: the match loop (immediate triggers plus a periodic tick), one round per
//! mode under its lock, and recovery when a `try_match` outcome is unknown.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::lock::{self, LockGuard};
use super::{EffectError, Shared};
use crate::config::GameMode;
use crate::limits;
use crate::metrics::Family;
use crate::notify::NoticeEvent;
use crate::probe::{Fact, Repair, RepairRule};
use crate::scripts::Member;
use crate::scripts::try_match::{TryMatch, TryMatchReply};

/// Capacity of the trigger queue; a full queue just means a round is already due.
const TRIGGER_CAPACITY: usize = 64;

/// Asks the match loop for an immediate round on a mode; cheap to clone.
#[derive(Clone)]
pub struct MatchTrigger {
    /// Modes whose queue just reached a full group.
    sender: mpsc::Sender<String>,
}

impl MatchTrigger {
    /// Asks for an immediate attempt on `mode`.
    pub fn request(&self, mode: &str) {
        // A full queue means attempts are already pending; the periodic tick is the net.
        let _ = self.sender.try_send(mode.to_owned());
    }
}

/// The match loop of one instance: owns its trigger queue.
pub struct MatchLoop {
    /// Settings, seams, scripts.
    shared: Arc<Shared>,
    /// Modes to attempt at once.
    triggers: mpsc::Receiver<String>,
}

/// Whether a round should go on after one attempt.
enum Attempt {
    /// A group was matched; there may be more.
    Matched,
    /// Not enough players, or something failed: stop this round.
    Stop,
}

impl MatchLoop {
    /// A match loop and the trigger that wakes it.
    pub(super) fn new(shared: Arc<Shared>) -> (Self, MatchTrigger) {
        let (sender, triggers) = mpsc::channel(TRIGGER_CAPACITY);
        (Self { shared, triggers }, MatchTrigger { sender })
    }

    /// Runs match rounds on triggers and every `match_interval_ms` until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut ticker = crate::clock::periodic(self.shared.settings.timing.match_interval_ms);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                Some(mode) = self.triggers.recv() => {
                    if let Some(mode) = self.shared.settings.mode(&mode).cloned() {
                        self.round(&mode).await;
                    }
                }
                _ = ticker.tick() => {
                    for mode in self.shared.settings.modes.clone() {
                        self.round(&mode).await;
                    }
                }
            }
        }
    }

    /// Forms as many groups of `mode` as the queue allows, under the mode's lock.
    /// A cheap `SCARD` first: most rounds find too few players, and those need no lock.
    async fn round(&self, mode: &GameMode) {
        if !self.enough_queued(mode).await {
            return;
        }
        let Some(lock) = lock::acquire(&self.shared, &mode.name).await else {
            return;
        };
        for _ in 0..limits::MAX_MATCHES_PER_ROUND {
            if !lock.is_valid() {
                break;
            }
            match self.try_match_once(mode, &lock).await {
                Attempt::Matched => {}
                Attempt::Stop => break,
            }
        }
        lock::release(&self.shared, lock).await;
    }

    /// Whether the queue of `mode` may hold a full group (it may include dead entries,
    /// which `try_match` sorts out). Updates the queue gauge on the way. A Redis error
    /// answers yes, so the round tries anyway.
    async fn enough_queued(&self, mode: &GameMode) -> bool {
        let shared = &self.shared;
        match shared
            .deps
            .store
            .scard(&shared.keys.queue(&mode.name))
            .await
        {
            Ok(queued) => {
                let gauge = i64::try_from(queued).unwrap_or(i64::MAX);
                shared.metrics.set(Family::PlayersQueued, &mode.name, gauge);
                queued >= u64::from(mode.players)
            }
            Err(error) => {
                shared.metrics.incr(Family::StoreErrors, "scard");
                tracing::warn!(%error, mode = %mode.name, "queue length unknown; trying a round anyway");
                true
            }
        }
    }

    /// One `try_match.lua` call. Failures are logged and end the round (the lock is then
    /// released by [`Self::round`]); an unknown outcome is recovered from Redis.
    async fn try_match_once(&self, mode: &GameMode, lock: &LockGuard) -> Attempt {
        let shared = &self.shared;
        let Ok(now_ms) = shared.now_ms("try_match") else {
            return Attempt::Stop;
        };
        let Some(players_per_match) = shared.players_per_match(&mode.name) else {
            return Attempt::Stop;
        };
        let loading = shared.new_id();
        let call = TryMatch {
            mode,
            loading,
            now_ms,
            deadline_ms: now_ms.saturating_add(shared.settings.timing.loading_timeout_ms),
            lock_token: lock.token,
            players_per_match,
        };
        match shared.scripts.call(&call).await {
            Ok(TryMatchReply::Matched {
                loading,
                dropped,
                members,
            }) => {
                self.created(mode, loading, dropped, members).await;
                Attempt::Matched
            }
            Ok(TryMatchReply::LockLost) => {
                tracing::warn!(mode = %mode.name, "match lock expired during the round");
                Attempt::Stop
            }
            Ok(TryMatchReply::Waiting { queue_len, dropped }) => {
                let queued = i64::try_from(queue_len).unwrap_or(i64::MAX);
                shared
                    .metrics
                    .set(Family::PlayersQueued, &mode.name, queued);
                if dropped > 0 {
                    tracing::info!(mode = %mode.name, dropped, "dead queue entries dropped");
                }
                Attempt::Stop
            }
            Err(_) => {
                self.recover_loading(&mode.name, loading).await;
                Attempt::Stop
            }
        }
    }

    /// A loading session was created: counts it, reports it and tells its players.
    async fn created(&self, mode: &GameMode, loading: Uuid, dropped: u64, members: Vec<Member>) {
        let shared = &self.shared;
        crate::check!(
            shared.checks,
            "group_size_matches_mode",
            members.len() == usize::try_from(mode.players).unwrap_or(usize::MAX),
            "{loading} created with {} players for {} ({} per match)",
            members.len(),
            mode.name,
            mode.players
        );
        shared.metrics.incr(Family::MatchesStarted, &mode.name);
        tracing::info!(%loading, mode = %mode.name, dropped, players = ?members, "loading session created");
        shared.record(Fact::LoadingCreated {
            loading,
            mode: mode.name.clone(),
            players: members.iter().map(|member| member.player).collect(),
        });
        shared
            .publisher
            .publish(&mode.name, members, NoticeEvent::StartLoading { loading })
            .await;
    }

    /// After a `try_match` whose outcome is unknown: if the loading session exists, its
    /// players are told to resync, so each learns of it from its entry.
    async fn recover_loading(&self, mode: &str, loading: Uuid) {
        let players = match self.loading_players(loading).await {
            Ok(players) => players,
            Err(_) => {
                tracing::warn!(%loading, "cannot read a possibly created loading session; sessions resync on their own");
                return;
            }
        };
        if players.is_empty() {
            return;
        }
        tracing::warn!(%loading, ?players, "recovering a loading session whose reply was lost");
        self.shared.record(Fact::Repaired {
            rule: RepairRule::LostReplyRecovery,
            player: None,
            owner: None,
            what: Repair::LoadingRecovered { loading },
        });
        self.shared.record(Fact::LoadingCreated {
            loading,
            mode: mode.to_owned(),
            players: players.clone(),
        });
        let targets = players.into_iter().map(|player| Member {
            player,
            owner: Uuid::nil(),
        });
        self.shared
            .publisher
            .publish(mode, targets.collect(), NoticeEvent::Resync)
            .await;
    }

    /// The players of a loading session as Redis holds them (empty when it does not exist).
    async fn loading_players(&self, loading: Uuid) -> Result<Vec<Uuid>, EffectError> {
        let raw = self
            .shared
            .deps
            .store
            .hget(&self.shared.keys.loading(loading), "players")
            .await
            .map_err(|_| EffectError::Unavailable)?;
        let text = raw
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Ok(text
            .split(',')
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect())
    }
}
