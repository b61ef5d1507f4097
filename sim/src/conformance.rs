//! Differential conformance of [`FakeRedis`] against a real Redis 7: how the outcomes of
//! one command on both servers are normalised and compared, how the data of both is
//! captured and compared, and (in [`recorder`]) how the choices Redis makes inside a
//! script are recorded so that the fake can follow them.
//!
//! What counts as "the same":
//!
//! - Replies are equal, except where Redis promises no order: a set reply (SMEMBERS,
//!   SPOP with a count) compares as a multiset, HGETALL as a map, a whole SCAN-family
//!   iteration by the union of what it returned ([`Shape`]).
//! - An error matches an error of the same *kind*, the first word of its text (`ERR`,
//!   `WRONGTYPE`, `NOSCRIPT`, a script's own `{err = "CODE ..."}`), nested error elements
//!   too. The rest of the text names script hashes, lines and wording that may change
//!   between Redis releases, and no caller branches on it.
//! - A remaining time to live matches within [`TTL_TOLERANCE_MS`]: Redis's clock moves
//!   while a sequence runs, the fake's `ManualClock` does not.
//! - Where Redis chooses (SPOP and SRANDMEMBER picks, the order of SMEMBERS and the like,
//!   SCAN-family pages), at top level or inside a script, the fake does not guess: the
//!   command runs on Redis first, Redis's choices are recorded ([`recorder`]) and the fake
//!   follows them ([`FakeRedis::follow`]) after checking each is a choice it could make;
//!   the outcomes then compare exactly. Top-level SMEMBERS, HGETALL, HKEYS, HVALS, KEYS
//!   and whole SCAN iterations are not followed; they compare by the shapes above.
//!
//! The real side (a connection to redis-server) lives in the test that drives this module,
//! `sim/tests/conformance.rs`; here everything is a [`Reply`], so the rules can be unit
//! tested without a server.

pub mod recorder;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use match_server::store::{Reply, StoreError};

use crate::fake_redis::{FakeRedis, Value};

/// How far apart the two servers' remaining times to live may be. The real server's clock
/// runs during a case (a few milliseconds, more on a loaded CI machine); the fake's does
/// not move at all.
pub const TTL_TOLERANCE_MS: i64 = 10_000;

/// One server's answer to a command: a reply, or the text of a top-level error reply
/// (code first, as Redis sends it after the `-`).
pub type Outcome = Result<Reply, String>;

/// The fake's result as an [`Outcome`]. The fake's generic entry points only fail with
/// error replies; anything else is kept visible under a kind no real Redis sends.
pub fn fake_outcome(result: Result<Reply, StoreError>) -> Outcome {
    result.map_err(|error| match error {
        StoreError::Server(text) => text,
        other => format!("FAKE-FAILURE {other}"),
    })
}

/// The kind of an error: the first word of its text (`ERR`, `WRONGTYPE`, ...).
pub fn error_kind(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or_default()
}

/// The full texts of two top-level errors of the same kind whose wording differs, with
/// the script hash and the `user_script` line numbers taken out (they differ by design);
/// `None` when the texts agree or the outcomes are not two errors. Not a mismatch: for
/// reports of how closely the fake's wording follows Redis's.
pub fn error_wording_difference(fake: &Outcome, real: &Outcome) -> Option<(String, String)> {
    let (Err(fake_text), Err(real_text)) = (fake, real) else {
        return None;
    };
    let (fake_text, real_text) = (
        without_script_position(fake_text),
        without_script_position(real_text),
    );
    (fake_text != real_text).then_some((fake_text, real_text))
}

