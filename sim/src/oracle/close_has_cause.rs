//! Invariant 16: every close the server makes has its cause in the trace, and a flood has
//! its close. Judged per connection from what its client sent and received:
//!
//! - a close for idleness (1000) comes only after `idle_timeout_ms` without a data frame
//!   from the client (less a frame's flight time), unless a partition of the link held a
//!   frame the client sent;
//! - a close for flooding (1008) comes only after the server answered at least
//!   `MAX_RATE_LIMITED_IN_A_ROW` frames with `rate_limited` on that connection;
//! - the server answers at most `MAX_RATE_LIMITED_IN_A_ROW` frames in a row with
//!   `rate_limited`: the next one over budget closes the connection. The count restarts at
//!   any other frame the client receives: a frame the server accepted restarts its own
//!   count, and every frame a simulated client may send past its budget (a flood of
//!   `dequeue`) is answered, in order;
//! - a client that writes more frames at once than the burst allowance plus those
//!   tolerated is closed with 1008 within `flood_close_ms`, unless its connection ended
//!   otherwise first or a fault hit the connection's path.

use std::collections::BTreeMap;

use match_server::limits::MAX_RATE_LIMITED_IN_A_ROW;
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use super::{Bounds, Check, ClientEvent, Cx, Findings, Path, RedisView, Scope};

/// The close code of an idle timeout (`Normal`).
pub const CLOSE_IDLE: u16 = 1000;
/// The close code of a flood (`Policy`).
pub const CLOSE_FLOODING: u16 = 1008;

/// How long a client waits for its connection to open (its frames before that go nowhere,
/// and a partition may hold the upgrade's reply this long).
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// What the check follows of one open connection.
#[derive(Clone, Debug, Default)]
struct Connection {
    /// The server host.
    server: String,
    /// When it opened, as the client saw it (sim ms).
    opened_ms: u64,
    /// When the client last wrote a data frame on it.
    last_sent_ms: Option<u64>,
    /// `rate_limited` answers since the last other frame received.
    limited_in_a_row: u32,
    /// `rate_limited` answers on the connection.
    limited: u32,
    /// When the client wrote a flood on it, until the flood's close comes.
    flood_at_ms: Option<u64>,
    /// Whether a violation was reported for this connection already (one per connection).
    reported: bool,
}

/// Invariant 16.
#[derive(Debug)]
pub struct CloseHasCause {
    /// The idle timeout (ms).
    idle_timeout_ms: u64,
    /// A frame's flight time on a healthy link (ms).
    in_flight_ms: u64,
    /// Frames at once that make a flood.
    flood_frames: u32,
    /// How soon a flood's close must come (ms).
    flood_close_ms: u64,
    /// The open connection of each player.
    open: BTreeMap<Uuid, Connection>,
}

impl CloseHasCause {
    /// The check.
    pub fn new(bounds: &Bounds) -> Self {
        Self {
            idle_timeout_ms: bounds.idle_timeout_ms,
            in_flight_ms: bounds.in_flight_ms,
            flood_frames: bounds.flood_frames,
            flood_close_ms: bounds.flood_close_ms,
            open: BTreeMap::new(),
        }
    }

    /// Whether a partition of the link between `client_host` and `server` held frames
    /// between `from_ms` and `to_ms` (a frame sent then may have reached the server late).
    fn link_held(cx: &Cx<'_>, client_host: &str, server: &str, from_ms: u64, to_ms: u64) -> bool {
        cx.history.faults.iter().any(|fault| {
            fault.from_ms <= to_ms
                && fault.to_ms >= from_ms
                && matches!(&fault.scope, Scope::Link { client_host: c, server: s }
                    if c == client_host && s == server)
        })
    }

    /// A close for idleness at `at_ms`: the client must have been silent long enough.
    fn judge_idle(&self, cx: &Cx<'_>, player: Uuid, c: &Connection, at_ms: u64) -> Option<String> {
        let silent_since = c.last_sent_ms.unwrap_or(c.opened_ms).max(c.opened_ms);
        let silent_ms = at_ms.saturating_sub(silent_since);
        if silent_ms + self.in_flight_ms >= self.idle_timeout_ms {
            return None;
        }
        let client_host = cx.clients.get(player).map(|m| m.client_host.as_str())?;
        let from_ms = match c.last_sent_ms {
            Some(sent_ms) => sent_ms,
            None => c.opened_ms.saturating_sub(CONNECT_TIMEOUT_MS),
        };
        if Self::link_held(cx, client_host, &c.server, from_ms, at_ms) {
            return None;
        }
        let what = match c.last_sent_ms {
            Some(sent_ms) => format!("its client last sent a frame at {sent_ms} ms"),
            None => format!("it opened at {} ms", c.opened_ms),
        };
        Some(format!(
            "player {player}: closed as idle (code {CLOSE_IDLE}) by {} after {silent_ms} ms of \
             client silence, less than the idle timeout of {} ms: {what}",
            c.server, self.idle_timeout_ms
        ))
    }

