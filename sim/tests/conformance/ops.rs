//! What the generated sequences are made of: operations over a small pool of keys and
//! values, and the proptest strategies that draw them.
//!
//! The pools are small on purpose, so that operations collide: the same key is read,
//! written, deleted, expired and handed to scripts as the wrong type; values include the
//! empty string, non-numbers, huge numbers and bytes that are not UTF-8. Keys carry roles
//! (queue set, players hash, loading hash, ...) so scripts mostly get keys of the right
//! type and do real work, and sometimes any key.
//!
//! Left out on purpose, each for a reason that `docs/fake-redis.md` records:
//! - positive TTLs under 100 s and EXPIRE GT/LT: Redis's clock moves between commands and
//!   the fake's does not, so they would compare timing, not behaviour;
//! - SCAN-family cursors other than 0 (and its spellings): a cursor is only meaningful
//!   when the server handed it out, and the two servers hand out different ones;
//! - `EVAL "error({})"`: crashes redis-server 7.0.15.

use std::fmt;

use match_server::scripts;
use match_sim::conformance::escape;
use proptest::prelude::*;
use proptest::sample::select;

/// Every key of the pool; the case's namespace is put in front.
pub const KEYS: &[&str] = &[
    "queue:m1",
    "queue:m2",
    "players",
    "loading:L1",
    "loading:L2",
    "loading_index:m1",
    "lock:m1",
    "session:p1",
    "session:p2",
    "misc",
];
/// Keys that are sets when the service writes them.
const SET_KEYS: &[&str] = &["queue:m1", "queue:m2", "loading_index:m1", "misc"];
/// Keys that are hashes when the service writes them.
const HASH_KEYS: &[&str] = &["players", "loading:L1", "loading:L2", "misc"];
/// Keys that are strings when the service writes them.
const STRING_KEYS: &[&str] = &["lock:m1", "session:p1", "session:p2", "misc"];
/// Player lease keys by player (p3's lease key is `misc`, which may be of any type).
const SESSION_KEYS: &[&str] = &["session:p1", "session:p2", "misc"];
/// Queue sets, for scripts.
const QUEUE_KEYS: &[&str] = &["queue:m1", "queue:m2"];

/// Set members: player ids, loading ids and odd ones.
const MEMBERS: &[&[u8]] = &[
    b"p1",
    b"p2",
    b"p3",
    b"L1",
    b"",
    b"x y",
    b"0",
    b"-1",
    b"9223372036854775808",
    b"\xff\x00",
];
/// Hash fields the scripts read, and odd ones.
const FIELDS: &[&[u8]] = &[
    b"p1",
    b"p2",
    b"p3",
    b"state",
    b"players",
    b"mode",
    b"deadline_ms",
    b"ready:p1",
    b"ready:p2",
    b"allocator",
    b"",
];
/// Hash values: player entries (`state|mode|owner|lease|loading|session|address`),
/// loading-hash values and odd ones.
const HASH_VALUES: &[&[u8]] = &[
    b"queued|m1|o1|8000|||",
    b"queued|m1|o2|3000|||",
    b"queued|m2|o1|20000|||",
    b"loading|m1|o1|20000|L1||",
    b"matched|m1|o2|20000||s1|10.0.0.1:7000",
    b"loading",
    b"allocating",
    b"p1,p2",
    b"p1,p3,p2",
    b"m1",
    b"0",
    b"1",
    b"5000",
    b"o1",
    b"garbage",
    b"",
    b"\xff",
];
/// Field/value pairs as the service writes them, so scripts find meaningful data.
const HASH_PAIRS: &[(&str, &str)] = &[
    ("p1", "queued|m1|o1|8000|||"),
    ("p2", "queued|m1|o2|3000|||"),
    ("p3", "queued|m1|o1|20000|||"),
    ("p3", "loading|m1|o1|20000|L1||"),
    ("p1", "loading|m1|o1|20000|L1||"),
    ("p2", "matched|m1|o2|20000||s1|10.0.0.1:7000"),
    ("state", "loading"),
    ("state", "allocating"),
    ("players", "p1,p3"),
    ("players", "p1,p2,p3"),
    ("ready:p1", "0"),
    ("ready:p1", "1"),
    ("ready:p3", "0"),
    ("mode", "m1"),
    ("deadline_ms", "5000"),
    ("allocator", "o1"),
];
/// String values.
const STRING_VALUES: &[&[u8]] = &[
    b"tok1",
    b"tok2",
    b"o1",
    b"o2",
    b"",
    b"10",
    b"-5",
    b"9223372036854775807",
    b"x",
];
/// Arguments that are odd wherever a script or a count expects something else.
const ODD: &[&str] = &[
    "",
    "x",
    "1.5",
    "-1",
    "0",
    " 1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "0x10",
    "1e3",
];
/// EXPIRE seconds: long enough not to expire during a case, or ones that delete, overflow
/// or do not parse.
const EXPIRE_SECONDS: &[&str] = &[
    "100",
    "3600",
    "0",
    "-1",
    "x",
    "",
    "1.5",
    "9223372036854775807",
    "9223372036854775",
    "-9223372036854776",
    "1000000000000000",
];
/// SET PX milliseconds, likewise.
const PX_MS: &[&str] = &[
    "100000",
    "3600000",
    "0",
    "-1",
    "x",
    "",
    "9223372036854775807",
    "1000000000000000000",
];
/// SET EX seconds, likewise.
const EX_SECONDS: &[&str] = &["100", "0", "x", "9223372036854775", "3600"];
/// SPOP counts.
const POP_COUNTS: &[&str] = &["1", "2", "3", "10", "0", "-1", "x", "", "1.5"];
/// SCAN-family COUNT values (0 and non-numbers are errors).
const SCAN_COUNTS: &[&str] = &["1", "2", "10", "1000", "0", "x"];
/// Valid spellings of the cursor 0 and invalid cursors.
const START_CURSORS: &[&str] = &["0", "0", "0", "", "-0", "+0", "x", " 0", "1.5"];
/// Globs over key names (the namespace is put in front).
const KEY_GLOBS: &[&str] = &[
    "*",
    "queue:*",
    "*:m1",
    "loading?L*",
    "[lp]*",
    "[^q]*",
    "*s",
    "nomatch",
    "\\*",
    "misc",
];
/// Globs over members and fields.
const ELEMENT_GLOBS: &[&str] = &["*", "p*", "p?", "[a-z]*", "ready:*", "*1", ""];
/// SCAN TYPE filters.
const SCAN_TYPES: &[&str] = &["set", "hash", "string", "list", "bogus"];
/// Channels (the run's namespace is put in front).
pub const CHANNELS: &[&str] = &["notify:p1", "notify:p2", "events", "n"];
/// Patterns every fake and the real subscriber listen to (namespace in front).
pub const PATTERNS: &[&str] = &["notify:*", "*", "notify:p?", "[ne]*"];

