//! Cursor iteration for SCAN, HSCAN and SSCAN with Redis's guarantees and none of its
//! comforts: an element present for the whole iteration is returned at least once, but a
//! page may be empty, may hold more than COUNT, and an element may come back twice.
//!
//! Elements are visited in the order of a seeded 62-bit hash of their name; the cursor is
//! the hash position to resume from, so it stays valid while elements come and go.
//! The seeded RNG decides the page shapes, so every run of a seed scans alike.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use match_server::store::Reply;

use super::args::{is_option, parse_cursor, parse_i64};
use super::errors::CmdError;
use super::glob::glob_match;

/// Percent of pages that come back empty while elements remain (as Redis's empty buckets).
const EMPTY_PAGE_PERCENT: u32 = 10;
/// Percent of pages that examine up to twice COUNT elements (as Redis's chained buckets).
const LONG_PAGE_PERCENT: u32 = 20;
/// Percent of pages whose cursor steps back so the page's last element comes again.
const REPEAT_PERCENT: u32 = 10;
/// The COUNT Redis uses when none is given.
pub const DEFAULT_COUNT: usize = 10;

/// The options after the cursor (and key) of a SCAN-family command.
#[derive(Debug)]
pub struct ScanOptions {
    /// How many elements to examine; a hint, never a promise.
    pub count: usize,
    /// The MATCH glob, `None` when absent or `*`.
    pub pattern: Option<Vec<u8>>,
    /// The TYPE filter of SCAN.
    pub type_name: Option<Vec<u8>>,
}

/// Parses `COUNT n`, `MATCH p` and (when `allow_type`) `TYPE t` like Redis 7.0.
pub fn parse_options(args: &[Vec<u8>], allow_type: bool) -> Result<ScanOptions, CmdError> {
    let mut options = ScanOptions {
        count: DEFAULT_COUNT,
        pattern: None,
        type_name: None,
    };
    let mut rest = args;
    while let Some((name, after)) = rest.split_first() {
        let Some((value, after_value)) = after.split_first() else {
            return Err(CmdError::syntax());
        };
        if is_option(name, "count") {
            let count = parse_i64(value).ok_or_else(CmdError::not_integer)?;
            if count < 1 {
                return Err(CmdError::syntax());
            }
            options.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if is_option(name, "match") {
            options.pattern = (value.as_slice() != b"*").then(|| value.clone());
        } else if allow_type && is_option(name, "type") {
            options.type_name = Some(value.clone());
        } else {
            return Err(CmdError::syntax());
        }
        rest = after_value;
    }
    Ok(options)
}

/// Where an element sits in the iteration order: a seeded FNV-1a hash cut to 62 bits, never 0
/// (0 is the cursor that starts and ends an iteration).
pub fn position(seed: u64, element: &[u8]) -> u64 {
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &byte in element {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    // A final mix so that similar names spread over the whole range.
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 32;
    (hash >> 2) + 1
}

/// One page: the next cursor (0 when the iteration is over) and the elements examined,
/// before any MATCH or TYPE filter.
pub fn page<'a>(
    elements: impl Iterator<Item = &'a [u8]>,
    cursor: u64,
    count: usize,
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> (u64, Vec<&'a [u8]>) {
    // Draw the shape first, always the same number of draws, so the stream stays aligned.
    let empty_roll = rng.random_range(0..100u32);
    let long_roll = rng.random_range(0..100u32);
    let repeat_roll = rng.random_range(0..100u32);
    let extra = rng.random_range(0..=count.min(1 << 16));

    let mut ahead: Vec<(u64, &[u8])> = elements
        .map(|element| (position(seed, element), element))
        .filter(|(at, _)| *at >= cursor)
        .collect();
    ahead.sort_unstable();
    let Some(&(first_at, _)) = ahead.first() else {
        return (0, Vec::new());
    };
    if empty_roll < EMPTY_PAGE_PERCENT && first_at - cursor >= 2 {
        return (cursor + (first_at - cursor) / 2, Vec::new());
    }
    let examined = if long_roll < LONG_PAGE_PERCENT {
        count.saturating_add(extra)
    } else {
        count
    };
    let mut taken = examined.clamp(1, ahead.len());
    // Never split elements sharing a position: the cursor could not resume between them.
    let last_at = ahead.get(taken - 1).map_or(0, |(at, _)| *at);
    while ahead.get(taken).is_some_and(|(at, _)| *at == last_at) {
        taken += 1;
    }
    let next = ahead.get(taken).map_or(0, |(at, _)| *at);
    let repeats = repeat_roll < REPEAT_PERCENT
        && next != 0
        && ahead.first().is_some_and(|(at, _)| *at != last_at);
    let next = if repeats { last_at } else { next };
    (
        next,
        ahead
            .into_iter()
            .take(taken)
            .map(|(_, element)| element)
            .collect(),
    )
}

/// Checks a SCAN-family reply a real Redis gave, for the fake to follow: a cursor the fake
/// can parse, then elements in groups of `width` (1, or 2 for HSCAN's field and value),
/// each accepted by `element` (which says why not otherwise).
pub fn check_page(
    reply: &Reply,
    width: usize,
    element: impl Fn(&[Reply]) -> Result<(), String>,
) -> Result<(), String> {
    let Reply::Array(parts) = reply else {
        return Err("not a SCAN page".to_owned());
    };
    let [Reply::Bulk(cursor), Reply::Array(elements)] = parts.as_slice() else {
        return Err("not a SCAN page".to_owned());
    };
    if parse_cursor(cursor).is_none() {
        return Err("a cursor that is not a number".to_owned());
    }
    if elements.len() % width != 0 {
        return Err("a field without its value".to_owned());
    }
    elements.chunks(width).try_for_each(element)
}

/// [`matches`] as a check for [`check_page`].
pub fn check_match(options: &ScanOptions, element: &[u8]) -> Result<(), String> {
    if matches(options, element) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" does not match the pattern",
            element.escape_ascii()
        ))
    }
}

