//! Where the fake's choices come from: its seed, or, in the conformance suite, the choices
//! a real Redis made for the same commands.
//!
//! Some replies are Redis's to choose: which members SPOP and SRANDMEMBER pick, the order
//! of SMEMBERS, HGETALL, HKEYS, HVALS and KEYS, and the pages of SCAN, SSCAN and HSCAN.
//! Normally the fake decides them from its seed. When it *follows* a record of what a real
//! Redis answered ([`Recorded`], in call order), each such command instead takes Redis's
//! choice, after checking that it is one the fake could have made itself from its own data:
//! a pick must be a member the fake's loop could pick at that point, an order must be a
//! permutation of the fake's own reply, a page may only hold elements the fake holds. The
//! fake's own logic still decides everything else (how many members to pick, when to stop,
//! which errors to raise), so following never hides a wrong count or a wrong error. Every
//! choice that could not be followed is kept as a problem for
//! [`FakeRedis::stop_following`](super::FakeRedis::stop_following) to report.

use std::collections::{BTreeSet, VecDeque};

use match_server::store::Reply;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Every command whose reply Redis leaves to chance or to its encoding, lower case: the
/// commands that follow a record. A recorder on the real side must record exactly these.
pub const CHOICE_COMMANDS: &[&str] = &[
    "spop",
    "srandmember",
    "smembers",
    "hgetall",
    "hkeys",
    "hvals",
    "keys",
    "scan",
    "sscan",
    "hscan",
];

/// What a real Redis answered to one command of [`CHOICE_COMMANDS`] that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The command as it was called (name first), to check the fake calls the same.
    pub argv: Vec<Vec<u8>>,
    /// Redis's reply, whose choices the fake takes.
    pub reply: Reply,
}

/// The source of the fake's choices: the seeded RNG, and the record being followed.
#[derive(Debug)]
pub struct Choices {
    /// Decides picks and SCAN page shapes when nothing is followed.
    rng: ChaCha8Rng,
    /// The record being followed, if any.
    following: Option<Following>,
}

/// A record being followed.
#[derive(Debug, Default)]
struct Following {
    /// Replies not taken yet, in call order.
    pending: VecDeque<Recorded>,
    /// Choices that could not be followed, one line each.
    problems: Vec<String>,
}

impl Choices {
    /// Choices from `rng` alone.
    pub fn seeded(rng: ChaCha8Rng) -> Self {
        Self {
            rng,
            following: None,
        }
    }

    /// Follows `recorded` from the next command that makes a choice on.
    pub fn follow(&mut self, recorded: Vec<Recorded>) {
        self.following = Some(Following {
            pending: recorded.into(),
            problems: Vec::new(),
        });
    }

    /// Stops following; returns every choice that could not be followed, and every
    /// recorded reply no command took (empty when the fake followed the record exactly).
    pub fn stop_following(&mut self) -> Vec<String> {
        let Some(mut following) = self.following.take() else {
            return Vec::new();
        };
        for left in following.pending {
            following.problems.push(format!(
                "Redis ran `{}` (and answered {}), the fake never did",
                shown_argv(&left.argv),
                shown_reply(&left.reply)
            ));
        }
        following.problems
    }

    /// The choices of one command, `args` (name first), that got past its error checks.
    /// When following, it takes the next recorded reply, which must be for the same call.
    pub fn start(&mut self, args: &[Vec<u8>]) -> Chooser<'_> {
        let Some(following) = self.following.as_mut() else {
            return Chooser {
                rng: &mut self.rng,
                followed: None,
            };
        };
        let command = shown_argv(args);
        let followed = match following.pending.pop_front() {
            None => {
                following.problems.push(format!(
                    "the fake ran `{command}`, Redis made no such call (another path)"
                ));
                None
            }
            Some(recorded) if !same_call(&recorded.argv, args) => {
                following.problems.push(format!(
                    "the fake ran `{command}` where Redis ran `{}`",
                    shown_argv(&recorded.argv)
                ));
                None
            }
            Some(recorded) => Some(Followed {
                command,
                reply: Some(recorded.reply),
                picks: VecDeque::new(),
                problems: &mut following.problems,
            }),
        };
        Chooser {
            rng: &mut self.rng,
            followed,
        }
    }
}

/// The choices of one command: from the RNG, or from Redis's reply to the same call.
#[derive(Debug)]
pub struct Chooser<'a> {
    /// The seeded RNG (also the fallback when Redis's choice is not one the fake can make).
    rng: &'a mut ChaCha8Rng,
    /// Redis's reply being followed, if any.
    followed: Option<Followed<'a>>,
}

/// Redis's reply to the command being run, and where its problems go.
#[derive(Debug)]
struct Followed<'a> {
    /// The command, for problem reports.
    command: String,
    /// The reply, until a pick, order or page takes it.
    reply: Option<Reply>,
    /// The members Redis picked that the fake has not picked yet.
    picks: VecDeque<Vec<u8>>,
    /// The record's problem list.
    problems: &'a mut Vec<String>,
}

impl Followed<'_> {
    /// Records a problem with this command.
    fn problem(&mut self, what: impl std::fmt::Display) {
        self.problems.push(format!("`{}`: {what}", self.command));
    }
}

