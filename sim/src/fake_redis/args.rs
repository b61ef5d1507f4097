//! Argument parsing with Redis's exact rules (`string2ll`, `strtoul` cursors, options).

/// Parses a signed 64-bit integer exactly as Redis's `string2ll`: no sign `+`, no spaces,
/// no leading zeros, at most 20 characters; `-9223372036854775808` is accepted.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a SCAN cursor like Redis's `strtoul` call: decimal digits with an optional sign,
/// no leading space, no trailing garbage, no overflow. A `-n` wraps as in C, and the
/// empty string is the cursor 0 (`strtoul` converts nothing and stops at the end, which
/// Redis's `eptr[0] != '\0'` check accepts; a lone sign stops before the end).
pub fn parse_cursor(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// Whether an argument equals an option name, ignoring ASCII case.
pub fn is_option(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Lossy text of an argument, for error messages and names.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: integer parsing accepts and rejects exactly what Redis's `string2ll` does.
    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "007",
            "+5",
            "-0",
            " 5",
            "5 ",
            "1.5",
            "9223372036854775808",
            "x",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    /// Goal: cursors parse like `strtoul`, including the sign quirk.
    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b" 1"), None);
        // Found by the conformance suite: Redis 7.0 takes `SCAN ""` as `SCAN 0`.
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"+"), None);
        assert_eq!(parse_cursor(b"-0"), Some(0));
    }
}
