//! World events as structured events for the HTML timeline: fault windows over the lanes
//! they hit, crashes and restarts as markers. Called by the driver for every event it
//! applies; costs one branch when the run records no structure.

use super::events::WorldEvent;
use crate::flow::{self, FlowKind, Lane, Window, WindowKind};
use crate::trace::TraceLog;

/// Records `event`, applied at `at_ms`; `text` is what the text trace said of it.
pub(super) fn record(log: &TraceLog, at_ms: u64, event: &WorldEvent, text: Option<&str>) {
    if !log.is_structured() {
        return;
    }
    let label = text.unwrap_or_default().to_owned();
    let server = |index: usize| format!("server-{index}");
    log.structure(|s| match event {
        WorldEvent::Partition { client, server } => s.open(Window {
            key: format!("partition {client} {server}"),
            kind: WindowKind::Partition,
            lanes: vec![
                Lane::ClientHost(client.clone()),
                Lane::Server(server.clone()),
            ],
            from_ms: at_ms,
            to_ms: None,
            label,
        }),
        WorldEvent::Repair { client, server } => {
            s.close(&format!("partition {client} {server}"), at_ms)
        }
        WorldEvent::ClockFail { server: index } => s.open(Window {
            key: format!("clock_failure {}", server(*index)),
            kind: WindowKind::ClockFailure,
            lanes: vec![Lane::Server(server(*index))],
            from_ms: at_ms,
            to_ms: None,
            label,
        }),
        WorldEvent::ClockRecover { server: index } => {
            s.close(&format!("clock_failure {}", server(*index)), at_ms)
        }
        WorldEvent::ClockJump { server: index, .. } => {
            let key = format!("clock_jump {}", server(*index));
            s.close(&key, at_ms);
            s.open(Window {
                key,
                kind: WindowKind::ClockJump,
                lanes: vec![Lane::Server(server(*index))],
                from_ms: at_ms,
                to_ms: None,
                label,
            });
        }
        WorldEvent::Crash { server: index } | WorldEvent::Shutdown { server: index } => {
            let kind = if matches!(event, WorldEvent::Crash { .. }) {
                FlowKind::Crash
            } else {
                FlowKind::Shutdown
            };
            s.push(flow::flow(
                at_ms,
                kind,
                Lane::Server(server(*index)),
                None,
                label.clone(),
            ));
            s.open(Window {
                key: format!("down {}", server(*index)),
                kind: WindowKind::Down,
                lanes: vec![Lane::Server(server(*index))],
                from_ms: at_ms,
                to_ms: None,
                label,
            });
        }
        WorldEvent::Restart { server: index } => {
            s.close(&format!("down {}", server(*index)), at_ms);
            s.push(flow::flow(
                at_ms,
                FlowKind::Restart,
                Lane::Server(server(*index)),
                None,
                label,
            ));
        }
        WorldEvent::Stall { server: index }
        | WorldEvent::Freeze { server: index }
        | WorldEvent::StallAfterLock { server: index }
        | WorldEvent::StallStruck { server: index } => s.open(Window {
            key: format!("stall {}", server(*index)),
            kind: WindowKind::Stall,
            lanes: vec![Lane::Server(server(*index))],
            from_ms: at_ms,
            to_ms: None,
            label,
        }),
        WorldEvent::Resume { server: index } => {
            s.close(&format!("stall {}", server(*index)), at_ms);
            s.push(flow::flow(
                at_ms,
                FlowKind::World,
                Lane::Server(server(*index)),
                None,
                label,
            ));
        }
        WorldEvent::Heal => {
            s.close_all(at_ms);
            s.push(flow::flow(at_ms, FlowKind::World, Lane::World, None, label));
        }
        #[allow(unreachable_patterns)]
        _ => {
            s.push(flow::flow(at_ms, FlowKind::World, Lane::World, None, label));
        }
    });
}
