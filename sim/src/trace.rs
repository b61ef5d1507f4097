//! The event log of one run: the service's own tracing events (captured by a tracing
//! [`Layer`] and stamped with sim time and host), plus client and world events.
//!
//! It renders to canonical text (ids replaced by stable aliases) for replay output and insta
//! snapshots, and hashes to one number for the determinism check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::flow::{self, Flow, FlowKind, Lane, Reply as FlowReply, Structured};
use crate::seams::sim_elapsed_ms;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The service code, through tracing, at this level.
    Service(LevelName),
    /// A simulated player: what it sent, received or did.
    Client,
    /// The world: faults, partitions, crashes, heal.
    World,
    /// The oracle: a violated invariant.
    Oracle,
}

/// A tracing level, orderable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LevelName {
    /// ERROR.
    Error,
    /// WARN.
    Warn,
    /// INFO.
    Info,
    /// DEBUG.
    Debug,
    /// TRACE.
    Trace,
}

impl LevelName {
    fn from_level(level: Level) -> Self {
        match level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Warn => "WARN ",
            Self::Info => "INFO ",
            Self::Debug => "DEBUG",
            Self::Trace => "TRACE",
        }
    }
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Sim time in milliseconds.
    pub at_ms: u64,
    /// The host it happened on (`server-0`, `client-1`, or `world`).
    pub host: String,
    /// Where it came from.
    pub source: Source,
    /// The message and its fields, `message key=value ...`.
    pub text: String,
}

/// The shared log of one run; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct TraceLog {
    /// Events in the order they happened.
    events: Arc<Mutex<Vec<TraceEvent>>>,
    /// Structured events for the HTML timeline, when the run records them (`None`: every
    /// structured hook returns at once).
    structured: Option<Arc<Mutex<Structured>>>,
}

impl TraceLog {
    /// A log that also records structured events (arrows, fault windows) for the HTML
    /// timeline; the text events and their hash are the same either way.
    pub fn with_structure() -> Self {
        Self {
            events: Arc::default(),
            structured: Some(Arc::default()),
        }
    }

    /// Whether structured events are recorded.
    pub fn is_structured(&self) -> bool {
        self.structured.is_some()
    }

    /// Runs `record` on the structured events, if they are recorded; `make` is only called
    /// then, so a hook costs one branch in a campaign.
    pub fn structure<R>(&self, record: impl FnOnce(&mut Structured) -> R) -> Option<R> {
        let structured = self.structured.as_ref()?;
        let mut guard = structured.lock().ok()?;
        Some(record(&mut guard))
    }

    /// Records a structured flow built by `make`, if structured events are recorded;
    /// returns its index for [`answer`](Self::answer).
    pub fn flow(&self, make: impl FnOnce() -> Flow) -> Option<usize> {
        self.structure(|structured| structured.push(make()))
    }

    /// Records the answer to the call `index` returned by [`flow`](Self::flow).
    pub fn answer(&self, index: Option<usize>, make: impl FnOnce() -> FlowReply) {
        if let Some(index) = index {
            self.structure(|structured| structured.answer(index, make()));
        }
    }

    /// A player connected to `server`: an arrow, and its later frames go to that server.
    pub fn player_connected(&self, player: usize, server: &str) {
        self.structure(|structured| {
            structured.peers.insert(player, server.to_owned());
            structured.push(flow::flow(
                sim_elapsed_ms(),
                FlowKind::Connect,
                Lane::Player(player),
                Some(Lane::Server(server.to_owned())),
                format!("P{player} connects to {server}"),
            ));
        });
    }

