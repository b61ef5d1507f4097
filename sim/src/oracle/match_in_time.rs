//! Invariant 8: enough cooperative players waiting in a mode (and an idle game server) lead
//! to a match within a bound. Judged when the run's budget ends, before any grace: a late
//! match must not hide a stuck queue. And a group that completed is allocated: a
//! `loading_complete` that completed its group but whose reply was lost leaves the
//! allocation to its retry (R6), which must hear `all_ready` again (judged over the
//! history at the end).

use std::collections::BTreeMap;

use super::{Bounds, Check, ClientState, Cx, Findings, RedisOp, RedisView};

/// Invariant 8, and whether it was judged already.
#[derive(Debug)]
pub struct MatchInTime {
    /// Set once judged (at the budget's end, or at the end of a run that rested earlier).
    judged: bool,
}

impl MatchInTime {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self { judged: false }
    }
}

/// The modes where enough cooperative players wait longer than the bound, with how many
/// wait and how many a match needs; and how many modes were looked at.
fn stuck(cx: &Cx<'_>, at_ms: u64) -> (u64, Vec<(String, usize, usize)>) {
    let mut waiting_by_mode: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for model in cx.clients.models.values().filter(|m| m.connected) {
        if model.state == ClientState::Waiting {
            let counts = waiting_by_mode.entry(model.mode.as_str()).or_default();
            let long = at_ms.saturating_sub(model.waiting_since_ms) > cx.bounds.match_bound_ms;
            match (model.cooperative, long) {
                (true, true) => counts.0 += 1,
                (false, _) => counts.1 += 1,
                (true, false) => {}
            }
        }
    }
    let modes = waiting_by_mode.len() as u64;
    let found = waiting_by_mode
        .into_iter()
        .filter_map(|(mode, (cooperative, other))| {
            let need = cx
                .bounds
                .players_per_mode
                .get(mode)
                .copied()
                .unwrap_or(usize::MAX);
            (other == 0 && cooperative >= need).then(|| (mode.to_owned(), cooperative, need))
        })
        .collect();
    (modes, found)
}

/// Whether `op` completed its group (took effect `all_ready`) without its instance hearing
/// so: a fault replaced the reply, or a stall held it.
fn completion_unheard(op: &RedisOp) -> bool {
    op.target == "loading_complete"
        && op.effect_tag.as_deref() == Some("all_ready")
        && (op.reply_tag != op.effect_tag || op.fault.is_some() || op.held_ms > 0)
}

/// R6 for `loading_complete`: the retry, from the same session, of a call that completed
/// its group unheard must be answered `all_ready` again. An `already_ready` leaves the
/// group waiting in `allocating` for a server no one asks for, until the stale sweep
/// times it out (`loading_timeout` instead of `match_found`).
fn unrecovered_completions(cx: &Cx<'_>, out: &mut Findings<'_>) {
    let ops = &cx.history.ops;
    for (index, first) in ops
        .iter()
        .enumerate()
        .filter(|(_, op)| completion_unheard(op))
    {
        out.checked(1);
        let retry = ops.iter().skip(index + 1).find(|op| {
            op.target == first.target
                && op.host == first.host
                && op.loading == first.loading
                && op.caller == first.caller
        });
        if let Some(retry) = retry
            && retry.effect_tag.as_deref() == Some("already_ready")
        {
            out.violate(
                retry.at_ms,
                format!(
                    "{}'s loading_complete for player {:?} completed loading session {:?} at {} ms unheard; its retry was answered already_ready, so no one allocates",
                    first.host, first.caller, first.loading, first.at_ms
                ),
            );
        }
    }
}

impl Check for MatchInTime {
    fn unsettled(&self, cx: &Cx<'_>, now_ms: u64, _view: &RedisView) -> bool {
        // A group that could form is not at rest (it must be given the full bound); one
        // that waits too long already is for the verdict to judge.
        if !stuck(cx, now_ms).1.is_empty() {
            return true;
        }
        let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
        for model in cx.clients.models.values() {
            if model.connected && model.cooperative && model.state == ClientState::Waiting {
                *waiting.entry(model.mode.as_str()).or_default() += 1;
            }
        }
        !waiting.iter().all(|(mode, count)| {
            cx.bounds
                .players_per_mode
                .get(*mode)
                .is_some_and(|need| count < need)
        })
    }

    fn at_budget_end(&mut self, cx: &Cx<'_>, now_ms: u64, out: &mut Findings<'_>) {
        self.judged = true;
        let (modes, found) = stuck(cx, now_ms);
        out.checked(modes);
        for (mode, waiting, need) in found {
            out.violate(
                now_ms,
                format!("{waiting} players still wait in {mode} (a match needs {need}) after the quiet phase"),
            );
        }
    }

    fn at_end(&mut self, cx: &Cx<'_>, now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        if !self.judged {
            self.at_budget_end(cx, now_ms, out);
        }
        unrecovered_completions(cx, out);
    }
}
