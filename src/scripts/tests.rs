//! Unit tests of every script module's reply parser (short, empty, long and garbled
//! replies), in one table so each shape is exercised in every way.
//!
//! The good shapes are built exactly as the scripts in `lua/` build them. Every bad shape is
//! derived from a good one - cut, extended, garbled slot by slot - so a new script shape only
//! needs one row in [`good_replies`] to be exercised in every way.

use std::collections::BTreeSet;

use proptest::prelude::*;
use uuid::Uuid;

use super::cancel_loading::{self, CancelReply};
use super::enqueue::{self, EnqueueReply};
use super::finish_match::{self, FinishReply};
use super::leave_queue::{self, LeaveReply};
use super::loading_complete::{self, CompleteReply};
use super::renew_leases::{self, RenewReply};
use super::sweep_players::{self, SweepReply};
use super::try_match::{self, TryMatchReply};
use super::{Member, ReplyError, release_lock, release_player_lease};
use crate::store::Reply;

const P1: &str = "11111111-1111-4111-8111-111111111111";
const P2: &str = "22222222-2222-4222-8222-222222222222";
const P3: &str = "33333333-3333-4333-8333-333333333333";
const P4: &str = "44444444-4444-4444-8444-444444444444";
const O1: &str = "a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1";
const O2: &str = "a2a2a2a2-a2a2-4a2a-8a2a-a2a2a2a2a2a2";
const O3: &str = "a3a3a3a3-a3a3-4a3a-8a3a-a3a3a3a3a3a3";
const O4: &str = "a4a4a4a4-a4a4-4a4a-8a4a-a4a4a4a4a4a4";
/// A player and owner that appear in no good reply, for "one extra pair".
const P_EXTRA: &str = "55555555-5555-4555-8555-555555555555";
const O_EXTRA: &str = "a5a5a5a5-a5a5-4a5a-8a5a-a5a5a5a5a5a5";
const LOADING: &str = "0b9d1c3e-1f4a-4f1e-8d2c-5a6b7c8d9e0f";
const MODE: &str = "Normal_1v1";

fn id(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap()
}

fn b(text: &str) -> Reply {
    Reply::bulk(text)
}

fn member(player: &str, owner: &str) -> Member {
    Member {
        player: id(player),
        owner: id(owner),
    }
}

/// Every parser under test, so tables can range over all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parser {
    Enqueue,
    Leave,
    TryMatch,
    Complete,
    Finish,
    Cancel,
    Renew,
    Sweep,
    Release,
}

impl Parser {
    const ALL: [Self; 9] = [
        Self::Enqueue,
        Self::Leave,
        Self::TryMatch,
        Self::Complete,
        Self::Finish,
        Self::Cancel,
        Self::Renew,
        Self::Sweep,
        Self::Release,
    ];

    /// The script name a `ReplyError` of this parser must carry.
    fn script(self) -> &'static str {
        match self {
            Self::Enqueue => "enqueue",
            Self::Leave => "leave_queue",
            Self::TryMatch => "try_match",
            Self::Complete => "loading_complete",
            Self::Finish => "finish_match",
            Self::Cancel => "cancel_loading",
            Self::Renew => "renew_leases",
            Self::Sweep => "sweep_players",
            Self::Release => "release_lock",
        }
    }

    /// The tags the script really returns (lua/*.lua); every other tag is unknown to it.
    fn tags(self) -> &'static [&'static str] {
        match self {
            Self::Enqueue => &["enqueued", "already", "taken", "busy", "full"],
            Self::Leave => &["left", "loading", "other_mode", "none"],
            Self::TryMatch => &["matched", "waiting"],
            Self::Complete => &[
                "waiting",
                "all_ready",
                "already_ready",
                "not_member",
                "gone",
                "lease_lost",
            ],
            Self::Finish => &["matched", "gone"],
            Self::Cancel => &["cancelled", "not_expired", "not_member", "gone"],
            Self::Renew => &["renewed"],
            Self::Sweep => &["swept"],
            Self::Release => &[],
        }
    }

    fn parse(self, reply: &Reply, need: usize) -> Result<Outcome, ReplyError> {
        match self {
            Self::Enqueue => enqueue::parse(reply).map(Outcome::Enqueue),
            Self::Leave => leave_queue::parse(reply).map(Outcome::Leave),
            Self::TryMatch => try_match::parse(reply, need).map(Outcome::TryMatch),
            Self::Complete => loading_complete::parse(reply, need).map(Outcome::Complete),
            Self::Finish => finish_match::parse(reply, need).map(Outcome::Finish),
            Self::Cancel => cancel_loading::parse(reply, need).map(Outcome::Cancel),
            Self::Renew => renew_leases::parse(reply).map(Outcome::Renew),
            Self::Sweep => sweep_players::parse(reply).map(Outcome::Sweep),
            Self::Release => release_lock::parse(reply).map(Outcome::Release),
        }
    }
}

/// The typed outcome of any parser, so one table can hold them all.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Enqueue(EnqueueReply),
    Leave(LeaveReply),
    TryMatch(TryMatchReply),
    Complete(CompleteReply),
    Finish(FinishReply),
    Cancel(CancelReply),
    Renew(RenewReply),
    Sweep(SweepReply),
    Release(bool),
}

