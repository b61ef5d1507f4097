//! One run as a self-contained HTML timeline (`replay --html`): a lane per player, per
//! server instance, for Redis and for the allocator; frames, script calls, pub/sub notices
//! and allocations as arrows coloured by kind; fault windows as shaded bands over the lanes
//! they hit; crashes and restarts marked; each violation as a red marker with the events it
//! names highlighted. The page needs no network: its data, style and script are inline.
//!
//! - this file: the page's data, built from a [`RunReport`] recorded with structure.
//! - `page.html`: the page (style and script) the data is poured into.

use serde::Serialize;
use uuid::Uuid;

use crate::campaign::render_replay;
use crate::flow::{Flow, FlowKind, Lane, Window, WindowKind, uuids_in};
use crate::trace::{Aliases, LevelName, Source, TraceEvent};
use crate::world::RunReport;

/// The page; `/*TIMELINE_DATA*/` is replaced by the data.
const PAGE: &str = include_str!("page.html");

/// The placeholder in [`PAGE`].
const DATA_PLACEHOLDER: &str = "/*TIMELINE_DATA*/null";

/// Everything the page draws.
#[derive(Debug, Serialize)]
struct Data {
    /// The page's title.
    title: String,
    /// replay's header lines (scenario and players).
    header: Vec<String>,
    /// `PASS` or `FAIL`.
    verdict: String,
    /// The last sim time drawn (ms).
    end_ms: u64,
    /// The lanes, top to bottom.
    lanes: Vec<LaneData>,
    /// Text events as dots on their lane.
    events: Vec<EventData>,
    /// Arrows and markers.
    flows: Vec<FlowData>,
    /// Shaded fault windows.
    windows: Vec<WindowData>,
    /// Violations, as red markers.
    violations: Vec<ViolationData>,
}

/// One lane.
#[derive(Debug, Serialize)]
struct LaneData {
    /// Short name (`P0`, `server-1`, `redis`).
    name: String,
    /// What the lane's label says (`P0 flood`).
    label: String,
    /// What it is (`player`, `server`, `redis`, `allocator`, `world`).
    kind: &'static str,
    /// What the label's hover says.
    detail: String,
}

/// A text event.
#[derive(Debug, Serialize)]
struct EventData {
    /// Sim time (ms).
    t: u64,
    /// Lane index.
    lane: usize,
    /// `error`, `warn`, `info`, `debug`, `client`, `world` or `oracle`.
    kind: &'static str,
    /// The full line, aliased.
    text: String,
    /// Aliases of the ids it names.
    ids: Vec<String>,
}

/// An arrow (or marker).
#[derive(Debug, Serialize)]
struct FlowData {
    /// Sim time sent (ms).
    t: u64,
    /// Sender lane.
    from: usize,
    /// Receiver lanes (several for a client host); empty for a marker.
    to: Option<usize>,
    /// Its kind (colour).
    kind: FlowKind,
    /// Full text, aliased.
    text: String,
    /// Aliases of the ids it names.
    ids: Vec<String>,
    /// The answer of a call.
    reply: Option<ReplyData>,
}

/// A call's answer.
#[derive(Debug, Serialize)]
struct ReplyData {
    /// Sim time (ms).
    t: u64,
    /// Full text, aliased.
    text: String,
    /// Whether it was an error.
    error: bool,
}

/// A fault window.
#[derive(Debug, Serialize)]
struct WindowData {
    /// Start (ms).
    from: u64,
    /// End (ms).
    to: u64,
    /// Lane indexes it shades.
    lanes: Vec<usize>,
    /// Its kind (colour).
    kind: WindowKind,
    /// Hover text.
    label: String,
}

/// A violation.
#[derive(Debug, Serialize)]
struct ViolationData {
    /// Sim time (ms).
    t: u64,
    /// Full text, aliased.
    text: String,
    /// Aliases of the ids it names.
    ids: Vec<String>,
}

/// The HTML page of `report` (recorded with `RunConfig::structured` for arrows and bands;
/// without, the page still shows the text events and violations).
pub fn render(report: &RunReport) -> String {
    let data = build(report);
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "null".to_owned());
    // Inside a <script> element, "</" would end it early.
    let json = json.replace("</", "<\\/");
    PAGE.replacen(DATA_PLACEHOLDER, &json, 1)
}

