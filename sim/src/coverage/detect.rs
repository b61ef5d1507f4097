//! The detectors: from a finished run's history (facts, what the fake served, fault
//! windows), its clients' timelines and its trace, how many times each row of the
//! catalogue was reached. Each detector looks for the rule firing or the window being open,
//! never for a fault merely drawn.

use std::collections::BTreeMap;

use match_server::probe::{Act, EndCause, Fact, Repair, RepairRule};
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use crate::oracle::{ClientEvent, ClientModel, ClientState, Clients, History, Scope};
use crate::probe::Witness;
use crate::trace::{Source, TraceEvent};

/// What the detectors read of one run.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// Facts, Redis operations and fault windows.
    pub history: &'a History,
    /// Every client's timeline.
    pub clients: &'a Clients,
    /// What the fake Redis itself saw (see [`super::RedisMarks`]), by row id.
    pub redis: &'a BTreeMap<&'static str, u64>,
    /// The service's `lock_ttl_ms`.
    pub lock_ttl_ms: u64,
    /// The service's `idle_timeout_ms`.
    pub idle_timeout_ms: u64,
    /// When the run ended (sim ms).
    pub end_ms: u64,
}

/// How often each row was reached in the run, by row id (rows never reached are absent).
pub fn detect(evidence: &Evidence<'_>) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut add = |id: &str, count: u64| {
        if count > 0 {
            *counts.entry(id.to_owned()).or_default() += count;
        }
    };
    for (id, count) in evidence.redis {
        add(id, *count);
    }
    for (id, count) in from_facts(evidence.history, evidence.lock_ttl_ms) {
        add(id, count);
    }
    for (id, count) in from_ops(evidence.history) {
        add(id, count);
    }
    add("W2", notices_during_effects(evidence.history));
    add("W9", held_past_lease(evidence.history));
    for (id, count) in from_clients(evidence.clients, evidence.idle_timeout_ms, evidence.end_ms) {
        add(id, count);
    }
    counts
}

/// Adds the rows only the trace shows (see [`from_trace`]) to a run's counts.
pub fn add_trace_rows(counts: &mut BTreeMap<String, u64>, trace: &[TraceEvent]) {
    for (id, count) in from_trace(trace) {
        *counts.entry(id.to_owned()).or_default() += count;
    }
}

/// Rows the service's facts show: loading sessions created and ended by cause, and W6: a
/// lock taken by another holder while its previous holder had not released it (the lock
/// expired in Redis under it), or held past the validity its holder counted.
fn from_facts(history: &History, lock_ttl_ms: u64) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    let mut held: BTreeMap<Uuid, (&str, u64)> = BTreeMap::new();
    for record in &history.facts {
        let found = matches!(record.witness, Some(Witness::Loading(Some(_))));
        let id = match &record.fact {
            Fact::LoadingCreated { .. } => Some("R1"),
            Fact::Repaired { rule, what, .. } => repaired(*rule, *what),
            Fact::LoadingEnding { cause, .. } if found => match cause {
                EndCause::TimedOut => Some("R2"),
                EndCause::Left { .. } => Some("R9"),
                EndCause::AllocationFailed { .. } => Some("R10"),
                EndCause::Matched => None,
            },
            Fact::LockAcquired {
                mode,
                token,
                valid_ms,
            } => {
                let valid_until = record.at_ms.saturating_add((*valid_ms).min(lock_ttl_ms));
                let outlived = held.values().any(|(other, _)| other == mode);
                held.insert(*token, (mode.as_str(), valid_until));
                outlived.then_some("W6")
            }
            Fact::LockReleasing { token, .. } => held
                .remove(token)
                .filter(|(_, valid_until)| record.at_ms > *valid_until)
                .map(|_| "W6"),
            _ => None,
        };
        if let Some(id) = id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// The row a repair fact reaches: the safety net that acted, when it found something to
/// repair (a periodic resync that found all well reached nothing).
fn repaired(rule: RepairRule, what: Repair) -> Option<&'static str> {
    match rule {
        RepairRule::PeriodicResync if what != Repair::ResyncOrdered => Some("R5"),
        RepairRule::LostReplyRecovery => Some("R6"),
        RepairRule::Resubscribe | RepairRule::EntryGoneResync | RepairRule::ToldToResync => {
            Some("R7")
        }
        RepairRule::Fencing => Some("R12"),
        RepairRule::LeaseLost => Some("R13"),
        RepairRule::DeadEntrySweep => Some("R14"),
        _ => None,
    }
}

