//! The schedule: players start open-loop at a fixed rate (or as fast as the concurrency
//! window allows), round-robin over the targets, each in its own task; their records are
//! collected when all have ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use match_server::clock::{Clock, SystemClock};

use crate::cli::Plan;
use crate::player::{self, PlayerPlan, PlayerRecord};

/// What the drive produced.
#[derive(Debug, Default)]
pub struct Driven {
    /// One record per player started.
    pub records: Vec<PlayerRecord>,
    /// Player tasks that panicked (their record is lost; a load generator bug).
    pub task_failures: usize,
}

/// Whether to start player number `started` (0-based) at `elapsed` since the origin.
/// A duration stop waits for a whole match, so no player is left without partners.
fn keep_starting(plan: &Plan, started: usize, elapsed: Duration) -> bool {
    if plan.players.is_some_and(|limit| started >= limit) {
        return false;
    }
    match plan.duration {
        Some(duration) if elapsed >= duration => started % plan.players_per_match != 0,
        _ => true,
    }
}

/// When player `index` is due, from the origin; `None` for as fast as possible.
fn due_offset(rate_per_s: f64, index: usize) -> Option<Duration> {
    (rate_per_s > 0.0).then(|| Duration::from_secs_f64(index as f64 / rate_per_s))
}

/// A token for `player` when the plan has a secret, valid past the player's deadline.
/// `None` without a secret, or when it cannot be minted (the server then refuses the
/// player, and the report shows it).
fn token_for(plan: &Plan, player: Uuid) -> Option<String> {
    let secret = plan.token_secret.as_deref()?;
    let now_s = SystemClock.now_unix_ms().ok()? / 1_000;
    let exp_s = now_s
        .saturating_add(plan.player_timeout.as_secs())
        .saturating_add(TOKEN_SLACK_S);
    match_server::auth::mint(secret, player, exp_s).ok()
}

/// Extra token lifetime past a player's deadline.
const TOKEN_SLACK_S: u64 = 60;

/// Starts every player of the plan and waits for all of them.
pub async fn drive(plan: &Plan) -> Driven {
    let window = Arc::new(Semaphore::new(plan.concurrency));
    let mut tasks = JoinSet::new();
    let mut driven = Driven::default();
    let origin = Instant::now();
    let mut started = 0;
    while keep_starting(plan, started, origin.elapsed()) {
        let due = due_offset(plan.rate_per_s, started).map(|offset| origin + offset);
        if let Some(due) = due {
            tokio::time::sleep_until(due).await;
        }
        let Ok(permit) = window.clone().acquire_owned().await else {
            break;
        };
        let target_index = started % plan.targets.len().max(1);
        let Some(target) = plan.targets.get(target_index).cloned() else {
            break;
        };
        let scheduled = due.unwrap_or_else(Instant::now);
        let player_id = Uuid::new_v4();
        let player_plan = PlayerPlan {
            player_id,
            token: token_for(plan, player_id),
            target_index,
            mode: plan.mode.clone(),
            deadline: Instant::now() + plan.player_timeout,
            origin,
            scheduled_us: u64::try_from((scheduled - origin).as_micros()).unwrap_or(u64::MAX),
        };
        tasks.spawn(async move {
            let _permit = permit;
            player::run(player_plan, &target).await
        });
        started += 1;
        collect_finished(&mut tasks, &mut driven);
    }
    while let Some(joined) = tasks.join_next().await {
        push(joined, &mut driven);
    }
    driven
}

fn collect_finished(tasks: &mut JoinSet<PlayerRecord>, driven: &mut Driven) {
    while let Some(joined) = tasks.try_join_next() {
        push(joined, driven);
    }
}

fn push(joined: Result<PlayerRecord, tokio::task::JoinError>, driven: &mut Driven) {
    match joined {
        Ok(record) => driven.records.push(record),
        Err(_) => driven.task_failures += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn plan(args: &[&str]) -> Plan {
        let mut all = vec!["match-loadgen", "--servers", "ws://127.0.0.1:1/ws"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().plan().unwrap()
    }

    /// Goal: a count stops at the count; a duration stop completes the last match.
    #[test]
    fn stop_rules() {
        let counted = plan(&["--players", "4"]);
        assert!(keep_starting(&counted, 3, Duration::ZERO));
        assert!(!keep_starting(&counted, 4, Duration::ZERO));
        let timed = plan(&["--duration", "1"]);
        let late = Duration::from_secs(2);
        assert!(keep_starting(&timed, 5, Duration::ZERO));
        assert!(keep_starting(&timed, 5, late));
        assert!(!keep_starting(&timed, 6, late));
    }

    /// Goal: with a secret each player gets a token for its own id that the servers'
    /// verifier accepts; without one, none.
    #[test]
    fn tokens_name_their_player() {
        let secret = "loadgen-test-secret-loadgen-test-secret";
        let with = plan(&["--players", "2", "--token-secret", secret]);
        let player = Uuid::new_v4();
        let token = token_for(&with, player).unwrap();
        let verifier = match_server::auth::Verifier::new(Some(secret));
        let now_ms = SystemClock.now_unix_ms().unwrap();
        assert_eq!(verifier.verify(&token, now_ms), Ok(player));
        let without = plan(&["--players", "2"]);
        if without.token_secret.is_none() {
            assert_eq!(token_for(&without, player), None);
        }
    }

    /// Goal: the open-loop schedule spaces players by 1/rate.
    #[test]
    fn schedule_spacing() {
        assert_eq!(due_offset(0.0, 10), None);
        assert_eq!(due_offset(1_000.0, 10), Some(Duration::from_millis(10)));
    }
}