    /// A frame (or close) between a player and the server of its current connection, of
    /// `kind` (`FrameOut`: the server sent it); `text` says what it was. The ids it names
    /// are found in the text.
    pub fn player_frame(&self, player: usize, kind: FlowKind, text: impl FnOnce() -> String) {
        self.structure(|structured| {
            let peer = structured
                .peers
                .get(&player)
                .map_or(Lane::World, |server| Lane::Server(server.clone()));
            let text = text();
            let (from, to) = match kind {
                FlowKind::FrameOut => (peer, Lane::Player(player)),
                FlowKind::Close if text.contains("closed by server") => {
                    (peer, Lane::Player(player))
                }
                _ => (Lane::Player(player), peer),
            };
            let mut flow = flow::flow(sim_elapsed_ms(), kind, from, Some(to), text);
            flow.ids = flow::uuids_in(&flow.text);
            structured.push(flow);
        });
    }

    /// The structured events so far (empty when not recorded).
    pub fn structured(&self) -> Structured {
        self.structure(|structured| structured.clone())
            .unwrap_or_default()
    }

    /// Appends an event.
    pub fn push(&self, event: TraceEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    /// Appends a client or world event at the current sim time.
    pub fn note(&self, host: &str, source: Source, text: String) {
        self.push(TraceEvent {
            at_ms: sim_elapsed_ms(),
            host: host.to_owned(),
            source,
            text,
        });
    }

    /// Appends an event at an explicit sim time (the world driver runs outside any host).
    pub fn note_at(&self, at_ms: u64, host: &str, source: Source, text: String) {
        self.push(TraceEvent {
            at_ms,
            host: host.to_owned(),
            source,
            text,
        });
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events
            .lock()
            .map(|events| events.clone())
            .unwrap_or_default()
    }

    /// How many events were logged.
    pub fn len(&self) -> usize {
        self.events.lock().map(|events| events.len()).unwrap_or(0)
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Renders events as canonical text: one line each, ids replaced by aliases.
pub fn render(
    events: &[TraceEvent],
    aliases: &mut Aliases,
    keep: impl Fn(&TraceEvent) -> bool,
) -> String {
    let mut out = String::new();
    for event in events.iter().filter(|event| keep(event)) {
        let tag = match event.source {
            Source::Service(level) => level.tag(),
            Source::Client => "CLIENT",
            Source::World => "WORLD",
            Source::Oracle => "ORACLE",
        };
        let seconds = event.at_ms / 1_000;
        let millis = event.at_ms % 1_000;
        let text = aliases.apply(&event.text);
        let _ = writeln!(
            out,
            "{seconds:>4}.{millis:03}s {:<9} {tag:<6} {text}",
            event.host
        );
    }
    out
}

/// FNV-1a over the rendered log with every event kept: equal logs give equal hashes.
pub fn hash(events: &[TraceEvent]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for event in events {
        let line = format!(
            "{}|{}|{:?}|{}\n",
            event.at_ms, event.host, event.source, event.text
        );
        for byte in line.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Replaces UUIDs by stable names: known players by `P<n>`, any other id by `#<n>` in order
/// of first appearance.
#[derive(Clone, Debug, Default)]
pub struct Aliases {
    /// Names given so far.
    names: BTreeMap<String, String>,
    /// The next `#<n>`.
    next: usize,
}

impl Aliases {
    /// Names the players of a scenario `P0`, `P1`, ...
    pub fn with_players(players: impl IntoIterator<Item = uuid::Uuid>) -> Self {
        let names = players
            .into_iter()
            .enumerate()
            .map(|(index, id)| (id.to_string(), format!("P{index}")))
            .collect();
        Self { names, next: 1 }
    }

    /// The text with every UUID replaced by its alias.
    pub fn apply(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = find_uuid(rest) {
            let (before, after) = rest.split_at(start);
            out.push_str(before);
            let (id, tail) = after.split_at(UUID_LEN);
            out.push_str(&self.alias(id));
            rest = tail;
        }
        out.push_str(rest);
        out
    }

    fn alias(&mut self, id: &str) -> String {
        if let Some(name) = self.names.get(id) {
            return name.clone();
        }
        let name = format!("#{}", self.next);
        self.next += 1;
        self.names.insert(id.to_owned(), name.clone());
        name
    }
}

/// Length of a hyphenated UUID.
const UUID_LEN: usize = 36;

/// Byte offset of the first hyphenated UUID in `text`.
pub(crate) fn find_uuid(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let is_uuid = |window: &[u8]| {
        window.len() == UUID_LEN
            && window.iter().enumerate().all(|(index, byte)| match index {
                8 | 13 | 18 | 23 => *byte == b'-',
                _ => byte.is_ascii_hexdigit(),
            })
    };
    (0..bytes.len().saturating_sub(UUID_LEN - 1))
        .find(|&start| bytes.get(start..start + UUID_LEN).is_some_and(is_uuid))
}

/// Captures service events into a [`TraceLog`], stamped with sim time and host name.
/// Which events reach it is up to the filter it is installed with.
pub struct CaptureLayer {
    /// Where events go.
    log: TraceLog,
}

impl CaptureLayer {
    /// A layer writing to `log`.
    pub fn new(log: TraceLog) -> Self {
        Self { log }
    }
}

/// The host name turmoil attaches to its `node` span.
struct NodeName(String);

/// A span's name and fields, rendered at creation and extended when fields are recorded.
struct SpanText {
    /// The span's name.
    name: &'static str,
    /// `key=value` pairs.
    fields: String,
}

/// Collects an event's or span's fields as `key=value` text.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
    node: Option<String>,
}

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "name" => {
                self.node = Some(value.to_owned());
                let _ = write!(self.fields, " name={value}");
            }
            name => {
                let _ = write!(self.fields, " {name}={value}");
            }
        }
    }
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = FieldText::default();
        attrs.record(&mut visitor);
        let mut extensions = span.extensions_mut();
        if attrs.metadata().name() == "node" {
            extensions.insert(NodeName(visitor.node.unwrap_or_default()));
        } else {
            extensions.insert(SpanText {
                name: attrs.metadata().name(),
                fields: visitor.fields.trim().to_owned(),
            });
        }
    }