/// Rows what the fake served shows: matches recorded, races lost to a leave or a timeout,
/// crashes between a script and its notice.
fn from_ops(history: &History) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let timed_out: Vec<Uuid> = history
        .facts
        .iter()
        .filter_map(|record| match (&record.fact, &record.witness) {
            (
                Fact::LoadingEnding {
                    loading,
                    cause: EndCause::TimedOut,
                    ..
                },
                Some(Witness::Loading(Some(_))),
            ) => Some(*loading),
            _ => None,
        })
        .collect();
    for (index, op) in history.ops.iter().enumerate() {
        let tag = op.reply_tag.as_deref().unwrap_or_default();
        let id = match op.target.as_str() {
            "finish_match" if tag == "matched" => Some("R8"),
            "finish_match" if tag == "gone" => Some("W3"),
            "loading_complete"
                if tag == "gone" && op.loading.is_some_and(|l| timed_out.contains(&l)) =>
            {
                Some("W4")
            }
            "try_match" | "cancel_loading" | "finish_match"
                if owes_notice(tag) && crashed_before_notice(history, index) =>
            {
                Some("W7")
            }
            _ => None,
        };
        if let Some(id) = id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// W9: `loading_complete` calls a stall held that landed after their caller's lease ran
/// out, while their loading session still lived (no cancel or match of it had taken effect
/// before: judged where the ops landed, since a stalled instance's attempts land late).
fn held_past_lease(history: &History) -> u64 {
    let mut ended = std::collections::BTreeSet::new();
    let mut count = 0;
    for op in &history.ops {
        let Some(loading) = op.loading else {
            continue;
        };
        match op.target.as_str() {
            "cancel_loading" | "finish_match"
                if matches!(op.effect_tag.as_deref(), Some("cancelled" | "matched")) =>
            {
                ended.insert(loading);
            }
            "loading_complete"
                if op.held_ms > 0
                    && op.caller_held_lease == Some(false)
                    && !ended.contains(&loading) =>
            {
                count += 1;
            }
            _ => {}
        }
    }
    count
}

/// W2: notices published for a session while its enqueue effect was running (between the
/// act reported before the effect and the `enqueued` it told its client after it), so the
/// notice had to wait in the session's queue.
fn notices_during_effects(history: &History) -> u64 {
    let mut running: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut windows: BTreeMap<Uuid, Vec<(u64, u64)>> = BTreeMap::new();
    for record in &history.facts {
        if let Fact::Acted { owner, act, .. } = &record.fact {
            match act {
                Act::Enqueue { .. } => {
                    running.entry(*owner).or_insert(record.at_ms);
                }
                Act::ToldEnqueued => {
                    if let Some(from_ms) = running.remove(owner) {
                        windows
                            .entry(*owner)
                            .or_default()
                            .push((from_ms, record.at_ms));
                    }
                }
                _ => {}
            }
        }
    }
    let mut count = 0;
    for op in &history.ops {
        let Some(notice) = &op.notice else { continue };
        let waited = notice.targets.iter().any(|target| {
            windows.get(&target.owner).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|(from_ms, to_ms)| (*from_ms..*to_ms).contains(&op.at_ms))
            })
        });
        count += u64::from(waited);
    }
    count
}

/// Whether a script that answered `tag` owes its players a notice.
fn owes_notice(tag: &str) -> bool {
    matches!(tag, "matched" | "cancelled")
}

/// Whether the instance that ran op `index` crashed before it published anything after it.
fn crashed_before_notice(history: &History, index: usize) -> bool {
    let Some(op) = history.ops.get(index) else {
        return false;
    };
    let scope = Scope::Instance(op.host.clone());
    let Some(crash_ms) = history
        .faults
        .iter()
        .filter(|fault| fault.scope == scope && fault.what == "server_crash")
        .map(|fault| fault.from_ms)
        .find(|from_ms| *from_ms >= op.at_ms)
    else {
        return false;
    };
    !history
        .ops
        .iter()
        .skip(index + 1)
        .any(|later| later.host == op.host && later.target == "PUBLISH" && later.at_ms <= crash_ms)
}

/// Rows the clients' timelines show: refusals, floods closed, shutdowns with something to
/// clean up, connections kept open by their activity.
fn from_clients(
    clients: &Clients,
    idle_timeout_ms: u64,
    end_ms: u64,
) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for model in clients.models.values() {
        for id in client_rows(model, idle_timeout_ms, end_ms) {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// The rows one client's timeline reached, once per occurrence.
fn client_rows(model: &ClientModel, idle_timeout_ms: u64, end_ms: u64) -> Vec<&'static str> {
    let mut rows = Vec::new();
    let mut opened_ms: Option<u64> = None;
    let mut rate_limited = false;
    let close = |rows: &mut Vec<&'static str>, opened: Option<u64>, at_ms: u64| {
        if opened.is_some_and(|from| at_ms.saturating_sub(from) > idle_timeout_ms) {
            rows.push("R21");
        }
    };
    for (at_ms, event) in &model.events {
        match event {
            ClientEvent::Connected { .. } => {
                opened_ms = Some(*at_ms);
                rate_limited = false;
            }
            ClientEvent::Received(ServerMessage::Error { code, .. }) => match code {
                ErrorCode::SessionExists => rows.push("W8"),
                ErrorCode::RateLimited => rate_limited = true,
                ErrorCode::ShuttingDown if had_claim(model, *at_ms) => rows.push("R20"),
                _ => {}
            },
            ClientEvent::Disconnected { closed, .. } => {
                if rate_limited && !closed {
                    rows.push("R19");
                }
                close(&mut rows, opened_ms.take(), *at_ms);
            }
            _ => {}
        }
    }
    close(&mut rows, opened_ms, end_ms);
    rows
}

