//! Invariant 12: every message the design promises arrives within its bound of its cause
//! (the bounds table of docs/design.md), unless a fault that hit *that* player's path - its instance, its
//! connection, or the instance that acted on the cause - between the cause and the
//! deadline explains the delay. A fault elsewhere excuses nothing.
//!
//! The promises, each judged from the clients' timelines and the service's facts:
//!
//! - `prompt`: a loading session created -> each of its players told `start_loading`
//!   (unless the session already ended by then).
//! - `prompt`: a match recorded (an attempt to finish that found the session) -> each
//!   player told `match_found`.
//! - `disconnect_grace`: a loading client closes its socket -> each co-player still
//!   loading that session hears how it ended.
//! - `allocation`: the last `loading_complete` of a session sent -> each player hears
//!   `match_found` or a "back in the queue" code.
//! - `loading_end`: a loading session's deadline -> no player still believes it loads it.
//!
//! A player whose connection ends before the deadline is not judged (its server may never
//! reach it), nor is a deadline the run did not reach.

use uuid::Uuid;

use super::history::{LoadingRecord, RedisOp, SUBSCRIBER_DROP};
use super::{Bounds, Check, ClientEvent, ClientModel, Cx, Findings, Path, RedisView};
use crate::world::EPOCH_SECS;
use match_server::probe::EndCause;
use match_server::protocol::ServerMessage;

/// Invariant 12, with the leaves it saw.
#[derive(Debug)]
pub struct InTime {
    /// Clients that closed their socket while loading: (player, when, the loading session).
    leaves: Vec<(Uuid, u64, Uuid)>,
}

impl InTime {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self { leaves: Vec::new() }
    }
}

/// One promise to one player.
struct Promise {
    /// Who must be told.
    player: Uuid,
    /// Which bound (the bounds table of docs/design.md).
    bound: &'static str,
    /// The cause, in words.
    cause: String,
    /// When the cause happened (sim ms).
    from_ms: u64,
    /// When the promise must be kept by.
    deadline_ms: u64,
    /// Instances and connections the message depends on besides the player's own.
    path: Path,
    /// What must have happened.
    what: String,
}

impl Check for InTime {
    fn on_client(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
        _out: &mut Findings<'_>,
    ) {
        if let ClientEvent::Disconnected { closed: true, .. } = event
            && let Some(loading) = cx.clients.get(player).and_then(ClientModel::loading)
        {
            self.leaves.push((player, at_ms, loading));
        }
    }

    fn at_end(&mut self, cx: &Cx<'_>, now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        let loadings = cx.history.loadings();
        for (loading, record) in &loadings {
            for player in record.players {
                start_loading(cx, now_ms, *loading, record, *player, out);
                match_found(cx, now_ms, *loading, record, *player, out);
                allocation(cx, now_ms, *loading, record, *player, out);
                loading_end(cx, now_ms, *loading, record, *player, out);
            }
        }
        for (leaver, at_ms, loading) in &self.leaves {
            let Some(record) = loadings.get(loading) else {
                continue;
            };
            let mut path = Path::default();
            if let Some(model) = cx.clients.get(*leaver) {
                model.add_connection_at(&mut path, at_ms.saturating_sub(1));
            }
            // A session that had already ended in Redis before the leave (a match or a
            // timeout won the race; the leaver had not heard) owes its co-players that
            // ending's notice: its cause is the ending, and a fault on the ender's path
            // since then explains a late notice as well. The deadline stays the leave's.
            // Only a script that did end it counts (`matched`, `cancelled`), not an attempt
            // that found it still running.
            let (from_ms, cause) = match ended_before(cx, *loading, *at_ms) {
                Some(ended) => {
                    path.add_instance(&ended.host);
                    let cause = format!(
                        "player {leaver} closed its socket while loading {loading} at {at_ms} ms, after {} ended it ({})",
                        ended.host, ended.target
                    );
                    (ended.at_ms, cause)
                }
                None => (
                    *at_ms,
                    format!("player {leaver} closed its socket while loading {loading}"),
                ),
            };
            for player in record.players.iter().filter(|p| *p != leaver) {
                let Some(model) = cx.clients.get(*player) else {
                    continue;
                };
                if !model.loads_at(*loading, *at_ms) {
                    continue;
                }
                let promise = Promise {
                    player: *player,
                    bound: "disconnect_grace",
                    cause: cause.clone(),
                    from_ms,
                    deadline_ms: at_ms + cx.bounds.disconnect_grace_ms,
                    path: path.clone(),
                    what: format!("heard how loading session {loading} ended"),
                };
                let met = model.left_loading_after(*loading, *at_ms);
                judge(cx, now_ms, &promise, met, out);
            }
        }
    }
}