impl Outcome {
    /// The outcome of the same reply with only the first `kept` entries of its trailing list,
    /// when such a shorter reply is one the script can legitimately send: `finish_match`
    /// skips players whose entry is gone, `cancel_loading` drops dead ones, `renew_leases`
    /// lists any number of lost players. A group of `try_match` or `loading_complete` has a
    /// fixed size, so a shorter one is never legitimate (`None`); nor is a `cancel_loading`
    /// list cut short of the requeued players its count announces (the cut is detected),
    /// while a cut among the removed ones that follow reads as fewer removed.
    fn shortened(&self, kept: usize) -> Option<Self> {
        match self {
            Self::Finish(FinishReply::Matched { members }) => {
                Some(Self::Finish(FinishReply::Matched {
                    members: members.iter().take(kept).copied().collect(),
                }))
            }
            Self::Cancel(CancelReply::Cancelled {
                dropped,
                requeued,
                removed,
            }) => {
                let removed_kept = kept.checked_sub(requeued.len())?;
                Some(Self::Cancel(CancelReply::Cancelled {
                    dropped: *dropped,
                    requeued: requeued.clone(),
                    removed: removed.iter().take(removed_kept).copied().collect(),
                }))
            }
            Self::Renew(RenewReply { renewed, lost }) => Some(Self::Renew(RenewReply {
                renewed: *renewed,
                lost: lost.iter().take(kept).copied().collect(),
            })),
            _ => None,
        }
    }

    /// The outcome of the same reply with one more `(player, owner)` pair appended, when that
    /// is still a reply the script can send for a mode of `need` players.
    fn extended(&self, extra: Member, need: usize) -> Option<Self> {
        let push = |members: &[Member]| {
            let mut longer = members.to_vec();
            longer.push(extra);
            (longer.len() <= need).then_some(longer)
        };
        match self {
            Self::Finish(FinishReply::Matched { members }) => {
                push(members).map(|members| Self::Finish(FinishReply::Matched { members }))
            }
            // A pair after the announced requeued ones is one more removed player.
            Self::Cancel(CancelReply::Cancelled {
                dropped,
                requeued,
                removed,
            }) => {
                let total = requeued.len() + removed.len();
                (total < need).then(|| {
                    let mut removed = removed.clone();
                    removed.push(extra);
                    Self::Cancel(CancelReply::Cancelled {
                        dropped: *dropped,
                        requeued: requeued.clone(),
                        removed,
                    })
                })
            }
            // Two more ids are simply two more lost players.
            Self::Renew(RenewReply { renewed, lost }) => {
                let mut lost = lost.clone();
                lost.extend([extra.player, extra.owner]);
                Some(Self::Renew(RenewReply {
                    renewed: *renewed,
                    lost,
                }))
            }
            _ => None,
        }
    }
}

/// What one position of a script reply holds, which decides how it can be garbled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The tag (first element).
    Tag,
    /// A UUID: loading id, player, owner.
    Id,
    /// A UUID or the empty string for "none" (`already`'s loading id).
    OptId,
    /// A non-negative integer (or its decimal text).
    Count,
    /// Free text such as a mode name.
    Text,
    /// `queued` or `loading` (`already`'s state).
    State,
}

impl Slot {
    /// Replacements of a slot's value that must all make the reply fail to parse.
    fn garbles(self) -> Vec<Reply> {
        let not_text = vec![
            Reply::Nil,
            Reply::Int(7),
            Reply::Error("ERR garbled".into()),
            Reply::Array(Vec::new()),
            Reply::Array(vec![b(P1)]),
            Reply::Bulk(vec![0xff, 0xfe, 0x00]),
        ];
        let mut garbles = match self {
            Self::Count => vec![
                Reply::Nil,
                Reply::Int(-1),
                Reply::Int(i64::MIN),
                Reply::Error("ERR garbled".into()),
                Reply::Array(Vec::new()),
                Reply::Array(vec![Reply::Int(1)]),
                Reply::Bulk(vec![0xff, 0xfe]),
                b(""),
                b("many"),
                b("-1"),
                b("1.5"),
                b(" 1"),
                b("18446744073709551616"),
            ],
            _ => not_text,
        };
        match self {
            Self::Tag => garbles.extend([b(""), b("bogus"), b("MATCHED"), b(P1)]),
            Self::Id => garbles.extend([b(""), b("not-a-uuid"), b("1234"), b("player-1")]),
            Self::OptId => garbles.extend([b("not-a-uuid"), b("1234")]),
            Self::State => garbles.extend([b(""), b("matched"), b("QUEUED")]),
            Self::Count | Self::Text => {}
        }
        garbles
    }
}

/// One good reply as its script returns it, slot by slot, with its typed outcome.
#[derive(Clone, Debug)]
struct Good {
    /// What the row shows, for failure messages.
    name: &'static str,
    parser: Parser,
    /// Players per match of the mode (parsers that check groups).
    need: usize,
    slots: Vec<(Slot, Reply)>,
    want: Outcome,
    /// Where a trailing list of ids starts, and how many slots one entry takes.
    list: Option<(usize, usize)>,
}

impl Good {
    fn reply(&self) -> Reply {
        Reply::Array(self.slots.iter().map(|(_, reply)| reply.clone()).collect())
    }

    fn items(&self) -> Vec<Reply> {
        self.slots.iter().map(|(_, reply)| reply.clone()).collect()
    }