/// Whether the client was queued or loading right before `at_ms` (so a shutdown had
/// something to clean up for it).
fn had_claim(model: &ClientModel, at_ms: u64) -> bool {
    model
        .changes
        .iter()
        .take_while(|(changed_ms, _)| *changed_ms < at_ms)
        .last()
        .is_some_and(|(_, state)| !matches!(state, ClientState::Idle))
}

/// Rows only the service's own log shows: an operation skipped on a failed clock, a
/// connection closed as idle.
fn from_trace(trace: &[TraceEvent]) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for event in trace {
        if !matches!(event.source, Source::Service(_)) {
            continue;
        }
        let id = if event.text.contains("cannot read the unix time") {
            Some("R17")
        } else if event.text.contains("disconnected") && event.text.contains("ending=Idle") {
            Some("R21")
        } else {
            None
        };
        if let Some(id) = id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::RedisOp;
    use crate::probe::{FactRecord, LoadingState};

    fn evidence<'a>(
        history: &'a History,
        clients: &'a Clients,
        redis: &'a BTreeMap<&'static str, u64>,
    ) -> Evidence<'a> {
        Evidence {
            history,
            clients,
            redis,
            lock_ttl_ms: 2_000,
            idle_timeout_ms: 8_000,
            end_ms: 30_000,
        }
    }

    /// Goal: a loading session ended by a timeout counts for R2 only when the attempt found
    /// it in Redis; a timeout attempt that found it gone reached nothing.
    #[test]
    fn a_timeout_counts_only_when_it_ended_something() {
        let mut history = History::default();
        let ending = |found: bool| FactRecord {
            at_ms: 10,
            host: "server-0".into(),
            fact: Fact::LoadingEnding {
                loading: Uuid::from_u128(1),
                mode: "m".into(),
                cause: EndCause::TimedOut,
            },
            witness: Some(Witness::Loading(found.then(LoadingState::default))),
        };
        history.facts.push(ending(false));
        let (clients, redis) = (Clients::default(), BTreeMap::new());
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("R2"),
            None
        );
        history.facts.push(ending(true));
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("R2"),
            Some(&1)
        );
    }

    /// Goal: W7 needs the crash after the script and before the instance published; a
    /// crash after the notice went out is not the window.
    #[test]
    fn a_crash_counts_for_w7_only_before_the_notice() {
        let mut history = History::default();
        history
            .ops
            .push(RedisOp::answered(100, "server-0", "try_match", "matched"));
        history.fault(
            150,
            None,
            Scope::Instance("server-0".into()),
            "server_crash".into(),
        );
        let (clients, redis) = (Clients::default(), BTreeMap::new());
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("W7"),
            Some(&1)
        );
        history
            .ops
            .insert(1, RedisOp::answered(120, "server-0", "PUBLISH", "value"));
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("W7"),
            None
        );
    }

    /// Goal: a lock held past the validity its holder counted counts for W6; one released
    /// in time does not.
    #[test]
    fn a_lock_held_past_its_ttl_counts_for_w6() {
        let mut history = History::default();
        let fact = |at_ms: u64, token: u128, acquired: bool| FactRecord {
            at_ms,
            host: "server-0".into(),
            fact: if acquired {
                Fact::LockAcquired {
                    mode: "m".into(),
                    token: Uuid::from_u128(token),
                    valid_ms: 1_800,
                }
            } else {
                Fact::LockReleasing {
                    mode: "m".into(),
                    token: Uuid::from_u128(token),
                }
            },
            witness: None,
        };
        history
            .facts
            .extend([fact(0, 1, true), fact(500, 1, false)]);
        let (clients, redis) = (Clients::default(), BTreeMap::new());
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("W6"),
            None
        );
        history
            .facts
            .extend([fact(1_000, 2, true), fact(3_500, 2, false)]);
        assert_eq!(
            detect(&evidence(&history, &clients, &redis)).get("W6"),
            Some(&1)
        );
    }
}