/// Builds the page's data. Aliases are handed out in `replay`'s order (trace, then
/// verdict) so the page and the text timeline call every id by the same name.
fn build(report: &RunReport) -> Data {
    let scenario = &report.scenario;
    let mut aliases = Aliases::with_players(scenario.player_ids());
    let lanes = Lanes::of(report);
    let events: Vec<EventData> = report
        .trace
        .iter()
        .filter(|event| kept(event))
        .map(|event| event_data(event, &lanes, &mut aliases))
        .collect();
    let violations = report
        .violations
        .iter()
        .map(|violation| {
            let text = violation.to_string();
            ViolationData {
                t: violation.at_ms,
                ids: names(&uuids_in(&text), &mut aliases),
                text: aliases.apply(&text),
            }
        })
        .collect();
    let flows = report
        .structured
        .flows
        .iter()
        .filter_map(|flow| flow_data(flow, &lanes, &mut aliases))
        .collect();
    let end_ms = report.sim_ms.max(1);
    let mut windows: Vec<WindowData> = report
        .structured
        .windows
        .iter()
        .map(|window| window_data(window, &lanes, end_ms))
        .collect();
    windows.extend(scenario_windows(report, &lanes));
    let text = render_replay(report, false);
    let header: Vec<String> = text
        .lines()
        .take(1 + scenario.players.len())
        .map(str::to_owned)
        .collect();
    Data {
        title: header.first().cloned().unwrap_or_default(),
        header,
        verdict: if report.passed() { "PASS" } else { "FAIL" }.to_owned(),
        end_ms,
        lanes: lanes.data,
        events,
        flows,
        windows,
        violations,
    }
}

/// Whether `replay` (not verbose) shows the event.
fn kept(event: &TraceEvent) -> bool {
    !matches!(
        event.source,
        Source::Service(LevelName::Debug | LevelName::Trace)
    )
}

/// The aliases of `ids`.
fn names(ids: &[Uuid], aliases: &mut Aliases) -> Vec<String> {
    let mut names: Vec<String> = ids
        .iter()
        .map(|id| aliases.apply(&id.to_string()))
        .collect();
    names.dedup();
    names
}

fn event_data(event: &TraceEvent, lanes: &Lanes, aliases: &mut Aliases) -> EventData {
    let (lane, kind) = match event.source {
        Source::Client => (lanes.player_of_text(&event.text), "client"),
        Source::World => (lanes.world, "world"),
        Source::Oracle => (lanes.world, "oracle"),
        Source::Service(level) => (
            lanes.server(&event.host).unwrap_or(lanes.world),
            match level {
                LevelName::Error => "error",
                LevelName::Warn => "warn",
                LevelName::Info => "info",
                LevelName::Debug | LevelName::Trace => "debug",
            },
        ),
    };
    let mut ids = names(&uuids_in(&event.text), aliases);
    if let Some(name) = lanes.data.get(lane).filter(|l| l.kind == "player") {
        ids.push(name.name.clone());
    }
    EventData {
        t: event.at_ms,
        lane,
        kind,
        text: format!("{} {}", event.host, aliases.apply(&event.text)),
        ids,
    }
}

fn flow_data(flow: &Flow, lanes: &Lanes, aliases: &mut Aliases) -> Option<FlowData> {
    let from = lanes.index(&flow.from)?;
    let to = match &flow.to {
        Some(lane) => Some(lanes.index(lane)?),
        None => None,
    };
    let mut ids = names(&flow.ids, aliases);
    if let Some(reply) = &flow.reply {
        ids.extend(names(&uuids_in(&reply.text), aliases));
    }
    for lane in [Some(from), to].into_iter().flatten() {
        if let Some(data) = lanes.data.get(lane).filter(|l| l.kind == "player") {
            ids.push(data.name.clone());
        }
    }
    Some(FlowData {
        t: flow.at_ms,
        from,
        to,
        kind: flow.kind,
        text: aliases.apply(&flow.text),
        ids,
        reply: flow.reply.as_ref().map(|reply| ReplyData {
            t: reply.at_ms,
            text: aliases.apply(&reply.text),
            error: reply.error,
        }),
    })
}

