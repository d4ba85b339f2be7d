//! SCAN-family cursors. A cursor is a position in a stable hash order of keys
//! (SCAN) or of an aggregate's fields and members (HSCAN, SSCAN, ZSCAN): it
//! is the position of the next item to return, and 0 means "done". Items
//! present for the whole iteration are returned at least once, whatever is
//! added or removed meanwhile, and a cursor stays valid across failovers.

use bytes::Bytes;

use super::args::{int, is};
use crate::keyspace::glob_match;
use crate::reply::Reply;

/// Most items one SCAN call may be asked to examine; a bigger COUNT is capped.
pub(super) const MAX_COUNT: usize = 1 << 20;

/// An item's position in SCAN order: a stable 63-bit hash, never 0.
pub(super) fn position(item: &[u8]) -> u64 {
    // FNV-1a: fixed, not seeded per process, so cursors survive failover.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in item {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 1) | 1
}

/// Parses a cursor as Redis does (an unsigned decimal).
pub(super) fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// One page: the items at or after `cursor`, the `count` first in
/// `(position, item)` order, plus any sharing the last one's position (so a
/// crafted hash collision cannot stall the iteration). Returns the next cursor.
pub(super) fn page<'a, T>(
    items: impl Iterator<Item = (&'a Bytes, T)>,
    cursor: u64,
    count: usize,
) -> (u64, Vec<(&'a Bytes, T)>) {
    let count = count.max(1);
    let order =
        |a: &(u64, &Bytes, T), b: &(u64, &Bytes, T)| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1));
    let mut chosen: Vec<(u64, &'a Bytes, T)> = items
        .map(|(item, extra)| (position(item), item, extra))
        .filter(|(pos, _, _)| *pos >= cursor)
        .collect();
    let mut next = 0;
    if chosen.len() > count {
        chosen.select_nth_unstable_by(count - 1, order);
        let last = chosen[..count].iter().map(|c| c.0).max().unwrap_or(0);
        let (same, later): (Vec<_>, Vec<_>) = chosen
            .split_off(count)
            .into_iter()
            .partition(|c| c.0 == last);
        chosen.extend(same);
        next = later.iter().map(|c| c.0).min().unwrap_or(0);
    }
    chosen.sort_unstable_by(order);
    (
        next,
        chosen
            .into_iter()
            .map(|(_, item, extra)| (item, extra))
            .collect(),
    )
}

/// HSCAN, SSCAN and ZSCAN: `argv` is `[command, key, cursor, options…]` and
/// `items` the aggregate's elements (`Ok(None)` for an absent key). `emit`
/// appends one element's entries to the reply. As in Redis, the cursor is
/// checked first, then the key's type, then `MATCH`/`COUNT`.
pub(super) fn scan_elements<'d, T, I>(
    argv: &[Bytes],
    items: Result<Option<I>, Reply>,
    emit: impl Fn(&'d Bytes, T, &mut Vec<Reply>),
) -> Reply
where
    I: Iterator<Item = (&'d Bytes, T)>,
{
    let cursor = match parse_cursor(&argv[2]) {
        Ok(cursor) => cursor,
        Err(err) => return err,
    };
    let items = match items {
        Ok(Some(items)) => items,
        Ok(None) => return scan_reply(0, Vec::new()),
        Err(err) => return err,
    };
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut i = 3;
    while i < argv.len() {
        let has_value = i + 1 < argv.len();
        if is(&argv[i], "COUNT") && has_value {
            match int(&argv[i + 1]) {
                Ok(n) if n < 1 => return Reply::syntax_error(),
                Ok(n) => count = (n as u64).min(MAX_COUNT as u64) as usize,
                Err(err) => return err,
            }
        } else if is(&argv[i], "MATCH") && has_value {
            pattern = Some(&argv[i + 1])
                .filter(|p| &p[..] != b"*")
                .map(|p| &p[..]);
        } else {
            return Reply::syntax_error();
        }
        i += 2;
    }
    let (next, found) = page(items, cursor, count);
    let mut out = Vec::new();
    for (item, extra) in found {
        if pattern.is_none_or(|p| glob_match(p, item)) {
            emit(item, extra, &mut out);
        }
    }
    scan_reply(next, out)
}

fn scan_reply(next: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::bulk(next.to_string().into_bytes()),
        Reply::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<Bytes> = (0..100).map(|i| Bytes::from(format!("m{i}"))).collect();
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, found) = page(items.iter().map(|m| (m, ())), cursor, 7);
            assert!(found.len() >= 7 || next == 0);
            seen.extend(found.into_iter().map(|(m, _)| m.clone()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        let mut expected = items.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }
}
