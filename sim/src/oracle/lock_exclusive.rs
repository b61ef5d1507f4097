//! Invariant 6: a match lock has at most one holder that may act under it at a time. Judged
//! on the lock facts of the probe seam, in the order the servers reported them: a holder
//! acquiring a lock while another may still act under it (not released, validity not over)
//! is a violation. Host clocks within one step differ by up to a tick, so the comparison of
//! times allows that much.

use std::collections::BTreeMap;

use match_server::probe::Fact;
use uuid::Uuid;

use super::{Bounds, Check, Cx, Findings};
use crate::probe::FactRecord;

/// Invariant 6, with the current holder of each mode's lock.
#[derive(Debug)]
pub struct LockExclusive {
    /// By mode: the holder's token and until when it may act (sim ms).
    holders: BTreeMap<String, (Uuid, u64)>,
}

impl LockExclusive {
    /// The check.
    pub fn new(_bounds: &Bounds) -> Self {
        Self {
            holders: BTreeMap::new(),
        }
    }
}

impl Check for LockExclusive {
    fn on_fact(&mut self, cx: &Cx<'_>, record: &FactRecord, out: &mut Findings<'_>) {
        match &record.fact {
            Fact::LockAcquired {
                mode,
                token,
                valid_ms,
            } => {
                out.checked(1);
                if let Some((holder, until)) = self.holders.get(mode)
                    && record.at_ms.saturating_add(cx.bounds.tick_ms) < *until
                {
                    out.violate(
                        record.at_ms,
                        format!("lock of {mode} taken by {token} while {holder} may act under it until {until} ms"),
                    );
                }
                let until = record.at_ms.saturating_add(*valid_ms);
                self.holders.insert(mode.clone(), (*token, until));
            }
            Fact::LockReleasing { mode, token } => {
                out.checked(1);
                if self
                    .holders
                    .get(mode)
                    .is_some_and(|(holder, _)| holder == token)
                {
                    self.holders.remove(mode);
                }
            }
            _ => {}
        }
    }
}