/// Whether an element passes the MATCH filter.
pub fn matches(options: &ScanOptions, element: &[u8]) -> bool {
    options
        .pattern
        .as_deref()
        .is_none_or(|pattern| glob_match(pattern, element))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;

    /// Goal: a full iteration returns every element at least once, whatever the page shapes,
    /// and some seeds do produce empty pages and repeats.
    #[test]
    fn full_iteration_covers_everything() {
        let names: Vec<Vec<u8>> = (0..200).map(|i| format!("key:{i}").into_bytes()).collect();
        let mut saw_empty = false;
        let mut saw_repeat = false;
        for seed in 0..20u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut cursor = 0;
            let mut seen = BTreeSet::new();
            let mut returned = 0;
            loop {
                let (next, elements) =
                    page(names.iter().map(Vec::as_slice), cursor, 7, seed, &mut rng);
                saw_empty |= elements.is_empty() && next != 0;
                returned += elements.len();
                seen.extend(elements.into_iter().map(<[u8]>::to_vec));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            saw_repeat |= returned > names.len();
            assert_eq!(seen.len(), names.len(), "seed {seed}");
        }
        assert!(saw_empty && saw_repeat);
    }

    /// Goal: elements present all along are found even when others are deleted mid-scan.
    #[test]
    fn deletions_during_iteration_do_not_hide_survivors() {
        let mut names: Vec<Vec<u8>> = (0..50).map(|i| format!("k{i}").into_bytes()).collect();
        let survivors: BTreeSet<Vec<u8>> = names.iter().step_by(2).cloned().collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut cursor = 0;
        let mut seen = BTreeSet::new();
        loop {
            let (next, elements) = page(names.iter().map(Vec::as_slice), cursor, 3, 9, &mut rng);
            seen.extend(elements.into_iter().map(<[u8]>::to_vec));
            // Delete two doomed elements per page, seen or not.
            for _ in 0..2 {
                if let Some(at) = names.iter().position(|name| !survivors.contains(name)) {
                    names.remove(at);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(survivors.is_subset(&seen));
    }

    /// Goal: option parsing follows Redis 7.0 (COUNT >= 1, pairs only, TYPE only for SCAN).
    #[test]
    fn options_parse_like_redis() {
        let args = |list: &[&str]| {
            list.iter()
                .map(|s| s.as_bytes().to_vec())
                .collect::<Vec<_>>()
        };
        let parsed = parse_options(&args(&["MATCH", "a*", "count", "5"]), true).unwrap();
        assert_eq!(
            (parsed.count, parsed.pattern.as_deref()),
            (5, Some(&b"a*"[..]))
        );
        assert!(
            parse_options(&args(&["match", "*"]), true)
                .unwrap()
                .pattern
                .is_none()
        );
        assert_eq!(
            parse_options(&args(&["count", "0"]), true).unwrap_err(),
            CmdError::syntax()
        );
        assert_eq!(
            parse_options(&args(&["count", "x"]), true).unwrap_err(),
            CmdError::not_integer()
        );
        assert_eq!(
            parse_options(&args(&["match"]), true).unwrap_err(),
            CmdError::syntax()
        );
        assert_eq!(
            parse_options(&args(&["type", "set"]), false).unwrap_err(),
            CmdError::syntax()
        );
    }
}
