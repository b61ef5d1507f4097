//! Recording the choices a real Redis makes inside a script, so the fake can follow them.
//!
//! Redis 7.0 picks SPOP and SRANDMEMBER members at random also inside scripts (effects
//! replication lets it), orders SMEMBERS and the like by its encoding, and pages SCANs by
//! hash bucket; none of it is visible in the script's reply. So the conformance suite
//! runs a script on Redis with a *recorder* in front of it: one line of Lua that shadows
//! the global `redis` with a local table whose `call` and `pcall` pass every command
//! through unchanged and, for the commands of [`CHOICE_COMMANDS`] that succeed, also
//! `RPUSH` the command and its reply to a log list outside the case's keys. The suite
//! then reads the log ([`decode_log`]) and makes the fake follow it.
//!
//! Transparent by construction: the recorder sits on the script's first line (line
//! numbers stay), every reply and every error goes back to the script as it came (errors
//! are raised by the real `redis.call` itself, and recorded only on success), and the log
//! key is outside the case's namespace. What differs: the position Redis names in an
//! error raised by `redis.call` (the recorder's line 1 instead of the caller's line) and
//! the script's SHA1 in error texts, which the comparison ignores (errors compare by kind).
//! Commands called from code the script builds with `loadstring` see the global `redis`
//! and are not recorded (the service's scripts build none).

use match_server::store::Reply;

use crate::fake_redis::{CHOICE_COMMANDS, Recorded};

/// Items per `RPUSH` of the log, well inside Lua's `unpack` limit.
const LOG_ITEMS_PER_PUSH: usize = 1_000;

/// The Lua recorder, with `@LOG@` for the log key and `@COMMANDS@` for the recorded
/// commands. Kept on one line when put in front of a script. Encoding of one call:
/// `C`, the argument count, the arguments (numbers as Redis converts them, `%.17g`),
/// then the reply: `N` nil, `B` bulk, `I` integer, `S` status, `E` error, `A` count items.
const RECORDER: &str = "local redis = (function(real) \
local log, recorded = @LOG@, {@COMMANDS@} \
local function encode(value, out) \
local kind = type(value) \
if kind == 'table' and value.err then out[#out + 1] = 'E'; out[#out + 1] = tostring(value.err) \
elseif kind == 'table' and value.ok then out[#out + 1] = 'S'; out[#out + 1] = tostring(value.ok) \
elseif kind == 'table' then out[#out + 1] = 'A'; out[#out + 1] = tostring(#value); \
for i = 1, #value do encode(value[i], out) end \
elseif kind == 'number' then out[#out + 1] = 'I'; out[#out + 1] = string.format('%.17g', value) \
elseif kind == 'string' then out[#out + 1] = 'B'; out[#out + 1] = value \
else out[#out + 1] = 'N' end \
end \
local function record(args, reply) \
local out = {'C', tostring(#args)} \
for i = 1, #args do local arg = args[i]; \
if type(arg) == 'number' then arg = string.format('%.17g', arg) end; out[#out + 1] = arg end \
encode(reply, out) \
for i = 1, #out, @PER_PUSH@ do real.call('RPUSH', log, unpack(out, i, math.min(i + @PER_PUSH@ - 1, #out))) end \
end \
local function wrap(call, returns_errors) return function(...) \
local name = ... \
if type(name) ~= 'string' or not recorded[string.lower(name)] then return call(...) end \
local reply = call(...) \
if not (returns_errors and type(reply) == 'table' and reply.err) then record({...}, reply) end \
return reply \
end end \
return setmetatable({call = wrap(real.call), pcall = wrap(real.pcall, true)}, {__index = real}) \
end)(redis); ";

/// `source` with the recorder in front, logging to the list at `log_key`. The recorder
/// goes on the first line (after a `#!` line, if any) so every line keeps its number.
pub fn recording_source(source: &str, log_key: &[u8]) -> String {
    let commands: Vec<String> = CHOICE_COMMANDS
        .iter()
        .map(|name| format!("['{name}'] = true"))
        .collect();
    let recorder = RECORDER
        .replace("@LOG@", &lua_string(log_key))
        .replace("@COMMANDS@", &commands.join(", "))
        .replace("@PER_PUSH@", &LOG_ITEMS_PER_PUSH.to_string());
    match source.strip_prefix("#!") {
        Some(_) => match source.split_once('\n') {
            Some((shebang, rest)) => format!("{shebang}\n{recorder}{rest}"),
            None => source.to_owned(),
        },
        None => format!("{recorder}{source}"),
    }
}

/// Bytes as a Lua string literal (every byte as a decimal escape, so any key fits).
fn lua_string(bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().map(|byte| format!("\\{byte}")).collect();
    format!("\"{escaped}\"")
}