fn window_data(window: &Window, lanes: &Lanes, end_ms: u64) -> WindowData {
    WindowData {
        from: window.from_ms,
        to: window.to_ms.unwrap_or(end_ms),
        lanes: window
            .lanes
            .iter()
            .flat_map(|lane| lanes.expand(lane))
            .collect(),
        kind: window.kind,
        label: window.label.clone(),
    }
}

/// Windows the scenario implies: Redis and the allocator inject faults at random until the
/// world heals.
fn scenario_windows(report: &RunReport, lanes: &Lanes) -> Vec<WindowData> {
    let scenario = &report.scenario;
    let heal_ms = u64::from(scenario.fault_phase_ms).min(report.sim_ms.max(1));
    let kinds = scenario.fault_kinds();
    let mut windows = Vec::new();
    for (prefix, kind, lane) in [
        ("redis_", WindowKind::RedisFaults, lanes.redis),
        ("alloc_", WindowKind::AllocatorFaults, lanes.allocator),
    ] {
        let on: Vec<&str> = kinds
            .iter()
            .copied()
            .filter(|k| k.starts_with(prefix) && *k != "scheduled_redis_fault")
            .collect();
        if !on.is_empty() {
            windows.push(WindowData {
                from: 0,
                to: heal_ms,
                lanes: vec![lane],
                kind,
                label: format!("random faults until the world heals: {}", on.join(", ")),
            });
        }
    }
    windows
}

/// The lanes of a run and how structured lanes map to them.
struct Lanes {
    /// Lane data in order.
    data: Vec<LaneData>,
    /// Index of the world lane.
    world: usize,
    /// Index of the Redis lane.
    redis: usize,
    /// Index of the allocator lane.
    allocator: usize,
    /// Index of the first player lane.
    first_player: usize,
    /// Index of the first server lane.
    first_server: usize,
    /// Each player's client host.
    player_hosts: Vec<String>,
}

impl Lanes {
    fn of(report: &RunReport) -> Self {
        let scenario = &report.scenario;
        let text = render_replay(report, false);
        let mut data = vec![LaneData {
            name: "world".into(),
            label: "world".into(),
            kind: "world",
            detail: "the world: heal, rest, events without a better lane".into(),
        }];
        let hosts = usize::from(scenario.client_hosts.max(1));
        let mut player_hosts = Vec::new();
        for (index, player) in scenario.players.iter().enumerate() {
            let host = format!("client-{}", usize::from(player.host) % hosts);
            let detail = text
                .lines()
                .nth(1 + index)
                .map(str::trim)
                .unwrap_or_default();
            data.push(LaneData {
                name: format!("P{index}"),
                label: format!("P{index} {}", player.behavior.name()),
                kind: "player",
                detail: format!("{detail} (on {host})"),
            });
            player_hosts.push(host);
        }
        let first_server = data.len();
        for index in 0..usize::from(scenario.servers.max(1)) {
            data.push(LaneData {
                name: format!("server-{index}"),
                label: format!("server-{index}"),
                kind: "server",
                detail: format!("match-server instance server-{index}"),
            });
        }
        let redis = data.len();
        data.push(LaneData {
            name: "redis".into(),
            label: "redis".into(),
            kind: "redis",
            detail: "the shared Redis (fake, running the service's Lua scripts)".into(),
        });
        data.push(LaneData {
            name: "allocator".into(),
            label: "allocator".into(),
            kind: "allocator",
            detail: "the game-server allocator".into(),
        });
        Self {
            data,
            world: 0,
            redis,
            allocator: redis + 1,
            first_player: 1,
            first_server,
            player_hosts,
        }
    }

    fn server(&self, host: &str) -> Option<usize> {
        let index: usize = host.strip_prefix("server-")?.parse().ok()?;
        let lane = self.first_server + index;
        (lane < self.redis).then_some(lane)
    }

    /// The lane of a client event (its text starts with `P<index> `).
    fn player_of_text(&self, text: &str) -> usize {
        text.strip_prefix('P')
            .and_then(|rest| rest.split([' ', '(']).next())
            .and_then(|index| index.parse::<usize>().ok())
            .map(|index| self.first_player + index)
            .filter(|lane| *lane < self.first_server)
            .unwrap_or(self.world)
    }

