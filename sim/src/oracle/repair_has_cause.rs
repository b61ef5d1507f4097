//! Invariant 15: no repair without a cause. The service's safety nets (resync, stale
//! sweep, lease fencing, recovery after a lost reply) report every repair they make as a
//! [`Fact::Repaired`]; a repair of state that no fault on record could have broken is a
//! violation, so a safety net can no longer hide a broken primary path.
//!
//! Each repair names what was broken, and so the primary-path step that should have kept
//! it (the cause): a notice that should have told the session (the creation or the end of
//! a loading session), a renewal that should have kept an entry or a lease, an allocation
//! that should have ended its loading session. The repair is excused only by
//!
//! - a fault that hit *that* path between the cause and the repair ([`History::excuse`]):
//!   the instance that acted on the cause (crash, shutdown, clock fault, a Redis command
//!   fault on its requests, a stall), the repairing session's instance (the same, or its
//!   subscriber dropped until it subscribes again);
//! - a notice the service dropped by design on that session's path (a full session queue,
//!   [`Fact::NoticeDropped`]);
//! - a race rather than a loss: the cause happened within `prompt` of the repair, so its
//!   notice may still have been in flight when the resync read the entry;
//! - for a lost entry, a clock fault on any instance (leases compare instance clocks: a
//!   sweeper whose clock jumped ahead may judge a live entry dead).
//!
//! A fault elsewhere in the run excuses nothing. Orders to resync (after a resubscribe, an
//! entry found gone) and the dead-entry sweep are on record for coverage but not judged
//! here: the resync's outcome is judged where the session repairs, and a dead entry is the
//! designed end of every `matched` or `removed` entry.

use std::collections::BTreeMap;

use match_server::probe::{Act, Fact, LeaseChange, Repair};
use uuid::Uuid;

use super::history::{History, LoadingRecord, SUBSCRIBER_DROP};
use super::{Bounds, Check, Cx, Findings, Path, RedisView};
use crate::probe::FactRecord;

/// Invariant 15 (judged over the whole history at the end of the run).
#[derive(Debug)]
pub struct RepairHasCause;

impl RepairHasCause {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self
    }
}

/// One step of the primary path whose failure a repair may stand for.
#[derive(Debug)]
struct Cause {
    /// When it happened (sim ms): the window for an excusing fault starts here.
    from_ms: u64,
    /// The instances it depends on besides the repairing one.
    path: Path,
    /// Whether a notice of it may still be in flight at the repair (a race, not a loss).
    may_be_in_flight: bool,
    /// Whether a clock fault on any instance excuses it (a lease judged dead by a skewed
    /// clock).
    any_clock: bool,
    /// For a recovery after a lost reply (R6): how soon its notice leaves. The recovery
    /// answers the fault that lost the reply, so that fault excuses nothing; a fault on the
    /// recovering instance excuses only while the notice is due, and on the repairing
    /// instance only what keeps a session from hearing (its process, its subscriber).
    notice_within_ms: Option<u64>,
    /// What it was, for the violation's detail.
    what: String,
}

impl Check for RepairHasCause {
    fn at_end(&mut self, cx: &Cx<'_>, _now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        let loadings = cx.history.loadings();
        for record in &cx.history.facts {
            let Fact::Repaired {
                rule,
                player,
                owner,
                what,
            } = &record.fact
            else {
                continue;
            };
            let causes = causes_of(cx, &loadings, record, *player, *owner, what);
            if causes.is_empty() {
                continue;
            }
            out.checked(1);
            if causes
                .iter()
                .any(|cause| excused(cx, record, *player, *owner, cause))
            {
                continue;
            }
            let said: Vec<String> = causes
                .iter()
                .map(|cause| format!("{} at {} ms", cause.what, cause.from_ms))
                .collect();
            let who = player.map_or_else(String::new, |p| format!(" for player {p}"));
            out.violate(
                record.at_ms,
                format!(
                    "{} repaired {what:?} ({rule:?}){who}, yet no fault hit the path of its cause ({}) before the repair",
                    record.host,
                    said.join("; "),
                ),
            );
        }
    }
}