    /// The expected outcome of the reply cut to its first `len` elements.
    fn cut_outcome(&self, len: usize) -> Option<Outcome> {
        let (start, stride) = self.list?;
        let listed = len.checked_sub(start)?;
        if listed % stride != 0 {
            return None;
        }
        self.want.shortened(listed / stride)
    }
}

fn tag(text: &str) -> (Slot, Reply) {
    (Slot::Tag, b(text))
}

fn uuid_slot(text: &str) -> (Slot, Reply) {
    (Slot::Id, b(text))
}

fn count_slot(value: i64) -> (Slot, Reply) {
    (Slot::Count, Reply::Int(value))
}

fn pairs(members: &[(&str, &str)]) -> Vec<(Slot, Reply)> {
    members
        .iter()
        .flat_map(|(player, owner)| [uuid_slot(player), uuid_slot(owner)])
        .collect()
}

fn members(list: &[(&str, &str)]) -> Vec<Member> {
    list.iter()
        .map(|(player, owner)| member(player, owner))
        .collect()
}

fn slots(parts: Vec<Vec<(Slot, Reply)>>) -> Vec<(Slot, Reply)> {
    parts.into_iter().flatten().collect()
}

/// Every shape each script returns (see the `Reply:` line of each file in `lua/`).
fn good_replies() -> Vec<Good> {
    let two = [(P1, O1), (P2, O2)];
    let four = [(P1, O1), (P2, O2), (P3, O3), (P4, O4)];
    let row = |name, parser, need, slots, want, list| Good {
        name,
        parser,
        need,
        slots,
        want,
        list,
    };
    vec![
        // enqueue.lua
        row(
            "enqueue: enqueued with the queue length (SCARD)",
            Parser::Enqueue,
            2,
            vec![tag("enqueued"), count_slot(3)],
            Outcome::Enqueue(EnqueueReply::Enqueued { queue_len: 3 }),
            None,
        ),
        row(
            "enqueue: already queued; p.loading is '' for a queued entry",
            Parser::Enqueue,
            2,
            vec![
                tag("already"),
                (Slot::State, b("queued")),
                (Slot::Text, b(MODE)),
                (Slot::OptId, b("")),
            ],
            Outcome::Enqueue(EnqueueReply::AlreadyQueued { mode: MODE.into() }),
            None,
        ),
        row(
            "enqueue: already loading, with the loading id",
            Parser::Enqueue,
            2,
            vec![
                tag("already"),
                (Slot::State, b("loading")),
                (Slot::Text, b(MODE)),
                (Slot::OptId, b(LOADING)),
            ],
            Outcome::Enqueue(EnqueueReply::AlreadyLoading {
                mode: MODE.into(),
                loading: Some(id(LOADING)),
            }),
            None,
        ),
        row(
            "enqueue: taken",
            Parser::Enqueue,
            2,
            vec![tag("taken")],
            Outcome::Enqueue(EnqueueReply::Taken),
            None,
        ),
        row(
            "enqueue: busy",
            Parser::Enqueue,
            2,
            vec![tag("busy")],
            Outcome::Enqueue(EnqueueReply::Busy),
            None,
        ),
        row(
            "enqueue: full",
            Parser::Enqueue,
            2,
            vec![tag("full")],
            Outcome::Enqueue(EnqueueReply::Full),
            None,
        ),
        // leave_queue.lua
        row(
            "leave: left a queued entry",
            Parser::Leave,
            2,
            vec![tag("left"), (Slot::Text, b("queued"))],
            Outcome::Leave(LeaveReply::Left),
            None,
        ),
        row(
            "leave: left a matched entry",
            Parser::Leave,
            2,
            vec![tag("left"), (Slot::Text, b("matched"))],
            Outcome::Leave(LeaveReply::Left),
            None,
        ),
        row(
            "leave: in a loading session",
            Parser::Leave,
            2,
            vec![tag("loading"), uuid_slot(LOADING), (Slot::Text, b(MODE))],
            Outcome::Leave(LeaveReply::Loading {
                loading: id(LOADING),
                mode: MODE.into(),
            }),
            None,
        ),
        row(
            "leave: queued in another mode",
            Parser::Leave,
            2,
            vec![tag("other_mode"), (Slot::Text, b("Ranked_2v2"))],
            Outcome::Leave(LeaveReply::OtherMode {
                mode: "Ranked_2v2".into(),
            }),
            None,
        ),
        row(
            "leave: no entry",
            Parser::Leave,
            2,
            vec![tag("none")],
            Outcome::Leave(LeaveReply::Absent),
            None,
        ),
        // try_match.lua
        row(
            "try_match: a 1v1 group",
            Parser::TryMatch,
            2,
            slots(vec![
                vec![tag("matched"), uuid_slot(LOADING), count_slot(0)],
                pairs(&two),
            ]),
            Outcome::TryMatch(TryMatchReply::Matched {
                loading: id(LOADING),
                dropped: 0,
                members: members(&two),
            }),
            Some((3, 2)),
        ),
        row(
            "try_match: a group of four after dropping ghosts",
            Parser::TryMatch,
            4,
            slots(vec![
                vec![tag("matched"), uuid_slot(LOADING), count_slot(5)],
                pairs(&four),
            ]),
            Outcome::TryMatch(TryMatchReply::Matched {
                loading: id(LOADING),
                dropped: 5,
                members: members(&four),
            }),
            Some((3, 2)),
        ),
        row(
            "try_match: waiting",
            Parser::TryMatch,
            2,
            vec![tag("waiting"), count_slot(1), count_slot(2)],
            Outcome::TryMatch(TryMatchReply::Waiting {
                queue_len: 1,
                dropped: 2,
            }),
            None,
        ),
        row(
            "try_match: waiting on an empty queue",
            Parser::TryMatch,
            2,
            vec![tag("waiting"), count_slot(0), count_slot(0)],
            Outcome::TryMatch(TryMatchReply::Waiting {
                queue_len: 0,
                dropped: 0,
            }),
            None,
        ),
        // loading_complete.lua
        row(
            "complete: waiting for the others",
            Parser::Complete,
            4,
            vec![tag("waiting"), count_slot(3), count_slot(4)],
            Outcome::Complete(CompleteReply::Waiting),
            None,
        ),
        row(
            "complete: all ready",
            Parser::Complete,
            2,
            slots(vec![
                vec![tag("all_ready"), (Slot::Text, b(MODE))],
                pairs(&two),
            ]),
            Outcome::Complete(CompleteReply::AllReady {
                members: members(&two),
            }),
            Some((2, 2)),
        ),
        row(
            "complete: already ready",
            Parser::Complete,
            2,
            vec![tag("already_ready")],
            Outcome::Complete(CompleteReply::AlreadyReady),
            None,
        ),
        row(
            "complete: not a member",
            Parser::Complete,
            2,
            vec![tag("not_member")],
            Outcome::Complete(CompleteReply::NotMember),
            None,
        ),
        row(
            "complete: gone",
            Parser::Complete,
            2,
            vec![tag("gone")],
            Outcome::Complete(CompleteReply::Gone),
            None,
        ),
        row(
            "complete: lease lost",
            Parser::Complete,
            2,
            vec![tag("lease_lost")],
            Outcome::Complete(CompleteReply::LeaseLost),
            None,
        ),
        // finish_match.lua
        row(
            "finish: everyone matched",
            Parser::Finish,
            2,
            slots(vec![vec![tag("matched")], pairs(&two)]),
            Outcome::Finish(FinishReply::Matched {
                members: members(&two),
            }),
            Some((1, 2)),
        ),
        row(
            "finish: one entry vanished meanwhile",
            Parser::Finish,
            2,
            slots(vec![vec![tag("matched")], pairs(&[(P2, O2)])]),
            Outcome::Finish(FinishReply::Matched {
                members: members(&[(P2, O2)]),
            }),
            Some((1, 2)),
        ),
        row(
            "finish: every entry vanished",
            Parser::Finish,
            2,
            vec![tag("matched")],
            Outcome::Finish(FinishReply::Matched {
                members: Vec::new(),
            }),
            Some((1, 2)),
        ),
        row(
            "finish: gone",
            Parser::Finish,
            2,
            vec![tag("gone")],
            Outcome::Finish(FinishReply::Gone),
            None,
        ),
        // cancel_loading.lua
        row(
            "cancel: a leaver; the other player is requeued",
            Parser::Cancel,
            2,
            slots(vec![
                vec![tag("cancelled"), count_slot(0), count_slot(1)],
                pairs(&[(P2, O2)]),
            ]),
            Outcome::Cancel(CancelReply::Cancelled {
                dropped: 0,
                requeued: members(&[(P2, O2)]),
                removed: Vec::new(),
            }),
            Some((3, 2)),
        ),
        row(
            "cancel: allocation failed; everyone is requeued",
            Parser::Cancel,
            2,
            slots(vec![
                vec![tag("cancelled"), count_slot(0), count_slot(2)],
                pairs(&two),
            ]),
            Outcome::Cancel(CancelReply::Cancelled {
                dropped: 0,
                requeued: members(&two),
                removed: Vec::new(),
            }),
            Some((3, 2)),
        ),
        row(
            "cancel: loading timeout; the loaded are requeued, the one who did not load removed",
            Parser::Cancel,
            4,
            slots(vec![
                vec![tag("cancelled"), count_slot(1), count_slot(2)],
                pairs(&[(P1, O1), (P2, O2), (P3, O3)]),
            ]),
            Outcome::Cancel(CancelReply::Cancelled {
                dropped: 1,
                requeued: members(&[(P1, O1), (P2, O2)]),
                removed: members(&[(P3, O3)]),
            }),
            Some((3, 2)),
        ),
        row(
            "cancel: loading timeout nobody loaded; everyone removed",
            Parser::Cancel,
            2,
            slots(vec![
                vec![tag("cancelled"), count_slot(0), count_slot(0)],
                pairs(&two),
            ]),
            Outcome::Cancel(CancelReply::Cancelled {
                dropped: 0,
                requeued: Vec::new(),
                removed: members(&two),
            }),
            Some((3, 2)),
        ),
        row(
            "cancel: stale session; everyone dropped",
            Parser::Cancel,
            4,
            vec![tag("cancelled"), count_slot(4), count_slot(0)],
            Outcome::Cancel(CancelReply::Cancelled {
                dropped: 4,
                requeued: Vec::new(),
                removed: Vec::new(),
            }),
            Some((3, 2)),
        ),
        row(
            "cancel: not expired",
            Parser::Cancel,
            2,
            vec![tag("not_expired")],
            Outcome::Cancel(CancelReply::NotExpired),
            None,
        ),
        row(
            "cancel: not a member",
            Parser::Cancel,
            2,
            vec![tag("not_member")],
            Outcome::Cancel(CancelReply::NotMember),
            None,
        ),
        row(
            "cancel: gone",
            Parser::Cancel,
            2,
            vec![tag("gone")],
            Outcome::Cancel(CancelReply::Gone),
            None,
        ),
        // renew_leases.lua
        row(
            "renew: everything renewed",
            Parser::Renew,
            2,
            vec![tag("renewed"), count_slot(2)],
            Outcome::Renew(RenewReply {
                renewed: 2,
                lost: Vec::new(),
            }),
            Some((2, 1)),
        ),
        row(
            "renew: two players lost",
            Parser::Renew,
            2,
            vec![tag("renewed"), count_slot(1), uuid_slot(P2), uuid_slot(P3)],
            Outcome::Renew(RenewReply {
                renewed: 1,
                lost: vec![id(P2), id(P3)],
            }),
            Some((2, 1)),
        ),
        row(
            // Two local sessions may claim one player; both pairs are sent and both lost.
            "renew: one player lost twice",
            Parser::Renew,
            2,
            vec![tag("renewed"), count_slot(0), uuid_slot(P1), uuid_slot(P1)],
            Outcome::Renew(RenewReply {
                renewed: 0,
                lost: vec![id(P1), id(P1)],
            }),
            Some((2, 1)),
        ),
        // sweep_players.lua: the HSCAN cursor is a bulk string, `removed` a Lua number.
        row(
            "sweep: the pass is complete",
            Parser::Sweep,
            2,
            vec![tag("swept"), (Slot::Count, b("0")), count_slot(0)],
            Outcome::Sweep(SweepReply {
                cursor: 0,
                removed: 0,
            }),
            None,
        ),
        row(
            "sweep: a page with removals",
            Parser::Sweep,
            2,
            vec![tag("swept"), (Slot::Count, b("1792")), count_slot(3)],
            Outcome::Sweep(SweepReply {
                cursor: 1792,
                removed: 3,
            }),
            None,
        ),
    ]
}

