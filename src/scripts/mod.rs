//! The Lua scripts in `lua/`, one Rust module per script (mini-redis's one file per
//! command): next to `lua/<name>.lua`, `scripts/<name>.rs` holds the script's [`Layout`]
//! (the names of its KEYS and ARGV, in order), its typed call (a struct of named fields
//! that fills that layout) and its total reply parser. [`call`] is the one path every call
//! takes: retries by the script's [`Retry`] policy, metrics, logs, reply validation.
//!
//! Every script is sent as `lib.lua` followed by its own file, so the helpers in `lib.lua`
//! exist once in the repository. The fake Redis of the simulation receives the very same
//! source text through the [`Store`](crate::store::Store) seam.
//!
//! Adding a script is one pair of files (`lua/<name>.lua`, `scripts/<name>.rs`) and one
//! word in [`register!`] below; docs/design.md ("How to add a script") walks through it.

pub mod call;
pub mod reply;

pub use call::{CallError, Invocation, Layout, Retry, ScriptCall, ScriptRunner};
pub use reply::{Member, ReplyError};

/// The shared helpers prepended to every script.
const LIB: &str = include_str!("../../lua/lib.lua");

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
    pub fn new(name: &'static str, body: &str) -> Self {
        let source = format!("{LIB}\n{body}");
        let sha1 = sha1_smol::Sha1::from(source.as_bytes()).hexdigest();
        Self { name, source, sha1 }
    }

    /// The script's own file, without the `lib.lua` prepended to it.
    pub fn body(&self) -> &str {
        self.source
            .get(LIB.len().saturating_add(1)..)
            .unwrap_or_default()
    }
}

/// `lua/<name>.lua` as a [`Script`] named `<name>`, built on first use.
macro_rules! script {
    ($name:literal) => {
        std::sync::LazyLock::new(|| {
            $crate::scripts::Script::new($name, include_str!(concat!("../../lua/", $name, ".lua")))
        })
    };
}

/// Declares the script modules and lists them, in this order, in [`all`] and [`layouts`]:
/// the one line a new script is registered in.
macro_rules! register {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// Every script the service runs, for tools that load or inspect them all.
        pub fn all() -> Vec<&'static Script> {
            vec![$(&*$name::SCRIPT),*]
        }

        /// Every script with the layout of its KEYS and ARGV.
        pub fn layouts() -> Vec<(&'static Script, &'static Layout)> {
            vec![$((&*$name::SCRIPT, &$name::LAYOUT)),*]
        }
    };
}

register!(
    enqueue,
    leave_queue,
    try_match,
    loading_complete,
    finish_match,
    cancel_loading,
    renew_leases,
    sweep_players,
    release_lock,
    renew_player_leases,
    release_player_lease,
    fleet_claim,
    fleet_release,
    fleet_sync,
);

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