/// Player ids, for scripts.
const PIDS: &[&str] = &["p1", "p2", "p3"];
/// Player ids or none, for cancel_loading's leaving player.
const PIDS_OR_NONE: &[&str] = &["", "p1", "p3"];
/// Owner tokens.
const OWNERS: &[&str] = &["o1", "o2"];
/// Owner tokens or none.
const OWNERS_OR_NONE: &[&str] = &["", "o1"];
/// Game modes.
const MODES: &[&str] = &["m1", "m2"];
/// Script clocks (the scripts take "now" as an argument).
const NOWS: &[&str] = &["1000", "5000", "10000"];
/// Lease and deadline instants, before and after the clocks above.
const DEADLINES: &[&str] = &["0", "3000", "8000", "20000"];
/// Queue length limits.
const MAX_LENS: &[&str] = &["2", "3", "10", "0"];
/// Players per match.
const NEEDS: &[&str] = &["2", "2", "2", "1", "3", "5", "0", "-1", "2.5"];
/// Pop budgets of try_match.
const MAX_POPS: &[&str] = &["100", "1000", "100", "1", "2", "0"];
/// Loading ids.
const LOADING_IDS: &[&str] = &["L1", "L2"];
/// Lock tokens.
const TOKENS: &[&str] = &["tok1", "tok2"];
/// '0' / '1' flags.
const FLAGS: &[&str] = &["0", "1"];
/// Game session ids.
const SESSIONS: &[&str] = &["s1"];
/// Game server addresses.
const ADDRESSES: &[&str] = &["10.0.0.1:7000"];
/// HSCAN counts for sweep_players.
const SWEEP_COUNTS: &[&str] = &["1", "2", "10"];
/// Invalid HSCAN cursors for sweep_players (valid ones other than 0 are left out).
const BAD_CURSORS: &[&str] = &["x", "1.5", " 0", "-"];

/// One argument of a command, before the namespaces are applied.
#[derive(Clone, PartialEq, Eq)]
pub enum Arg {
    /// A key of the pool; the case's namespace goes in front.
    Key(&'static str),
    /// A glob over keys; the case's namespace goes in front.
    KeyGlob(&'static str),
    /// A channel; the run's namespace goes in front.
    Channel(&'static str),
    /// The source of service script number n (`scripts::all()`).
    Script(usize),
    /// Literal bytes.
    Lit(Vec<u8>),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => write!(f, "{key}"),
            Self::KeyGlob(glob) => write!(f, "{glob}"),
            Self::Channel(channel) => write!(f, "{channel}"),
            Self::Script(index) => write!(f, "<{}.lua>", script_name(*index)),
            Self::Lit(bytes) => {
                let plain = !bytes.is_empty()
                    && bytes
                        .iter()
                        .all(|byte| byte.is_ascii_graphic() && *byte != b'"');
                if plain {
                    write!(f, "{}", String::from_utf8_lossy(bytes))
                } else {
                    write!(f, "{}", escape(bytes))
                }
            }
        }
    }
}

/// The name of service script number `index`.
pub fn script_name(index: usize) -> &'static str {
    scripts::all().get(index).map_or("?", |script| script.name)
}

/// How the outcomes of an operation are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Equal replies.
    Exact,
    /// A set reply (SMEMBERS).
    Unordered,
    /// A map reply (HGETALL).
    Map,
    /// TTL (1000) or PTTL (1).
    Ttl(i64),
    /// A whole SCAN-family iteration: where the cursor is, and whether elements are pairs.
    Scan {
        /// Index of the cursor in the argv.
        cursor_at: usize,
        /// HSCAN: field/value pairs.
        pairs: bool,
    },
    /// SPOP or SRANDMEMBER: run on Redis first; the fake follows Redis's picks.
    Followed,
    /// EVAL of a service script: run on Redis first with the recorder; the fake follows
    /// the choices Redis made inside it.
    Script,
    /// EVAL of sweep_players, as `Script`, page after page to the end of its iteration.
    Sweep,
}

