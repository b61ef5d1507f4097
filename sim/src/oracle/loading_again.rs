//! Invariant 11: no player is sent through loading again without a cause the trace
//! explains.
//!
//! For each player, take its loading sessions in the order they were created (the
//! `LoadingCreated` facts). Between two consecutive ones, A then B:
//!
//! 1. Something must have ended A before B was created: an attempt to end it, reported by
//!    the service (`LoadingEnding`) while Redis still held A - its cause is on record - or
//!    a fault that ends loading sessions by itself, passed in as a [`FaultWindow`].
//! 2. The end of A must have kept the player in the queue, or the player must have enqueued
//!    again (a new attempt it asked for) between that end and B. An end keeps a player only
//!    when the player is not the reason A ended: a co-player left (`loading_cancelled`); the
//!    allocation failed; the loading timed out and the player had loaded (its ready flag, as
//!    Redis held it right before the end). A match, the player's own leaving, and a timeout
//!    the player had not loaded for all take it out of the queue.
//!
//! Two orders are not what they seem, and the check reads through both:
//!
//! - A creation is reported when the matcher hears `try_match`'s reply, which a held or
//!   slow reply can delay past the session's own end. Its place in the order is the
//!   earliest evidence that it existed: its creation fact, a `start_loading` told for it,
//!   or an attempt to end it or to complete it.
//! - An attempt to end a session is reported before it is sent, and attempts held by a
//!   stalled connection land in any order. Every attempt that found the session before
//!   the next one was created may be the one that ended it: the player is kept if any of
//!   them keeps it (two co-players left at once: whichever landed first requeued the other,
//!   whose own leave then found nothing to end).
//!
//! In particular, after a loading timeout no player who loaded is grouped again with a
//! co-player who was absent from that session unless that co-player enqueued again: the
//! absent one's next loading session needs its own new attempt. Checks that extend this
//! invariant (a repair no fault explains, a fleet's allocation failures) add causes here
//! rather than a second invariant.

use std::collections::BTreeMap;

use match_server::probe::{Act, EndCause, Fact};
use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings, Invariant, RedisOp, RedisView, Violation};
use crate::probe::{FactRecord, LoadingState, Witness};

/// A fault that may end loading sessions without the service deciding it (none of today's
/// faults does; a Redis failover that loses writes would): a loading session that existed
/// during the window needs no recorded end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    /// When the fault began (sim ms).
    pub from_ms: u64,
    /// When it ended (sim ms).
    pub to_ms: u64,
    /// What it was, for the report.
    pub what: String,
}

/// A loading session's creation.
struct Created<'a> {
    /// Position in the fact log (the log is in causal order).
    seq: usize,
    at_ms: u64,
    loading: Uuid,
    players: &'a [Uuid],
}

/// An attempt to end a loading session that found it in Redis.
struct Ending<'a> {
    seq: usize,
    at_ms: u64,
    host: &'a str,
    cause: EndCause,
    state: &'a LoadingState,
}

/// Everything the check reads from the facts.
#[derive(Default)]
struct History<'a> {
    /// Loading sessions by creation order.
    created: Vec<Created<'a>>,
    /// Attempts that found the session, by loading session, in order.
    endings: BTreeMap<Uuid, Vec<Ending<'a>>>,
    /// Log positions of the enqueues players asked for, by player.
    requested: BTreeMap<Uuid, Vec<usize>>,
    /// When (sim ms) an enqueue held by a stall or struck by a fault landed and queued
    /// its player, by player: an attempt sent before a loading session ended may land
    /// after it, and then it is the player's new attempt.
    landed: BTreeMap<Uuid, Vec<u64>>,
}

impl<'a> History<'a> {
    fn read(records: &'a [FactRecord]) -> Self {
        let mut history = Self::default();
        // The first log position at which each loading session is known to exist.
        let mut evidence: BTreeMap<Uuid, usize> = BTreeMap::new();
        for (seq, record) in records.iter().enumerate() {
            match (&record.fact, &record.witness) {
                (
                    Fact::LoadingCreated {
                        loading, players, ..
                    },
                    _,
                ) if !history.created.iter().any(|c| c.loading == *loading) => {
                    history.created.push(Created {
                        seq,
                        at_ms: record.at_ms,
                        loading: *loading,
                        players,
                    });
                }
                (
                    Fact::LoadingEnding { loading, cause, .. },
                    Some(Witness::Loading(Some(state))),
                ) => history.endings.entry(*loading).or_default().push(Ending {
                    seq,
                    at_ms: record.at_ms,
                    host: &record.host,
                    cause: *cause,
                    state,
                }),
                (
                    Fact::Acted {
                        player,
                        act: Act::Enqueue { requested: true },
                        ..
                    },
                    _,
                ) => history.requested.entry(*player).or_default().push(seq),
                _ => {}
            }
            if let Some(loading) = evidence_of(&record.fact) {
                evidence.entry(loading).or_insert(seq);
            }
        }
        history.order_by_evidence(&evidence);
        history
    }

    /// Moves each creation to the earliest evidence that its session existed, and sorts
    /// them in that order (see the module documentation).
    fn order_by_evidence(&mut self, evidence: &BTreeMap<Uuid, usize>) {
        for created in &mut self.created {
            if let Some(seq) = evidence.get(&created.loading) {
                created.seq = created.seq.min(*seq);
            }
        }
        self.created.sort_by_key(|created| created.seq);
    }

