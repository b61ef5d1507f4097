//! Hand-made connections for invariant 16: closes with their cause pass; an idle close of
//! an active client, a flood answered past the tolerated count, a flood never closed and a
//! flooding close without a flood are flagged.

use match_server::limits::MAX_RATE_LIMITED_IN_A_ROW;
use match_server::protocol::{ErrorCode, ServerMessage};
use uuid::Uuid;

use super::{CLOSE_FLOODING, CLOSE_IDLE};
use crate::oracle::{Bounds, ClientEvent, Invariant, Oracle, RedisView, Scope, WorldTiming};

const PLAYER: Uuid = Uuid::from_u128(7);
const SERVER: &str = "server-0";
const CLIENT_HOST: &str = "client-0";

fn bounds() -> Bounds {
    Bounds::new(
        &crate::world::sim_settings(),
        WorldTiming {
            tick_ms: 1,
            check_every_ms: 100,
            max_latency_ms: 50,
            max_clock_skew_ms: 400,
        },
    )
}

/// An oracle with one player connected to `SERVER` at `opened_ms`.
fn connected_at(opened_ms: u64) -> Oracle {
    let mut oracle = Oracle::new(bounds());
    oracle.add_player(PLAYER, "Normal_1v1", CLIENT_HOST, true);
    oracle.client_event(
        PLAYER,
        opened_ms,
        ClientEvent::Connected {
            server: SERVER.into(),
        },
    );
    oracle
}

fn sent(oracle: &mut Oracle, at_ms: u64, frames: u32) {
    oracle.client_event(PLAYER, at_ms, ClientEvent::SentFrames { frames });
}

fn received_error(oracle: &mut Oracle, at_ms: u64, code: ErrorCode, times: u32) {
    for _ in 0..times {
        let message = ServerMessage::Error {
            code,
            message: String::new(),
        };
        oracle.client_event(PLAYER, at_ms, ClientEvent::Received(message));
    }
}

fn closed(oracle: &mut Oracle, at_ms: u64, code: u16) {
    oracle.client_event(PLAYER, at_ms, ClientEvent::ClosedByServer { code });
    oracle.client_event(
        PLAYER,
        at_ms,
        ClientEvent::Disconnected {
            for_good: false,
            closed: false,
        },
    );
}

/// The violations of invariant 16 once the run ends at `end_ms`.
fn verdict(mut oracle: Oracle, end_ms: u64) -> Vec<String> {
    oracle.finish(end_ms, &RedisView::default());
    oracle
        .violations()
        .iter()
        .filter(|v| v.invariant == Invariant::CloseHasCause)
        .map(|v| v.detail.clone())
        .collect()
}

/// Goal: a connection whose client sent nothing for the idle timeout may be closed as idle;
/// one whose client sent a frame 3 s earlier may not (the defect that never resets the
/// idle timer closes every connection `idle_timeout_ms` after it opened).
#[test]
fn an_idle_close_needs_the_idle_timeout_of_silence() {
    let idle_ms = bounds().idle_timeout_ms;
    let mut silent = connected_at(1_000);
    sent(&mut silent, 1_000, 1);
    closed(&mut silent, 1_000 + idle_ms, CLOSE_IDLE);
    assert_eq!(verdict(silent, 20_000), Vec::<String>::new());

    let mut active = connected_at(1_000);
    sent(&mut active, 1_000, 1);
    sent(&mut active, 6_000, 1);
    closed(&mut active, 1_000 + idle_ms, CLOSE_IDLE);
    let found = verdict(active, 20_000);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("last sent a frame at 6000 ms"),
        "{found:?}"
    );
}

/// Goal: a frame may be in flight when the idle timer fires (a latency at most), and a
/// partition of the link may hold it for longer: neither is a violation.
#[test]
fn an_idle_close_allows_a_frame_in_flight_or_held_by_a_partition() {
    let idle_ms = bounds().idle_timeout_ms;
    let mut in_flight = connected_at(0);
    sent(&mut in_flight, 30, 1);
    closed(&mut in_flight, idle_ms, CLOSE_IDLE);
    assert_eq!(verdict(in_flight, 20_000), Vec::<String>::new());

    let mut held = connected_at(0);
    sent(&mut held, 3_000, 1);
    held.history_mut().fault(
        2_500,
        Some(4_000),
        Scope::Link {
            client_host: CLIENT_HOST.into(),
            server: SERVER.into(),
        },
        "network_partition".into(),
    );
    closed(&mut held, idle_ms, CLOSE_IDLE);
    assert_eq!(verdict(held, 20_000), Vec::<String>::new());

    // A partition of another link excuses nothing.
    let mut elsewhere = connected_at(0);
    sent(&mut elsewhere, 3_000, 1);
    elsewhere.history_mut().fault(
        2_500,
        Some(4_000),
        Scope::Link {
            client_host: "client-1".into(),
            server: SERVER.into(),
        },
        "network_partition".into(),
    );
    closed(&mut elsewhere, idle_ms, CLOSE_IDLE);
    assert_eq!(verdict(elsewhere, 20_000).len(), 1);
}

