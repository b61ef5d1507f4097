//! Prometheus metrics for one instance, rendered at `GET /metrics` by the
//! `prometheus-client` crate: one [`Registry`] per [`Metrics`], so the simulation's
//! instances in one process keep their own.
//!
//! Each family's series are kept sorted by label value (not in the crate's hash map), so
//! the exposition is in a stable order and a label lookup does not allocate.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::protocol::ErrorCode;

/// Content type of [`Metrics::render`]: the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// Content type of [`Metrics::render_openmetrics`], for scrapers that accept it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the allocation wait buckets: a healthy allocation takes
/// milliseconds; waiting for a free server lasts up to the allocation timeout (5 s by
/// default, configurable).
const ALLOCATION_WAIT_BUCKETS_S: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

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
    /// Game servers free to take a match, as the fleet index last counted them (gauge).
    FreeServers,
    /// Allocations finished, by outcome: `allocated` or the error code players got
    /// (counter, label `outcome`; see [`Metrics::allocation_finished`]).
    Allocations,
}

impl Family {
    /// Every family, in exposition order.
    const ALL: [Self; 15] = [
        Self::PlayersQueued,
        Self::LoadingSessions,
        Self::Connections,
        Self::ConnectionsRejected,
        Self::AuthRejected,
        Self::MatchesStarted,
        Self::MatchesCompleted,
        Self::Errors,
        Self::BadScriptReplies,
        Self::LockContention,
        Self::StoreErrors,
        Self::ClockErrors,
        Self::AssertionFailures,
        Self::FreeServers,
        Self::Allocations,
    ];

    /// The name samples carry (counters end in `_total`).
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
            Self::FreeServers => "match_free_servers",
            Self::Allocations => "match_allocations_total",
        }
    }

    /// The HELP text.
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
            Self::FreeServers => "Game servers free to take a match, as last counted.",
            Self::Allocations => "Game server allocations finished, by outcome.",
        }
    }

    /// Gauges go up and down; the rest are counters.
    fn is_gauge(self) -> bool {
        matches!(
            self,
            Self::PlayersQueued | Self::LoadingSessions | Self::Connections | Self::FreeServers
        )
    }

    /// The label that tells a family's series apart, if it has several.
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
            Self::Allocations => Some("outcome"),
            Self::Connections
            | Self::ConnectionsRejected
            | Self::ClockErrors
            | Self::FreeServers => None,
        }
    }
}

/// The series of one family, by label value, in label order; cheap to clone (shared).
#[derive(Debug)]
struct Series<M> {
    /// The label name; `None` for a family of one unlabelled series (kept under "").
    label: Option<&'static str>,
    /// The series by label value.
    values: Arc<RwLock<BTreeMap<String, M>>>,
    /// Makes the metric of a new label value.
    make: fn() -> M,
}

impl<M> Clone for Series<M> {
    fn clone(&self) -> Self {
        Self {
            label: self.label,
            values: self.values.clone(),
            make: self.make,
        }
    }
}

impl<M> Series<M> {
    /// A family without series: it is exported from its first update on (as before the
    /// move to prometheus-client; tests read "never touched" from its absence).
    fn new(label: Option<&'static str>, make: fn() -> M) -> Self {
        Self {
            label,
            values: Arc::new(RwLock::new(BTreeMap::new())),
            make,
        }
    }

    /// Applies `apply` to the series of `label`, created on first use. A poisoned lock
    /// (a panic elsewhere while it was held) drops the update: metrics never stop the
    /// service.
    fn with<T>(&self, label: &str, apply: impl Fn(&M) -> T) -> Option<T> {
        let label = self.key(label);
        if let Ok(values) = self.values.read()
            && let Some(metric) = values.get(label)
        {
            return Some(apply(metric));
        }
        let mut values = self.values.write().ok()?;
        let metric = values
            .entry(label.to_owned())
            .or_insert_with(|| (self.make)());
        Some(apply(metric))
    }

    /// Reads the series of `label` if it exists.
    fn read<T>(&self, label: &str, read: impl Fn(&M) -> T) -> Option<T> {
        self.values.read().ok()?.get(self.key(label)).map(read)
    }

