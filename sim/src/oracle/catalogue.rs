//! The catalogue of invariants: ONE table, from which the [`Invariant`] enum, the names the
//! summaries print, the one-line meanings the docs list and the registry of checks are all
//! generated. Adding an invariant is one row here (plus its file and its `mod` line).

use super::{Bounds, Check};

/// Declares the invariants from rows `number Variant module::Check "name" "meaning";`.
macro_rules! catalogue {
    ($($number:literal $variant:ident $module:ident :: $check:ident $name:literal $meaning:literal;)*) => {
        /// The invariants, numbered as in ARCHITECTURE.md and docs/design.md.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Invariant {
            $(
                #[doc = $meaning]
                $variant,
            )*
        }

        impl Invariant {
            /// Every invariant, in catalogue order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// Its number in the catalogue.
            pub fn number(self) -> u32 {
                match self {
                    $(Self::$variant => $number,)*
                }
            }

            /// `<number>_<name>`, as the summary and failures print it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($number, "_", $name),)*
                }
            }

            /// What it promises, in one line.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Self::$variant => $meaning,)*
                }
            }
        }

        /// One fresh check per invariant, in catalogue order.
        pub(super) fn checks(bounds: &Bounds) -> Vec<(Invariant, Box<dyn Check>)> {
            vec![$((Invariant::$variant, Box::new(super::$module::$check::new(bounds)) as Box<dyn Check>),)*]
        }
    };
}

catalogue! {
    1 NoPanic no_panic::NoPanic "no_panic"
        "Nothing panics, in any task, and no assertion of the service fails.";
    2 OnePlace one_place::OnePlace "one_place"
        "A player is in at most one place: once in one queue, or in one loading session.";
    3 LoadingComposition loading_composition::LoadingComposition "loading_composition"
        "Every loading session holds exactly the mode's player count, all distinct, same mode.";
    4 LegalMessages legal_messages::LegalMessages "legal_messages"
        "Each client sees a legal message sequence.";
    5 NoGhosts no_ghosts::NoGhosts "no_ghosts"
        "A player whose disconnect was processed is in no queue and joins no later loading session.";
    6 LockExclusive lock_exclusive::LockExclusive "lock_exclusive"
        "A match lock has at most one holder that may act under it at a time.";
    7 NoOneLost no_one_lost::NoOneLost "no_one_lost"
        "Every connected player that enqueued is queued, loading or matched: no one waits forever.";
    8 MatchInTime match_in_time::MatchInTime "match_in_time"
        "Enough waiting players and an idle game server lead to a match within a bound.";
    9 NoStaleState no_stale_state::NoStaleState "no_stale_state"
        "Redis holds no loading session or lock past its timeout.";
    10 OneSession one_session::OneSession "one_session"
        "At most one live session acts for a player: every act under the session's own lease.";
    11 LoadingAgain loading_again::LoadingAgain "loading_again_has_cause"
        "No player is sent through loading again without a cause the trace explains.";
    12 InTime in_time::InTime "message_in_time"
        "Every promised message arrives within its bound of its cause, unless a fault on its path explains the delay.";
    13 CodeHasCause code_has_cause::CodeHasCause "code_has_cause"
        "Every error code has its documented cause: no loading timeout before the deadline, a duplicate connection refused with session_exists.";
    14 ViewsAgree views_agree::ViewsAgree "views_agree_at_rest"
        "Once the healed world rests, every connected client's view equals what Redis holds for its player.";
    15 RepairHasCause repair_has_cause::RepairHasCause "repair_has_cause"
        "No repair without a cause: a safety net repairs only state that a fault on record could have broken.";
    16 CloseHasCause close_has_cause::CloseHasCause "close_has_cause"
        "Every close the server makes has its cause in the trace (idle: the timeout of client silence; flooding: the tolerated rate-limited frames), and a flood has its close.";
}
