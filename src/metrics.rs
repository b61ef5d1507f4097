//! Prometheus metrics for one instance, rendered as text at `GET /metrics`.
//!
//! Hand-rolled on purpose: a few counters and gauges, owned per instance (the simulation
//! runs several instances in one process), rendered in a stable order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Every metric family the service exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Players waiting per mode (gauge, label `mode`).
    PlayersQueued,
    /// Loading sessions open per mode (gauge, label `mode`).
    LoadingSessions,
    /// Open client connections (gauge).
    Connections,
    /// Connections refused at the cap (counter).
    ConnectionsRejected,
    /// WebSocket upgrades refused for their player token (counter, label `reason`).
    AuthRejected,
    /// Loading sessions created per mode (counter, label `mode`).
    MatchesStarted,
    /// Matches that got a game server per mode (counter, label `mode`).
    MatchesCompleted,
    /// Error frames sent per code (counter, label `code`).
    Errors,
    /// Script replies that failed to parse per script (counter, label `script`).
    BadScriptReplies,
    /// Match rounds that found the mode's lock taken (counter, label `mode`).
    LockContention,
    /// Redis commands that failed per operation (counter, label `op`).
    StoreErrors,
    /// Unix time reads that failed (counter).
    ClockErrors,
    /// Relations the design relies on that were found broken (counter, label `check`; see
    /// [`check!`](crate::check!)).
    AssertionFailures,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::PlayersQueued => "match_players_queued",
            Self::LoadingSessions => "match_loading_sessions",
            Self::Connections => "match_connections",
            Self::ConnectionsRejected => "match_connections_rejected_total",
            Self::AuthRejected => "match_auth_rejected_total",
            Self::MatchesStarted => "match_matches_started_total",
            Self::MatchesCompleted => "match_matches_completed_total",
            Self::Errors => "match_errors_total",
            Self::BadScriptReplies => "match_bad_script_replies_total",
            Self::LockContention => "match_lock_contention_total",
            Self::StoreErrors => "match_store_errors_total",
            Self::ClockErrors => "match_clock_errors_total",
            Self::AssertionFailures => "match_assertion_failures_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Self::PlayersQueued => "Players waiting in the queue of a game mode.",
            Self::LoadingSessions => "Loading sessions open for a game mode.",
            Self::Connections => "Open client connections on this instance.",
            Self::ConnectionsRejected => "Connections refused because the instance was full.",
            Self::AuthRejected => "Upgrades refused for a missing, invalid or expired token.",
            Self::MatchesStarted => "Loading sessions created.",
            Self::MatchesCompleted => "Matches that received a game server.",
            Self::Errors => "Error frames sent to clients, by code.",
            Self::BadScriptReplies => "Script replies that could not be parsed.",
            Self::LockContention => "Match rounds skipped because another holder had the lock.",
            Self::StoreErrors => "Redis commands that failed, by operation.",
            Self::ClockErrors => "Failed reads of the unix time.",
            Self::AssertionFailures => "Broken relations the design relies on, by check.",
        }
    }

    fn is_gauge(self) -> bool {
        matches!(
            self,
            Self::PlayersQueued | Self::LoadingSessions | Self::Connections
        )
    }

    fn label(self) -> Option<&'static str> {
        match self {
            Self::PlayersQueued
            | Self::LoadingSessions
            | Self::MatchesStarted
            | Self::MatchesCompleted
            | Self::LockContention => Some("mode"),
            Self::Errors => Some("code"),
            Self::BadScriptReplies => Some("script"),
            Self::StoreErrors => Some("op"),
            Self::AuthRejected => Some("reason"),
            Self::AssertionFailures => Some("check"),
            Self::Connections | Self::ConnectionsRejected | Self::ClockErrors => None,
        }
    }
}

/// One instance's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Values by family and label value (empty for unlabelled families).
    values: Mutex<BTreeMap<(Family, String), i64>>,
}

impl Metrics {
    /// Adds `amount` to a counter or gauge.
    pub fn add(&self, family: Family, label: &str, amount: i64) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry((family, label.to_owned())).or_insert(0) += amount;
        }
    }

    /// Adds one to a counter.
    pub fn incr(&self, family: Family, label: &str) {
        self.add(family, label, 1);
    }

    /// Sets a gauge.
    pub fn set(&self, family: Family, label: &str, value: i64) {
        if let Ok(mut values) = self.values.lock() {
            values.insert((family, label.to_owned()), value);
        }
    }

    /// The current value, for tests and the simulation's summary.
    pub fn get(&self, family: Family, label: &str) -> i64 {
        self.values
            .lock()
            .ok()
            .and_then(|values| values.get(&(family, label.to_owned())).copied())
            .unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let Ok(values) = self.values.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let mut previous: Option<Family> = None;
        for ((family, label), value) in values.iter() {
            if previous != Some(*family) {
                let kind = if family.is_gauge() {
                    "gauge"
                } else {
                    "counter"
                };
                let _ = writeln!(out, "# HELP {} {}", family.name(), family.help());
                let _ = writeln!(out, "# TYPE {} {kind}", family.name());
                previous = Some(*family);
            }
            match family.label() {
                Some(name) => {
                    let _ = writeln!(
                        out,
                        "{}{{{name}=\"{}\"}} {value}",
                        family.name(),
                        escape(label)
                    );
                }
                None => {
                    let _ = writeln!(out, "{} {value}", family.name());
                }
            }
        }
        out
    }
}

/// Escapes a label value for the text exposition format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the exposition names each family once with HELP/TYPE and labels its samples.
    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.incr(Family::MatchesStarted, "Normal_1v1");
        metrics.incr(Family::MatchesStarted, "Normal_1v1");
        metrics.set(Family::Connections, "", 3);
        let text = metrics.render();
        assert!(text.contains("# TYPE match_matches_started_total counter"));
        assert!(text.contains("match_matches_started_total{mode=\"Normal_1v1\"} 2"));
        assert!(text.contains("# TYPE match_connections gauge\nmatch_connections 3"));
        assert_eq!(
            text.matches("# HELP match_matches_started_total").count(),
            1
        );
    }
}
