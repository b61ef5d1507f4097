//! Structured events of one run, kept beside the text trace for the HTML timeline: who sent
//! what to whom (WebSocket frames, script calls, commands, pub/sub notices, allocations),
//! and the fault windows and crashes of the world.
//!
//! They are recorded only when a run asks for them ([`crate::world::RunConfig::structured`]):
//! campaigns leave them off and pay one branch per hook. They never enter the canonical text
//! timeline or the trace hash, so turning them on changes neither.

use serde::Serialize;
use uuid::Uuid;

/// A lane of the timeline: one row per participant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// A simulated player, by its index in the scenario (`P<n>`).
    Player(usize),
    /// A server instance, by host name.
    Server(String),
    /// The shared (fake) Redis.
    Redis,
    /// The game-server allocator.
    Allocator,
    /// Every player on a client host (a partition hits them all).
    ClientHost(String),
    /// The world itself: heal, events with no better lane.
    World,
}

/// What a structured event is; the timeline colours arrows by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// A WebSocket connection opened.
    Connect,
    /// A WebSocket connection closed or lost.
    Close,
    /// A WebSocket frame from a player to its server.
    FrameIn,
    /// A WebSocket frame from a server to a player.
    FrameOut,
    /// A Lua script run (EVALSHA).
    Script,
    /// A plain Redis command.
    Command,
    /// A PUBLISH.
    Publish,
    /// A pub/sub message delivered to a subscriber.
    Notice,
    /// An allocation request to the game-server allocator.
    Allocate,
    /// A fault hit this call (injected error, slow reply).
    Fault,
    /// A server instance died.
    Crash,
    /// A server instance shut down gracefully.
    Shutdown,
    /// A server instance started again.
    Restart,
    /// Anything else the world did.
    World,
}

/// One structured event: an arrow when it has a receiver, a marker on its lane otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// Sim time it was sent (ms).
    pub at_ms: u64,
    /// What it is.
    pub kind: FlowKind,
    /// The sender (or the lane of a marker).
    pub from: Lane,
    /// The receiver, for an arrow.
    pub to: Option<Lane>,
    /// The full text, ids as UUIDs (the timeline aliases them like `replay`).
    pub text: String,
    /// The ids it names (players, sessions, loading sessions), for highlighting.
    pub ids: Vec<Uuid>,
    /// The answer, for a call: when it arrived and what it said.
    pub reply: Option<Reply>,
}

/// The answer to a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reply {
    /// Sim time it arrived (ms).
    pub at_ms: u64,
    /// What it said.
    pub text: String,
    /// Whether it was an error (injected or not).
    pub error: bool,
}

/// What a fault window is; the timeline shades it by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Messages between a client host and a server are held.
    Partition,
    /// A server's clock fails.
    ClockFailure,
    /// A server's clock is off by a jump.
    ClockJump,
    /// A server instance is down (crashed or shut down, not yet restarted).
    Down,
    /// Redis injects faults at random.
    RedisFaults,
    /// The allocator injects faults at random.
    AllocatorFaults,
    /// An instance's commands are held and applied late (a stall).
    Stall,
}

/// A fault window: a shaded band over the lanes it hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Identifies the window until it closes (`partition client-0 server-1`).
    pub key: String,
    /// What it is.
    pub kind: WindowKind,
    /// The lanes it hits.
    pub lanes: Vec<Lane>,
    /// When it opened (ms).
    pub from_ms: u64,
    /// When it closed (ms); `None` while open (the timeline ends it at the run's end).
    pub to_ms: Option<u64>,
    /// What the band says on hover.
    pub label: String,
}

/// Every structured event of a run, in the order recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Structured {
    /// Arrows and markers.
    pub flows: Vec<Flow>,
    /// Fault windows.
    pub windows: Vec<Window>,
    /// The server each player's current connection is with, for its frames' arrows.
    #[serde(skip)]
    pub peers: std::collections::BTreeMap<usize, String>,
}

impl Structured {
    /// Appends a flow; returns its index (for its reply).
    pub fn push(&mut self, flow: Flow) -> usize {
        self.flows.push(flow);
        self.flows.len() - 1
    }

    /// Records the answer of the call at `index`.
    pub fn answer(&mut self, index: usize, reply: Reply) {
        if let Some(flow) = self.flows.get_mut(index) {
            flow.reply = Some(reply);
        }
    }

    /// Opens a window (a second open of the same key while open is ignored).
    pub fn open(&mut self, window: Window) {
        let open = self
            .windows
            .iter()
            .any(|w| w.key == window.key && w.to_ms.is_none());
        if !open {
            self.windows.push(window);
        }
    }

    /// Closes the open window `key`, if any.
    pub fn close(&mut self, key: &str, at_ms: u64) {
        for window in &mut self.windows {
            if window.key == key && window.to_ms.is_none() {
                window.to_ms = Some(at_ms);
            }
        }
    }

    /// Closes every open window (the world heals).
    pub fn close_all(&mut self, at_ms: u64) {
        for window in &mut self.windows {
            if window.to_ms.is_none() {
                window.to_ms = Some(at_ms);
            }
        }
    }
}

/// A marker or arrow with no ids and no reply.
pub fn flow(at_ms: u64, kind: FlowKind, from: Lane, to: Option<Lane>, text: String) -> Flow {
    Flow {
        at_ms,
        kind,
        from,
        to,
        text,
        ids: Vec::new(),
        reply: None,
    }
}

/// Every hyphenated UUID in `text`, in order.
pub fn uuids_in(text: &str) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(start) = crate::trace::find_uuid(rest) {
        let Some((id, tail)) = rest
            .get(start..)
            .and_then(|after| after.split_at_checked(UUID_TEXT_LEN))
        else {
            break;
        };
        if let Ok(id) = Uuid::parse_str(id) {
            ids.push(id);
        }
        rest = tail;
    }
    ids
}

/// Length of a hyphenated UUID.
const UUID_TEXT_LEN: usize = 36;

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: ids are found in any text, in order, so a violation's detail names the events
    /// the timeline highlights.
    #[test]
    fn uuids_are_found_in_text() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(uuids_in(&format!("player {a} in {b} and {a}")), [a, b, a]);
        assert!(uuids_in("no ids").is_empty());
    }

    /// Goal: windows close by key, and healing closes what is still open.
    #[test]
    fn windows_open_and_close() {
        let window = |key: &str| Window {
            key: key.into(),
            kind: WindowKind::Partition,
            lanes: vec![Lane::Redis],
            from_ms: 1,
            to_ms: None,
            label: key.into(),
        };
        let mut structured = Structured::default();
        structured.open(window("a"));
        structured.open(window("a"));
        structured.open(window("b"));
        structured.close("a", 5);
        structured.close_all(9);
        let ends: Vec<_> = structured.windows.iter().map(|w| w.to_ms).collect();
        assert_eq!(ends, [Some(5), Some(9)]);
    }
}
