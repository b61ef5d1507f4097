//! Generic key commands: DEL, EXISTS, the EXPIRE family, TTL/PTTL, PERSIST, TYPE, KEYS, SCAN.

use match_server::store::Reply;

use super::{Ctx, arg, bulk, count, now_signed};
use crate::fake_redis::args::{is_option, parse_cursor, parse_i64, text};
use crate::fake_redis::errors::{CmdError, CmdResult};
use crate::fake_redis::glob::glob_match;
use crate::fake_redis::scan;

/// `DEL key...`: how many of the keys existed (each counted once).
pub fn del(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let removed = args
        .iter()
        .skip(1)
        .filter(|key| ctx.core.db.remove(key, ctx.now_ms).is_some())
        .count();
    Ok(count(removed))
}

/// `EXISTS key...`: how many of the keys exist (a key named twice counts twice).
pub fn exists(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let found = args
        .iter()
        .skip(1)
        .filter(|key| ctx.core.db.get(key, ctx.now_ms).is_some())
        .count();
    Ok(count(found))
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn expire(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

/// `PEXPIREAT key unix-milliseconds [NX|XX|GT|LT]`.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// The EXPIRE conditions.
#[derive(Clone, Copy, Debug, Default)]
struct ExpireFlags {
    /// Only when the key has no expiry.
    nx: bool,
    /// Only when the key has an expiry.
    xx: bool,
    /// Only when the new expiry is later.
    gt: bool,
    /// Only when the new expiry is earlier.
    lt: bool,
}

/// Parses the EXPIRE conditions like Redis 7.0's `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(options: &[Vec<u8>]) -> Result<ExpireFlags, CmdError> {
    let mut flags = ExpireFlags::default();
    for option in options {
        if is_option(option, "nx") {
            flags.nx = true;
        } else if is_option(option, "xx") {
            flags.xx = true;
        } else if is_option(option, "gt") {
            flags.gt = true;
        } else if is_option(option, "lt") {
            flags.lt = true;
        } else {
            return Err(CmdError(format!("ERR Unsupported option {}", text(option))));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(CmdError::new(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if flags.gt && flags.lt {
        return Err(CmdError::new(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(flags)
}

/// Redis 7.0's `expireGenericCommand`: the time is relative unless `absolute`; an expiry
/// at or before now deletes the key at once.
fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[Vec<u8>],
    unit_ms: i64,
    absolute: bool,
    name: &str,
) -> CmdResult {
    let flags = parse_expire_flags(args.get(3..).unwrap_or_default())?;
    let amount = parse_i64(arg(args, 2)).ok_or_else(CmdError::not_integer)?;
    let now_ms = now_signed(ctx);
    let base_ms = if absolute { 0 } else { now_ms };
    let when_ms = amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base_ms))
        .ok_or_else(|| CmdError::invalid_expire(name))?;
    let key = arg(args, 1);
    let Some(entry) = ctx.core.db.get_mut(key, ctx.now_ms) else {
        return Ok(Reply::Int(0));
    };
    let current_ms = entry
        .expires_at_ms
        .map(|at| i64::try_from(at).unwrap_or(i64::MAX));
    let refused = (flags.nx && current_ms.is_some())
        || (flags.xx && current_ms.is_none())
        || (flags.gt && current_ms.is_none_or(|current| when_ms <= current))
        || (flags.lt && current_ms.is_some_and(|current| when_ms >= current));
    if refused {
        return Ok(Reply::Int(0));
    }
    match u64::try_from(when_ms) {
        Ok(when) if when_ms > now_ms => entry.expires_at_ms = Some(when),
        _ => {
            ctx.core.db.remove(key, ctx.now_ms);
        }
    }
    Ok(Reply::Int(1))
}

/// `TTL key`: seconds left, rounded; -1 without expiry, -2 when missing.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, false)
}

/// `PTTL key`: milliseconds left; -1 without expiry, -2 when missing.
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    ttl_generic(ctx, args, true)
}

/// Redis's `ttlGenericCommand`, with its `(ttl + 500) / 1000` rounding for TTL.
fn ttl_generic(ctx: &mut Ctx<'_>, args: &[Vec<u8>], in_ms: bool) -> CmdResult {
    let Some(entry) = ctx.core.db.get(arg(args, 1), ctx.now_ms) else {
        return Ok(Reply::Int(-2));
    };
    let Some(expires_at_ms) = entry.expires_at_ms else {
        return Ok(Reply::Int(-1));
    };
    let left_ms = i64::try_from(expires_at_ms.saturating_sub(ctx.now_ms)).unwrap_or(i64::MAX);
    Ok(Reply::Int(if in_ms {
        left_ms
    } else {
        left_ms.saturating_add(500) / 1000
    }))
}

/// `PERSIST key`: 1 when an expiry was removed.
pub fn persist(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let removed = ctx
        .core
        .db
        .get_mut(arg(args, 1), ctx.now_ms)
        .and_then(|entry| entry.expires_at_ms.take())
        .is_some();
    Ok(Reply::Int(i64::from(removed)))
}

/// `TYPE key`: `string`, `set`, `hash` or `none`.
pub fn type_of(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let name = ctx
        .core
        .db
        .get(arg(args, 1), ctx.now_ms)
        .map_or("none", |e| e.value.type_name());
    Ok(Reply::Status(name.to_owned()))
}

/// `KEYS pattern`: every live key matching, in byte order (Redis's when following).
pub fn keys(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let pattern = arg(args, 1);
    let all = pattern == b"*";
    let core = &mut *ctx.core;
    let found = core
        .db
        .live(ctx.now_ms)
        .filter(|(key, _)| all || glob_match(pattern, key))
        .map(|(key, _)| bulk(key))
        .collect();
    Ok(Reply::Array(core.choices.start(args).order(found, false)))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let cursor = parse_cursor(arg(args, 1)).ok_or_else(CmdError::invalid_cursor)?;
    let options = scan::parse_options(args.get(2..).unwrap_or_default(), true)?;
    let core = &mut *ctx.core;
    let now_ms = ctx.now_ms;
    let db = &core.db;
    let type_ok = |key: &[u8]| {
        options.type_name.as_ref().is_none_or(|wanted| {
            let type_name = db.peek(key, now_ms).map(|entry| entry.value.type_name());
            type_name.is_some_and(|name| wanted.eq_ignore_ascii_case(name.as_bytes()))
        })
    };
    let legal = |reply: &Reply| {
        scan::check_page(reply, 1, |element| match element {
            [Reply::Bulk(key)] if db.peek(key, now_ms).is_some() && type_ok(key) => {
                scan::check_match(&options, key)
            }
            _ => Err("a key the fake does not hold (or of another type)".to_owned()),
        })
    };
    let own = |rng: &mut _| {
        let live = db.live(now_ms).map(|(key, _)| key.as_slice());
        let (next, examined) = scan::page(live, cursor, options.count, core.scan_seed, rng);
        let page = examined
            .into_iter()
            .filter(|key| scan::matches(&options, key) && type_ok(key))
            .map(bulk)
            .collect();
        scan_reply(next, page)
    };
    Ok(core.choices.start(args).page(legal, own))
}

/// The two-element reply of the SCAN family: cursor as a bulk string, then the page.
pub fn scan_reply(next: u64, page: Vec<Reply>) -> Reply {
    Reply::Array(vec![bulk(next.to_string().as_bytes()), Reply::Array(page)])
}