/// The script that ended `loading` in Redis by `at_ms` (a match recorded, or the session
/// cancelled), if one did - also when its reply was lost to a fault after the effect.
fn ended_before<'a>(cx: &Cx<'a>, loading: Uuid, at_ms: u64) -> Option<&'a RedisOp> {
    cx.history.ops.iter().find(|op| {
        op.loading == Some(loading)
            && op.at_ms <= at_ms
            && matches!(
                (op.target.as_str(), op.effect_tag.as_deref()),
                ("finish_match", Some("matched")) | ("cancel_loading", Some("cancelled"))
            )
    })
}

/// `start_loading` promptly after the loading session was created.
fn start_loading(
    cx: &Cx<'_>,
    now_ms: u64,
    loading: Uuid,
    record: &LoadingRecord<'_>,
    player: Uuid,
    out: &mut Findings<'_>,
) {
    let Some(model) = cx.clients.get(player) else {
        return;
    };
    let deadline_ms = record.created_ms + cx.bounds.prompt_ms;
    // A session that ended before its announcement was due needs none, and a connection
    // whose session is not the one grouped (an older session's entry was grouped) is not
    // the one to tell.
    if record.endings.iter().any(|e| e.at_ms <= deadline_ms)
        || !is_grouped_session(cx, model, record, player, record.created_ms)
    {
        return;
    }
    let promise = Promise {
        player,
        bound: "prompt",
        cause: format!("{} created loading session {loading}", record.creator),
        from_ms: record.created_ms,
        deadline_ms,
        path: Path::instances([record.creator]),
        what: format!("been told start_loading {loading}"),
    };
    let met = model.received_after(record.created_ms.saturating_sub(cx.bounds.tick_ms), |m| {
        matches!(m, ServerMessage::StartLoading { loading_session_id } if *loading_session_id == loading)
    });
    judge(cx, now_ms, &promise, met, out);
}

/// `match_found` promptly after the match was recorded.
fn match_found(
    cx: &Cx<'_>,
    now_ms: u64,
    loading: Uuid,
    record: &LoadingRecord<'_>,
    player: Uuid,
    out: &mut Findings<'_>,
) {
    let (Some(model), Some(matched)) = (
        cx.clients.get(player),
        record.endings.iter().find(|e| e.cause == EndCause::Matched),
    ) else {
        return;
    };
    if !model.loads_at(loading, matched.at_ms)
        || !is_grouped_session(cx, model, record, player, matched.at_ms)
    {
        return;
    }
    let promise = Promise {
        player,
        bound: "prompt",
        cause: format!("{} recorded the match of {loading}", matched.host),
        from_ms: matched.at_ms,
        deadline_ms: matched.at_ms + cx.bounds.prompt_ms,
        path: Path::instances([matched.host]),
        what: "been told match_found".to_owned(),
    };
    let met = model.received_after(matched.at_ms, |m| {
        matches!(m, ServerMessage::MatchFound { .. })
    });
    judge(cx, now_ms, &promise, met, out);
}

/// `match_found` or a requeue code within the allocation bound of the last
/// `loading_complete` sent.
fn allocation(
    cx: &Cx<'_>,
    now_ms: u64,
    loading: Uuid,
    record: &LoadingRecord<'_>,
    player: Uuid,
    out: &mut Findings<'_>,
) {
    let mut last_ms = 0;
    let mut path = Path::default();
    let mut members = Vec::new();
    for member in record.players {
        let Some(model) = cx.clients.get(*member) else {
            return;
        };
        let sent = model.events.iter().rev().find_map(|(t, event)| {
            (matches!(event, ClientEvent::SentLoadingComplete(l) if *l == loading)
                && model.loads_at(loading, *t))
            .then_some(*t)
        });
        let Some(sent) = sent else { return };
        last_ms = last_ms.max(sent);
        model.add_connection_at(&mut path, sent);
        members.push((model, sent));
    }
    let Some(model) = cx.clients.get(player) else {
        return;
    };
    let deadline_ms = last_ms + cx.bounds.allocation_ms;
    // A member whose connection ended after it sent `loading_complete` may not have
    // completed the group at all.
    let member_left = members
        .iter()
        .any(|(member, sent)| member.disconnected_within(*sent, deadline_ms));
    if member_left || !model.loads_at(loading, last_ms) {
        return;
    }
    let promise = Promise {
        player,
        bound: "allocation",
        cause: format!("the last loading_complete of {loading} was sent"),
        from_ms: last_ms,
        deadline_ms,
        path,
        what: format!("heard match_found or a requeue for {loading}"),
    };
    let met = model.left_loading_after(loading, last_ms);
    judge(cx, now_ms, &promise, met, out);
}