/// Goal: a flood closed with 1008 after the tolerated rate-limited answers passes; the
/// server that answers one more frame with `rate_limited` instead of closing (the
/// flood-never-closed defect) is flagged at that frame.
#[test]
fn a_flood_is_closed_at_the_first_frame_past_the_tolerated_ones() {
    let burst = bounds().flood_frames - MAX_RATE_LIMITED_IN_A_ROW;
    let mut closed_in_time = connected_at(0);
    sent(&mut closed_in_time, 100, 45);
    received_error(&mut closed_in_time, 101, ErrorCode::NotInQueue, burst);
    received_error(
        &mut closed_in_time,
        101,
        ErrorCode::RateLimited,
        MAX_RATE_LIMITED_IN_A_ROW,
    );
    closed(&mut closed_in_time, 102, CLOSE_FLOODING);
    assert_eq!(verdict(closed_in_time, 20_000), Vec::<String>::new());

    let mut never_closed = connected_at(0);
    sent(&mut never_closed, 100, 45);
    received_error(&mut never_closed, 101, ErrorCode::NotInQueue, burst);
    received_error(&mut never_closed, 101, ErrorCode::RateLimited, 25);
    let found = verdict(never_closed, 20_000);
    assert_eq!(found.len(), 1, "one violation per connection: {found:?}");
    assert!(found[0].contains("21 frames in a row"), "{found:?}");
}

/// Goal: an answer other than `rate_limited` restarts the count (the server accepted a
/// frame in between), so two runs of tolerated rate-limited answers pass.
#[test]
fn an_accepted_frame_restarts_the_count() {
    let mut oracle = connected_at(0);
    sent(&mut oracle, 100, 3);
    received_error(
        &mut oracle,
        101,
        ErrorCode::RateLimited,
        MAX_RATE_LIMITED_IN_A_ROW,
    );
    received_error(&mut oracle, 101, ErrorCode::NotInQueue, 1);
    received_error(
        &mut oracle,
        101,
        ErrorCode::RateLimited,
        MAX_RATE_LIMITED_IN_A_ROW,
    );
    assert_eq!(verdict(oracle, 20_000), Vec::<String>::new());
}

/// Goal: a flood the server swallows without answering or closing is flagged once its
/// bound passed - at the client's next event, or at the end of the run - unless a fault
/// hit the connection's path, or the connection ended first.
#[test]
fn a_flood_must_be_closed_within_its_bound() {
    let bound_ms = bounds().flood_close_ms;
    let mut swallowed = connected_at(0);
    sent(&mut swallowed, 100, 45);
    sent(&mut swallowed, 100 + bound_ms + 300, 1);
    let found = verdict(swallowed, 20_000);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("wrote a flood"), "{found:?}");

    let mut at_end = connected_at(0);
    sent(&mut at_end, 100, 45);
    assert_eq!(verdict(at_end, 20_000).len(), 1);

    let mut excused = connected_at(0);
    sent(&mut excused, 100, 45);
    excused.history_mut().fault(
        50,
        Some(2_000),
        Scope::Instance(SERVER.into()),
        "server_stall".into(),
    );
    assert_eq!(verdict(excused, 20_000), Vec::<String>::new());

    let mut ended = connected_at(0);
    sent(&mut ended, 100, 45);
    closed(&mut ended, 110, 1013);
    assert_eq!(verdict(ended, 20_000), Vec::<String>::new());
}

/// Goal: a close for flooding needs the flood: a connection closed with 1008 after only a
/// few rate-limited answers is flagged.
#[test]
fn a_flooding_close_needs_a_flood() {
    let mut oracle = connected_at(0);
    sent(&mut oracle, 100, 25);
    received_error(&mut oracle, 101, ErrorCode::RateLimited, 5);
    closed(&mut oracle, 102, CLOSE_FLOODING);
    let found = verdict(oracle, 20_000);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("after only 5 frames"), "{found:?}");
}
