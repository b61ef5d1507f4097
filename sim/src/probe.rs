//! The simulation's side of the probe seam: the service's facts, stamped with sim time and
//! the host that decided them, collected for the oracle (which then judges decisions, not
//! the wording of log lines).

use std::sync::{Arc, Mutex};

use match_server::probe::{Fact, Probe};

use crate::oracle::LockEvent;
use crate::seams::sim_elapsed_ms;

/// One fact as the oracle reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactRecord {
    /// Sim time in ms when the service reported it.
    pub at_ms: u64,
    /// The server host that decided it.
    pub host: String,
    /// What was decided.
    pub fact: Fact,
}

/// Every fact of one run, in the order reported; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FactLog {
    /// The records so far.
    records: Arc<Mutex<Vec<FactRecord>>>,
}

impl FactLog {
    /// The probe a server host reports through.
    pub fn probe(&self, host: &str) -> SimProbe {
        SimProbe {
            host: host.to_owned(),
            log: self.clone(),
        }
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<FactRecord> {
        self.records
            .lock()
            .map(|records| records.clone())
            .unwrap_or_default()
    }

    fn push(&self, record: FactRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }
}

/// The probe of one server host.
#[derive(Clone, Debug)]
pub struct SimProbe {
    /// The host's name, stamped on every fact.
    host: String,
    /// Where facts go.
    log: FactLog,
}

impl Probe for SimProbe {
    fn record(&self, fact: Fact) {
        self.log.push(FactRecord {
            at_ms: sim_elapsed_ms(),
            host: self.host.clone(),
            fact,
        });
    }
}

/// The lock acquisitions and releases of a run, in order, for invariant 6.
pub fn lock_events(records: &[FactRecord]) -> Vec<LockEvent> {
    records
        .iter()
        .filter_map(|record| match &record.fact {
            Fact::LockAcquired {
                mode,
                token,
                valid_ms,
            } => Some(LockEvent {
                at_ms: record.at_ms,
                mode: mode.clone(),
                token: token.to_string(),
                acquired_valid_ms: Some(*valid_ms),
            }),
            Fact::LockReleasing { mode, token } => Some(LockEvent {
                at_ms: record.at_ms,
                mode: mode.clone(),
                token: token.to_string(),
                acquired_valid_ms: None,
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// Goal: the lock check sees exactly the acquisitions and releases the service reported,
    /// with their host, validity and token, in order.
    #[test]
    fn lock_facts_become_lock_events() {
        let log = FactLog::default();
        let probe = log.probe("server-1");
        let token = Uuid::from_u128(7);
        probe.record(Fact::LockAcquired {
            mode: "m".into(),
            token,
            valid_ms: 1_800,
        });
        probe.record(Fact::LockReleasing {
            mode: "m".into(),
            token,
        });
        let records = log.records();
        assert!(records.iter().all(|r| r.host == "server-1"));
        let events = lock_events(&records);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].acquired_valid_ms, Some(1_800));
        assert_eq!(events[0].token, token.to_string());
        assert_eq!(events[1].acquired_valid_ms, None);
        assert_eq!(events[1].mode, "m");
    }
}
