//! Server-wide commands: PUBLISH, PING, DBSIZE, FLUSHALL.

use match_server::store::Reply;

use super::{Ctx, arg, bulk, count};
use crate::fake_redis::args::is_option;
use crate::fake_redis::errors::{CmdError, CmdResult, ok};

/// `PUBLISH channel message`: how many subscriptions received it.
pub fn publish(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let received = ctx.core.pubsub.publish(arg(args, 1), arg(args, 2));
    Ok(Reply::Int(i64::try_from(received).unwrap_or(i64::MAX)))
}

/// `PING [message]`: PONG, or the message.
pub fn ping(_ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    match args.len() {
        1 => Ok(Reply::Status("PONG".to_owned())),
        2 => Ok(bulk(arg(args, 1))),
        _ => Err(CmdError::arity("ping")),
    }
}

/// `DBSIZE`: how many keys are live.
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Vec<u8>]) -> CmdResult {
    Ok(count(ctx.core.db.live(ctx.now_ms).count()))
}

/// `FLUSHALL [ASYNC|SYNC]`: drops every key (subscriptions stay).
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Vec<u8>]) -> CmdResult {
    let valid = match args.get(1..).unwrap_or_default() {
        [] => true,
        [mode] => is_option(mode, "async") || is_option(mode, "sync"),
        _ => false,
    };
    if !valid {
        return Err(CmdError::syntax());
    }
    ctx.core.db.clear();
    Ok(ok())
}
