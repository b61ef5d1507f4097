//! Hash commands: HSET, HGET, HMGET, HGETALL, HKEYS, HVALS, HDEL, HEXISTS, HLEN, HINCRBY,
//! HSCAN. Removing the last field deletes the key.

use std::collections::BTreeMap;

use match_server::store::Reply;

use super::keyspace::scan_reply;
use super::{Ctx, arg, bulk, count};
use crate::fake_redis::args::{parse_cursor, parse_i64};
use crate::fake_redis::errors::{CmdError, CmdResult};
use crate::fake_redis::scan;

/// `HSET key field value [field value ...]`: how many fields were new.
pub fn hset(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    if args.len() % 2 != 0 {
        return Err(CmdError::arity("hset"));
    }
    let fields = ctx.core.db.hash_or_create(arg(args, 1), ctx.now_ms)?;
    let mut added = 0;
    for pair in args.get(2..).unwrap_or_default().chunks_exact(2) {
        if let [field, value] = pair {
            added += usize::from(fields.insert(field.clone(), value.clone()).is_none());
        }
    }
    Ok(count(added))
}

/// `HGET key field`: the value, or nil.
pub fn hget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let fields = ctx.core.db.hash(arg(args, 1), ctx.now_ms)?;
    Ok(fields
        .and_then(|fields| fields.get(arg(args, 2)))
        .map_or(Reply::Nil, |v| bulk(v)))
}

/// `HMGET key field...`: each value, or nil.
pub fn hmget(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let fields = ctx.core.db.hash(arg(args, 1), ctx.now_ms)?;
    let values = args
        .iter()
        .skip(2)
        .map(|field| {
            fields
                .and_then(|f| f.get(field))
                .map_or(Reply::Nil, |v| bulk(v))
        })
        .collect();
    Ok(Reply::Array(values))
}

/// `HGETALL key`: field, value, field, value, ... in field order (a followed record
/// gives Redis's order).
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let core = &mut *ctx.core;
    let fields = core.db.hash(arg(args, 1), ctx.now_ms)?;
    let flat = fields
        .into_iter()
        .flatten()
        .flat_map(|(f, v)| [bulk(f), bulk(v)])
        .collect();
    Ok(Reply::Array(core.choices.start(args).order(flat, true)))
}

/// `HKEYS key`: every field (in field order, or Redis's when following).
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let core = &mut *ctx.core;
    let fields = core.db.hash(arg(args, 1), ctx.now_ms)?;
    let own = fields
        .into_iter()
        .flat_map(BTreeMap::keys)
        .map(|f| bulk(f))
        .collect();
    Ok(Reply::Array(core.choices.start(args).order(own, false)))
}

/// `HVALS key`: every value (in field order, or Redis's when following).
pub fn hvals(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let core = &mut *ctx.core;
    let fields = core.db.hash(arg(args, 1), ctx.now_ms)?;
    let own = fields
        .into_iter()
        .flat_map(BTreeMap::values)
        .map(|v| bulk(v))
        .collect();
    Ok(Reply::Array(core.choices.start(args).order(own, false)))
}

/// `HDEL key field...`: how many fields were removed.
pub fn hdel(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let key = arg(args, 1);
    let Some(fields) = ctx.core.db.hash_mut(key, ctx.now_ms)? else {
        return Ok(Reply::Int(0));
    };
    let removed = args
        .iter()
        .skip(2)
        .filter(|field| fields.remove(field.as_slice()).is_some());
    let removed = removed.count();
    ctx.core.db.remove_if_empty(key);
    Ok(count(removed))
}

/// `HEXISTS key field`: 1 or 0.
pub fn hexists(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let fields = ctx.core.db.hash(arg(args, 1), ctx.now_ms)?;
    Ok(Reply::Int(i64::from(
        fields.is_some_and(|fields| fields.contains_key(arg(args, 2))),
    )))
}

/// `HLEN key`: the number of fields (0 when missing).
pub fn hlen(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    Ok(count(
        ctx.core
            .db
            .hash(arg(args, 1), ctx.now_ms)?
            .map_or(0, BTreeMap::len),
    ))
}

/// `HINCRBY key field increment`: the new value.
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let delta = parse_i64(arg(args, 3)).ok_or_else(CmdError::not_integer)?;
    let key = arg(args, 1);
    let current = match ctx
        .core
        .db
        .hash(key, ctx.now_ms)?
        .and_then(|f| f.get(arg(args, 2)))
    {
        Some(value) => {
            parse_i64(value).ok_or_else(|| CmdError::new("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| CmdError::new("ERR increment or decrement would overflow"))?;
    let fields = ctx.core.db.hash_or_create(key, ctx.now_ms)?;
    fields.insert(arg(args, 2).to_vec(), next.to_string().into_bytes());
    Ok(Reply::Int(next))
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: field, value pairs; MATCH filters
/// on the field.
pub fn hscan(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let cursor = parse_cursor(arg(args, 2)).ok_or_else(CmdError::invalid_cursor)?;
    let core = &mut *ctx.core;
    let Some(fields) = core.db.hash(arg(args, 1), ctx.now_ms)? else {
        return Ok(core.choices.start(args).fixed(scan_reply(0, Vec::new())));
    };
    let options = scan::parse_options(args.get(3..).unwrap_or_default(), false)?;
    let legal = |reply: &Reply| {
        scan::check_page(reply, 2, |pair| match pair {
            [Reply::Bulk(field), Reply::Bulk(value)] if fields.get(field) == Some(value) => {
                scan::check_match(&options, field)
            }
            _ => Err("a field and value the hash does not hold".to_owned()),
        })
    };
    let own = |rng: &mut _| {
        let names = fields.keys().map(Vec::as_slice);
        let (next, examined) = scan::page(names, cursor, options.count, core.scan_seed, rng);
        let mut page = Vec::new();
        for field in examined {
            if let Some(value) = fields.get(field).filter(|_| scan::matches(&options, field)) {
                page.push(bulk(field));
                page.push(bulk(value));
            }
        }
        scan_reply(next, page)
    };
    Ok(core.choices.start(args).page(legal, own))
}