/// Asserts that `result` is a `ReplyError` of `parser`'s script that renders `reply`.
fn assert_refused(parser: Parser, reply: &Reply, result: &Result<Outcome, ReplyError>, case: &str) {
    match result {
        Ok(outcome) => panic!("{case}: {reply} parsed as {outcome:?}, expected an error"),
        Err(error) => {
            assert_eq!(error.script, parser.script(), "{case}: {reply}");
            assert!(!error.reason.is_empty(), "{case}: {reply}");
            assert_eq!(error.reply, reply.to_string(), "{case}");
            assert!(error.to_string().contains(parser.script()), "{case}");
        }
    }
}

/// Asserts that `reply` parses to exactly `want`, or is refused when `want` is `None`.
fn assert_parses(parser: Parser, need: usize, reply: &Reply, want: Option<&Outcome>, case: &str) {
    let result = parser.parse(reply, need);
    match want {
        Some(want) => assert_eq!(result.as_ref(), Ok(want), "{case}: {reply}"),
        None => assert_refused(parser, reply, &result, case),
    }
}

/// Goal: every shape each script really returns parses to its exact typed outcome.
#[test]
fn every_script_shape_parses_to_its_outcome() {
    let goods = good_replies();
    for good in &goods {
        assert_parses(
            good.parser,
            good.need,
            &good.reply(),
            Some(&good.want),
            good.name,
        );
    }
    // Every array parser has at least one good row per tag it knows.
    for parser in Parser::ALL {
        for known in parser.tags() {
            assert!(
                goods
                    .iter()
                    .any(|g| g.parser == parser && g.items().first() == Some(&b(known))),
                "no good row for {parser:?} tag {known}"
            );
        }
    }
}