/// Whether `cause` excuses the repair `record`: a race, a drop the service recorded, or a
/// fault on the cause's path or the repairing instance between the cause and the repair.
fn excused(
    cx: &Cx<'_>,
    record: &FactRecord,
    player: Option<Uuid>,
    owner: Option<Uuid>,
    cause: &Cause,
) -> bool {
    let at_ms = record.at_ms;
    if cause.may_be_in_flight && at_ms <= cause.from_ms.saturating_add(cx.bounds.prompt_ms) {
        return true;
    }
    if dropped_by_design(cx, record, player, owner, cause.from_ms) {
        return true;
    }
    if let Some(window_ms) = cause.notice_within_ms {
        return recovery_excused(cx, record, cause, window_ms);
    }
    let mut path = cause.path.clone();
    path.add_instance(&record.host);
    // Host clocks differ by up to a tick (a fault the fake Redis stamped may read a few ms
    // after the fact its instance stamped right then): the window is widened by two.
    let slack_ms = cx.bounds.tick_ms.saturating_mul(2);
    let (from_ms, to_ms) = (
        cause.from_ms.saturating_sub(slack_ms),
        at_ms.saturating_add(slack_ms),
    );
    // A subscriber that was down excuses what it missed only until the resync its
    // resubscription orders (R7) had time to run: a repair later than that stands for a
    // broken resubscribe resync, not for the drop.
    let prompt_ms = cx.bounds.prompt_ms;
    if cx.history.excuses(&path, from_ms, to_ms).any(|fault| {
        fault.what != SUBSCRIBER_DROP || at_ms <= fault.to_ms.saturating_add(prompt_ms)
    }) {
        return true;
    }
    let clock_fault = |fault: &super::FaultRecord| {
        fault.what.starts_with("clock") && fault.from_ms <= to_ms && fault.to_ms >= from_ms
    };
    cause.any_clock && cx.history.faults.iter().any(clock_fault)
}

/// Whether the service dropped a notice for the session `owner` by design (a full session
/// queue) between `from_ms` and the repair.
fn dropped_by_design(
    cx: &Cx<'_>,
    record: &FactRecord,
    player: Option<Uuid>,
    owner: Option<Uuid>,
    from_ms: u64,
) -> bool {
    let slack_ms = cx.bounds.tick_ms.saturating_mul(2);
    let window = from_ms.saturating_sub(slack_ms)..=record.at_ms.saturating_add(slack_ms);
    cx.history.facts.iter().any(|fact| {
        window.contains(&fact.at_ms)
            && matches!(&fact.fact, Fact::NoticeDropped { player: p, owner: o, .. }
                if Some(*p) == player && Some(*o) == owner)
    })
}

/// A repair standing for a recovery's notice (`cause.notice_within_ms`): excused by a
/// fault on the recovering instance while the notice was due (not the `try_match` fault
/// it recovers from); on the repairing instance by any fault while the notice was due (its
/// resync read failed), later only by a process fault or a subscriber drop until its
/// resubscribe resync had time.
fn recovery_excused(cx: &Cx<'_>, record: &FactRecord, cause: &Cause, window_ms: u64) -> bool {
    let slack_ms = cx.bounds.tick_ms.saturating_mul(2);
    let due_ms = cause
        .from_ms
        .saturating_add(window_ms)
        .saturating_add(slack_ms);
    let sender = cx
        .history
        .excuses(&cause.path, cause.from_ms, due_ms)
        .any(|fault| !fault.what.contains(" on try_match "));
    let receiver_path = Path::instances([record.host.as_str()]);
    let prompt_ms = cx.bounds.prompt_ms;
    let receiver = cx
        .history
        .excuses(
            &receiver_path,
            cause.from_ms,
            record.at_ms.saturating_add(slack_ms),
        )
        .any(|fault| {
            (fault.from_ms <= due_ms && fault.what != SUBSCRIBER_DROP)
                || fault.what.starts_with("server_")
                || (fault.what == SUBSCRIBER_DROP
                    && record.at_ms <= fault.to_ms.saturating_add(prompt_ms))
        });
    sender || receiver
}

