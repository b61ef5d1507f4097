//! String commands: SET (NX, XX, GET, EX, PX, EXAT, PXAT, KEEPTTL), GET, MGET and the
//! INCR family.

use match_server::store::Reply;

use super::{Ctx, arg, bulk, now_signed};
use crate::fake_redis::args::{is_option, parse_i64};
use crate::fake_redis::data::{Entry, Value};
use crate::fake_redis::errors::{CmdError, CmdResult, ok};

/// The condition of a SET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    /// Always set.
    Always,
    /// Only when the key does not exist (NX).
    IfMissing,
    /// Only when the key exists (XX).
    IfPresent,
}

/// The expiry option of a SET, before it is turned into an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpiryOption {
    /// No option: the key loses any expiry.
    Clear,
    /// KEEPTTL.
    Keep,
    /// EX seconds.
    Seconds,
    /// PX milliseconds.
    Millis,
    /// EXAT unix seconds.
    AtSeconds,
    /// PXAT unix milliseconds.
    AtMillis,
}

/// Parsed SET options.
#[derive(Debug)]
struct SetOptions<'a> {
    /// NX / XX.
    condition: Condition,
    /// GET: reply with the old value.
    get: bool,
    /// Which expiry option was given.
    expiry: ExpiryOption,
    /// The argument of EX/PX/EXAT/PXAT.
    expiry_arg: &'a [u8],
}

/// Parses SET options like Redis 7.0's `parseExtendedStringArgumentsOrReply`: NX/XX
/// exclude each other, expiry kinds exclude each other and KEEPTTL (the same kind twice is
/// allowed; the last one wins).
fn parse_set_options(options: &[Vec<u8>]) -> Result<SetOptions<'_>, CmdError> {
    let mut parsed = SetOptions {
        condition: Condition::Always,
        get: false,
        expiry: ExpiryOption::Clear,
        expiry_arg: &[],
    };
    let mut rest = options;
    while let Some((option, after)) = rest.split_first() {
        rest = after;
        let timed = [("ex", ExpiryOption::Seconds), ("px", ExpiryOption::Millis)]
            .into_iter()
            .chain([
                ("exat", ExpiryOption::AtSeconds),
                ("pxat", ExpiryOption::AtMillis),
            ])
            .find(|(name, _)| is_option(option, name));
        if is_option(option, "nx") && parsed.condition != Condition::IfPresent {
            parsed.condition = Condition::IfMissing;
        } else if is_option(option, "xx") && parsed.condition != Condition::IfMissing {
            parsed.condition = Condition::IfPresent;
        } else if is_option(option, "get") {
            parsed.get = true;
        } else if is_option(option, "keepttl") && parsed.expiry == ExpiryOption::Clear {
            parsed.expiry = ExpiryOption::Keep;
        } else {
            let compatible = |kind| parsed.expiry == ExpiryOption::Clear || parsed.expiry == kind;
            match (timed, rest.split_first()) {
                (Some((_, kind)), Some((value, after_value))) if compatible(kind) => {
                    parsed.expiry = kind;
                    parsed.expiry_arg = value;
                    rest = after_value;
                }
                _ => return Err(CmdError::syntax()),
            }
        }
    }
    Ok(parsed)
}

/// The absolute expiry a SET option asks for, checked like `getExpireMillisecondsOrReply`.
fn expiry_instant(ctx: &Ctx<'_>, options: &SetOptions<'_>) -> Result<Option<i64>, CmdError> {
    let (unit_ms, relative) = match options.expiry {
        ExpiryOption::Clear | ExpiryOption::Keep => return Ok(None),
        ExpiryOption::Seconds => (1000, true),
        ExpiryOption::Millis => (1, true),
        ExpiryOption::AtSeconds => (1000, false),
        ExpiryOption::AtMillis => (1, false),
    };
    let amount = parse_i64(options.expiry_arg).ok_or_else(CmdError::not_integer)?;
    let base_ms = if relative { now_signed(ctx) } else { 0 };
    amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base_ms))
        .filter(|_| amount > 0)
        .filter(|when_ms| *when_ms > 0)
        .map(Some)
        .ok_or_else(|| CmdError::invalid_expire("set"))
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`: OK, or nil when the
/// condition fails; with GET, the old value either way.
pub fn set(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let options = parse_set_options(args.get(3..).unwrap_or_default())?;
    let when_ms = expiry_instant(ctx, &options)?;
    let key = arg(args, 1);
    let old = if options.get {
        ctx.core.db.string(key, ctx.now_ms)?.cloned()
    } else {
        None
    };
    let existing = ctx.core.db.get(key, ctx.now_ms);
    let found = existing.is_some();
    let kept_ms = existing.and_then(|entry| entry.expires_at_ms);
    let refused = match options.condition {
        Condition::Always => false,
        Condition::IfMissing => found,
        Condition::IfPresent => !found,
    };
    if !refused {
        let expires_at_ms = match (options.expiry, when_ms) {
            (ExpiryOption::Keep, _) => kept_ms,
            (_, Some(when_ms)) => Some(u64::try_from(when_ms).unwrap_or(0)),
            (_, None) => None,
        };
        let value = Value::String(arg(args, 2).to_vec());
        ctx.core.db.insert(
            key.to_vec(),
            Entry {
                value,
                expires_at_ms,
            },
        );
    }
    Ok(match (options.get, refused) {
        (true, _) => old.map_or(Reply::Nil, Reply::Bulk),
        (false, true) => Reply::Nil,
        (false, false) => ok(),
    })
}

/// `GET key`: the string, or nil.
pub fn get(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    Ok(ctx
        .core
        .db
        .string(arg(args, 1), ctx.now_ms)?
        .map_or(Reply::Nil, |value| bulk(value)))
}

/// `MGET key...`: each string, nil for missing keys and keys of other types.
pub fn mget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let values = args
        .iter()
        .skip(1)
        .map(|key| match ctx.core.db.string(key, ctx.now_ms) {
            Ok(Some(value)) => bulk(value),
            _ => Reply::Nil,
        })
        .collect();
    Ok(Reply::Array(values))
}

/// `INCR key`.
pub fn incr(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    incr_by(ctx, arg(args, 1), 1)
}

/// `DECR key`.
pub fn decr(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    incr_by(ctx, arg(args, 1), -1)
}

/// `INCRBY key increment`.
pub fn incrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let delta = parse_i64(arg(args, 2)).ok_or_else(CmdError::not_integer)?;
    incr_by(ctx, arg(args, 1), delta)
}

/// `DECRBY key decrement`.
pub fn decrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let delta = parse_i64(arg(args, 2)).ok_or_else(CmdError::not_integer)?;
    let delta = delta
        .checked_neg()
        .ok_or_else(|| CmdError::new("ERR decrement would overflow"))?;
    incr_by(ctx, arg(args, 1), delta)
}

/// Adds `delta` to the integer stored at `key` (0 when missing), keeping its expiry.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> CmdResult {
    let current = match ctx.core.db.string(key, ctx.now_ms)? {
        Some(value) => parse_i64(value).ok_or_else(CmdError::not_integer)?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| CmdError::new("ERR increment or decrement would overflow"))?;
    let expires_at_ms = ctx
        .core
        .db
        .get(key, ctx.now_ms)
        .and_then(|entry| entry.expires_at_ms);
    let value = Value::String(next.to_string().into_bytes());
    ctx.core.db.insert(
        key.to_vec(),
        Entry {
            value,
            expires_at_ms,
        },
    );
    Ok(Reply::Int(next))
}