/// No one still loads a session well past its deadline.
fn loading_end(
    cx: &Cx<'_>,
    now_ms: u64,
    loading: Uuid,
    record: &LoadingRecord<'_>,
    player: Uuid,
    out: &mut Findings<'_>,
) {
    let Some(model) = cx.clients.get(player) else {
        return;
    };
    let created_deadline_ms = record
        .deadline_unix_ms
        .map(|unix_ms| unix_ms.saturating_sub(EPOCH_SECS * 1_000));
    // Once every player loaded, the deadline moves to cover the allocation (also when the
    // creation was witnessed only after that, and its own deadline is unknown).
    let allocation_deadline_ms = record
        .all_ready
        .map(|(at_ms, _)| at_ms + cx.bounds.allocating_deadline_ms);
    let Some(deadline_ms) = created_deadline_ms.max(allocation_deadline_ms) else {
        return;
    };
    if !model.loads_at(loading, deadline_ms) {
        return;
    }
    let mut path = Path::instances([record.creator]);
    for member in record.players {
        if let Some(model) = cx.clients.get(*member) {
            model.add_connection_at(&mut path, deadline_ms);
        }
    }
    let promise = Promise {
        player,
        bound: "loading_end",
        cause: format!("the deadline of loading session {loading}"),
        from_ms: deadline_ms,
        deadline_ms: deadline_ms + cx.bounds.loading_end_slack_ms,
        path,
        what: format!("stopped loading {loading}"),
    };
    let met = model.left_loading_after(loading, deadline_ms);
    judge(cx, now_ms, &promise, met, out);
}

/// Whether the client's connection open at `at_ms` is the session whose entry `record`
/// grouped: it took the player's lease (a lease fact on its server since it opened) under
/// the grouped entry's owner token. Only then is the promise to it. A newer connection
/// that holds the lease while an older session's entry (its cleanup failed) is grouped is
/// not: the service never put that connection in the session, and the older session,
/// being gone, is told nothing. Where the entry's owner was not witnessed (hand-made
/// histories), holding the lease is enough.
fn is_grouped_session(
    cx: &Cx<'_>,
    model: &ClientModel,
    record: &LoadingRecord<'_>,
    player: Uuid,
    at_ms: u64,
) -> bool {
    let Some((server, opened_ms)) = model.connection_at(at_ms) else {
        return false;
    };
    let grouped_owner = record.owners.and_then(|owners| owners.get(&player));
    cx.history
        .lease_takers(player, server, opened_ms, at_ms + cx.bounds.tick_ms)
        .any(|owner| grouped_owner.is_none_or(|grouped| *grouped == owner))
}

/// Whether a fault on `path` between the promise's cause and its deadline explains that it
/// was kept late (at `met`) or not at all. A subscriber drop explains a lost notice only
/// until the resync its resubscription orders (R7) had time to run: a message later than
/// that stands for a broken resubscribe resync, not for the drop (as invariant 15 judges
/// repairs).
fn excused(cx: &Cx<'_>, path: &Path, promise: &Promise, met: Option<u64>) -> bool {
    let arrived_ms = met.unwrap_or(u64::MAX);
    let repair_ms = cx
        .bounds
        .prompt_ms
        .saturating_add(cx.bounds.tick_ms.saturating_mul(2));
    cx.history
        .excuses(path, promise.from_ms, promise.deadline_ms)
        .any(|fault| {
            fault.what != SUBSCRIBER_DROP || arrived_ms <= fault.to_ms.saturating_add(repair_ms)
        })
}

/// Judges one promise: kept by its deadline, not judgeable (the run or the connection
/// ended first), excused by a fault on its path, or broken.
fn judge(cx: &Cx<'_>, now_ms: u64, promise: &Promise, met: Option<u64>, out: &mut Findings<'_>) {
    let Some(model) = cx.clients.get(promise.player) else {
        return;
    };
    if met.is_some_and(|at| at <= promise.deadline_ms) {
        out.checked(1);
        return;
    }
    // Not connected at the cause, gone before the deadline, or a deadline the run did not
    // reach: nothing to judge.
    if model.connection_at(promise.from_ms).is_none() {
        return;
    }
    if promise.deadline_ms > now_ms
        || model.disconnected_within(promise.from_ms, promise.deadline_ms)
    {
        return;
    }
    out.checked(1);
    let mut path = promise.path.clone();
    model.add_connection_at(&mut path, promise.from_ms);
    if excused(cx, &path, promise, met) {
        return;
    }
    let when = met.map_or_else(|| "never".to_owned(), |at| format!("only at {at} ms"));
    out.violate(
        promise.deadline_ms,
        format!(
            "player {} had not {} by {} ms (bound `{}`: {} ms from {} at {} ms; {when}); no fault hit its path ({})",
            promise.player,
            promise.what,
            promise.deadline_ms,
            promise.bound,
            promise.deadline_ms - promise.from_ms,
            promise.cause,
            promise.from_ms,
            path,
        ),
    );
}
