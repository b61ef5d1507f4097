//! Conversions between Lua values and RESP2 replies with Redis 7's rules, and the
//! formatting of Lua numbers passed to `redis.call`.
//!
//! Lua -> reply: number -> integer (truncated toward zero), string -> bulk, true -> 1,
//! false/nil -> nil, `{err=s}` -> error, `{ok=s}` -> status, other tables -> array cut at
//! the first nil, anything else -> nil.
//! Reply -> Lua: integer -> number, bulk -> string, nil -> false, status -> `{ok=s}`,
//! error -> `{err=s}`, array -> table.

use match_server::store::Reply;
use mlua::{Lua, Table, Value};

/// How deep nested tables may go before the reply gives up, like Redis's stack check
/// (a table that contains itself would otherwise recurse forever).
pub const MAX_REPLY_DEPTH: usize = 1000;

/// Converts a script's Lua value into a reply.
pub fn lua_to_reply(value: &Value) -> Reply {
    convert_value(value, 0)
}

/// One level of [`lua_to_reply`].
fn convert_value(value: &Value, depth: usize) -> Reply {
    match value {
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(number) => Reply::Int(*number),
        Value::Number(number) => Reply::Int(truncate_like_c(*number)),
        Value::String(text) => Reply::Bulk(text.as_bytes().to_vec()),
        Value::Table(table) => convert_table(table, depth),
        _ => Reply::Nil,
    }
}

/// Redis's `(long long)` cast of a Lua number: truncation toward zero; out of range or
/// NaN gives `i64::MIN`, as x86-64's conversion instruction does (Rust would saturate).
pub fn truncate_like_c(number: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // NaN is in no range, so it lands here too.
    if !(-TWO_POW_63..TWO_POW_63).contains(&number) {
        i64::MIN
    } else {
        number as i64
    }
}

/// A table: an error, a status, or an array cut at its first nil.
fn convert_table(table: &Table, depth: usize) -> Reply {
    if depth >= MAX_REPLY_DEPTH {
        return Reply::Error("ERR reached lua stack limit".to_owned());
    }
    if let Ok(Value::String(text)) = table.raw_get::<Value>("err") {
        return Reply::Error(single_line(&text.as_bytes()));
    }
    if let Ok(Value::String(text)) = table.raw_get::<Value>("ok") {
        return Reply::Status(single_line(&text.as_bytes()));
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(convert_value(&item, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// Status and error texts cannot hold line breaks in RESP; Redis turns them into spaces.
pub fn single_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

/// Converts a command's reply into the Lua value `redis.call` returns.
pub fn reply_to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Nil => Value::Boolean(false),
        // Redis pushes integers as Lua numbers (doubles).
        Reply::Int(number) => Value::Number(*number as f64),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::Status(text) => Value::Table(single_field(lua, "ok", text)?),
        Reply::Error(text) => Value::Table(single_field(lua, "err", text)?),
        Reply::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, reply_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// A table with one string field, as `{ok = ...}` and `{err = ...}`.
pub fn single_field(lua: &Lua, field: &str, text: &str) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(0, 1)?;
    table.raw_set(field, text)?;
    Ok(table)
}

/// Converts `redis.call` arguments to command arguments: strings as they are, numbers as
/// C's `%.17g` prints them; anything else is refused (`None`), as Redis refuses it.
pub fn lua_args_to_argv(values: &[Value]) -> Option<Vec<Vec<u8>>> {
    values
        .iter()
        .map(|value| match value {
            Value::String(text) => Some(text.as_bytes().to_vec()),
            Value::Integer(number) => Some(format_g17(*number as f64).into_bytes()),
            Value::Number(number) => Some(format_g17(*number).into_bytes()),
            _ => None,
        })
        .collect()
}

/// Formats a double exactly as C's `printf("%.17g", value)`.
pub fn format_g17(value: f64) -> String {
    const PRECISION: i32 = 17;
    if value.is_nan() {
        return if value.is_sign_negative() {
            "-nan".to_owned()
        } else {
            "nan".to_owned()
        };
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0".to_owned()
        } else {
            "0".to_owned()
        };
    }
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_zeros(mantissa),
            exponent.unsigned_abs()
        )
    } else {
        let decimals = usize::try_from(PRECISION - 1 - exponent).unwrap_or(0);
        strip_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

/// Drops trailing zeros after a decimal point, and the point itself when nothing follows.
fn strip_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::format_g17;

    /// Goal: numbers reach commands spelled as Redis spells them with `%.17g`.
    #[test]
    fn numbers_format_like_printf_g17() {
        let cases = [
            (1.0, "1"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (100.0, "100"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (-0.0, "-0"),
            (f64::INFINITY, "inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_g17(value), expected, "{value}");
        }
    }
}
