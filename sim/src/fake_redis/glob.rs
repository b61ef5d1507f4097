//! Redis glob patterns (`*`, `?`, `[...]`, `[^...]`, ranges, `\` escapes) as KEYS, SCAN,
//! HSCAN and PSUBSCRIBE use them: a faithful port of `stringmatchlen` from Redis 7.0.

/// Whether `text` matches the Redis glob `pattern` (case-sensitive, binary safe).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer_matches = false;
    match_from(pattern, text, &mut skip_longer_matches)
}

/// Everything after the first byte (empty stays empty).
fn tail(bytes: &[u8]) -> &[u8] {
    bytes.get(1..).unwrap_or_default()
}

/// The matcher proper; `skip_longer_matches` is Redis's cut-off that keeps patterns with
/// many stars from backtracking exponentially.
fn match_from(mut pattern: &[u8], mut text: &[u8], skip_longer_matches: &mut bool) -> bool {
    while let (Some(&head), Some(&byte)) = (pattern.first(), text.first()) {
        match head {
            b'*' => {
                while pattern.get(1) == Some(&b'*') {
                    pattern = tail(pattern);
                }
                if pattern.len() == 1 {
                    return true;
                }
                let rest = tail(pattern);
                while !text.is_empty() {
                    if match_from(rest, text, skip_longer_matches) {
                        return true;
                    }
                    if *skip_longer_matches {
                        return false;
                    }
                    text = tail(text);
                }
                *skip_longer_matches = true;
                return false;
            }
            b'?' => text = tail(text),
            b'[' => {
                let (matched, rest) = match_class(tail(pattern), byte);
                if !matched {
                    return false;
                }
                pattern = rest;
                text = tail(text);
            }
            b'\\' => {
                if pattern.len() >= 2 {
                    pattern = tail(pattern);
                }
                if pattern.first() != Some(&byte) {
                    return false;
                }
                text = tail(text);
            }
            literal => {
                if literal != byte {
                    return false;
                }
                text = tail(text);
            }
        }
        pattern = tail(pattern);
        if text.is_empty() {
            while pattern.first() == Some(&b'*') {
                pattern = tail(pattern);
            }
            break;
        }
    }
    pattern.is_empty() && text.is_empty()
}

/// Matches one byte against a class body (the pattern just after `[`). Returns whether it
/// matched and the pattern positioned on the closing `]` (or at the end when unclosed).
fn match_class(mut pattern: &[u8], byte: u8) -> (bool, &[u8]) {
    let negated = pattern.first() == Some(&b'^');
    if negated {
        pattern = tail(pattern);
    }
    let mut matched = false;
    loop {
        match pattern.first() {
            None | Some(b']') => break,
            Some(b'\\') if pattern.len() >= 2 => {
                pattern = tail(pattern);
                matched |= pattern.first() == Some(&byte);
            }
            Some(&start) if pattern.len() >= 3 && pattern.get(1) == Some(&b'-') => {
                let end = pattern.get(2).copied().unwrap_or(start);
                // Redis compares C `char`s, which are signed on the platforms it targets.
                let (low, high) = ordered(signed(start), signed(end));
                matched |= (low..=high).contains(&signed(byte));
                pattern = pattern.get(2..).unwrap_or_default();
            }
            Some(&member) => matched |= member == byte,
        }
        pattern = tail(pattern);
    }
    (matched != negated, pattern)
}

/// A byte as the signed C `char` Redis compares in ranges.
fn signed(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// The pair in ascending order (Redis accepts reversed ranges such as `[z-a]`).
fn ordered(first: i32, second: i32) -> (i32, i32) {
    if first <= second {
        (first, second)
    } else {
        (second, first)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    /// Goal: every glob feature matches exactly as Redis's `stringmatchlen` does.
    #[test]
    fn glob_rules_match_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", false), // Redis quirk: the loop never runs on an empty string
            ("", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[!e]llo", "h!llo", true), // `!` is a plain member in Redis
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("a[\\]]", "a]", true),
            ("a[", "a", false),
            ("a[b", "ab", true), // an unclosed class still matches its members
            ("player:*:notify", "player:42:notify", true),
            ("player:*:notify", "player:42:notif", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**", "x", true),
            ("x*", "x", true),
            ("a?", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "pattern {pattern:?} text {text:?}"
            );
        }
    }

    /// Goal: a pathological pattern finishes quickly thanks to the longer-match cut-off.
    #[test]
    fn many_stars_do_not_backtrack_exponentially() {
        let pattern = "a*a*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(64);
        assert!(!glob_match(pattern.as_bytes(), text.as_bytes()));
    }
}