/// One generated operation.
#[derive(Clone, PartialEq, Eq)]
pub struct Op {
    /// The command and its arguments.
    pub argv: Vec<Arg>,
    /// How its outcomes are compared.
    pub check: Check,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.argv.iter().map(ToString::to_string).collect();
        write!(f, "{}", words.join(" "))?;
        match self.check {
            Check::Scan { .. } => write!(f, "   (whole iteration)"),
            Check::Sweep => write!(f, "   (repeated until its cursor is 0)"),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One generated case: the fake's seed and the operations.
#[derive(Clone)]
pub struct Sequence {
    /// Seeds the fake's own random choices (SCAN page shapes of top-level iterations,
    /// `math.random`); drawn from `CONFORMANCE_SEED` like the operations, never shrunk.
    /// Choices Redis makes (SPOP picks and the like) the fake follows instead.
    pub fake_seed: u64,
    /// What to run, in order, against both servers.
    pub ops: Vec<Op>,
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fake seed {}", self.fake_seed)?;
        for (index, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {:>2}. {op}", index + 1)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The most operations in one case.
pub const MAX_OPS: usize = 24;

/// Sequences of a setup (live players, the lock) and 1 to [`MAX_OPS`] operations. A third
/// of the cases are mostly commands with some scripts, a third mostly scripts with odd
/// arguments, a third the service's own flow (match, load, finish or cancel) with a few
/// commands in between, so that deep script paths happen too.
pub fn sequence() -> impl Strategy<Value = Sequence> {
    let ops = prop_oneof![
        prop::collection::vec(op(20), 1..=MAX_OPS),
        prop::collection::vec(op(80), 1..=MAX_OPS),
        prop::collection::vec(
            prop_oneof![9 => flow_eval(), 2 => lock(), 1 => op(1)],
            1..=MAX_OPS
        ),
    ];
    let setup = (
        prop::collection::vec(enqueue_live(), 0..=MAX_SETUP_PLAYERS),
        prop::option::weighted(0.85, lock()),
    );
    (any::<u64>().no_shrink(), setup, ops).prop_map(|(fake_seed, (players, lock), ops)| Sequence {
        fake_seed,
        ops: [players, lock.into_iter().collect(), ops].concat(),
    })
}

/// The most live players a case's setup enqueues before taking the lock; with them the
/// scripts that follow get past their first checks and move matches along.
const MAX_SETUP_PLAYERS: usize = 4;

/// The enqueue of a live player, as the service does it.
fn enqueue_live() -> BoxedStrategy<Op> {
    story(0.0)
        .prop_map(|story| {
            let spec = SPECS.first().expect("enqueue is the first spec");
            let value = |role| word(&story.value(role).unwrap_or_default());
            let key = |role| {
                let name = story.value(role).unwrap_or_default();
                Arg::Key(
                    KEYS.iter()
                        .find(|key| **key == name)
                        .copied()
                        .unwrap_or("misc"),
                )
            };
            let keys = vec![key(Role::QueueKey), key(Role::PlayersKey)];
            let args = vec![
                value(Role::Pid),
                value(Role::Owner),
                value(Role::Mode),
                word("1000"),
                word("20000"),
                word("10"),
            ];
            eval_op(spec, keys, args, Arity::Right)
        })
        .boxed()
}

/// One operation; `eval_weight` against a total of about 80 for the commands.
pub fn op(eval_weight: u32) -> BoxedStrategy<Op> {
    prop_oneof![
        8 => sadd(),
        3 => srem(),
        2 => simple("SCARD", SET_KEYS, Check::Exact),
        3 => simple("SMEMBERS", SET_KEYS, Check::Unordered),
        4 => spop(),
        2 => srandmember(),
        8 => hset(),
        3 => hget(),
        3 => simple("HGETALL", HASH_KEYS, Check::Map),
        3 => multi_key("DEL"),
        2 => multi_key("EXISTS"),
        3 => expire(),
        2 => simple("TTL", KEYS, Check::Ttl(1000)),
        2 => simple("PTTL", KEYS, Check::Ttl(1)),
        2 => simple("TYPE", KEYS, Check::Exact),
        7 => set(),
        4 => lock(),
        3 => simple("GET", STRING_KEYS, Check::Exact),
        3 => scan(),
        2 => element_scan(),
        2 => publish(),
        2 => odd_command(),
        8 => other_command(),
        eval_weight => eval(),
    ]
    .boxed()
}

/// The service's lock: `SET lock:m1 token NX PX ms`.
fn lock() -> BoxedStrategy<Op> {
    (
        prop_oneof![6 => Just("tok1"), 1 => Just("tok2")],
        select(&["100000", "3600000"][..]),
    )
        .prop_map(|(token, ms)| Op {
            argv: vec![
                word("SET"),
                Arg::Key("lock:m1"),
                word(token),
                word("NX"),
                word("PX"),
                word(ms),
            ],
            check: Check::Exact,
        })
        .boxed()
}

/// A literal argument.
fn lit(bytes: &[u8]) -> Arg {
    Arg::Lit(bytes.to_vec())
}

/// A literal command word.
fn word(text: &str) -> Arg {
    Arg::Lit(text.as_bytes().to_vec())
}

/// A key of `role` most of the time, any key of the pool otherwise.
fn key(role: &'static [&'static str]) -> BoxedStrategy<Arg> {
    prop_oneof![5 => select(role), 1 => select(KEYS)]
        .prop_map(Arg::Key)
        .boxed()
}

/// One of `values` as a literal.
fn one_of(values: &'static [&'static [u8]]) -> BoxedStrategy<Arg> {
    select(values).prop_map(lit).boxed()
}

/// One of `values` (text) as a literal.
fn text_of(values: &'static [&'static str]) -> BoxedStrategy<Arg> {
    select(values).prop_map(word).boxed()
}

/// `NAME key` on a key of `role`.
fn simple(name: &'static str, role: &'static [&'static str], check: Check) -> BoxedStrategy<Op> {
    key(role)
        .prop_map(move |key| Op {
            argv: vec![word(name), key],
            check,
        })
        .boxed()
}

/// `SADD key member...`.
fn sadd() -> BoxedStrategy<Op> {
    (key(SET_KEYS), prop::collection::vec(one_of(MEMBERS), 1..=3))
        .prop_map(|(key, members)| Op {
            argv: [vec![word("SADD"), key], members].concat(),
            check: Check::Exact,
        })
        .boxed()
}

/// `SREM key member...`.
fn srem() -> BoxedStrategy<Op> {
    (key(SET_KEYS), prop::collection::vec(one_of(MEMBERS), 1..=3))
        .prop_map(|(key, members)| Op {
            argv: [vec![word("SREM"), key], members].concat(),
            check: Check::Exact,
        })
        .boxed()
}

/// `SPOP key [count]`, with the count the service uses most of the time.
fn spop() -> BoxedStrategy<Op> {
    (
        key(SET_KEYS),
        prop::option::weighted(0.8, text_of(POP_COUNTS)),
    )
        .prop_map(|(key, count)| Op {
            argv: [vec![word("SPOP"), key], count.into_iter().collect()].concat(),
            check: Check::Followed,
        })
        .boxed()
}

/// SRANDMEMBER counts: one, several, the whole set and more, repeats (negative), zero,
/// and ones that do not parse or are out of range (huge negative counts, which Redis
/// would answer with that many members, are left out).
const RANDMEMBER_COUNTS: &[&str] = &[
    "1",
    "2",
    "3",
    "10",
    "0",
    "-1",
    "-3",
    "-12",
    "x",
    "",
    "1.5",
    "-9223372036854775808",
];

/// `SRANDMEMBER key [count]`.
fn srandmember() -> BoxedStrategy<Op> {
    (
        key(SET_KEYS),
        prop::option::weighted(0.7, text_of(RANDMEMBER_COUNTS)),
    )
        .prop_map(|(key, count)| Op {
            argv: [vec![word("SRANDMEMBER"), key], count.into_iter().collect()].concat(),
            check: Check::Followed,
        })
        .boxed()
}

/// `HSET key field value...`: pairs as the service writes them or any field and value,
/// and sometimes a field without its value (an arity error).
fn hset() -> BoxedStrategy<Op> {
    let pair = prop_oneof![
        2 => select(HASH_PAIRS).prop_map(|(field, value)| vec![word(field), word(value)]),
        1 => (one_of(FIELDS), one_of(HASH_VALUES)).prop_map(|(field, value)| vec![field, value]),
    ];
    (
        key(HASH_KEYS),
        prop::collection::vec(pair, 1..=3),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(key, pairs, odd)| {
            let mut argv = vec![word("HSET"), key];
            argv.extend(pairs.into_iter().flatten());
            if odd {
                argv.pop();
            }
            Op {
                argv,
                check: Check::Exact,
            }
        })
        .boxed()
}

/// `HGET key field`.
fn hget() -> BoxedStrategy<Op> {
    (key(HASH_KEYS), one_of(FIELDS))
        .prop_map(|(key, field)| Op {
            argv: vec![word("HGET"), key, field],
            check: Check::Exact,
        })
        .boxed()
}

/// `DEL` or `EXISTS` on one to three keys (repeats allowed: EXISTS counts them twice).
fn multi_key(name: &'static str) -> BoxedStrategy<Op> {
    prop::collection::vec(select(KEYS).prop_map(Arg::Key), 1..=3)
        .prop_map(move |keys| Op {
            argv: [vec![word(name)], keys].concat(),
            check: Check::Exact,
        })
        .boxed()
}

/// `EXPIRE key seconds [NX|XX]` (GT and LT compare instants, which drift apart).
fn expire() -> BoxedStrategy<Op> {
    (
        select(KEYS),
        text_of(EXPIRE_SECONDS),
        prop::option::weighted(0.3, text_of(&["NX", "XX", "nx", "NX XX"])),
    )
        .prop_map(|(key, seconds, flag)| {
            let mut argv = vec![word("EXPIRE"), Arg::Key(key), seconds];
            if let Some(Arg::Lit(flag)) = flag {
                argv.extend(flag.split(|byte| *byte == b' ').map(lit));
            }
            Op {
                argv,
                check: Check::Exact,
            }
        })
        .boxed()
}

/// `SET key value [NX|XX] [GET] [PX ms|EX s|KEEPTTL]`: mostly `NX PX` as the service's
/// lock, sometimes every other option and some that do not go together.
fn set() -> BoxedStrategy<Op> {
    let options = prop_oneof![
        3 => text_of(PX_MS).prop_map(|ms| vec![word("NX"), word("PX"), ms]),
        1 => Just(Vec::new()),
        1 => text_of(PX_MS).prop_map(|ms| vec![word("PX"), ms]),
        1 => text_of(EX_SECONDS).prop_map(|s| vec![word("XX"), word("EX"), s]),
        1 => Just(vec![word("NX")]),
        1 => Just(vec![word("XX"), word("KEEPTTL")]),
        1 => Just(vec![word("GET")]),
        1 => text_of(PX_MS).prop_map(|ms| vec![word("NX"), word("GET"), word("PX"), ms]),
        1 => Just(vec![word("NX"), word("XX")]),
        1 => Just(vec![word("PX")]),
        1 => Just(vec![word("KEEPTTL"), word("PX"), word("100000")]),
    ];
    // Mostly `misc`: a SET over the lock would keep try_match from ever getting past it.
    // Player leases are SET NX PX with an owner token, as a session takes one.
    let key = prop_oneof![
        3 => Just("misc"),
        1 => Just("lock:m1"),
        1 => select(SESSION_KEYS),
        1 => select(KEYS)
    ];
    (key.prop_map(Arg::Key), one_of(STRING_VALUES), options)
        .prop_map(|(key, value, options)| Op {
            argv: [vec![word("SET"), key, value], options].concat(),
            check: Check::Exact,
        })
        .boxed()
}

/// A whole `SCAN cursor [MATCH glob] [COUNT n] [TYPE t]` iteration.
fn scan() -> BoxedStrategy<Op> {
    (
        text_of(START_CURSORS),
        prop::option::weighted(0.8, select(KEY_GLOBS)),
        prop::option::weighted(0.5, text_of(SCAN_COUNTS)),
        prop::option::weighted(0.2, text_of(SCAN_TYPES)),
    )
        .prop_map(|(cursor, glob, count, type_name)| {
            let mut argv = vec![word("SCAN"), cursor];
            if let Some(glob) = glob {
                argv.extend([word("MATCH"), Arg::KeyGlob(glob)]);
            } else {
                // Without MATCH a SCAN would see other tests' keys on a shared server.
                argv.extend([word("MATCH"), Arg::KeyGlob("*")]);
            }
            if let Some(count) = count {
                argv.extend([word("COUNT"), count]);
            }
            if let Some(type_name) = type_name {
                argv.extend([word("TYPE"), type_name]);
            }
            Op {
                argv,
                check: Check::Scan {
                    cursor_at: 1,
                    pairs: false,
                },
            }
        })
        .boxed()
}

/// A whole `SSCAN` or `HSCAN key cursor [MATCH glob] [COUNT n]` iteration.
fn element_scan() -> BoxedStrategy<Op> {
    (
        prop::bool::ANY,
        select(KEYS),
        text_of(START_CURSORS),
        prop::option::weighted(0.5, text_of(ELEMENT_GLOBS)),
        prop::option::weighted(0.5, text_of(SCAN_COUNTS)),
    )
        .prop_map(|(hash, key, cursor, glob, count)| {
            let name = if hash { "HSCAN" } else { "SSCAN" };
            let mut argv = vec![word(name), Arg::Key(key), cursor];
            if let Some(glob) = glob {
                argv.extend([word("MATCH"), glob]);
            }
            if let Some(count) = count {
                argv.extend([word("COUNT"), count]);
            }
            Op {
                argv,
                check: Check::Scan {
                    cursor_at: 2,
                    pairs: hash,
                },
            }
        })
        .boxed()
}

/// `PUBLISH channel message`: the count of subscribers whose pattern matches.
fn publish() -> BoxedStrategy<Op> {
    (select(CHANNELS), one_of(STRING_VALUES))
        .prop_map(|(channel, message)| Op {
            argv: vec![word("PUBLISH"), Arg::Channel(channel), message],
            check: Check::Exact,
        })
        .boxed()
}

/// PEXPIRE milliseconds: long enough not to expire during a case, or ones that delete,
/// overflow or do not parse.
const PEXPIRE_MS: &[&str] = &["100000", "0", "-5", "x", "9223372036854775807"];
/// EXPIREAT instants (Unix seconds): the past deletes, 2100 is far ahead, some overflow.
const EXPIREAT_SECONDS: &[&str] = &[
    "0",
    "1",
    "-1",
    "4102444800",
    "x",
    "9223372036854775",
    "9223372036854776",
];
/// PEXPIREAT instants (Unix milliseconds), likewise.
const PEXPIREAT_MS: &[&str] = &[
    "0",
    "4102444800000",
    "9223372036854775807",
    "-9223372036854775808",
    "x",
];
/// Increments for INCRBY, DECRBY and HINCRBY.
const INCREMENTS: &[&str] = &[
    "5",
    "-5",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "x",
    "1.5",
];

/// The other commands the fake implements, which the service does not send itself but a
/// script could: compared like the rest, so the table in `docs/fake-redis.md` can say so.
fn other_command() -> BoxedStrategy<Op> {
    let any_key = || select(KEYS).prop_map(Arg::Key);
    let keys = || prop::collection::vec(select(KEYS).prop_map(Arg::Key), 1..=3);
    let exact = |argv: Vec<Arg>| Op {
        argv,
        check: Check::Exact,
    };
    prop_oneof![
        keys().prop_map(move |keys| exact([vec![word("UNLINK")], keys].concat())),
        keys().prop_map(move |keys| exact([vec![word("MGET")], keys].concat())),
        (
            any_key(),
            text_of(PEXPIRE_MS),
            prop::option::of(text_of(&["NX", "XX"]))
        )
            .prop_map(move |(key, ms, flag)| {
                exact([vec![word("PEXPIRE"), key, ms], flag.into_iter().collect()].concat())
            }),
        (any_key(), text_of(EXPIREAT_SECONDS)).prop_map(move |(key, at)| exact(vec![
            word("EXPIREAT"),
            key,
            at
        ])),
        (any_key(), text_of(PEXPIREAT_MS)).prop_map(move |(key, at)| exact(vec![
            word("PEXPIREAT"),
            key,
            at
        ])),
        any_key().prop_map(move |key| exact(vec![word("PERSIST"), key])),
        (select(&["INCR", "DECR"][..]), key(STRING_KEYS))
            .prop_map(move |(name, key)| exact(vec![word(name), key])),
        (
            select(&["INCRBY", "DECRBY"][..]),
            key(STRING_KEYS),
            text_of(INCREMENTS)
        )
            .prop_map(move |(name, key, by)| exact(vec![word(name), key, by])),
        (key(SET_KEYS), one_of(MEMBERS)).prop_map(move |(key, member)| exact(vec![
            word("SISMEMBER"),
            key,
            member
        ])),
        (key(SET_KEYS), prop::collection::vec(one_of(MEMBERS), 1..=3)).prop_map(
            move |(key, members)| exact([vec![word("SMISMEMBER"), key], members].concat())
        ),
        (key(HASH_KEYS), prop::collection::vec(one_of(FIELDS), 1..=3))
            .prop_map(move |(key, fields)| exact([vec![word("HMGET"), key], fields].concat())),
        (key(HASH_KEYS), prop::collection::vec(one_of(FIELDS), 1..=3))
            .prop_map(move |(key, fields)| exact([vec![word("HDEL"), key], fields].concat())),
        (key(HASH_KEYS), one_of(FIELDS)).prop_map(move |(key, field)| exact(vec![
            word("HEXISTS"),
            key,
            field
        ])),
        key(HASH_KEYS).prop_map(move |key| exact(vec![word("HLEN"), key])),
        (key(HASH_KEYS), one_of(FIELDS), text_of(INCREMENTS))
            .prop_map(move |(key, field, by)| exact(vec![word("HINCRBY"), key, field, by])),
        (select(&["HKEYS", "HVALS"][..]), key(HASH_KEYS)).prop_map(|(name, key)| Op {
            argv: vec![word(name), key],
            check: Check::Unordered,
        }),
        select(KEY_GLOBS).prop_map(|glob| Op {
            argv: vec![word("KEYS"), Arg::KeyGlob(glob)],
            check: Check::Unordered,
        }),
        prop::option::of(one_of(STRING_VALUES)).prop_map(move |message| exact(
            [vec![word("PING")], message.into_iter().collect()].concat()
        )),
    ]
    .boxed()
}

/// Commands with a wrong number of arguments, unknown commands and names in mixed case.
fn odd_command() -> BoxedStrategy<Op> {
    let names = &[
        "SADD",
        "SREM",
        "SCARD",
        "SMEMBERS",
        "SPOP",
        "SRANDMEMBER",
        "HSET",
        "HGET",
        "HGETALL",
        "DEL",
        "EXISTS",
        "EXPIRE",
        "TTL",
        "PTTL",
        "SET",
        "GET",
        "SCAN",
        "PUBLISH",
        "EVAL",
        "NOSUCH",
    ];
    (
        select(names),
        prop::bool::ANY,
        prop::collection::vec(select(KEYS).prop_map(Arg::Key), 0..=4),
    )
        .prop_map(|(name, lower, args)| {
            let name = if lower {
                name.to_lowercase()
            } else {
                name.to_owned()
            };
            Op {
                argv: [vec![word(&name)], args].concat(),
                check: if name.eq_ignore_ascii_case("SPOP")
                    || name.eq_ignore_ascii_case("SRANDMEMBER")
                {
                    Check::Followed
                } else if name.eq_ignore_ascii_case("SMEMBERS") {
                    Check::Unordered
                } else if name.eq_ignore_ascii_case("HGETALL") {
                    Check::Map
                } else if name.eq_ignore_ascii_case("TTL") {
                    Check::Ttl(1000)
                } else if name.eq_ignore_ascii_case("PTTL") {
                    Check::Ttl(1)
                } else {
                    Check::Exact
                },
            }
        })
        .boxed()
}

/// What a script's key or argument stands for (see the headers of the files in `lua/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The queue set of the story's mode.
    QueueKey,
    /// The players hash.
    PlayersKey,
    /// The story's loading hash.
    LoadingKey,
    /// The loading index set.
    IndexKey,
    /// The match lock.
    LockKey,
    /// The story's player's lease.
    LeaseKey,
    /// The story's player.
    Pid,
    /// The story's owner token.
    Owner,
    /// The story's mode.
    Mode,
    /// The story's loading id.
    LoadingId,
    /// The story's lock token.
    Token,
    /// One of these values.
    Pool(&'static [&'static str]),
    /// The HSCAN cursor of sweep_players: 0 (or, as noise, an invalid cursor).
    Cursor,
}

