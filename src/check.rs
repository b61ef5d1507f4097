//! Assertions that stay on in release builds and never panic (TigerBeetle's assertions, for
//! a service that must keep serving): [`check!`](crate::check!) tests a relation the design
//! relies on; when it is broken, the service logs an error, counts it in
//! `match_assertion_failures_total{check}` and reports [`Fact::AssertionFailed`] through the
//! probe seam, which the simulation counts as a violation. The caller then goes on with the
//! safe path it would take for a bad reply or an unexpected state.
//!
//! Relations between compile-time constants are `const` assertions next to the constants
//! (see [`limits`](crate::limits)); relations that involve configuration are validated at
//! start-up ([`Settings::validate`](crate::config::Settings::validate)).

use std::sync::Arc;

use crate::metrics::{Family, Metrics};
use crate::probe::{Fact, Probe};

/// Where broken relations are reported: the instance's metrics and probe.
#[derive(Clone)]
pub struct Checks {
    /// Counts failures by check name.
    metrics: Arc<Metrics>,
    /// Reports each failure as a fact (the simulation's oracle counts it).
    probe: Arc<dyn Probe>,
}

impl Checks {
    /// Reports to `metrics` and `probe`.
    pub fn new(metrics: Arc<Metrics>, probe: Arc<dyn Probe>) -> Self {
        Self { metrics, probe }
    }

    /// Reports that the relation `check` is broken; `detail` says how.
    pub fn failed(&self, check: &'static str, detail: String) {
        self.metrics.incr(Family::AssertionFailures, check);
        tracing::error!(check, %detail, "assertion failed");
        self.probe.record(Fact::AssertionFailed { check, detail });
    }
}

/// `check!(checks, "name", condition, "detail {}", args...)`: evaluates `condition`; when it
/// is false, reports the check `name` as failed through `checks` (a [`Checks`]) with the
/// formatted detail. Evaluates to the condition, so the caller can take its safe path.
#[macro_export]
macro_rules! check {
    ($checks:expr, $name:expr, $condition:expr, $($detail:tt)+) => {{
        let holds: bool = $condition;
        if !holds {
            $checks.failed($name, format!($($detail)+));
        }
        holds
    }};
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records facts, for the test.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Fact>>);

    impl Probe for Recorder {
        fn record(&self, fact: Fact) {
            if let Ok(mut facts) = self.0.lock() {
                facts.push(fact);
            }
        }
    }

    /// Goal: a holding relation reports nothing; a broken one is counted by name, reported
    /// as a fact with its detail, and never panics; both evaluate to the condition.
    #[test]
    fn a_broken_relation_is_counted_and_reported() {
        let metrics = Arc::new(Metrics::default());
        let recorder = Arc::new(Recorder::default());
        let checks = Checks::new(metrics.clone(), recorder.clone());
        assert!(crate::check!(checks, "sizes_match", 2 + 2 == 4, "fine"));
        assert!(recorder.0.lock().unwrap().is_empty());
        let size = 3;
        assert!(!crate::check!(
            checks,
            "sizes_match",
            size == 4,
            "size {size}"
        ));
        let facts = recorder.0.lock().unwrap().clone();
        assert_eq!(
            facts,
            vec![Fact::AssertionFailed {
                check: "sizes_match",
                detail: "size 3".to_owned()
            }]
        );
        let text = metrics.render();
        assert!(
            text.contains("match_assertion_failures_total{check=\"sizes_match\"} 1"),
            "{text}"
        );
    }
}