/// An error text without the `script: <sha1>, on @user_script:<line>.` suffix and with
/// `user_script:<line>:` prefixes reduced to `user_script:_:`.
fn without_script_position(text: &str) -> String {
    let text = text.split(" script: ").next().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("user_script:") {
        let (before, after) = rest.split_at(at + "user_script:".len());
        out.push_str(before);
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push('_');
        }
        rest = after.get(digits..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// How the replies of one command are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Equal replies (errors by kind).
    Exact,
    /// An array in no particular order, compared as a multiset (SMEMBERS, SPOP with a
    /// count that takes the whole set).
    Unordered,
    /// A flat `field, value, ...` array compared as a map (HGETALL).
    Map,
    /// Every element returned by a whole SCAN or SSCAN iteration, compared as a set:
    /// Redis may return an element more than once and in any order.
    Union,
    /// Every `field, value` pair returned by a whole HSCAN iteration, compared as a map.
    UnionMap,
    /// A TTL (`unit_ms` 1000) or PTTL (`unit_ms` 1) reply: the codes -1 and -2 exactly,
    /// a remaining time within [`TTL_TOLERANCE_MS`].
    Ttl {
        /// Milliseconds per unit of the reply.
        unit_ms: i64,
    },
}

/// A reply reduced to what [`compare`] requires to be equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Normal {
    /// An error reply or error element, by kind.
    Error(String),
    /// The nil reply.
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// A status such as `OK`.
    Status(String),
    /// An array in its order.
    Array(Vec<Normal>),
    /// Elements in no particular order, sorted (duplicates kept unless a union).
    Unordered(Vec<Normal>),
    /// Field/value pairs sorted by field (duplicate pairs dropped in a union).
    Map(Vec<(Normal, Normal)>),
}

/// Reduces an outcome to its [`Normal`] form under `shape`.
pub fn normalise(outcome: &Outcome, shape: Shape) -> Normal {
    let reply = match outcome {
        Err(text) => return Normal::Error(error_kind(text).to_owned()),
        Ok(reply) => reply,
    };
    let Reply::Array(items) = reply else {
        return exact(reply);
    };
    match shape {
        Shape::Exact | Shape::Ttl { .. } => exact(reply),
        Shape::Unordered => Normal::Unordered(sorted(items.iter().map(exact).collect())),
        Shape::Union => {
            let unique: BTreeSet<Normal> = items.iter().map(exact).collect();
            Normal::Unordered(unique.into_iter().collect())
        }
        Shape::Map => pairs(items).map_or_else(|| exact(reply), Normal::Map),
        Shape::UnionMap => pairs(items).map_or_else(
            || exact(reply),
            |pairs| {
                let unique: BTreeSet<(Normal, Normal)> = pairs.into_iter().collect();
                Normal::Map(unique.into_iter().collect())
            },
        ),
    }
}

/// A reply as it is, with error elements reduced to their kind.
fn exact(reply: &Reply) -> Normal {
    match reply {
        Reply::Nil => Normal::Nil,
        Reply::Int(number) => Normal::Int(*number),
        Reply::Bulk(bytes) => Normal::Bulk(bytes.clone()),
        Reply::Status(text) => Normal::Status(text.clone()),
        Reply::Error(text) => Normal::Error(error_kind(text).to_owned()),
        Reply::Array(items) => Normal::Array(items.iter().map(exact).collect()),
    }
}

/// A flat `a, b, a, b, ...` list as pairs sorted by their first element; `None` for an
/// odd length (compared as a plain array then, so the difference shows).
fn pairs(items: &[Reply]) -> Option<Vec<(Normal, Normal)>> {
    if items.len() % 2 != 0 {
        return None;
    }
    let mut pairs: Vec<(Normal, Normal)> = items
        .chunks_exact(2)
        .filter_map(|pair| match pair {
            [first, second] => Some((exact(first), exact(second))),
            _ => None,
        })
        .collect();
    pairs.sort();
    Some(pairs)
}

/// `items` sorted.
fn sorted(mut items: Vec<Normal>) -> Vec<Normal> {
    items.sort();
    items
}

/// Two outcomes that do not match, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What the fake answered.
    pub fake: Outcome,
    /// What Redis answered.
    pub real: Outcome,
    /// Which rule they broke, for the report.
    pub reason: String,
}

