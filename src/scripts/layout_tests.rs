//! Unit tests of the script layouts: each script's KEYS and ARGV are declared once, in its
//! module's [`Layout`], and both sides of the wire follow it - the Lua file binds the same
//! names in the same order and never indexes KEYS or ARGV anywhere else, and the typed
//! call fills every slot in order.

use uuid::Uuid;

use super::*;
use crate::config::{GameMode, Settings};
use crate::keys::Keys;
use crate::protocol::ErrorCode;

/// The `local <name> = KEYS[<i>]` (or `ARGV`, possibly in `tonumber(...)`) bindings of a
/// script body, in order: (array, index, name).
fn bindings(body: &str) -> Vec<(String, usize, String)> {
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("local ")?;
            let (name, value) = rest.split_once(" = ")?;
            let value = value
                .strip_prefix("tonumber(")
                .and_then(|v| v.strip_suffix(')'))
                .unwrap_or(value);
            let (array, index) = value.strip_suffix(']')?.split_once('[')?;
            let index = index.parse().ok()?;
            matches!(array, "KEYS" | "ARGV").then(|| (array.to_owned(), index, name.to_owned()))
        })
        .collect()
}

/// Goal: every script binds exactly its module's layout names, in order, on its first
/// lines, and indexes KEYS and ARGV with a literal nowhere else (its tails go through
/// named helpers), so the layout is declared once and read by name.
#[test]
fn every_script_binds_its_layout_by_name() {
    for (script, layout) in layouts() {
        let bound = bindings(script.body());
        for (array, names) in [("KEYS", layout.keys), ("ARGV", layout.args)] {
            let got: Vec<(usize, &str)> = bound
                .iter()
                .filter(|(a, ..)| a == array)
                .map(|(_, index, name)| (*index, name.as_str()))
                .collect();
            let want: Vec<(usize, &str)> = names
                .iter()
                .enumerate()
                .map(|(index, name)| (index + 1, *name))
                .collect();
            assert_eq!(got, want, "{}: {array} bindings", script.name);
        }
        let literal_uses = script
            .body()
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .filter(|line| !line.starts_with("local ") || bindings(line).is_empty())
            .filter(|line| {
                ["KEYS[", "ARGV["].iter().any(|array| {
                    line.match_indices(array).any(|(at, _)| {
                        line.get(at + 5..)
                            .and_then(|rest| rest.chars().next())
                            .is_some_and(|c| c.is_ascii_digit())
                    })
                })
            })
            .count();
        assert_eq!(
            literal_uses, 0,
            "{}: KEYS/ARGV indexed outside the bindings",
            script.name
        );
    }
}

/// Goal: script names are the file names, distinct, and every script is registered.
#[test]
fn scripts_are_named_after_their_files() {
    let names: Vec<&str> = all().iter().map(|script| script.name).collect();
    let distinct: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    let files: std::collections::BTreeSet<String> = std::fs::read_dir("lua")
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|file| file.strip_suffix(".lua").map(str::to_owned))
        .filter(|name| name != "lib")
        .collect();
    let registered: std::collections::BTreeSet<String> =
        names.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(
        registered, files,
        "every lua/*.lua is registered in scripts::register!"
    );
}

/// The slot counts of an invocation that fits its layout.
fn filled(call: &impl ScriptCall, keys: &Keys) -> (usize, usize) {
    let (k, a) = call
        .invocation(keys)
        .finish()
        .expect("the call fits its layout");
    (k.len(), a.len())
}

