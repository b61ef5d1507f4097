//! Rule coverage: one row per recovery rule and race window of the catalogue in
//! docs/design.md (R1..R21, W1..W9, same ids and names), each with a detector that decides
//! from a run's history (facts, what the fake Redis served, fault windows), its clients'
//! timelines and its trace whether the seed *reached* the row: the rule actually fired or
//! the window was actually open, not merely that a fault of that kind was drawn.
//!
//! - this file: the table, the campaign gate ([`never_reached`]) and the summary's rows.
//! - `redis`: evidence only visible inside the fake Redis, before or after a request's
//!   effect (a dead entry replaced, a lock refused, a late renewal).
//! - `detect`: the detectors over a finished run.
//!
//! A seed's counts go into its JSONL record (`coverage`), so `merge` sums records only.

mod detect;
pub(crate) mod redis;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use detect::{Evidence, add_trace_rows, detect};
pub use redis::{R3_OTHER_MODE, RedisMarks};

/// Whether the simulation can reach a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Reachable: `how` says what the detector counts.
    Detected {
        /// What counts as reached, in one line.
        how: &'static str,
    },
    /// Unreachable by design: the gate does not require it.
    Unreachable {
        /// Why, and what covers it instead.
        why: &'static str,
    },
}

/// One row of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The catalogue's id (`R3`, `W6`).
    pub id: &'static str,
    /// The catalogue's name.
    pub name: &'static str,
    /// Whether and how it is detected.
    pub reach: Reach,
}

const fn row(id: &'static str, name: &'static str, how: &'static str) -> Row {
    Row {
        id,
        name,
        reach: Reach::Detected { how },
    }
}

/// The catalogue of docs/design.md, in its order.
pub const ROWS: [Row; 30] = [
    row("R1", "match round", "a loading session was created (fact)"),
    row(
        "R2",
        "loading timeout (stale sweep)",
        "a timeout attempt found its loading session (fact + witness)",
    ),
    row(
        "R3",
        "dead entry replaced at enqueue",
        "an enqueue replaced a dead queued or a removed entry (read before the effect); \
         `R3 other mode` counts dead entries of another mode",
    ),
    row(
        "R4",
        "entry lease expiry",
        "try_match or cancel_loading dropped an entry whose lease had run out (read before)",
    ),
    row(
        "R5",
        "periodic resync",
        "a periodic resync repaired something (repair fact)",
    ),
    row(
        "R6",
        "unknown outcome after a lost reply",
        "a lost try_match reply was recovered (repair fact), or a repeated loading_complete of \
         the allocator got `all_ready` again",
    ),
    row(
        "R7",
        "notice lost -> resync",
        "sessions were told to resync: resubscribe, entry gone, recovery (repair fact)",
    ),
    row(
        "R8",
        "match found",
        "finish_match recorded a match (reply `matched`)",
    ),
    row(
        "R9",
        "disconnect or dequeue during loading",
        "a leaver's cancel_loading found its loading session (fact + witness)",
    ),
    row(
        "R10",
        "allocation failure -> requeue",
        "an allocation failure's cancel_loading found its loading session (fact + witness)",
    ),
    row(
        "R11",
        "lock TTL and validity",
        "a lock SET NX was refused to a contender, or try_match answered `lock_lost`",
    ),
    row(
        "R12",
        "player lease fencing",
        "a session was fenced because its renewals failed (repair fact)",
    ),
    row(
        "R13",
        "player lease lost",
        "a session stopped because the renewal found its lease gone or taken (repair fact)",
    ),
    row(
        "R14",
        "dead-entry sweep",
        "the dead-entry sweep removed at least one entry (repair fact)",
    ),
    row(
        "R15",
        "duplicate connection refusal",
        "a player lease's SET NX was refused (another session holds the player)",
    ),
    Row {
        id: "R16",
        name: "one effect at a time (burst of frames)",
        reach: Reach::Unreachable {
            why: "the session runs each effect to completion before it reads the next frame, so \
                  a frame never meets `Enqueuing`; unit tests burst_of_three_enqueues_* cover it",
        },
    },
    row(
        "R17",
        "clock failure",
        "the service skipped an operation because its clock failed (trace)",
    ),
    row(
        "R18",
        "untrusted script replies",
        "a script reply was truncated, garbled or extended (the parser met it)",
    ),
    row(
        "R19",
        "rate limit / flood",
        "a client told `rate_limited` lost its connection to the server's close",
    ),
    row(
        "R20",
        "graceful shutdown",
        "a queued or loading client was told `shutting_down`",
    ),
    row(
        "R21",
        "idle timeout / heartbeat",
        "a connection outlived idle_timeout_ms (its timer was reset) or was closed idle",
    ),
    row(
        "W1",
        "reply lost after the effect",
        "a script's effect happened and its reply was lost (error after effect, held past the timeout)",
    ),
    row(
        "W2",
        "notice arrives while an effect runs",
        "a notice for a session was published while its enqueue effect ran",
    ),
    row(
        "W3",
        "leave while the allocation is in flight",
        "finish_match found its loading session gone",
    ),
    row(
        "W4",
        "`loading_complete` vs the timeout",
        "a loading_complete found its session gone after the timeout ended it",
    ),
    row(
        "W5",
        "lease renewal vs expiry (skewed clocks)",
        "a renewal reached an own entry already past its deadline (read before)",
    ),
    row(
        "W6",
        "a lock holder outlives its lock (slow Redis, stall)",
        "the lock was taken while its last holder still held it, released past its validity, or \
         try_match answered `lock_lost`",
    ),
    row(
        "W7",
        "crash between a script and its notice",
        "an instance crashed after a script that owed a notice and before publishing it",
    ),
    row(
        "W8",
        "reconnect while the old session still holds the lease",
        "a player's own reconnection was refused with `session_exists`",
    ),
    row(
        "W9",
        "a held `loading_complete` lands after its lease expired",
        "a loading_complete a stall held landed after its caller's lease ran out, its loading \
         session not yet ended",
    ),
];