impl Mismatch {
    /// A mismatch of `fake` and `real` for `reason`.
    pub fn new(fake: &Outcome, real: &Outcome, reason: impl Into<String>) -> Self {
        Self {
            fake: fake.clone(),
            real: real.clone(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  fake:  {}", render(&self.fake))?;
        writeln!(f, "  redis: {}", render(&self.real))?;
        write!(f, "  rule:  {}", self.reason)
    }
}

/// Compares the outcomes of one command under `shape`.
pub fn compare(shape: Shape, fake: &Outcome, real: &Outcome) -> Result<(), Mismatch> {
    if let (Shape::Ttl { unit_ms }, Ok(Reply::Int(fake_ttl)), Ok(Reply::Int(real_ttl))) =
        (shape, fake, real)
    {
        return compare_ttl(unit_ms, *fake_ttl, *real_ttl)
            .map_err(|reason| Mismatch::new(fake, real, reason));
    }
    let (fake_normal, real_normal) = (normalise(fake, shape), normalise(real, shape));
    if fake_normal == real_normal {
        return Ok(());
    }
    let reason = match (fake, real) {
        (Err(fake_text), Err(real_text)) => format!(
            "error kinds differ: {:?} vs {:?}",
            error_kind(fake_text),
            error_kind(real_text)
        ),
        (Err(_), Ok(_)) => "the fake failed where Redis answered".to_owned(),
        (Ok(_), Err(_)) => "the fake answered where Redis failed".to_owned(),
        (Ok(_), Ok(_)) => format!("replies differ (compared as {shape:?})"),
    };
    Err(Mismatch::new(fake, real, reason))
}

/// A TTL or PTTL: -1 (no expiry) and -2 (no key) exactly, remaining times within the
/// tolerance plus one unit (TTL rounds to whole seconds).
fn compare_ttl(unit_ms: i64, fake: i64, real: i64) -> Result<(), String> {
    if fake < 0 || real < 0 {
        return if fake == real {
            Ok(())
        } else {
            Err("TTL codes differ (-1: no expiry, -2: no key)".to_owned())
        };
    }
    let apart_ms = fake.abs_diff(real).saturating_mul(unit_ms.unsigned_abs());
    let allowed_ms = TTL_TOLERANCE_MS.saturating_add(unit_ms).unsigned_abs();
    if apart_ms <= allowed_ms {
        Ok(())
    } else {
        Err(format!(
            "remaining times are {apart_ms} ms apart, more than the {allowed_ms} ms allowed"
        ))
    }
}

/// The first element of an array reply, as text (a script's outcome tag).
pub fn reply_tag(outcome: &Outcome) -> Option<String> {
    match outcome {
        Ok(Reply::Array(items)) => items
            .first()
            .and_then(Reply::as_text)
            .map(ToOwned::to_owned),
        _ => None,
    }
}

/// A human rendering of an outcome, complete (no elements left out), bytes escaped.
pub fn render(outcome: &Outcome) -> String {
    match outcome {
        Err(text) => format!("(error) {text}"),
        Ok(reply) => render_reply(reply),
    }
}

/// A human rendering of a reply.
fn render_reply(reply: &Reply) -> String {
    match reply {
        Reply::Nil => "(nil)".to_owned(),
        Reply::Int(number) => format!("(integer) {number}"),
        Reply::Bulk(bytes) => escape(bytes),
        Reply::Status(text) => format!("+{text}"),
        Reply::Error(text) => format!("(error element) {text}"),
        Reply::Array(items) => {
            let items: Vec<String> = items.iter().map(render_reply).collect();
            format!("[{}]", items.join(", "))
        }
    }
}

/// Bytes as a quoted string, non-printable bytes as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    for byte in bytes {
        text.extend(std::ascii::escape_default(*byte).map(char::from));
    }
    text.push('"');
    text
}

/// A key's value as both servers can report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// A string.
    String(Vec<u8>),
    /// A set's members.
    Set(BTreeSet<Vec<u8>>),
    /// A hash's fields and values.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// A type the fake does not implement (a real Redis may hold one), by TYPE name.
    Other(String),
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(bytes) => write!(f, "string {}", escape(bytes)),
            Self::Set(members) => {
                let members: Vec<String> = members.iter().map(|m| escape(m)).collect();
                write!(f, "set {{{}}}", members.join(", "))
            }
            Self::Hash(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(field, value)| format!("{}: {}", escape(field), escape(value)))
                    .collect();
                write!(f, "hash {{{}}}", fields.join(", "))
            }
            Self::Other(type_name) => write!(f, "a {type_name}"),
        }
    }
}