/// Goal: every typed call fills exactly its layout (tails included), so no call is ever
/// refused by the call path for a misfit.
#[test]
fn every_typed_call_fills_its_layout() {
    let keys = Keys::new("{t}");
    let settings = Settings::default();
    let modes: &[GameMode] = &settings.modes;
    let mode = modes.first().unwrap();
    let [player, owner, loading] = [1_u128, 2, 3].map(Uuid::from_u128);
    let member = Member { player, owner };
    let group = [member];
    let n = modes.len();
    let enqueue = enqueue::Enqueue {
        player,
        owner,
        mode: &mode.name,
        now_ms: 1,
        lease_deadline_ms: 2,
        max_queue_len: 3,
        modes,
    };
    assert_eq!(filled(&enqueue, &keys), (2 + n, 6 + n));
    let leave = leave_queue::LeaveQueue {
        player,
        owner,
        mode: &mode.name,
        modes,
    };
    assert_eq!(filled(&leave, &keys), (2, 3));
    let try_match = try_match::TryMatch {
        mode,
        loading,
        now_ms: 1,
        deadline_ms: 2,
        lock_token: owner,
        players_per_match: 2,
    };
    assert_eq!(filled(&try_match, &keys), (5, 7));
    let complete = loading_complete::LoadingComplete {
        player,
        owner,
        loading,
        allocation_deadline_ms: 1,
        players_per_match: 2,
    };
    assert_eq!(filled(&complete, &keys), (3, 4));
    let finish = finish_match::FinishMatch {
        mode: &mode.name,
        loading,
        session_id: owner,
        server_address: "10.0.0.1:7777",
        lease_deadline_ms: 1,
        group: &group,
        players_per_match: 2,
    };
    assert_eq!(filled(&finish, &keys), (3, 4));
    let cancel = cancel_loading::CancelLoading {
        mode: &mode.name,
        loading,
        leaving: Some(member),
        now_ms: 1,
        when: cancel_loading::CancelWhen::Always,
        reason: ErrorCode::LoadingCancelled,
        removed_lease_deadline_ms: 2,
        players_per_match: 2,
    };
    assert_eq!(filled(&cancel, &keys), (4, 10));
    let renew = renew_leases::RenewLeases {
        lease_deadline_ms: 1,
        batch: &[member, member],
    };
    assert_eq!(filled(&renew, &keys), (1, 5));
    let renew_players = renew_player_leases::RenewPlayerLeases {
        ttl_ms: 1,
        batch: &[member, member],
    };
    assert_eq!(filled(&renew_players, &keys), (2, 5));
    let sweep = sweep_players::SweepPlayers {
        now_ms: 1,
        cursor: 0,
        count: 3,
        modes,
    };
    assert_eq!(filled(&sweep, &keys), (1 + n, 3 + n));
    let release = release_lock::ReleaseLock {
        mode: &mode.name,
        token: owner,
    };
    assert_eq!(filled(&release, &keys), (1, 1));
    let release_lease = release_player_lease::ReleasePlayerLease { player, owner };
    assert_eq!(filled(&release_lease, &keys), (1, 1));
}

/// Goal: an invocation filled out of order, with a slot missing, or with a tail its
/// layout has no room for is refused with the slot named, so it is never sent.
#[test]
fn a_misfit_invocation_is_refused() {
    let mut swapped = Invocation::new(&leave_queue::LAYOUT);
    swapped.key("queue_key", "q".into());
    swapped.key("players_key", "p".into());
    swapped.arg("owner", "o");
    swapped.arg("player", "p1");
    swapped.arg("mode", "m");
    let refused = swapped.finish().unwrap_err();
    assert!(refused.contains("owner at ARGV[1]"), "{refused}");
    let mut short = Invocation::new(&leave_queue::LAYOUT);
    short.key("queue_key", "q".into());
    short.key("players_key", "p".into());
    short.arg("player", "p1");
    assert!(short.finish().unwrap_err().contains("1 of 3 arguments"));
    let mut tail = Invocation::new(&leave_queue::LAYOUT);
    tail.key("queue_key", "q".into());
    tail.key("players_key", "p".into());
    tail.key_tail("extra".into());
    assert!(
        tail.finish()
            .unwrap_err()
            .contains("repeated key at KEYS[3]")
    );
}