    /// A flood written at `flood_ms` and not closed by `now_ms`: late unless a fault hit
    /// the connection's path meanwhile.
    fn flood_overdue(
        &self,
        cx: &Cx<'_>,
        player: Uuid,
        c: &Connection,
        now_ms: u64,
    ) -> Option<String> {
        let flood_ms = c.flood_at_ms?;
        let deadline_ms = flood_ms + self.flood_close_ms;
        if now_ms <= deadline_ms {
            return None;
        }
        let model = cx.clients.get(player)?;
        let mut path = Path::default();
        path.add_connection(&model.client_host, &c.server, c.opened_ms);
        if cx.history.excuse(&path, flood_ms, deadline_ms).is_some() {
            return None;
        }
        Some(format!(
            "player {player}: wrote a flood (more than {} frames at once) at {flood_ms} ms and \
             {} had not closed the connection (code {CLOSE_FLOODING}) {} ms later; {} frames \
             answered rate_limited",
            self.flood_frames, c.server, self.flood_close_ms, c.limited
        ))
    }

    /// Follows one event of the open connection; a violation's detail when it breaks the
    /// invariant.
    fn follow(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
    ) -> Option<String> {
        if let ClientEvent::Connected { server } = event {
            let connection = Connection {
                server: server.clone(),
                opened_ms: at_ms,
                ..Connection::default()
            };
            self.open.insert(player, connection);
            return None;
        }
        let mut c = self.open.remove(&player)?;
        let found = match self.flood_overdue(cx, player, &c, at_ms) {
            Some(late) => {
                c.flood_at_ms = None;
                Some(late)
            }
            None => self.follow_open(cx, player, &mut c, at_ms, event),
        };
        // One violation per connection: the first says what went wrong.
        let report = found.filter(|_| !c.reported);
        c.reported |= report.is_some();
        if !matches!(event, ClientEvent::Disconnected { .. }) {
            self.open.insert(player, c);
        }
        report
    }

    /// The rules an event of an open connection `c` is judged by.
    fn follow_open(
        &self,
        cx: &Cx<'_>,
        player: Uuid,
        c: &mut Connection,
        at_ms: u64,
        event: &ClientEvent,
    ) -> Option<String> {
        match event {
            ClientEvent::SentFrames { frames } => {
                c.last_sent_ms = Some(at_ms);
                if *frames > self.flood_frames && c.flood_at_ms.is_none() {
                    c.flood_at_ms = Some(at_ms);
                }
                None
            }
            ClientEvent::Received(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => {
                c.limited += 1;
                c.limited_in_a_row += 1;
                (c.limited_in_a_row > MAX_RATE_LIMITED_IN_A_ROW).then(|| {
                    format!(
                        "player {player}: {} answered {} frames in a row with rate_limited and \
                         kept the connection open (it closes at the {}th, code {CLOSE_FLOODING})",
                        c.server,
                        c.limited_in_a_row,
                        MAX_RATE_LIMITED_IN_A_ROW + 1
                    )
                })
            }
            ClientEvent::Received(_) => {
                c.limited_in_a_row = 0;
                None
            }
            ClientEvent::ClosedByServer { code } => {
                c.flood_at_ms = None;
                match *code {
                    CLOSE_IDLE => self.judge_idle(cx, player, c, at_ms),
                    CLOSE_FLOODING if c.limited < MAX_RATE_LIMITED_IN_A_ROW => Some(format!(
                        "player {player}: closed for flooding (code {CLOSE_FLOODING}) by {} after \
                         only {} frames answered rate_limited (it takes {})",
                        c.server, c.limited, MAX_RATE_LIMITED_IN_A_ROW
                    )),
                    _ => None,
                }
            }
            // A connection that ends before its flood's bound is not judged late.
            ClientEvent::Disconnected { .. } => {
                c.flood_at_ms = None;
                None
            }
            _ => None,
        }
    }
}

impl Check for CloseHasCause {
    fn on_client(
        &mut self,
        cx: &Cx<'_>,
        player: Uuid,
        at_ms: u64,
        event: &ClientEvent,
        out: &mut Findings<'_>,
    ) {
        if matches!(event, ClientEvent::DuplicateReceived { .. }) {
            return;
        }
        out.checked(1);
        if let Some(detail) = self.follow(cx, player, at_ms, event) {
            out.violate(at_ms, detail);
        }
    }

    fn at_end(&mut self, cx: &Cx<'_>, now_ms: u64, _view: &RedisView, out: &mut Findings<'_>) {
        for (player, c) in &self.open {
            if c.reported {
                continue;
            }
            if let Some(detail) = self.flood_overdue(cx, *player, c, now_ms) {
                out.violate(now_ms, detail);
            }
        }
    }
}

#[cfg(test)]
#[path = "close_has_cause_tests.rs"]
mod tests;