/// One key's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyState {
    /// What it holds.
    pub data: Data,
    /// Milliseconds left to live (PTTL), `None` without expiry.
    pub ttl_ms: Option<i64>,
}

/// Every key of one server (or of one key namespace on it) with its value and TTL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The keys in byte order.
    pub keys: BTreeMap<Vec<u8>, KeyState>,
}

impl Snapshot {
    /// Everything the fake holds now, TTLs measured on the fake's clock.
    pub fn of_fake(fake: &FakeRedis) -> Self {
        let keys = fake.with_data(|view| {
            let now_ms = view.now_ms();
            view.entries()
                .map(|(key, entry)| {
                    let data = match &entry.value {
                        Value::String(bytes) => Data::String(bytes.clone()),
                        Value::Set(members) => Data::Set(members.clone()),
                        Value::Hash(fields) => Data::Hash(fields.clone()),
                    };
                    let ttl_ms = entry.expires_at_ms.map(|at_ms| {
                        i64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(i64::MAX)
                    });
                    (key.to_vec(), KeyState { data, ttl_ms })
                })
                .collect()
        });
        Self { keys }
    }

    /// Every difference between the fake's snapshot (`self`) and Redis's, one line each;
    /// empty when they match (TTLs within [`TTL_TOLERANCE_MS`]).
    pub fn differences(&self, real: &Self) -> Vec<String> {
        let names: BTreeSet<&Vec<u8>> = self.keys.keys().chain(real.keys.keys()).collect();
        let mut differences = Vec::new();
        for name in names {
            let key = escape(name);
            match (self.keys.get(name), real.keys.get(name)) {
                (Some(fake), None) => {
                    differences.push(format!("{key}: only the fake has it ({})", fake.data));
                }
                (None, Some(real)) => {
                    differences.push(format!("{key}: only Redis has it ({})", real.data));
                }
                (Some(fake), Some(real)) => {
                    if fake.data != real.data {
                        differences.push(format!(
                            "{key}: fake holds {}, Redis holds {}",
                            fake.data, real.data
                        ));
                    }
                    if !ttls_match(fake.ttl_ms, real.ttl_ms) {
                        differences.push(format!(
                            "{key}: TTL {:?} ms on the fake, {:?} ms on Redis",
                            fake.ttl_ms, real.ttl_ms
                        ));
                    }
                }
                (None, None) => {}
            }
        }
        differences
    }
}

