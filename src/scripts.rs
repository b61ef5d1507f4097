//! The Lua scripts in `lua/`, compiled into the binary and identified by their SHA1.
//!
//! Every script is sent as `lib.lua` followed by its own file, so the helpers in `lib.lua`
//! exist once in the repository. The fake Redis of the simulation receives the very same
//! source text through the [`Store`](crate::store::Store) seam.

use std::sync::LazyLock;

/// The shared helpers prepended to every script.
const LIB: &str = include_str!("../lua/lib.lua");

/// One script ready to run: its name for logs, full source and SHA1 for EVALSHA.
#[derive(Debug)]
pub struct Script {
    /// The file name without `.lua`, used in logs and metrics.
    pub name: &'static str,
    /// The full source sent to Redis: `lib.lua` then the script's own file.
    pub source: String,
    /// Lower-case hex SHA1 of `source`, as EVALSHA expects.
    pub sha1: String,
}

impl Script {
    /// Joins the shared helpers and a script body, and computes the SHA1.
    fn new(name: &'static str, body: &str) -> Self {
        let source = format!("{LIB}\n{body}");
        let sha1 = sha1_smol::Sha1::from(source.as_bytes()).hexdigest();
        Self { name, source, sha1 }
    }
}

/// Every script the service runs.
#[derive(Debug)]
pub struct Scripts {
    /// Adds a player to a mode's queue.
    pub enqueue: Script,
    /// Removes a player's queue entry (dequeue, disconnect, shutdown).
    pub leave_queue: Script,
    /// Pops a group of players into a new loading session.
    pub try_match: Script,
    /// Marks a player of a loading session ready.
    pub loading_complete: Script,
    /// Records the game server of a fully loaded session.
    pub finish_match: Script,
    /// Ends a loading session and requeues its remaining players.
    pub cancel_loading: Script,
    /// Extends the leases of an instance's live sessions.
    pub renew_leases: Script,
    /// Removes entries whose lease ran out.
    pub sweep_players: Script,
    /// Compare-and-delete for locks, claims and player leases.
    pub release_lock: Script,
    /// Extends the player leases of an instance's live sessions.
    pub renew_player_leases: Script,
}

/// The scripts, built once on first use.
pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: Script::new("enqueue", include_str!("../lua/enqueue.lua")),
    leave_queue: Script::new("leave_queue", include_str!("../lua/leave_queue.lua")),
    try_match: Script::new("try_match", include_str!("../lua/try_match.lua")),
    loading_complete: Script::new(
        "loading_complete",
        include_str!("../lua/loading_complete.lua"),
    ),
    finish_match: Script::new("finish_match", include_str!("../lua/finish_match.lua")),
    cancel_loading: Script::new("cancel_loading", include_str!("../lua/cancel_loading.lua")),
    renew_leases: Script::new("renew_leases", include_str!("../lua/renew_leases.lua")),
    sweep_players: Script::new("sweep_players", include_str!("../lua/sweep_players.lua")),
    release_lock: Script::new("release_lock", include_str!("../lua/release_lock.lua")),
    renew_player_leases: Script::new(
        "renew_player_leases",
        include_str!("../lua/renew_player_leases.lua"),
    ),
});

impl Scripts {
    /// Every script, for tools that load or inspect them all.
    pub fn all(&self) -> [&Script; 10] {
        [
            &self.enqueue,
            &self.leave_queue,
            &self.try_match,
            &self.loading_complete,
            &self.finish_match,
            &self.cancel_loading,
            &self.renew_leases,
            &self.sweep_players,
            &self.release_lock,
            &self.renew_player_leases,
        ]
    }
}