/// The choices one script call shares across its keys and arguments, so that a queue key
/// and its mode, a loading key and its id, a player and its owner usually agree, as they
/// do when the service calls the script; scripts then get past their first checks.
#[derive(Clone, Copy, Debug)]
struct Story {
    /// Index into [`MODES`].
    mode: usize,
    /// Index into [`LOADING_IDS`].
    loading: usize,
    /// Index into [`PIDS`].
    pid: usize,
    /// The owner: the player's own (`None`) or one of [`OWNERS`].
    owner: Option<usize>,
    /// Index into [`TOKENS`].
    token: usize,
    /// Whether this call also gets odd keys and arguments (each position at 1 in 4).
    noisy: bool,
}

/// The owner token each player gets when the story keeps them together.
const OWNER_OF: &[&str] = &["o1", "o2", "o3"];

impl Story {
    /// The value of `role` in this story, or `None` for a pool role.
    fn value(self, role: Role) -> Option<String> {
        let pick = |pool: &[&'static str], index: usize| -> &'static str {
            pool.get(index).copied().unwrap_or_default()
        };
        let mode = pick(MODES, self.mode);
        let loading = pick(LOADING_IDS, self.loading);
        Some(match role {
            Role::QueueKey => format!("queue:{mode}"),
            Role::PlayersKey => "players".to_owned(),
            Role::LoadingKey => format!("loading:{loading}"),
            Role::IndexKey => "loading_index:m1".to_owned(),
            Role::LockKey => "lock:m1".to_owned(),
            Role::LeaseKey => format!("session:{}", pick(PIDS, self.pid)),
            Role::Pid => pick(PIDS, self.pid).to_owned(),
            Role::Owner => match self.owner {
                None => pick(OWNER_OF, self.pid).to_owned(),
                Some(owner) => pick(OWNERS, owner).to_owned(),
            },
            Role::Mode => mode.to_owned(),
            Role::LoadingId => loading.to_owned(),
            Role::Token => pick(TOKENS, self.token).to_owned(),
            Role::Pool(_) | Role::Cursor => return None,
        })
    }
}

/// Stories: mostly mode m1 (the one with an index set and a lock), loading L1 and players
/// p1 and p2 (so two-player matches complete), mostly the player's own owner, mostly the lock token the lock op writes; noisy with
/// probability `noise`.
fn story(noise: f64) -> impl Strategy<Value = Story> {
    (
        prop_oneof![3 => Just(0_usize), 1 => Just(1_usize)],
        prop_oneof![3 => Just(0_usize), 1 => Just(1_usize)],
        prop_oneof![3 => Just(0_usize), 3 => Just(1_usize), 1 => Just(2_usize)],
        prop::option::weighted(0.2, 0..OWNERS.len()),
        prop_oneof![6 => Just(0_usize), 1 => Just(1_usize)],
        prop::bool::weighted(noise),
    )
        .prop_map(|(mode, loading, pid, owner, token, noisy)| Story {
            mode,
            loading,
            pid,
            owner,
            token,
            noisy,
        })
}

/// What a script takes: the role of each key and argument, in order.
struct ScriptSpec {
    /// The script's name in `scripts::all()`.
    name: &'static str,
    /// Roles of KEYS[1..].
    keys: &'static [Role],
    /// Roles of ARGV[1..].
    args: &'static [Role],
    /// How its outcomes compare.
    check: Check,
}

/// Every service script with the roles of its keys and arguments. renew_leases,
/// renew_player_leases and sweep_players take more after these; see [`variadic_tail`].
const SPECS: &[ScriptSpec] = &[
    ScriptSpec {
        name: "enqueue",
        keys: &[Role::QueueKey, Role::PlayersKey],
        args: &[
            Role::Pid,
            Role::Owner,
            Role::Mode,
            Role::Pool(NOWS),
            Role::Pool(DEADLINES),
            Role::Pool(MAX_LENS),
        ],
        check: Check::Script,
    },
    ScriptSpec {
        name: "leave_queue",
        keys: &[Role::QueueKey, Role::PlayersKey],
        args: &[Role::Pid, Role::Owner, Role::Mode],
        check: Check::Script,
    },
    ScriptSpec {
        name: "try_match",
        keys: &[
            Role::QueueKey,
            Role::PlayersKey,
            Role::LoadingKey,
            Role::IndexKey,
            Role::LockKey,
        ],
        args: &[
            Role::Mode,
            Role::Pool(NEEDS),
            Role::LoadingId,
            Role::Pool(NOWS),
            Role::Pool(DEADLINES),
            Role::Pool(MAX_POPS),
            Role::Token,
        ],
        check: Check::Script,
    },
    ScriptSpec {
        name: "loading_complete",
        keys: &[Role::LoadingKey, Role::PlayersKey],
        args: &[
            Role::Pid,
            Role::Owner,
            Role::LoadingId,
            Role::Pool(DEADLINES),
        ],
        check: Check::Script,
    },
    ScriptSpec {
        name: "finish_match",
        keys: &[Role::LoadingKey, Role::PlayersKey, Role::IndexKey],
        args: &[
            Role::LoadingId,
            Role::Pool(SESSIONS),
            Role::Pool(ADDRESSES),
            Role::Pool(DEADLINES),
        ],
        check: Check::Script,
    },
    ScriptSpec {
        name: "cancel_loading",
        keys: &[
            Role::LoadingKey,
            Role::PlayersKey,
            Role::IndexKey,
            Role::QueueKey,
        ],
        args: &[
            Role::LoadingId,
            Role::Pool(PIDS_OR_NONE),
            Role::Pool(OWNERS_OR_NONE),
            Role::Pool(NOWS),
            Role::Pool(FLAGS),
            Role::Pool(FLAGS),
        ],
        check: Check::Script,
    },
    ScriptSpec {
        name: "renew_leases",
        keys: &[Role::PlayersKey],
        args: &[Role::Pool(DEADLINES)],
        check: Check::Script,
    },
    ScriptSpec {
        name: "renew_player_leases",
        keys: &[],
        args: &[Role::Pool(PX_MS)],
        check: Check::Script,
    },
    ScriptSpec {
        name: "sweep_players",
        keys: &[Role::PlayersKey],
        args: &[Role::Pool(NOWS), Role::Cursor, Role::Pool(SWEEP_COUNTS)],
        check: Check::Sweep,
    },
    ScriptSpec {
        name: "release_lock",
        keys: &[Role::LockKey],
        args: &[Role::Token],
        check: Check::Script,
    },
    ScriptSpec {
        name: "release_player_lease",
        keys: &[Role::LeaseKey],
        args: &[Role::Owner],
        check: Check::Script,
    },
    // The fleet scripts reuse keys of the types they expect (the players hash as the
    // servers hash, a queue as the free set, the lock as a claim), so they meet the other
    // scripts' data as well as their own.
    ScriptSpec {
        name: "fleet_claim",
        keys: &[Role::PlayersKey, Role::QueueKey, Role::LockKey],
        args: &[Role::Pool(NOWS), Role::Pool(PX_MS), Role::Pool(MAX_POPS)],
        check: Check::Script,
    },
    ScriptSpec {
        name: "fleet_release",
        keys: &[Role::PlayersKey, Role::QueueKey, Role::LockKey],
        args: &[],
        check: Check::Script,
    },
    ScriptSpec {
        name: "fleet_sync",
        keys: &[Role::PlayersKey, Role::QueueKey],
        args: &[Role::Pool(NOWS)],
        check: Check::Script,
    },
];

/// How an EVAL's arity is bent, if at all.
#[derive(Clone, Copy, Debug)]
enum Arity {
    /// As the script expects.
    Right,
    /// The last key is left out.
    FewerKeys,
    /// The last two arguments are left out.
    FewerArgs,
    /// One argument too many.
    ExtraArg,
    /// numkeys that is negative, too large or not a number.
    BadNumkeys(&'static str),
}

/// An EVAL of a service script with generated KEYS and ARGV: any arity, any script,
/// weighted towards the scripts that move a match along, 3 in 10 calls noisy.
fn eval() -> BoxedStrategy<Op> {
    let arity = prop_oneof![
        20 => Just(Arity::Right),
        1 => Just(Arity::FewerKeys),
        1 => Just(Arity::FewerArgs),
        1 => Just(Arity::ExtraArg),
        1 => select(&["-1", "99", "x", ""][..]).prop_map(Arity::BadNumkeys),
    ];
    eval_with(
        [3, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 2, 1, 2],
        arity.boxed(),
        0.3,
    )
}

/// An EVAL as the service makes it: right arity, no noise, mostly the scripts of a match's
/// life after the queue (try_match, loading_complete, finish_match, cancel_loading).
fn flow_eval() -> BoxedStrategy<Op> {
    eval_with(
        [2, 1, 3, 6, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        Just(Arity::Right).boxed(),
        0.0,
    )
}

/// An EVAL of a service script chosen by `weights` (in [`SPECS`] order), with `arity`
/// and a story that is noisy with probability `noise`.
fn eval_with(weights: [u32; 14], arity: BoxedStrategy<Arity>, noise: f64) -> BoxedStrategy<Op> {
    let choices: Vec<(u32, BoxedStrategy<usize>)> = weights
        .iter()
        .enumerate()
        .map(|(index, weight)| (*weight, Just(index).boxed()))
        .collect();
    let spec_index = prop::strategy::Union::new_weighted(choices);
    (spec_index, arity, story(noise))
        .prop_flat_map(|(spec_index, arity, story)| {
            let spec = SPECS.get(spec_index).expect("spec index in range");
            let keys: Vec<BoxedStrategy<Arg>> = spec
                .keys
                .iter()
                .map(|role| script_key(*role, story))
                .collect();
            let args: Vec<BoxedStrategy<Arg>> = spec
                .args
                .iter()
                .map(|role| script_arg(*role, story))
                .collect();
            (
                keys,
                args,
                variadic_tail(spec.name),
                Just((spec_index, arity)),
            )
        })
        .prop_map(
            |(mut keys, mut args, (more_keys, more_args), (spec_index, arity))| {
                let spec = SPECS.get(spec_index).expect("spec index in range");
                keys.extend(more_keys);
                args.extend(more_args);
                eval_op(spec, keys, args, arity)
            },
        )
        .boxed()
}

/// A script key: the story's key for its role; in a noisy call sometimes any key of the
/// pool (so scripts meet missing keys and keys of the wrong type).
fn script_key(role: Role, story: Story) -> BoxedStrategy<Arg> {
    let name = story.value(role).unwrap_or_default();
    let name: &'static str = KEYS
        .iter()
        .find(|key| **key == name)
        .copied()
        .unwrap_or("misc");
    if !story.noisy {
        return Just(Arg::Key(name)).boxed();
    }
    prop_oneof![3 => Just(Arg::Key(name)), 1 => select(KEYS).prop_map(Arg::Key)].boxed()
}

/// A script argument: the story's value or one of its pool; in a noisy call sometimes an
/// odd value (for the HSCAN cursor of sweep_players only invalid cursors: see the module
/// docs).
fn script_arg(role: Role, story: Story) -> BoxedStrategy<Arg> {
    let (usual, odd) = match (role, story.value(role)) {
        (Role::Cursor, _) => (Just(word("0")).boxed(), BAD_CURSORS),
        (Role::Pool(pool), _) => (text_of(pool), ODD),
        (_, Some(value)) => (Just(word(&value)).boxed(), ODD),
        (_, None) => (Just(word("")).boxed(), ODD),
    };
    if !story.noisy {
        return usual;
    }
    prop_oneof![3 => usual, 1 => text_of(odd)].boxed()
}

/// The extra keys and arguments of the variadic scripts: renew_leases takes (player,
/// owner) pairs; renew_player_leases takes a lease key per (player, owner) pair;
/// sweep_players takes queue keys and their modes.
fn variadic_tail(name: &'static str) -> BoxedStrategy<(Vec<Arg>, Vec<Arg>)> {
    match name {
        "renew_leases" => prop::collection::vec((0..PIDS.len(), prop::bool::weighted(0.8)), 0..=3)
            .prop_map(|pairs| {
                let args = pairs
                    .into_iter()
                    .flat_map(|(pid, own)| {
                        let owner = if own { OWNER_OF } else { OWNERS };
                        [
                            word(PIDS.get(pid).copied().unwrap_or_default()),
                            word(owner.get(pid % owner.len()).copied().unwrap_or_default()),
                        ]
                    })
                    .collect();
                (Vec::new(), args)
            })
            .boxed(),
        "renew_player_leases" => {
            prop::collection::vec((0..PIDS.len(), prop::bool::weighted(0.8)), 0..=3)
                .prop_map(|pairs| {
                    let mut keys = Vec::new();
                    let mut args = Vec::new();
                    for (pid, own) in pairs {
                        let owner = if own { OWNER_OF } else { OWNERS };
                        keys.push(Arg::Key(SESSION_KEYS.get(pid).copied().unwrap_or("misc")));
                        args.push(word(PIDS.get(pid).copied().unwrap_or_default()));
                        args.push(word(
                            owner.get(pid % owner.len()).copied().unwrap_or_default(),
                        ));
                    }
                    (keys, args)
                })
                .boxed()
        }
        "sweep_players" => {
            prop::collection::vec((0..MODES.len(), prop::bool::weighted(0.9)), 0..=2)
                .prop_map(|queues| {
                    queues
                        .into_iter()
                        .map(|(mode, coherent)| {
                            let key_mode = if coherent { mode } else { 1 - mode };
                            let key = QUEUE_KEYS.get(key_mode).copied().unwrap_or("misc");
                            (
                                Arg::Key(key),
                                word(MODES.get(mode).copied().unwrap_or_default()),
                            )
                        })
                        .unzip()
                })
                .boxed()
        }
        "fleet_sync" => prop::collection::vec(
            (
                0..PIDS.len(),
                0..ADDRESSES.len(),
                prop::bool::ANY,
                1_u8..=2,
                0_u8..=2,
            ),
            0..=3,
        )
        .prop_map(|servers| {
            let args = servers
                .into_iter()
                .flat_map(|(pid, address, idle, capacity, sessions)| {
                    [
                        word(PIDS.get(pid).copied().unwrap_or_default()),
                        word(ADDRESSES.get(address).copied().unwrap_or_default()),
                        word(if idle { "idle" } else { "busy" }),
                        word(&capacity.to_string()),
                        word(&sessions.to_string()),
                    ]
                })
                .collect();
            (Vec::new(), args)
        })
        .boxed(),
        _ => Just((Vec::new(), Vec::new())).boxed(),
    }
}

/// Builds `EVAL <source> numkeys keys... args...` with `arity` applied.
fn eval_op(spec: &ScriptSpec, mut keys: Vec<Arg>, mut args: Vec<Arg>, arity: Arity) -> Op {
    let mut numkeys = None;
    match arity {
        Arity::Right => {}
        Arity::FewerKeys => {
            keys.pop();
        }
        Arity::FewerArgs => {
            args.truncate(args.len().saturating_sub(2));
        }
        Arity::ExtraArg => args.push(word("extra")),
        Arity::BadNumkeys(text) => numkeys = Some(word(text)),
    }
    let index = scripts::all()
        .iter()
        .position(|script| script.name == spec.name)
        .expect("every spec names a service script");
    let numkeys = numkeys.unwrap_or_else(|| word(&keys.len().to_string()));
    Op {
        argv: [vec![word("EVAL"), Arg::Script(index), numkeys], keys, args].concat(),
        check: spec.check,
    }
}

/// Goal: every service script has a spec, so every one of them is generated (and the
/// spec weights in [`eval`] cover exactly the specs).
#[test]
fn every_service_script_is_generated() {
    assert_eq!(
        SPECS.len(),
        14,
        "update the spec weights in eval() and flow_eval()"
    );
    assert_eq!(SPECS.first().map(|spec| spec.name), Some("enqueue"));
    for script in scripts::all() {
        assert!(
            SPECS.iter().any(|spec| spec.name == script.name),
            "no spec for {}",
            script.name
        );
    }
}