/// The calls a recorder logged, in call order, from the log list's items.
pub fn decode_log(items: &[Vec<u8>]) -> Result<Vec<Recorded>, String> {
    let mut rest = items.iter();
    let mut calls = Vec::new();
    while let Some(tag) = rest.next() {
        if tag.as_slice() != b"C" {
            return Err(format!("expected a call, found {:?}", tag.escape_ascii()));
        }
        let argc = number(rest.next())?;
        let argv = (0..argc)
            .map(|_| rest.next().cloned().ok_or("the arguments end early"))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = decode_reply(&mut rest)?;
        calls.push(Recorded { argv, reply });
    }
    Ok(calls)
}

/// One encoded reply from the front of `rest`.
fn decode_reply<'a>(rest: &mut impl Iterator<Item = &'a Vec<u8>>) -> Result<Reply, String> {
    let tag = rest.next().ok_or("a reply is missing")?;
    let mut text = || rest.next().cloned().ok_or("a reply ends early");
    Ok(match tag.as_slice() {
        b"N" => Reply::Nil,
        b"B" => Reply::Bulk(text()?),
        b"S" => Reply::Status(String::from_utf8_lossy(&text()?).into_owned()),
        b"E" => Reply::Error(String::from_utf8_lossy(&text()?).into_owned()),
        b"I" => {
            let digits = text()?;
            let value = std::str::from_utf8(&digits)
                .ok()
                .and_then(|digits| digits.parse::<i64>().ok())
                .ok_or_else(|| format!("not an integer: {:?}", digits.escape_ascii()))?;
            Reply::Int(value)
        }
        b"A" => {
            let count = number(rest.next())?;
            let mut items = Vec::with_capacity(count.min(LOG_ITEMS_PER_PUSH));
            for _ in 0..count {
                items.push(decode_reply(rest)?);
            }
            Reply::Array(items)
        }
        other => return Err(format!("unknown reply tag {:?}", other.escape_ascii())),
    })
}

/// A count from the log.
fn number(item: Option<&Vec<u8>>) -> Result<usize, String> {
    let item = item.ok_or("a count is missing")?;
    std::str::from_utf8(item)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("not a count: {:?}", item.escape_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items from texts.
    fn items(texts: &[&str]) -> Vec<Vec<u8>> {
        texts.iter().map(|text| text.as_bytes().to_vec()).collect()
    }

    /// Goal: a log decodes into the calls and replies, nested arrays included, and a
    /// damaged log is an error rather than a silently shorter record.
    #[test]
    fn logs_decode_into_calls() {
        let log = items(&[
            "C", "3", "SPOP", "q", "2", "A", "2", "B", "p1", "B", "p2", //
            "C", "2", "SPOP", "q", "N", //
            "C", "3", "HSCAN", "h", "0", "A", "2", "B", "7", "A", "2", "B", "f", "B", "v",
        ]);
        let calls = decode_log(&log).unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].argv, items(&["SPOP", "q", "2"]));
        assert_eq!(
            calls[0].reply,
            Reply::Array(vec![Reply::bulk("p1"), Reply::bulk("p2")])
        );
        assert_eq!(calls[1].reply, Reply::Nil);
        assert_eq!(
            calls[2].reply,
            Reply::Array(vec![
                Reply::bulk("7"),
                Reply::Array(vec![Reply::bulk("f"), Reply::bulk("v")])
            ])
        );
        assert!(decode_log(&items(&["C", "3", "SPOP", "q"])).is_err());
        assert!(decode_log(&items(&["C", "1", "SPOP", "A", "2", "B", "x"])).is_err());
        assert!(decode_log(&items(&["X"])).is_err());
        assert!(decode_log(&items(&["C", "1", "SPOP", "Q"])).is_err());
        assert_eq!(decode_log(&[]).unwrap(), Vec::new());
    }

    /// Goal: the recorder goes on the script's first line, so every line of the script
    /// keeps its number, and names the log key and every choice command.
    #[test]
    fn the_recorder_keeps_line_numbers() {
        let source = "-- first\nlocal x = 1\nreturn x";
        let recorded = recording_source(source, b"{k}:log");
        assert_eq!(recorded.lines().count(), source.lines().count());
        assert!(recorded.ends_with(source));
        assert!(recorded.contains(&lua_string(b"{k}:log")));
        for name in CHOICE_COMMANDS {
            assert!(recorded.contains(&format!("['{name}']")), "{name}");
        }
        let shebang = "#!lua flags=no-writes\nreturn 1";
        let recorded = recording_source(shebang, b"log");
        assert!(recorded.starts_with("#!lua flags=no-writes\nlocal redis"));
        assert_eq!(recorded.lines().count(), 2);
    }
}
