//! Invariant 8: enough cooperative players waiting in a mode (and an idle game server) lead
//! to a match within a bound. Judged when the run's budget ends, before any grace: a late
//! match must not hide a stuck queue.

use std::collections::BTreeMap;

use super::{Bounds, Check, ClientState, Cx, Findings, RedisView};

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
    }
}