    fn index(&self, lane: &Lane) -> Option<usize> {
        match lane {
            Lane::Player(index) => {
                Some(self.first_player + index).filter(|l| *l < self.first_server)
            }
            Lane::Server(host) => self.server(host),
            Lane::Redis => Some(self.redis),
            Lane::Allocator => Some(self.allocator),
            Lane::World | Lane::ClientHost(_) => Some(self.world),
        }
    }

    /// The lanes a structured lane covers (a client host: its players).
    fn expand(&self, lane: &Lane) -> Vec<usize> {
        match lane {
            Lane::ClientHost(host) => self
                .player_hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| *h == host)
                .map(|(index, _)| self.first_player + index)
                .collect(),
            other => self.index(other).into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{self, RunConfig};

    /// Goal: the page is self-contained (no external resource to fetch) and carries a lane
    /// for every player and server, Redis and the allocator, arrows of every kind the run
    /// had, and the data cannot end its script element early.
    #[test]
    fn a_named_scenario_renders_self_contained() {
        let scenario = crate::named::get("server_crash_with_players_loading").unwrap();
        let config = RunConfig {
            structured: true,
            ..RunConfig::default()
        };
        let report = world::run(&scenario, &config);
        let data = build(&report);
        let lanes: Vec<&str> = data.lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            lanes,
            [
                "world",
                "P0",
                "P1",
                "P2",
                "server-0",
                "server-1",
                "redis",
                "allocator"
            ]
        );
        let kinds: std::collections::BTreeSet<String> =
            data.flows.iter().map(|f| format!("{:?}", f.kind)).collect();
        for kind in [
            "Connect", "FrameIn", "FrameOut", "Script", "Allocate", "Crash", "Restart",
        ] {
            assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
        }
        assert!(data.windows.iter().any(|w| w.kind == WindowKind::Down));
        let page = render(&report);
        for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
            assert!(!page.contains(external), "page fetches {external}");
        }
        let script = page.split("<script").nth(2).unwrap_or_default();
        assert!(!script.split("</script>").next().unwrap().contains("</"));
    }

    /// Goal: a violation's ids are named as the timeline names them (`P0`, `#n`), so the
    /// events that name the same ids - the player's frames, the script calls carrying its
    /// id - are the ones highlighted.
    #[test]
    fn violations_name_the_events_to_highlight() {
        let scenario = crate::named::get("loading_timeout").unwrap();
        let config = RunConfig {
            structured: true,
            ..RunConfig::default()
        };
        let mut report = world::run(&scenario, &config);
        let player = scenario.player_ids()[1];
        report.violations.push(crate::oracle::Violation {
            invariant: crate::oracle::Invariant::NoOneLost,
            at_ms: 9_000,
            detail: format!("player {player} waits but Redis has it nowhere"),
        });
        let data = build(&report);
        assert_eq!(data.violations[0].ids, ["P1"]);
        assert!(data.violations[0].text.contains("player P1 waits"));
        let named = |ids: &[String]| ids.iter().any(|id| id == "P1");
        let frames = data
            .flows
            .iter()
            .filter(|f| f.kind == FlowKind::FrameOut && named(&f.ids));
        assert!(frames.count() >= 3, "P1's frames are highlighted");
        assert!(
            data.flows
                .iter()
                .any(|f| f.kind == FlowKind::Script && named(&f.ids)),
            "script calls carrying P1's id are highlighted"
        );
    }

    /// Goal: structured recording changes neither the text timeline nor the trace hash
    /// (other work compares trace hashes across refactors).
    #[test]
    fn structure_leaves_the_trace_alone() {
        let scenario = crate::named::get("graceful_shutdown_with_players_loading").unwrap();
        let plain = world::run(&scenario, &RunConfig::default());
        let config = RunConfig {
            structured: true,
            ..RunConfig::default()
        };
        let structured = world::run(&scenario, &config);
        assert_eq!(plain.trace, structured.trace);
        assert_eq!(plain.trace_hash, structured.trace_hash);
        assert!(plain.structured.flows.is_empty());
        assert!(structured.structured.flows.len() > 50);
    }
}