    /// Fields recorded after creation (a session learns its player) join the span's text.
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = FieldText::default();
        values.record(&mut visitor);
        let mut extensions = span.extensions_mut();
        if let Some(text) = extensions.get_mut::<SpanText>() {
            text.fields = format!("{}{}", text.fields, visitor.fields)
                .trim()
                .to_owned();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target().starts_with("turmoil") {
            return;
        }
        let level = *event.metadata().level();
        let mut visitor = FieldText::default();
        event.record(&mut visitor);
        let mut host = String::from("world");
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(NodeName(name)) = extensions.get::<NodeName>() {
                    host.clone_from(name);
                } else if let Some(text) = extensions.get::<SpanText>() {
                    spans.push(format!("{}{{{}}}", text.name, text.fields));
                }
            }
        }
        let prefix = if spans.is_empty() {
            String::new()
        } else {
            format!("{}: ", spans.join(":"))
        };
        let text = format!("{prefix}{}{}", visitor.message, visitor.fields);
        self.log.push(TraceEvent {
            at_ms: sim_elapsed_ms(),
            host,
            source: Source::Service(LevelName::from_level(level)),
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: ids render as stable aliases, players by index, others by first appearance.
    #[test]
    fn aliases_replace_uuids() {
        let player = uuid::Uuid::from_u128(1);
        let other = "6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a11";
        let mut aliases = Aliases::with_players([player]);
        let text = format!("player={player} loading={other} again={other}");
        assert_eq!(aliases.apply(&text), "player=P0 loading=#1 again=#1");
        assert_eq!(aliases.apply("no ids here"), "no ids here");
    }

    /// Goal: the hash changes when any event changes, and not otherwise.
    #[test]
    fn hash_is_sensitive_and_stable() {
        let event = |text: &str| TraceEvent {
            at_ms: 5,
            host: "server-0".into(),
            source: Source::World,
            text: text.into(),
        };
        assert_eq!(hash(&[event("a")]), hash(&[event("a")]));
        assert_ne!(hash(&[event("a")]), hash(&[event("b")]));
    }
}
