//! The scenario's faults as timed world events, and how the driver applies each one.

use super::build::ServerHandle;
use crate::scenario::{ClockFaultKind, ProcessFaultKind, Scenario};

/// A world event the driver applies at a time.
#[derive(Clone, Debug)]
pub enum WorldEvent {
    /// Messages between a client host and a server are held (a partition TCP survives).
    Partition {
        /// The client host.
        client: String,
        /// The server.
        server: String,
    },
    /// The held messages flow again.
    Repair {
        /// The client host.
        client: String,
        /// The server.
        server: String,
    },
    /// A server's clock starts failing.
    ClockFail {
        /// Server index.
        server: usize,
    },
    /// A server's clock works again.
    ClockRecover {
        /// Server index.
        server: usize,
    },
    /// A server's clock jumps.
    ClockJump {
        /// Server index.
        server: usize,
        /// The offset from true sim time.
        offset_ms: i32,
    },
    /// A server dies.
    Crash {
        /// Server index.
        server: usize,
    },
    /// A server shuts down gracefully.
    Shutdown {
        /// Server index.
        server: usize,
    },
    /// A server comes back.
    Restart {
        /// Server index.
        server: usize,
    },
    /// A server's Redis requests are held from now on (a stall).
    Stall {
        /// Server index.
        server: usize,
    },
    /// A server freezes right after it next takes a match lock: its Redis requests are
    /// then held with no timeout (see [`ProcessFaultKind::Freeze`]).
    Freeze {
        /// Server index.
        server: usize,
    },
    /// A server stalls right after it next takes a match lock (see
    /// [`ProcessFaultKind::StallAfterLock`]).
    StallAfterLock {
        /// Server index.
        server: usize,
    },
    /// A server crashes right after its next script that owes a notice (see
    /// [`ProcessFaultKind::CrashAfterScript`]); the driver applies the [`Self::Crash`]
    /// when the fake Redis reports it struck.
    CrashAfterScript {
        /// Server index.
        server: usize,
    },
    /// The end of a [`Self::CrashAfterScript`]: the server comes back if the crash struck;
    /// otherwise the crash is disarmed and nothing happens.
    RestartIfCrashed {
        /// Server index.
        server: usize,
    },
    /// A server stalls right after its next `enqueue` that queued a player, for `hold_ms`
    /// from then (see [`ProcessFaultKind::StallPastLease`]); the driver schedules the
    /// [`Self::Resume`] when the fake Redis reports it struck.
    StallPastLease {
        /// Server index.
        server: usize,
        /// How long it stays stalled once it struck (ms).
        hold_ms: u64,
    },
    /// An armed [`Self::StallPastLease`] struck: the server's Redis requests are held from
    /// now on.
    StallStruck {
        /// Server index.
        server: usize,
    },
    /// A stalled (or frozen) server resumes: its held requests take effect, in order.
    Resume {
        /// Server index.
        server: usize,
    },
    /// Every fault heals; the quiet phase starts.
    Heal,
}

/// The scenario's faults as timed world events, heal included, sorted by time.
pub fn schedule(scenario: &Scenario, servers: &[ServerHandle]) -> Vec<(u64, WorldEvent)> {
    let heal = u64::from(scenario.fault_phase_ms);
    let server_count = servers.len().max(1);
    let clients = usize::from(scenario.client_hosts.max(1));
    let mut events = vec![(heal, WorldEvent::Heal)];
    for p in &scenario.faults.partitions {
        let client = format!("client-{}", usize::from(p.client_host) % clients);
        let server = format!("server-{}", usize::from(p.server) % server_count);
        let at = u64::from(p.at_ms);
        let end = (at + u64::from(p.duration_ms)).min(heal);
        events.push((
            at,
            WorldEvent::Partition {
                client: client.clone(),
                server: server.clone(),
            },
        ));
        events.push((end, WorldEvent::Repair { client, server }));
    }
    for c in &scenario.faults.clock {
        let server = usize::from(c.server) % server_count;
        let at = u64::from(c.at_ms);
        match c.kind {
            ClockFaultKind::Fail { duration_ms } => {
                events.push((at, WorldEvent::ClockFail { server }));
                events.push((
                    (at + u64::from(duration_ms)).min(heal),
                    WorldEvent::ClockRecover { server },
                ));
            }
            ClockFaultKind::Jump { offset_ms } => {
                events.push((at, WorldEvent::ClockJump { server, offset_ms }))
            }
        }
    }
    for p in &scenario.faults.process {
        let server = usize::from(p.server) % server_count;
        let at = u64::from(p.at_ms);
        let (event, end) = match p.kind {
            // Its resume is timed from when it strikes (the driver's), its disarm at heal.
            ProcessFaultKind::StallPastLease => {
                let hold_ms = u64::from(p.restart_after_ms);
                events.push((at, WorldEvent::StallPastLease { server, hold_ms }));
                continue;
            }
            ProcessFaultKind::Crash => {
                (WorldEvent::Crash { server }, WorldEvent::Restart { server })
            }
            ProcessFaultKind::Shutdown => (
                WorldEvent::Shutdown { server },
                WorldEvent::Restart { server },
            ),
            ProcessFaultKind::Stall => {
                (WorldEvent::Stall { server }, WorldEvent::Resume { server })
            }
            ProcessFaultKind::Freeze => {
                (WorldEvent::Freeze { server }, WorldEvent::Resume { server })
            }
            ProcessFaultKind::StallAfterLock => (
                WorldEvent::StallAfterLock { server },
                WorldEvent::Resume { server },
            ),
            ProcessFaultKind::CrashAfterScript => (
                WorldEvent::CrashAfterScript { server },
                WorldEvent::RestartIfCrashed { server },
            ),
        };
        events.push((at, event));
        events.push(((at + u64::from(p.restart_after_ms)).min(heal), end));
    }
    events.retain(|(at, event)| {
        *at < heal
            || matches!(
                event,
                WorldEvent::Heal
                    | WorldEvent::Repair { .. }
                    | WorldEvent::ClockRecover { .. }
                    | WorldEvent::Restart { .. }
                    | WorldEvent::RestartIfCrashed { .. }
                    | WorldEvent::Resume { .. }
            )
    });
    events.sort_by_key(|(at, _)| *at);
    events
}