/// The primary-path steps whose failure `what` stands for; empty when the repair is not
/// judged (an order to resync, the dead-entry sweep) or its cause is not on record.
fn causes_of(
    cx: &Cx<'_>,
    loadings: &BTreeMap<Uuid, LoadingRecord<'_>>,
    record: &FactRecord,
    player: Option<Uuid>,
    owner: Option<Uuid>,
    what: &Repair,
) -> Vec<Cause> {
    let history = cx.history;
    let at_ms = record.at_ms;
    let announced = |loading: Uuid| announced_by(history, owner, loading, at_ms);
    let session_since = || session_window(history, owner, at_ms);
    match *what {
        Repair::MissedLoading { loading, left } => {
            let mut causes: Vec<Cause> = creation(history, loadings, loading, cx.bounds.prompt_ms)
                .into_iter()
                .collect();
            causes.extend(left.and_then(|left| ending(history, loadings, left, at_ms)));
            causes
        }
        Repair::FollowedLoading { loading } => {
            creation(history, loadings, loading, cx.bounds.prompt_ms)
                .into_iter()
                .collect()
        }
        Repair::MissedRequeue { loading }
        | Repair::MissedRemoval { loading }
        | Repair::MissedMatch { loading } => {
            let mut causes: Vec<Cause> = ending(history, loadings, loading, at_ms)
                .into_iter()
                .collect();
            // A session that never announced the loading session missed its start too.
            if !causes.is_empty() && !announced(loading) {
                causes.extend(creation(history, loadings, loading, cx.bounds.prompt_ms));
            }
            causes
        }
        Repair::EntryLost | Repair::StrayPlace => vec![Cause {
            from_ms: session_since(),
            path: Path::default(),
            may_be_in_flight: false,
            any_clock: true,
            notice_within_ms: None,
            what: format!("the entry of player {player:?} kept by its session's renewals"),
        }],
        Repair::AllocationHung { loading } => {
            allocation(history, loadings, loading).into_iter().collect()
        }
        Repair::LoadingRecovered { loading } => {
            // The reply was lost or late: a fault on the instance from the request on (the
            // request's own fault is stamped when it took effect, which may read a few ms
            // after the recovery by the recovering host's clock).
            let op = history
                .ops
                .iter()
                .find(|op| op.target == "try_match" && op.loading == Some(loading));
            let from_ms = op.map_or(at_ms, |op| op.at_ms.min(at_ms));
            vec![Cause {
                from_ms,
                path: Path::default(),
                may_be_in_flight: false,
                any_clock: false,
                notice_within_ms: None,
                what: format!("the try_match that created {loading}, answered"),
            }]
        }
        Repair::Fenced | Repair::LeaseGone => {
            if released(history, player, owner) {
                return Vec::new();
            }
            let renewals_ms = cx.bounds.lease_ttl_ms.saturating_mul(3);
            vec![Cause {
                from_ms: at_ms.saturating_sub(renewals_ms),
                path: Path::default(),
                may_be_in_flight: false,
                any_clock: false,
                notice_within_ms: None,
                what: "the renewals of the player lease".to_owned(),
            }]
        }
        Repair::ResyncOrdered | Repair::DeadEntries { .. } => Vec::new(),
    }
}

/// The creation of `loading` (its `try_match`, or its report when the reply was lost):
/// its `start_loading` notice should have told the session.
fn creation(
    history: &History,
    loadings: &BTreeMap<Uuid, LoadingRecord<'_>>,
    loading: Uuid,
    prompt_ms: u64,
) -> Option<Cause> {
    let reported = loadings.get(&loading).map(|r| (r.created_ms, r.creator));
    let served = try_match_op(history, loading);
    // A creation whose reply was lost and which a matchmaker then recovered (R6) owes its
    // players the recovery's `resync`: a fault before the recovery no longer excuses.
    if let Some(recovered) = recovery(history, loading) {
        return Some(Cause {
            from_ms: recovered.at_ms,
            path: Path::instances([recovered.host.as_str()]),
            may_be_in_flight: true,
            any_clock: false,
            notice_within_ms: Some(prompt_ms),
            what: format!(
                "{} recovered loading session {loading} (resync)",
                recovered.host
            ),
        });
    }
    let (from_ms, host) = match (reported, served) {
        (Some(fact), Some(op)) if op.0 < fact.0 => op,
        (Some(fact), _) => fact,
        (None, Some(op)) => op,
        (None, None) => return None,
    };
    Some(Cause {
        from_ms,
        path: Path::instances([host]),
        may_be_in_flight: true,
        any_clock: false,
        notice_within_ms: None,
        what: format!("{host} created loading session {loading} (start_loading)"),
    })
}

