//! Match attempts: the match loop (immediate triggers plus a periodic tick), one round per
//! mode under its lock, and recovery when a `try_match` outcome is unknown.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::lock::LockGuard;
use super::replies::{Member, TryMatchReply, parse_try_match};
use super::{EffectError, Matchmaker};
use crate::config::GameMode;
use crate::limits;
use crate::metrics::Family;
use crate::notify::NoticeEvent;
use crate::probe::Fact;
use crate::scripts::SCRIPTS;

/// Whether a round should go on after one attempt.
enum Attempt {
    /// A group was matched; there may be more.
    Matched,
    /// Not enough players, or something failed: stop this round.
    Stop,
}

impl Matchmaker {
    /// Runs match rounds on triggers and every `match_interval_ms` until shutdown.
    pub async fn run_match_loop(
        self: Arc<Self>,
        mut triggers: mpsc::Receiver<String>,
        shutdown: CancellationToken,
    ) {
        let mut ticker = crate::clock::periodic(self.settings.timing.match_interval_ms);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                Some(mode) = triggers.recv() => {
                    if let Some(mode) = self.settings.mode(&mode).cloned() {
                        self.round(&mode).await;
                    }
                }
                _ = ticker.tick() => {
                    for mode in self.settings.modes.clone() {
                        self.round(&mode).await;
                    }
                }
            }
        }
    }

    /// Forms as many groups of `mode` as the queue allows, under the mode's lock.
    /// A cheap `SCARD` first: most rounds find too few players, and those need no lock.
    pub async fn round(&self, mode: &GameMode) {
        if !self.enough_queued(mode).await {
            return;
        }
        let Some(lock) = self.acquire_lock(&mode.name).await else {
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
        self.release_lock(lock).await;
    }

    /// Whether the queue of `mode` may hold a full group (it may include dead entries,
    /// which `try_match` sorts out). Updates the queue gauge on the way. A Redis error
    /// answers yes, so the round tries anyway.
    async fn enough_queued(&self, mode: &GameMode) -> bool {
        match self.deps.store.scard(&self.keys.queue(&mode.name)).await {
            Ok(queued) => {
                let gauge = i64::try_from(queued).unwrap_or(i64::MAX);
                self.metrics.set(Family::PlayersQueued, &mode.name, gauge);
                queued >= u64::from(mode.players)
            }
            Err(error) => {
                self.metrics.incr(Family::StoreErrors, "scard");
                tracing::warn!(%error, mode = %mode.name, "queue length unknown; trying a round anyway");
                true
            }
        }
    }

    /// One `try_match.lua` call. Failures are logged and end the round (the lock is then
    /// released by [`Self::round`]); an unknown outcome is recovered from Redis.
    async fn try_match_once(&self, mode: &GameMode, lock: &LockGuard) -> Attempt {
        let Ok(now_ms) = self.now_ms("try_match") else {
            return Attempt::Stop;
        };
        let Some(need) = self.players_per_match(&mode.name) else {
            return Attempt::Stop;
        };
        let loading = self.new_id();
        let deadline_ms = now_ms.saturating_add(self.settings.timing.loading_timeout_ms);
        let keys = [
            self.keys.queue(&mode.name),
            self.keys.players(),
            self.keys.loading(loading),
            self.keys.loading_index(&mode.name),
            lock.key.clone(),
        ];
        let max_pops = mode.players.saturating_mul(limits::MAX_POPS_PER_PLAYER);
        let args = [
            mode.name.clone(),
            mode.players.to_string(),
            loading.to_string(),
            now_ms.to_string(),
            deadline_ms.to_string(),
            max_pops.to_string(),
            lock.token.to_string(),
        ];
        let reply = match self.eval(&SCRIPTS.try_match, &keys, &args).await {
            Ok(reply) => reply,
            Err(_) => {
                self.recover_loading(&mode.name, loading).await;
                return Attempt::Stop;
            }
        };
        match parse_try_match(&reply, need) {
            Ok(TryMatchReply::Matched {
                loading,
                dropped,
                members,
            }) => {
                self.metrics.incr(Family::MatchesStarted, &mode.name);
                tracing::info!(%loading, mode = %mode.name, dropped, players = ?members, "loading session created");
                self.record(Fact::LoadingCreated {
                    loading,
                    mode: mode.name.clone(),
                    players: members.iter().map(|member| member.player).collect(),
                });
                self.publisher
                    .publish(&mode.name, members, NoticeEvent::StartLoading { loading })
                    .await;
                Attempt::Matched
            }
            Ok(TryMatchReply::LockLost) => {
                tracing::warn!(mode = %mode.name, "match lock expired during the round");
                Attempt::Stop
            }
            Ok(TryMatchReply::Waiting { queue_len, dropped }) => {
                let queued = i64::try_from(queue_len).unwrap_or(i64::MAX);
                self.metrics.set(Family::PlayersQueued, &mode.name, queued);
                if dropped > 0 {
                    tracing::info!(mode = %mode.name, dropped, "dead queue entries dropped");
                }
                Attempt::Stop
            }
            Err(error) => {
                self.bad_reply(&error);
                self.recover_loading(&mode.name, loading).await;
                Attempt::Stop
            }
        }
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
        self.record(Fact::LoadingCreated {
            loading,
            mode: mode.to_owned(),
            players: players.clone(),
        });
        let targets = players.into_iter().map(|player| Member {
            player,
            owner: Uuid::nil(),
        });
        self.publisher
            .publish(mode, targets.collect(), NoticeEvent::Resync)
            .await;
    }

    /// The players of a loading session as Redis holds them (empty when it does not exist).
    pub async fn loading_players(&self, loading: Uuid) -> Result<Vec<Uuid>, EffectError> {
        let raw = self
            .deps
            .store
            .hget(&self.keys.loading(loading), "players")
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
