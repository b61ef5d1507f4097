//! Set commands: SADD, SREM, SCARD, SMEMBERS, SISMEMBER, SMISMEMBER, SPOP, SRANDMEMBER,
//! SSCAN. Random picks and free orders come from the fake's choices (the seed, or a real
//! Redis's record being followed); removing the last member deletes the key.

use std::collections::BTreeSet;

use match_server::store::Reply;

use super::keyspace::scan_reply;
use super::{Ctx, arg, bulk, count};
use crate::fake_redis::args::{parse_cursor, parse_i64};
use crate::fake_redis::errors::{CmdError, CmdResult};
use crate::fake_redis::scan;

/// `SADD key member...`: how many members were new.
pub fn sadd(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let members = ctx.core.db.set_or_create(arg(args, 1), ctx.now_ms)?;
    let added = args
        .iter()
        .skip(2)
        .filter(|member| members.insert(member.to_vec()))
        .count();
    Ok(count(added))
}

/// `SREM key member...`: how many members were removed.
pub fn srem(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let key = arg(args, 1);
    let Some(members) = ctx.core.db.set_mut(key, ctx.now_ms)? else {
        return Ok(Reply::Int(0));
    };
    let removed = args
        .iter()
        .skip(2)
        .filter(|member| members.remove(member.as_slice()))
        .count();
    ctx.core.db.remove_if_empty(key);
    Ok(count(removed))
}

/// `SCARD key`: the number of members (0 when missing).
pub fn scard(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    Ok(count(
        ctx.core
            .db
            .set(arg(args, 1), ctx.now_ms)?
            .map_or(0, BTreeSet::len),
    ))
}

/// `SMEMBERS key`: every member, in byte order (Redis promises no order; a followed
/// record gives Redis's).
pub fn smembers(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let core = &mut *ctx.core;
    let members = core.db.set(arg(args, 1), ctx.now_ms)?;
    let own = members
        .into_iter()
        .flatten()
        .map(|member| bulk(member))
        .collect();
    Ok(Reply::Array(core.choices.start(args).order(own, false)))
}

/// `SISMEMBER key member`: 1 or 0.
pub fn sismember(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let members = ctx.core.db.set(arg(args, 1), ctx.now_ms)?;
    let found = members.is_some_and(|members| members.contains(arg(args, 2)));
    Ok(Reply::Int(i64::from(found)))
}

/// `SMISMEMBER key member...`: 1 or 0 for each member.
pub fn smismember(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let members = ctx.core.db.set(arg(args, 1), ctx.now_ms)?;
    let flags = args
        .iter()
        .skip(2)
        .map(|member| {
            Reply::Int(i64::from(
                members.is_some_and(|members| members.contains(member)),
            ))
        })
        .collect();
    Ok(Reply::Array(flags))
}

/// `SPOP key [count]`: without count a member or nil; with count up to that many members
/// (an empty array when the key is missing). The last pop deletes the key.
pub fn spop(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::syntax());
    }
    let wanted = match args.get(2) {
        None => None,
        Some(raw) => Some(
            parse_i64(raw)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(CmdError::not_positive)?,
        ),
    };
    let key = arg(args, 1);
    let core = &mut *ctx.core;
    let found = core.db.set_mut(key, ctx.now_ms)?;
    let mut chooser = core.choices.start(args);
    let Some(members) = found else {
        return Ok(if wanted.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let mut popped = Vec::new();
    while popped.len() < wanted.unwrap_or(1) {
        let Some(member) = chooser.pick(members) else {
            break;
        };
        members.remove(&member);
        popped.push(member);
    }
    drop(chooser);
    core.db.remove_if_empty(key);
    Ok(match wanted {
        None => popped.pop().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
    })
}

/// `SRANDMEMBER key [count]`: like SPOP without removing; a negative count allows repeats.
pub fn srandmember(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::syntax());
    }
    let wanted = match args.get(2) {
        None => None,
        Some(raw) => {
            let n = parse_i64(raw).ok_or_else(CmdError::not_integer)?;
            if n == i64::MIN {
                return Err(CmdError::new(format!(
                    "ERR value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            Some(n)
        }
    };
    let core = &mut *ctx.core;
    let found = core.db.set(arg(args, 1), ctx.now_ms)?;
    let mut chooser = core.choices.start(args);
    let Some(members) = found else {
        return Ok(if wanted.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Nil
        });
    };
    let Some(wanted) = wanted else {
        return Ok(chooser.pick(members).map_or(Reply::Nil, Reply::Bulk));
    };
    let magnitude = usize::try_from(wanted.unsigned_abs()).unwrap_or(usize::MAX);
    if wanted < 0 {
        let picks = (0..magnitude).filter_map(|_| chooser.pick(members));
        return Ok(Reply::Array(picks.map(Reply::Bulk).collect()));
    }
    if magnitude >= members.len() {
        let own = members.iter().map(|member| bulk(member)).collect();
        return Ok(Reply::Array(chooser.order(own, false)));
    }
    let mut remaining = members.clone();
    let mut picked = Vec::new();
    while picked.len() < magnitude {
        let Some(member) = chooser.pick(&remaining) else {
            break;
        };
        remaining.remove(&member);
        picked.push(Reply::Bulk(member));
    }
    Ok(Reply::Array(picked))
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`.
pub fn sscan(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let cursor = parse_cursor(arg(args, 2)).ok_or_else(CmdError::invalid_cursor)?;
    let core = &mut *ctx.core;
    let Some(members) = core.db.set(arg(args, 1), ctx.now_ms)? else {
        return Ok(core.choices.start(args).fixed(scan_reply(0, Vec::new())));
    };
    let options = scan::parse_options(args.get(3..).unwrap_or_default(), false)?;
    let legal = |reply: &Reply| {
        scan::check_page(reply, 1, |element| match element {
            [Reply::Bulk(member)] if members.contains(member) => {
                scan::check_match(&options, member)
            }
            _ => Err("an element the set does not hold".to_owned()),
        })
    };
    let own = |rng: &mut _| {
        let elements = members.iter().map(Vec::as_slice);
        let (next, examined) = scan::page(elements, cursor, options.count, core.scan_seed, rng);
        let page = examined
            .into_iter()
            .filter(|member| scan::matches(&options, member))
            .map(bulk)
            .collect();
        scan_reply(next, page)
    };
    Ok(core.choices.start(args).page(legal, own))
}