    /// The key of `label`'s series: "" in an unlabelled family, whatever the caller passed.
    fn key<'l>(&self, label: &'l str) -> &'l str {
        if self.label.is_some() { label } else { "" }
    }
}

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Series<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let Ok(values) = self.values.read() else {
            return Ok(());
        };
        let Some(name) = self.label else {
            return match values.get("") {
                Some(metric) => metric.encode(encoder),
                None => Ok(()),
            };
        };
        for (value, metric) in values.iter() {
            metric.encode(encoder.encode_family(&[(name, value.as_str())])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    fn is_empty(&self) -> bool {
        self.values.read().map_or(true, |values| values.is_empty())
    }
}

/// A family's series, of its type.
#[derive(Debug)]
enum Entry {
    /// A counter family.
    Counter(Series<Counter>),
    /// A gauge family.
    Gauge(Series<Gauge>),
}

/// One instance's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Every family, registered for rendering.
    registry: Registry,
    /// The counter and gauge families, for updates by [`Family`].
    families: BTreeMap<Family, Entry>,
    /// Time from a fully loaded session to its allocation's result, by outcome.
    allocation_wait: Series<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut families = BTreeMap::new();
        for family in Family::ALL {
            // The crate adds `_total` to counters and a full stop to the help.
            let name = family.name().trim_end_matches("_total");
            let help = family.help().trim_end_matches('.');
            let entry = if family.is_gauge() {
                let series = Series::new(family.label(), Gauge::default);
                registry.register(name, help, series.clone());
                Entry::Gauge(series)
            } else {
                let series = Series::new(family.label(), Counter::default);
                registry.register(name, help, series.clone());
                Entry::Counter(series)
            };
            families.insert(family, entry);
        }
        let allocation_wait = Series::new(Some("outcome"), || {
            Histogram::new(ALLOCATION_WAIT_BUCKETS_S)
        });
        registry.register(
            "match_allocation_wait_seconds",
            "Time from a fully loaded session to its allocation's result, by outcome",
            allocation_wait.clone(),
        );
        Self {
            registry,
            families,
            allocation_wait,
        }
    }
}

impl Metrics {
    /// Adds `amount` to a counter or gauge (a counter ignores a negative amount: it only
    /// goes up).
    pub fn add(&self, family: Family, label: &str, amount: i64) {
        match self.families.get(&family) {
            Some(Entry::Counter(series)) => {
                let amount = u64::try_from(amount).unwrap_or(0);
                series.with(label, |counter| counter.inc_by(amount));
            }
            Some(Entry::Gauge(series)) => {
                series.with(label, |gauge| gauge.inc_by(amount));
            }
            None => {}
        }
    }

    /// Adds one to a counter.
    pub fn incr(&self, family: Family, label: &str) {
        self.add(family, label, 1);
    }

    /// Sets a gauge (a counter cannot be set, and is left as it is).
    pub fn set(&self, family: Family, label: &str, value: i64) {
        if let Some(Entry::Gauge(series)) = self.families.get(&family) {
            series.with(label, |gauge| gauge.set(value));
        }
    }

    /// The current value, for tests and the simulation's summary.
    pub fn get(&self, family: Family, label: &str) -> i64 {
        let value = match self.families.get(&family) {
            Some(Entry::Counter(series)) => series.read(label, |counter| {
                i64::try_from(counter.get()).unwrap_or(i64::MAX)
            }),
            Some(Entry::Gauge(series)) => series.read(label, Gauge::get),
            None => None,
        };
        value.unwrap_or(0)
    }

    /// Records a finished allocation of a fully loaded session: `failure` is the error
    /// code its players got (`None`: a game server was allocated), `wait` the time since
    /// the session was fully loaded (retries included).
    pub fn allocation_finished(&self, failure: Option<ErrorCode>, wait: Duration) {
        let outcome = failure.map_or("allocated", ErrorCode::as_str);
        self.incr(Family::Allocations, outcome);
        self.allocation_wait
            .with(outcome, |histogram| histogram.observe(wait.as_secs_f64()));
    }

