//! The simulation's side of the probe seam: the service's facts, stamped with sim time and
//! the host that decided them, collected for the oracle (which then judges decisions, not
//! the wording of log lines).
//!
//! Some facts are judged against what Redis held at the very instant they were reported,
//! which only the simulation can see: a [`WitnessReader`] reads it from the fake Redis then
//! and attaches it to the record (who held the player's lease when a session acted; the
//! loading session, with its ready flags, when the service set out to end it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use match_server::probe::{Fact, Probe};
use uuid::Uuid;

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
    /// What Redis held for it at that instant, for the facts that are judged against it.
    pub witness: Option<Witness>,
}

/// What Redis held when a fact was reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Witness {
    /// For an act: the value of the player's lease key (the owner token of the session that
    /// holds it), `None` when there was no lease.
    LeaseHolder(Option<String>),
    /// For an attempt to end a loading session: the session as Redis held it, `None` when
    /// it was already gone (that attempt ended nothing). For a loading session created: the
    /// session right after its creation.
    Loading(Option<LoadingState>),
}

/// A loading session as Redis held it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadingState {
    /// Its players, in stored order.
    pub players: Vec<Uuid>,
    /// The players whose `loading_complete` took effect (ready flag `1`).
    pub ready: BTreeSet<Uuid>,
    /// Its deadline (unix ms of the clock of the instance that set it).
    pub deadline_ms: u64,
    /// Whether every player had loaded and a game server was being allocated.
    pub allocating: bool,
    /// For a session just created: the owner token of each player's entry as grouped (the
    /// session its `start_loading` and `match_found` are for). Empty where not read.
    pub owners: BTreeMap<Uuid, Uuid>,
}

/// Reads, from Redis, the witness of a fact at the instant it is reported.
pub trait WitnessReader: Send + Sync + fmt::Debug {
    /// The witness of `fact`, or `None` for a fact that is not judged against Redis.
    fn witness(&self, fact: &Fact) -> Option<Witness>;
}

/// Every fact of one run, in the order reported; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct FactLog {
    /// The records so far.
    records: Arc<Mutex<Vec<FactRecord>>>,
    /// Where witnesses are read from; none in unit tests.
    reader: Option<Arc<dyn WitnessReader>>,
}

impl FactLog {
    /// A log that attaches the witnesses `reader` reads.
    pub fn with_witnesses(reader: Arc<dyn WitnessReader>) -> Self {
        Self {
            records: Arc::default(),
            reader: Some(reader),
        }
    }

    /// The probe a server host reports through.
    pub fn probe(&self, host: &str) -> SimProbe {
        SimProbe {
            host: host.to_owned(),
            log: self.clone(),
        }
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<FactRecord> {
        self.records_from(0)
    }

    /// A copy of the records from position `from` on (the driver hands the oracle each
    /// record once).
    pub fn records_from(&self, from: usize) -> Vec<FactRecord> {
        self.records
            .lock()
            .map(|records| records.get(from..).unwrap_or_default().to_vec())
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
        if let Fact::AssertionFailed { check, detail } = &fact {
            crate::panics::assertion_failed(check, detail);
        }
        let witness = self
            .log
            .reader
            .as_ref()
            .and_then(|reader| reader.witness(&fact));
        self.log.push(FactRecord {
            at_ms: sim_elapsed_ms(),
            host: self.host.clone(),
            fact,
            witness,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use match_server::probe::Act;
    use uuid::Uuid;

    /// A reader that answers every act with a fixed lease holder.
    #[derive(Debug)]
    struct FixedHolder(Option<String>);

    impl WitnessReader for FixedHolder {
        fn witness(&self, fact: &Fact) -> Option<Witness> {
            matches!(fact, Fact::Acted { .. }).then(|| Witness::LeaseHolder(self.0.clone()))
        }
    }

    /// Goal: a fact is recorded with what the reader saw at that instant, and a fact the
    /// reader does not judge carries no witness.
    #[test]
    fn acts_carry_their_witness() {
        let log = FactLog::with_witnesses(Arc::new(FixedHolder(Some("holder".into()))));
        let probe = log.probe("server-0");
        let (player, owner) = (Uuid::from_u128(1), Uuid::from_u128(2));
        probe.record(Fact::Acted {
            player,
            owner,
            act: Act::ToldEnqueued,
        });
        probe.record(Fact::LockReleasing {
            mode: "m".into(),
            token: owner,
        });
        let records = log.records();
        assert_eq!(
            records[0].witness,
            Some(Witness::LeaseHolder(Some("holder".into())))
        );
        assert_eq!(records[1].witness, None);
    }
}