    /// The attempts that may have ended `loading` before `before`: those that still found
    /// it, in the order they were reported.
    fn ends_of(&self, loading: Uuid, before: usize) -> Vec<&Ending<'a>> {
        self.endings.get(&loading).map_or_else(Vec::new, |endings| {
            endings
                .iter()
                .filter(|ending| ending.seq < before)
                .collect()
        })
    }

    /// Whether `player` asked to enqueue between the log positions `after` and `before`.
    /// Whether an enqueue for `player` landed in `after_ms..=before_ms`.
    fn landed_between(&self, player: Uuid, after_ms: u64, before_ms: u64) -> bool {
        self.landed.get(&player).is_some_and(|landings| {
            landings
                .iter()
                .any(|at| (after_ms..=before_ms).contains(at))
        })
    }

    fn enqueued_between(&self, player: Uuid, after: usize, before: usize) -> bool {
        self.requested
            .get(&player)
            .is_some_and(|seqs| seqs.iter().any(|seq| *seq > after && *seq < before))
    }
}

/// The loading session a fact shows to exist already: one a session was told to load, or
/// one the service tries to end or to complete.
fn evidence_of(fact: &Fact) -> Option<Uuid> {
    match fact {
        Fact::LoadingCreated { loading, .. } | Fact::LoadingEnding { loading, .. } => {
            Some(*loading)
        }
        Fact::Acted {
            act: Act::ToldStartLoading { loading } | Act::LoadingCompleted { loading },
            ..
        } => Some(*loading),
        _ => None,
    }
}

/// Why the end `end` of a loading session took `player` out of the queue; `None` when it
/// kept the player there.
fn taken_out(end: &Ending<'_>, player: Uuid) -> Option<&'static str> {
    match end.cause {
        EndCause::Matched => Some("it was matched"),
        EndCause::Left { player: leaver } if leaver == player => Some("it left"),
        EndCause::Left { .. } | EndCause::AllocationFailed { .. } => None,
        EndCause::TimedOut if end.state.ready.contains(&player) => None,
        EndCause::TimedOut => Some("it had not loaded when the loading timed out"),
    }
}

/// Invariant 11 over the facts of a run (see the module documentation). Returns the checks
/// made and the violations found.
#[cfg(test)]
pub fn check(records: &[FactRecord], faults: &[FaultWindow]) -> (u64, Vec<Violation>) {
    check_with_landings(records, faults, &[])
}

/// [`check`], knowing what the fake Redis served: an enqueue whose effect landed late.
pub fn check_with_landings(
    records: &[FactRecord],
    faults: &[FaultWindow],
    ops: &[RedisOp],
) -> (u64, Vec<Violation>) {
    let mut history = History::read(records);
    for op in ops {
        if op.target == "enqueue"
            && op.effect_tag.as_deref() == Some("enqueued")
            && let Some(player) = op.caller
        {
            history.landed.entry(player).or_default().push(op.at_ms);
        }
    }
    let mut by_player: BTreeMap<Uuid, Vec<&Created<'_>>> = BTreeMap::new();
    for created in &history.created {
        for player in created.players {
            by_player.entry(*player).or_default().push(created);
        }
    }
    let mut checks = 0;
    let mut violations = Vec::new();
    for (player, sessions) in &by_player {
        for pair in sessions.windows(2) {
            let [earlier, later] = pair else { continue };
            checks += 1;
            if let Some(detail) = unexplained(&history, faults, *player, earlier, later) {
                violations.push(Violation {
                    invariant: Invariant::LoadingAgain,
                    at_ms: later.at_ms,
                    detail,
                });
            }
        }
    }
    (checks, violations)
}

/// Why `player`'s loading session `later` is not explained by how `earlier` ended, if not.
fn unexplained(
    history: &History<'_>,
    faults: &[FaultWindow],
    player: Uuid,
    earlier: &Created<'_>,
    later: &Created<'_>,
) -> Option<String> {
    let ends = history.ends_of(earlier.loading, later.seq);
    let (Some(first), Some(end)) = (ends.first(), ends.last()) else {
        let excused = faults
            .iter()
            .any(|fault| fault.from_ms <= later.at_ms && fault.to_ms >= earlier.at_ms);
        return (!excused).then(|| {
            format!(
                "player {player} is in loading session {} (created at {} ms) although nothing on record ended its previous one, {} (created at {} ms)",
                later.loading, later.at_ms, earlier.loading, earlier.at_ms
            )
        });
    };
    if ends.iter().any(|end| taken_out(end, player).is_none()) {
        return None;
    }
    let taken_out = taken_out(end, player)?;
    // The player was out of the queue from the first of them at the earliest.
    if history.enqueued_between(player, first.seq, later.seq)
        || history.landed_between(player, first.at_ms, later.at_ms)
    {
        return None;
    }
    let loaded_again: Vec<String> = later
        .players
        .iter()
        .filter(|other| **other != player && end.state.ready.contains(other))
        .map(Uuid::to_string)
        .collect();
    let with = if loaded_again.is_empty() {
        String::new()
    } else {
        format!(
            ", grouped again with {} who had loaded",
            loaded_again.join(", ")
        )
    };
    Some(format!(
        "player {player} is in loading session {} (created at {} ms) without enqueueing again, although the end of {} at {} ms on {} took it out of the queue ({taken_out}){with}",
        later.loading, later.at_ms, earlier.loading, end.at_ms, end.host
    ))
}

/// Invariant 11 as a check of the registry: judged over every fact of the run at its end.
/// No fault of today's model ends a loading session by itself, so no fault window is given.
#[derive(Debug)]
pub struct LoadingAgain;

impl LoadingAgain {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

impl Check for LoadingAgain {
    fn at_end(&mut self, cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        let (checks, violations) = check_with_landings(&cx.history.facts, &[], &cx.history.ops);
        out.checked(checks);
        for violation in violations {
            out.violate(violation.at_ms, violation.detail);
        }
    }
}

#[cfg(test)]
#[path = "loading_again_tests.rs"]
mod tests;