/// Goal: a reply cut at any point (down to the empty array) is refused, unless the cut
/// leaves a shorter list the script can legitimately send - then it parses as exactly that.
#[test]
fn every_cut_of_a_good_reply_is_refused_or_a_legit_shorter_reply() {
    for good in good_replies() {
        let items = good.items();
        for len in 0..items.len() {
            let cut = Reply::Array(items.iter().take(len).cloned().collect());
            let case = format!("{} cut to {len}", good.name);
            assert_parses(
                good.parser,
                good.need,
                &cut,
                good.cut_outcome(len).as_ref(),
                &case,
            );
        }
    }
}

/// Goal: one element more than the script sends is refused, whatever it is.
#[test]
fn one_extra_element_is_refused() {
    for good in good_replies() {
        for extra in [b("extra"), Reply::Int(0), Reply::Nil, b("")] {
            let mut items = good.items();
            items.push(extra.clone());
            let case = format!("{} plus {extra}", good.name);
            assert_parses(good.parser, good.need, &Reply::Array(items), None, &case);
        }
    }
}

/// Goal: an extra well-formed (player, owner) pair is refused unless the longer reply is
/// still one the script can send (a smaller-than-full finish/cancel list, renew's list).
#[test]
fn an_extra_full_pair_is_refused_unless_it_still_fits() {
    let extra = member(P_EXTRA, O_EXTRA);
    for good in good_replies() {
        let mut items = good.items();
        items.extend([b(P_EXTRA), b(O_EXTRA)]);
        let want = good.list.and_then(|_| good.want.extended(extra, good.need));
        let case = format!("{} plus a pair", good.name);
        assert_parses(
            good.parser,
            good.need,
            &Reply::Array(items),
            want.as_ref(),
            &case,
        );
    }
}