/// Whether two optional TTLs match: both absent, or both present within the tolerance.
fn ttls_match(fake_ms: Option<i64>, real_ms: Option<i64>) -> bool {
    match (fake_ms, real_ms) {
        (None, None) => true,
        (Some(fake_ms), Some(real_ms)) => {
            fake_ms.abs_diff(real_ms) <= TTL_TOLERANCE_MS.unsigned_abs()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_redis::ManualClock;

    /// A bulk reply.
    fn bulk(text: &str) -> Reply {
        Reply::bulk(text)
    }

    /// An array of bulk replies.
    fn bulks(texts: &[&str]) -> Reply {
        Reply::Array(texts.iter().map(|text| bulk(text)).collect())
    }

    /// A successful outcome.
    fn ok(reply: Reply) -> Outcome {
        Ok(reply)
    }

    /// An error outcome.
    fn err(text: &str) -> Outcome {
        Err(text.to_owned())
    }

    /// Goal (required by the issue): a wrong reply is reported as a mismatch - nil where
    /// Redis answers an empty array, a wrong integer, an error where Redis answers a value
    /// (and the reverse), under every shape that could hide it.
    #[test]
    fn wrong_replies_are_mismatches() {
        let empty = ok(Reply::Array(Vec::new()));
        for shape in [
            Shape::Exact,
            Shape::Unordered,
            Shape::Map,
            Shape::Union,
            Shape::UnionMap,
        ] {
            let mismatch = compare(shape, &ok(Reply::Nil), &empty).unwrap_err();
            assert_eq!(mismatch.fake, ok(Reply::Nil));
            assert_eq!(mismatch.real, empty);
            assert!(
                compare(shape, &empty, &ok(Reply::Nil)).is_err(),
                "{shape:?}"
            );
            assert!(compare(shape, &ok(Reply::Int(2)), &ok(Reply::Int(3))).is_err());
            assert!(compare(shape, &err("ERR x"), &ok(Reply::Int(0))).is_err());
            assert!(compare(shape, &ok(Reply::Int(0)), &err("ERR x")).is_err());
            assert!(compare(shape, &ok(bulk("1")), &ok(Reply::Int(1))).is_err());
            assert!(compare(shape, &ok(Reply::Status("OK".into())), &ok(bulk("OK"))).is_err());
        }
        assert!(
            compare(
                Shape::Ttl { unit_ms: 1 },
                &ok(Reply::Nil),
                &ok(Reply::Int(-2))
            )
            .is_err()
        );
        let mismatch = compare(Shape::Exact, &ok(Reply::Int(2)), &ok(Reply::Int(3))).unwrap_err();
        assert!(mismatch.to_string().contains("(integer) 2"), "{mismatch}");
        assert!(mismatch.to_string().contains("(integer) 3"), "{mismatch}");
    }

    /// Goal: errors match by kind (first word) only, top-level and nested, and a nested
    /// error element never matches a top-level error.
    #[test]
    fn errors_compare_by_kind() {
        assert!(compare(Shape::Exact, &err("ERR one text"), &err("ERR another")).is_ok());
        assert!(compare(Shape::Exact, &err("WRONGTYPE Operation"), &err("ERR x")).is_err());
        assert!(compare(Shape::Exact, &err("NOSCRIPT a"), &err("NOSCRIPT b")).is_ok());
        let nested = |text: &str| ok(Reply::Array(vec![Reply::Error(text.into())]));
        assert!(compare(Shape::Exact, &nested("My a"), &nested("My b")).is_ok());
        assert!(compare(Shape::Exact, &nested("My a"), &nested("ERR a")).is_err());
        assert!(compare(Shape::Exact, &nested("ERR a"), &err("ERR a")).is_err());
        assert_eq!(error_kind(""), "");
        assert_eq!(error_kind("WRONGTYPE Operation against"), "WRONGTYPE");
    }

    /// Goal: set replies ignore order but not duplicates or missing members.
    #[test]
    fn unordered_replies_compare_as_multisets() {
        let shape = Shape::Unordered;
        assert!(compare(shape, &ok(bulks(&["a", "b"])), &ok(bulks(&["b", "a"]))).is_ok());
        assert!(compare(shape, &ok(bulks(&["a", "a"])), &ok(bulks(&["a"]))).is_err());
        assert!(compare(shape, &ok(bulks(&["a"])), &ok(bulks(&["a", "b"]))).is_err());
        assert!(
            compare(
                Shape::Exact,
                &ok(bulks(&["a", "b"])),
                &ok(bulks(&["b", "a"]))
            )
            .is_err()
        );
    }

    /// Goal: HGETALL compares as a map: pair order is free, a pair's halves are not.
    #[test]
    fn maps_compare_by_field() {
        let shape = Shape::Map;
        let one = ok(bulks(&["f1", "v1", "f2", "v2"]));
        assert!(compare(shape, &one, &ok(bulks(&["f2", "v2", "f1", "v1"]))).is_ok());
        assert!(compare(shape, &one, &ok(bulks(&["f1", "v2", "f2", "v1"]))).is_err());
        assert!(compare(shape, &one, &ok(bulks(&["v1", "f1", "v2", "f2"]))).is_err());
        assert!(compare(shape, &ok(bulks(&["f1"])), &ok(bulks(&["f1", "v1"]))).is_err());
    }

    /// Goal: a whole SCAN iteration compares by its union; an HSCAN one as a map.
    #[test]
    fn scan_iterations_compare_by_union() {
        let keys = ok(bulks(&["k1", "k2", "k1"]));
        assert!(compare(Shape::Union, &keys, &ok(bulks(&["k2", "k1"]))).is_ok());
        assert!(compare(Shape::Union, &keys, &ok(bulks(&["k2"]))).is_err());
        let fields = ok(bulks(&["f", "1", "g", "2", "f", "1"]));
        assert!(compare(Shape::UnionMap, &fields, &ok(bulks(&["g", "2", "f", "1"]))).is_ok());
        assert!(compare(Shape::UnionMap, &fields, &ok(bulks(&["g", "2", "f", "9"]))).is_err());
    }

    /// Goal: TTLs match within the tolerance; the -1 and -2 codes only exactly.
    #[test]
    fn ttls_compare_within_tolerance() {
        let pttl = Shape::Ttl { unit_ms: 1 };
        let ttl = Shape::Ttl { unit_ms: 1000 };
        let int = |n| ok(Reply::Int(n));
        assert!(compare(pttl, &int(100_000), &int(99_990)).is_ok());
        assert!(compare(pttl, &int(100_000), &int(100_000 - TTL_TOLERANCE_MS - 2)).is_err());
        assert!(compare(ttl, &int(100), &int(99)).is_ok());
        assert!(compare(ttl, &int(100), &int(80)).is_err());
        assert!(compare(pttl, &int(-1), &int(-2)).is_err());
        assert!(compare(pttl, &int(-1), &int(5)).is_err());
        assert!(compare(ttl, &int(-2), &int(-2)).is_ok());
        assert!(compare(ttl, &err("ERR a"), &err("ERR b")).is_ok());
    }

    /// Goal: snapshots report missing keys, different values and TTLs out of tolerance.
    #[test]
    fn snapshots_compare() {
        let fake = FakeRedis::new(1, ManualClock::new(1_000_000)).unwrap();
        fake.cmd(&["SADD", "s", "a", "b"]).unwrap();
        fake.cmd(&["HSET", "h", "f", "v"]).unwrap();
        fake.cmd(&["SET", "k", "v", "PX", "50000"]).unwrap();
        let snapshot = Snapshot::of_fake(&fake);
        assert_eq!(snapshot.keys.len(), 3);
        assert_eq!(snapshot.keys[&b"k".to_vec()].ttl_ms, Some(50_000));
        assert!(snapshot.differences(&snapshot).is_empty());

        let mut real = snapshot.clone();
        real.keys.get_mut(b"k".as_slice()).unwrap().ttl_ms = Some(49_000);
        assert!(snapshot.differences(&real).is_empty());
        real.keys.get_mut(b"k".as_slice()).unwrap().ttl_ms = None;
        real.keys.remove(b"h".as_slice());
        real.keys.insert(
            b"s".to_vec(),
            KeyState {
                data: Data::Set([b"a".to_vec()].into()),
                ttl_ms: None,
            },
        );
        let differences = snapshot.differences(&real);
        assert_eq!(differences.len(), 3, "{differences:#?}");
    }

    /// Goal: error wordings compare without script hashes and line numbers.
    #[test]
    fn error_wordings_ignore_script_positions() {
        let fake = err("ERR user_script:3: boom script: abc, on @user_script:3.");
        let real = err("ERR user_script:12: boom script: def, on @user_script:12.");
        assert_eq!(error_wording_difference(&fake, &real), None);
        assert_eq!(
            error_wording_difference(&err("ERR a"), &err("ERR b")),
            Some(("ERR a".to_owned(), "ERR b".to_owned()))
        );
        assert_eq!(
            error_wording_difference(&err("ERR a"), &ok(Reply::Nil)),
            None
        );
    }

    /// Goal: renderings show every element and escape bytes, so reports are exact.
    #[test]
    fn renderings_are_complete() {
        let reply = Reply::Array((0..20).map(Reply::Int).collect());
        assert!(render(&Ok(reply)).contains("(integer) 19"));
        assert_eq!(render(&Ok(Reply::Bulk(vec![0xff, b'a']))), "\"\\xffa\"");
        assert_eq!(render(&err("ERR x")), "(error) ERR x");
    }
}