    /// The Prometheus text exposition (format 0.0.4, [`PROMETHEUS_TEXT_CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics could not be rendered");
        }
        out
    }

    /// The OpenMetrics exposition, ending in `# EOF` ([`OPENMETRICS_CONTENT_TYPE`]).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics could not be rendered");
        }
        out
    }
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
        assert!(
            !text.contains(".."),
            "one full stop after the help:\n{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "no OpenMetrics terminator in 0.0.4 text"
        );
    }

    /// Goal: the OpenMetrics rendering names counter families without `_total`, keeps the
    /// suffix on samples, and ends with `# EOF` as the format requires.
    #[test]
    fn renders_openmetrics() {
        let metrics = Metrics::default();
        metrics.incr(Family::Errors, "queue_full");
        let text = metrics.render_openmetrics();
        assert!(text.contains("# TYPE match_errors counter\n"), "{text}");
        assert!(
            text.contains("match_errors_total{code=\"queue_full\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// Goal: series come out sorted by label value whatever the update order, a family
    /// appears with its first update, and label values are escaped.
    #[test]
    fn series_are_sorted_escaped_and_present() {
        let metrics = Metrics::default();
        let before = metrics.render();
        assert!(!before.contains("match_clock_errors_total"), "{before}");
        assert!(!before.contains("match_errors_total"), "{before}");
        metrics.incr(Family::ClockErrors, "");
        assert!(metrics.render().contains("\nmatch_clock_errors_total 1\n"));
        for code in ["b", "c", "a"] {
            metrics.incr(Family::Errors, code);
        }
        metrics.incr(Family::StoreErrors, "say \"hi\"\\");
        let text = metrics.render();
        let a = text.find("code=\"a\"").unwrap();
        let b = text.find("code=\"b\"").unwrap();
        let c = text.find("code=\"c\"").unwrap();
        assert!(a < b && b < c, "{text}");
        assert!(text.contains(r#"op="say \"hi\"\\""#), "{text}");
    }

    /// Goal: gauges go up, down and are set; counters ignore negative amounts and sets;
    /// two instances keep their own values (the simulation runs several in one process).
    #[test]
    fn values_are_per_instance() {
        let (one, two) = (Metrics::default(), Metrics::default());
        one.add(Family::Connections, "", 2);
        one.add(Family::Connections, "", -1);
        one.add(Family::MatchesStarted, "m", 3);
        one.add(Family::MatchesStarted, "m", -5);
        one.set(Family::MatchesStarted, "m", 0);
        one.set(Family::FreeServers, "", 42);
        assert_eq!(one.get(Family::Connections, ""), 1);
        assert_eq!(one.get(Family::MatchesStarted, "m"), 3);
        assert_eq!(one.get(Family::FreeServers, ""), 42);
        assert_eq!(two.get(Family::MatchesStarted, "m"), 0);
        assert!(one.render().contains("\nmatch_free_servers 42\n"));
        assert!(!two.render().contains("match_free_servers"));
    }

    /// Goal: a finished allocation counts under its outcome (`allocated` or the error code)
    /// and its wait lands in the histogram bucket of its duration.
    #[test]
    fn allocations_by_outcome_and_wait() {
        let metrics = Metrics::default();
        metrics.allocation_finished(None, Duration::from_millis(30));
        metrics.allocation_finished(None, Duration::from_millis(3));
        metrics.allocation_finished(Some(ErrorCode::NoServerAvailable), Duration::from_secs(5));
        assert_eq!(metrics.get(Family::Allocations, "allocated"), 2);
        assert_eq!(metrics.get(Family::Allocations, "no_server_available"), 1);
        let text = metrics.render();
        for sample in [
            "match_allocations_total{outcome=\"allocated\"} 2\n",
            "# TYPE match_allocation_wait_seconds histogram\n",
            "match_allocation_wait_seconds_bucket{outcome=\"allocated\",le=\"0.005\"} 1\n",
            "match_allocation_wait_seconds_bucket{outcome=\"allocated\",le=\"0.05\"} 2\n",
            "match_allocation_wait_seconds_count{outcome=\"allocated\"} 2\n",
            "match_allocation_wait_seconds_bucket{outcome=\"no_server_available\",le=\"2.5\"} 0\n",
            "match_allocation_wait_seconds_bucket{outcome=\"no_server_available\",le=\"5\"} 1\n",
        ] {
            assert!(text.contains(sample), "no {sample:?} in:\n{text}");
        }
    }
}