/// The row with `id`.
pub fn find(id: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.id == id)
}

/// The reachable rows no seed reached, given the summary's counts (seeds, total) by id.
pub fn never_reached(counts: &BTreeMap<String, (u64, u64)>) -> Vec<&'static Row> {
    ROWS.iter()
        .filter(|row| matches!(row.reach, Reach::Detected { .. }))
        .filter(|row| counts.get(row.id).is_none_or(|(seeds, _)| *seeds == 0))
        .collect()
}

/// The coverage table of a summary: every row, with the seeds that reached it and the
/// total count, unreachable rows with their reason, then any counter not in the table.
pub fn render(counts: &BTreeMap<String, (u64, u64)>) -> String {
    let mut out = String::from("rule coverage (seeds that reached it):   seeds      total\n");
    for row in &ROWS {
        let label = format!("{} {}", row.id, row.name);
        let label: String = label.chars().take(38).collect();
        match row.reach {
            Reach::Detected { .. } => {
                let (seeds, total) = counts.get(row.id).copied().unwrap_or_default();
                let gap = if seeds == 0 { "  NEVER REACHED" } else { "" };
                let _ = writeln!(out, "  {label:<38} {seeds:>6} {total:>10}{gap}");
            }
            Reach::Unreachable { .. } => {
                let _ = writeln!(out, "  {label:<38}  unreachable by design");
            }
        }
    }
    for (name, (seeds, total)) in counts.iter().filter(|(name, _)| find(name).is_none()) {
        let _ = writeln!(out, "  {name:<38} {seeds:>6} {total:>10}");
    }
    out
}

/// The gate's message: one line per reachable row no seed reached (empty when none).
pub fn gate_report(counts: &BTreeMap<String, (u64, u64)>) -> String {
    let mut out = String::new();
    for row in never_reached(counts) {
        let how = match row.reach {
            Reach::Detected { how } => how,
            Reach::Unreachable { why } => why,
        };
        let _ = writeln!(
            out,
            "COVERAGE GAP: {} {} was never reached ({how})",
            row.id, row.name
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the table has the catalogue's ids, in order, once each.
    #[test]
    fn rows_follow_the_catalogue() {
        let ids: Vec<&str> = ROWS.iter().map(|row| row.id).collect();
        let mut expected: Vec<String> = (1..=21).map(|n| format!("R{n}")).collect();
        expected.extend((1..=9).map(|n| format!("W{n}")));
        assert_eq!(ids, expected);
    }

    /// Goal: the docs' catalogue names every row with the same name.
    #[test]
    fn names_match_the_design_doc() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/design.md"))
                .unwrap();
        for row in &ROWS {
            let line = format!("| {} | {} |", row.id, row.name);
            assert!(docs.contains(&line), "docs/design.md has no row {line:?}");
        }
    }

    /// Goal: the gate names every reachable row no seed reached, and only those; an
    /// unreachable row never fails it.
    #[test]
    fn the_gate_names_every_gap() {
        let mut counts: BTreeMap<String, (u64, u64)> =
            ROWS.iter().map(|row| (row.id.to_owned(), (3, 7))).collect();
        counts.remove("R16");
        assert_eq!(gate_report(&counts), "");
        counts.insert("R3".into(), (0, 0));
        counts.remove("W8");
        let report = gate_report(&counts);
        assert!(report.contains("R3 dead entry replaced at enqueue was never reached"));
        assert!(report.contains("W8 reconnect while"));
        assert_eq!(report.lines().count(), 2);
        assert!(render(&counts).contains("R16 one effect at a time"));
        assert!(render(&counts).contains("NEVER REACHED"));
    }
}