/// The recovery of `loading` after its `try_match` reply was lost, if one found it.
fn recovery(history: &History, loading: Uuid) -> Option<&FactRecord> {
    history.facts.iter().find(|fact| {
        matches!(&fact.fact, Fact::Repaired { what: Repair::LoadingRecovered { loading: l }, .. } if *l == loading)
    })
}

/// The `try_match` request that named `loading` (when and from which instance).
fn try_match_op(history: &History, loading: Uuid) -> Option<(u64, &str)> {
    history
        .ops
        .iter()
        .find(|op| op.target == "try_match" && op.loading == Some(loading))
        .map(|op| (op.at_ms, op.host.as_str()))
}

/// The end of `loading` by `at_ms` (the first attempt that found it, else the script that
/// ended it): its notice (`requeued`, `removed`, `match_found`) should have told the
/// session.
fn ending(
    history: &History,
    loadings: &BTreeMap<Uuid, LoadingRecord<'_>>,
    loading: Uuid,
    at_ms: u64,
) -> Option<Cause> {
    let attempt = loadings
        .get(&loading)
        .and_then(|r| r.endings.iter().find(|e| e.at_ms <= at_ms))
        .map(|e| (e.at_ms, e.host));
    let script = history
        .ops
        .iter()
        .find(|op| {
            op.loading == Some(loading)
                && op.at_ms <= at_ms
                && matches!(
                    (op.target.as_str(), op.reply_tag.as_deref()),
                    ("finish_match", Some("matched")) | ("cancel_loading", Some("cancelled"))
                )
        })
        .map(|op| (op.at_ms, op.host.as_str()));
    let (from_ms, host) = match (attempt, script) {
        (Some(a), Some(s)) if s.0 < a.0 => s,
        (Some(a), _) => a,
        (None, s) => s?,
    };
    Some(Cause {
        from_ms,
        path: Path::instances([host]),
        may_be_in_flight: true,
        any_clock: false,
        notice_within_ms: None,
        what: format!("{host} ended loading session {loading} (its notice)"),
    })
}

/// The allocation of `loading`: from its group's completion, the instance that allocated
/// should have matched it or ended it as failed before the stale sweep.
fn allocation(
    history: &History,
    loadings: &BTreeMap<Uuid, LoadingRecord<'_>>,
    loading: Uuid,
) -> Option<Cause> {
    let record = loadings.get(&loading)?;
    let mut path = Path::instances([record.creator]);
    let from_ms = match record.all_ready {
        Some((at_ms, host)) => {
            path.add_instance(host);
            at_ms
        }
        None => record.created_ms,
    };
    // Every instance that served the session's players may have held the allocation.
    for op in history.ops.iter().filter(|op| op.loading == Some(loading)) {
        path.add_instance(&op.host);
    }
    Some(Cause {
        from_ms,
        path,
        may_be_in_flight: false,
        any_clock: false,
        notice_within_ms: None,
        what: format!("the allocation of loading session {loading}"),
    })
}

/// Whether the session `owner` had told its client `start_loading` of `loading` by `at_ms`.
fn announced_by(history: &History, owner: Option<Uuid>, loading: Uuid, at_ms: u64) -> bool {
    history.facts.iter().any(|fact| {
        fact.at_ms <= at_ms
            && matches!(&fact.fact, Fact::Acted { owner: o, act: Act::ToldStartLoading { loading: l }, .. }
                if Some(*o) == owner && *l == loading)
    })
}

/// From when the session `owner` acted (took its lease, enqueued): the window in which a
/// fault on its instance may have cost it its entry.
fn session_window(history: &History, owner: Option<Uuid>, at_ms: u64) -> u64 {
    history
        .facts
        .iter()
        .find(|fact| match &fact.fact {
            Fact::Acted { owner: o, .. } | Fact::Lease { owner: o, .. } => Some(*o) == owner,
            _ => false,
        })
        .map_or(0, |fact| fact.at_ms.min(at_ms))
}

/// Whether the session `owner` released its player lease itself (a renewal racing the
/// release finds it gone: the session was ending anyway).
fn released(history: &History, player: Option<Uuid>, owner: Option<Uuid>) -> bool {
    history.facts.iter().any(|fact| {
        matches!(&fact.fact, Fact::Lease { player: p, owner: o, change: LeaseChange::Released }
            if Some(*p) == player && Some(*o) == owner)
    })
}