/// Goal: garbling any single slot (non-UUID or empty id, integer or nil or error where text
/// belongs, negative or non-numeric count, unknown tag) makes the reply refused.
#[test]
fn garbling_any_slot_is_refused() {
    let mut checked = 0_usize;
    for good in good_replies() {
        for (index, (slot, original)) in good.slots.iter().enumerate() {
            for garble in slot.garbles() {
                let mut items = good.items();
                if let Some(item) = items.get_mut(index) {
                    *item = garble.clone();
                }
                let case = format!(
                    "{}: slot {index} ({slot:?}) {original} -> {garble}",
                    good.name
                );
                assert_parses(good.parser, good.need, &Reply::Array(items), None, &case);
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} garbled replies checked");
}

/// Goal: an empty array and every non-array top level (nil, integer, status, bulk, error)
/// is refused by each array parser, naming its script.
#[test]
fn empty_and_non_array_replies_are_refused() {
    let bad = [
        Reply::Array(Vec::new()),
        Reply::Nil,
        Reply::Int(0),
        Reply::Int(1),
        Reply::Status("OK".into()),
        b("matched"),
        Reply::Error("ERR boom".into()),
        Reply::Array(vec![Reply::Array(vec![b("matched")])]),
        Reply::Array(vec![Reply::Nil]),
    ];
    for parser in Parser::ALL {
        if parser == Parser::Release {
            continue;
        }
        for reply in &bad {
            assert_parses(parser, 2, reply, None, "non-array or empty");
        }
    }
}

/// Goal: a tag the script never returns - another script's tag, the empty string, a wrong
/// case - is refused even when the rest of the reply looks fine.
#[test]
fn unknown_tags_are_refused() {
    let every_tag: BTreeSet<&str> = Parser::ALL
        .iter()
        .flat_map(|parser| parser.tags().iter().copied())
        .chain(["", "bogus", "MATCHED", "queued", "ok"])
        .collect();
    for parser in Parser::ALL {
        if parser == Parser::Release {
            continue;
        }
        for foreign in every_tag.iter().filter(|t| !parser.tags().contains(*t)) {
            for rest in [
                Vec::new(),
                vec![b(LOADING), Reply::Int(0), b(P1), b(O1), b(P2), b(O2)],
            ] {
                let mut items = vec![b(foreign)];
                items.extend(rest);
                let reply = Reply::Array(items);
                let result = parser.parse(&reply, 2);
                assert_refused(parser, &reply, &result, foreign);
            }
        }
    }
}

/// Goal: `release_lock.lua` and `release_player_lease.lua` answer 1 or 0; anything else is
/// refused, naming the script.
#[test]
fn release_replies_are_zero_or_one() {
    assert_eq!(release_lock::parse(&Reply::Int(1)), Ok(true));
    assert_eq!(release_lock::parse(&Reply::Int(0)), Ok(false));
    assert_eq!(release_player_lease::parse(&Reply::Int(1)), Ok(true));
    assert_eq!(release_player_lease::parse(&Reply::Int(0)), Ok(false));
    let refused = release_player_lease::parse(&Reply::Int(2));
    assert!(refused.is_err_and(|error| error.script == "release_player_lease"));
    for reply in [
        Reply::Int(2),
        Reply::Int(-1),
        Reply::Nil,
        b("1"),
        Reply::Status("OK".into()),
        Reply::Error("ERR".into()),
        Reply::Array(vec![Reply::Int(1)]),
        Reply::Array(Vec::new()),
    ] {
        let result = Parser::Release.parse(&reply, 2);
        assert_refused(Parser::Release, &reply, &result, "release");
    }
}

/// Goal: a group of `try_match` or `loading_complete` naming one player twice is refused,
/// so no loading session or allocation is built on it.
#[test]
fn fixed_groups_with_a_duplicate_player_are_refused() {
    let cases = [
        (
            Parser::TryMatch,
            vec![
                b("matched"),
                b(LOADING),
                Reply::Int(0),
                b(P1),
                b(O1),
                b(P1),
                b(O2),
            ],
        ),
        (
            Parser::Complete,
            vec![b("all_ready"), b(MODE), b(P1), b(O1), b(P1), b(O1)],
        ),
    ];
    for (parser, items) in cases {
        let reply = Reply::Array(items);
        let result = parser.parse(&reply, 2);
        assert_refused(parser, &reply, &result, "duplicate");
        assert!(
            result.is_err_and(|e| e.reason.contains("twice")),
            "{parser:?}"
        );
    }
}

/// Goal: `finish_match` lists each player of the loading session at most once (its ids come
/// from the session's distinct `players` field), so a reply naming one player twice is
/// garbled and must be refused, not turned into two `match_found` notices for one player
/// while another player of the group goes unnamed.
#[test]
fn finish_group_with_a_duplicate_player_is_refused() {
    let reply = Reply::Array(vec![b("matched"), b(P1), b(O1), b(P1), b(O1)]);
    let result = Parser::Finish.parse(&reply, 2);
    assert_refused(Parser::Finish, &reply, &result, "finish duplicate");
}

/// Goal: `cancel_loading` requeues each player of the loading session at most once, so a
/// reply naming one player twice is garbled and must be refused.
#[test]
fn cancel_group_with_a_duplicate_player_is_refused() {
    let reply = Reply::Array(vec![
        b("cancelled"),
        Reply::Int(0),
        b(P1),
        b(O1),
        b(P1),
        b(O1),
    ]);
    let result = Parser::Cancel.parse(&reply, 2);
    assert_refused(Parser::Cancel, &reply, &result, "cancel duplicate");
}

/// Goal: a mode name is never empty (config requires 1+ characters), so an empty mode in
/// `enqueue`'s `already` reply - the "empty string" garble of the fault model - must be
/// refused (and retried), not adopted: the session takes the reply's mode as its claim's
/// mode, and with mode "" every later `loading_complete` and leave-from-loading fails
/// (`players_per_match("")` is `None`), so the player can never finish a match.
#[test]
fn enqueue_already_with_an_empty_mode_is_refused() {
    for state in ["queued", "loading"] {
        let loading = if state == "loading" { LOADING } else { "" };
        let reply = Reply::Array(vec![b("already"), b(state), b(""), b(loading)]);
        let result = Parser::Enqueue.parse(&reply, 2);
        assert_refused(Parser::Enqueue, &reply, &result, state);
    }
}

/// Goal: `leave_queue` names a real mode in `loading` and `other_mode`; an empty one is a
/// garbled reply and must be refused so the effect retries the script, instead of going on
/// to cancel the loading session of mode "" (which fails: no such mode) or giving up.
#[test]
fn leave_with_an_empty_mode_is_refused() {
    for reply in [
        Reply::Array(vec![b("loading"), b(LOADING), b("")]),
        Reply::Array(vec![b("other_mode"), b("")]),
    ] {
        let result = Parser::Leave.parse(&reply, 2);
        assert_refused(Parser::Leave, &reply, &result, "empty mode");
    }
}

/// Goal: groups of the wrong size are refused: `try_match` and `loading_complete` need
/// exactly the mode's count, `finish_match` and `cancel_loading` at most that many.
#[test]
fn groups_of_the_wrong_size_are_refused() {
    let one = [(P1, O1)];
    let three = [(P1, O1), (P2, O2), (P3, O3)];
    let flat = |head: Vec<Reply>, list: &[(&str, &str)]| {
        let mut items = head;
        items.extend(list.iter().flat_map(|(p, o)| [b(p), b(o)]));
        Reply::Array(items)
    };
    let matched = || vec![b("matched"), b(LOADING), Reply::Int(0)];
    let all_ready = || vec![b("all_ready"), b(MODE)];
    let cases = [
        (Parser::TryMatch, flat(matched(), &one)),
        (Parser::TryMatch, flat(matched(), &three)),
        (Parser::TryMatch, flat(matched(), &[])),
        (Parser::Complete, flat(all_ready(), &one)),
        (Parser::Complete, flat(all_ready(), &three)),
        (Parser::Complete, flat(all_ready(), &[])),
        (Parser::Finish, flat(vec![b("matched")], &three)),
        (
            Parser::Cancel,
            flat(vec![b("cancelled"), Reply::Int(0)], &three),
        ),
    ];
    for (parser, reply) in cases {
        let result = parser.parse(&reply, 2);
        assert_refused(parser, &reply, &result, "wrong size");
    }
}

/// Goal: replies whose values contradict their own tag are refused: `waiting` with every
/// player ready, `already` in a state the script never reports.
#[test]
fn self_contradicting_replies_are_refused() {
    let cases = [
        (
            Parser::Complete,
            Reply::Array(vec![b("waiting"), Reply::Int(2), Reply::Int(2)]),
        ),
        (
            Parser::Complete,
            Reply::Array(vec![b("waiting"), Reply::Int(3), Reply::Int(2)]),
        ),
        (
            Parser::Complete,
            Reply::Array(vec![b("waiting"), Reply::Int(0), Reply::Int(0)]),
        ),
        (
            Parser::Enqueue,
            Reply::Array(vec![b("already"), b("matched"), b(MODE), b("")]),
        ),
    ];
    for (parser, reply) in cases {
        let result = parser.parse(&reply, 2);
        assert_refused(parser, &reply, &result, "contradiction");
    }
}

/// Goal: a count is accepted as an integer reply or as plain decimal text (HSCAN cursors
/// are bulk strings), and nothing else.
#[test]
fn counts_accept_integers_and_decimal_text_only() {
    let sweep = |cursor: Reply| Reply::Array(vec![b("swept"), cursor, Reply::Int(1)]);
    let good = [(b("0"), 0), (b("42"), 42), (Reply::Int(42), 42)];
    for (cursor, want) in good {
        assert_eq!(
            sweep_players::parse(&sweep(cursor)),
            Ok(SweepReply {
                cursor: want,
                removed: 1
            })
        );
    }
    let max = Reply::Array(vec![b("swept"), b(&u64::MAX.to_string()), Reply::Int(0)]);
    assert_eq!(
        sweep_players::parse(&max),
        Ok(SweepReply {
            cursor: u64::MAX,
            removed: 0
        })
    );
}

/// Depth-limited arbitrary reply trees, biased toward the values scripts really use.
mod arbitrary {
    use super::*;

    const IDS: [&str; 6] = [P1, P2, P3, O1, O2, LOADING];
    const TAGS: [&str; 22] = [
        "enqueued",
        "already",
        "taken",
        "busy",
        "full",
        "left",
        "loading",
        "other_mode",
        "none",
        "matched",
        "waiting",
        "all_ready",
        "already_ready",
        "not_member",
        "gone",
        "cancelled",
        "not_expired",
        "renewed",
        "swept",
        "queued",
        "",
        "bogus",
    ];

    fn leaf() -> impl Strategy<Value = Reply> {
        prop_oneof![
            4 => prop::sample::select(IDS.to_vec()).prop_map(b),
            2 => (-2_i64..6).prop_map(Reply::Int),
            2 => prop::sample::select(TAGS.to_vec()).prop_map(b),
            1 => Just(Reply::Nil),
            1 => any::<i64>().prop_map(Reply::Int),
            1 => "\\PC{0,10}".prop_map(|s| b(&s)),
            1 => prop::collection::vec(any::<u8>(), 0..6).prop_map(Reply::Bulk),
            1 => "[a-z_]{0,8}".prop_map(Reply::Status),
            1 => "[A-Z ]{0,8}".prop_map(Reply::Error),
        ]
    }

    /// Any tree of replies, at most three arrays deep.
    pub fn tree() -> impl Strategy<Value = Reply> {
        leaf().prop_recursive(3, 64, 10, |inner| {
            prop::collection::vec(inner, 0..10).prop_map(Reply::Array)
        })
    }

    /// A known tag followed by arbitrary elements: reaches past every tag check.
    pub fn tagged() -> impl Strategy<Value = Reply> {
        (
            prop::sample::select(TAGS.to_vec()),
            prop::collection::vec(leaf(), 0..12),
        )
            .prop_map(|(tag, rest)| {
                let mut items = vec![b(tag)];
                items.extend(rest);
                Reply::Array(items)
            })
    }

    /// A well-formed group header and 0-5 pairs drawn from a small pool, so groups of the
    /// right size, of the wrong size and with duplicates are all common.
    pub fn group() -> impl Strategy<Value = Reply> {
        let pair = (
            prop::sample::select(vec![P1, P2, P3, P4]),
            prop::sample::select(vec![O1, O2]),
        );
        (0_usize..4, prop::collection::vec(pair, 0..6), 0_i64..3).prop_map(
            |(head, pairs, count)| {
                let mut items = match head {
                    0 => vec![b("matched"), b(LOADING), Reply::Int(count)],
                    1 => vec![b("all_ready"), b(MODE)],
                    2 => vec![b("matched")],
                    _ => vec![b("cancelled"), Reply::Int(count), Reply::Int(count)],
                };
                items.extend(pairs.iter().flat_map(|(p, o)| [b(p), b(o)]));
                Reply::Array(items)
            },
        )
    }
}

fn distinct_players(members: &[Member]) -> usize {
    members
        .iter()
        .map(|m| m.player)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Checks one reply against every parser: errors name their script, accepted groups have
/// the exact (or bounded) size with distinct players.
fn check_every_parser(reply: &Reply, need: usize) -> Result<(), TestCaseError> {
    for parser in Parser::ALL {
        match parser.parse(reply, need) {
            Err(error) => {
                prop_assert_eq!(error.script, parser.script());
                prop_assert_eq!(&error.reply, &reply.to_string());
            }
            Ok(Outcome::TryMatch(TryMatchReply::Matched { members, .. }))
            | Ok(Outcome::Complete(CompleteReply::AllReady { members })) => {
                prop_assert_eq!(members.len(), need, "{:?} {}", parser, reply);
                prop_assert_eq!(distinct_players(&members), need, "{:?} {}", parser, reply);
            }
            Ok(Outcome::Finish(FinishReply::Matched { members }))
            | Ok(Outcome::Cancel(CancelReply::Cancelled {
                requeued: members, ..
            })) => {
                prop_assert!(members.len() <= need, "{:?} {}", parser, reply);
            }
            Ok(Outcome::Release(_)) => {
                prop_assert!(matches!(reply, Reply::Int(0 | 1)), "{}", reply);
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Goal: no reply tree panics any parser; an accepted `Matched`/`AllReady` always holds
    /// exactly the mode's number of distinct players, and every error names its script.
    #[test]
    fn parsers_are_total_on_arbitrary_replies(
        reply in prop_oneof![arbitrary::tree(), arbitrary::tagged(), arbitrary::group()],
        need in 1_usize..=4,
    ) {
        check_every_parser(&reply, need)?;
    }
}

/// Goal: the proptest's group strategy really reaches accepted groups and duplicate
/// groups, so its size-and-distinctness property is not vacuously true.
#[test]
fn group_strategy_reaches_accepted_and_duplicate_groups() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = arbitrary::group();
    let (mut accepted, mut duplicates) = (0_usize, 0_usize);
    for _ in 0..1000 {
        let reply = strategy.new_tree(&mut runner).unwrap().current();
        for parser in [Parser::TryMatch, Parser::Complete] {
            match parser.parse(&reply, 2) {
                Ok(_) => accepted += 1,
                Err(error) if error.reason.contains("twice") => duplicates += 1,
                Err(_) => {}
            }
        }
    }
    assert!(accepted >= 20, "only {accepted} accepted groups");
    assert!(duplicates >= 20, "only {duplicates} duplicate groups");
}