impl Chooser<'_> {
    /// A member of `from` (`None` when it is empty): Redis's next pick when following,
    /// which `from` must hold; otherwise one chosen by the seeded RNG.
    pub fn pick(&mut self, from: &BTreeSet<Vec<u8>>) -> Option<Vec<u8>> {
        if from.is_empty() {
            return None;
        }
        if let Some(followed) = self.followed.as_mut() {
            if let Some(reply) = followed.reply.take() {
                followed.picks = picks_of(&reply);
            }
            match followed.picks.pop_front() {
                Some(member) if from.contains(&member) => return Some(member),
                Some(member) => followed.problem(format_args!(
                    "Redis picked {}, which the fake could not pick here",
                    shown(&member)
                )),
                None => followed.problem("the fake picked more members than Redis did"),
            }
        }
        from.iter()
            .nth(self.rng.random_range(0..from.len()))
            .cloned()
    }

    /// A reply whose order is free (`own`, as the fake orders it): Redis's order when
    /// following, which must hold the same elements (as pairs when `pairs`).
    pub fn order(&mut self, own: Vec<Reply>, pairs: bool) -> Vec<Reply> {
        let Some(followed) = self.followed.as_mut() else {
            return own;
        };
        let Some(reply) = followed.reply.take() else {
            return own;
        };
        match reply {
            Reply::Array(theirs) if same_elements(&own, &theirs, pairs) => theirs,
            other => {
                followed.problem(format_args!(
                    "Redis answered {}, not an order of the fake's {}",
                    shown_reply(&other),
                    shown_reply(&Reply::Array(own.clone()))
                ));
                own
            }
        }
    }

    /// A SCAN-family page: Redis's when following, if `legal` accepts it (it says why
    /// not otherwise); else `own`, the fake's page from its seeded RNG.
    pub fn page(
        &mut self,
        legal: impl FnOnce(&Reply) -> Result<(), String>,
        own: impl FnOnce(&mut ChaCha8Rng) -> Reply,
    ) -> Reply {
        if let Some(followed) = self.followed.as_mut()
            && let Some(reply) = followed.reply.take()
        {
            match legal(&reply) {
                Ok(()) => return reply,
                Err(why) => followed.problem(format_args!(
                    "Redis answered {}, which the fake cannot: {why}",
                    shown_reply(&reply)
                )),
            }
        }
        own(self.rng)
    }

    /// A reply the fake has no choice about (a SCAN of a missing key); when following,
    /// Redis's reply to the same call must be the same.
    pub fn fixed(&mut self, own: Reply) -> Reply {
        let expected = own.clone();
        let legal = |reply: &Reply| {
            if *reply == expected {
                Ok(())
            } else {
                Err(format!(
                    "the fake's only reply is {}",
                    shown_reply(&expected)
                ))
            }
        };
        self.page(legal, |_| own)
    }
}

impl Drop for Chooser<'_> {
    /// Reports the part of Redis's reply the fake did not take: members Redis picked
    /// beyond the fake's picks, or a reply with elements where the fake chose nothing.
    fn drop(&mut self) {
        let Some(followed) = self.followed.as_mut() else {
            return;
        };
        if let Some(reply) = followed.reply.take()
            && !matches!(&reply, Reply::Nil)
            && !matches!(&reply, Reply::Array(items) if items.is_empty())
        {
            followed.problem(format_args!(
                "Redis answered {}, the fake chose nothing",
                shown_reply(&reply)
            ));
        }
        if !followed.picks.is_empty() {
            let left: Vec<String> = followed.picks.iter().map(|m| shown(m)).collect();
            followed.problem(format_args!(
                "Redis also picked {}, the fake stopped before",
                left.join(", ")
            ));
        }
    }
}

/// The members of an SPOP or SRANDMEMBER reply, in Redis's order (a non-bulk element,
/// which no such reply holds, becomes an empty member and fails the membership check).
fn picks_of(reply: &Reply) -> VecDeque<Vec<u8>> {
    match reply {
        Reply::Bulk(member) => VecDeque::from([member.clone()]),
        Reply::Array(items) => items
            .iter()
            .map(|item| match item {
                Reply::Bulk(member) => member.clone(),
                _ => Vec::new(),
            })
            .collect(),
        _ => VecDeque::new(),
    }
}

/// Whether two arrays hold the same elements (as pairs when `pairs`) in any order.
fn same_elements(own: &[Reply], theirs: &[Reply], pairs: bool) -> bool {
    if own.len() != theirs.len() {
        return false;
    }
    let width = if pairs { 2 } else { 1 };
    let sorted = |items: &[Reply]| {
        let mut chunks: Vec<String> = items
            .chunks(width)
            .map(|chunk| format!("{chunk:?}"))
            .collect();
        chunks.sort_unstable();
        chunks
    };
    sorted(own) == sorted(theirs)
}

/// Whether two argvs are the same call: the name in any case, the rest byte for byte.
fn same_call(recorded: &[Vec<u8>], args: &[Vec<u8>]) -> bool {
    match (recorded.split_first(), args.split_first()) {
        (Some((name, rest)), Some((other_name, other_rest))) => {
            name.eq_ignore_ascii_case(other_name) && rest == other_rest
        }
        _ => false,
    }
}

/// An argv as text for reports.
fn shown_argv(argv: &[Vec<u8>]) -> String {
    let words: Vec<String> = argv.iter().map(|arg| shown(arg)).collect();
    words.join(" ")
}

/// Bytes as a quoted string with non-printable bytes escaped.
fn shown(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// A reply as text for reports.
fn shown_reply(reply: &Reply) -> String {
    match reply {
        Reply::Nil => "nil".to_owned(),
        Reply::Int(number) => number.to_string(),
        Reply::Bulk(bytes) => shown(bytes),
        Reply::Status(text) => format!("+{text}"),
        Reply::Error(text) => format!("-{text}"),
        Reply::Array(items) => {
            let items: Vec<String> = items.iter().map(shown_reply).collect();
            format!("[{}]", items.join(", "))
        }
    }
}
