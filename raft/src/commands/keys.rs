//! Generic key commands: DEL, EXISTS, TYPE, RENAME, KEYS, SCAN.

use bytes::Bytes;

use super::args::{is, non_negative};
use super::cursor::{position as scan_position, MAX_COUNT};
use super::{ReadCtx, WriteCtx};
use crate::keyspace::glob_match;
use crate::reply::Reply;

pub fn del(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let removed = argv[1..]
        .iter()
        .filter(|key| ctx.data.keyspace.remove(key, ctx.now_ms).is_some())
        .count();
    Reply::Int(removed as i64)
}

pub fn exists(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let count = argv[1..]
        .iter()
        .filter(|key| ctx.data.keyspace.contains(key, ctx.now_ms))
        .count();
    Reply::Int(count as i64)
}

pub fn type_(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let name = ctx
        .data
        .keyspace
        .get(&argv[1], ctx.now_ms)
        .map_or("none", |entry| entry.value.type_name());
    Reply::status(name)
}

fn rename_impl(ctx: &mut WriteCtx<'_>, argv: &[Bytes], only_if_absent: bool) -> Reply {
    let ks = &mut ctx.data.keyspace;
    let (src, dst) = (&argv[1], &argv[2]);
    if !ks.contains(src, ctx.now_ms) {
        return Reply::error("ERR no such key");
    }
    if src == dst {
        return if only_if_absent {
            Reply::Int(0)
        } else {
            Reply::Ok
        };
    }
    if only_if_absent && ks.contains(dst, ctx.now_ms) {
        return Reply::Int(0);
    }
    let Some(entry) = ks.remove(src, ctx.now_ms) else {
        return Reply::error("ERR no such key");
    };
    ks.insert(dst.clone(), entry.value, entry.expire_at_ms);
    if only_if_absent {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

pub fn rename(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    rename_impl(ctx, argv, false)
}

pub fn renamenx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    rename_impl(ctx, argv, true)
}

pub fn keys(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let pattern = &argv[1];
    let mut found: Vec<&[u8]> = ctx
        .data
        .keyspace
        .live(ctx.now_ms)
        .map(|(key, _)| key)
        .filter(|key| glob_match(pattern, key))
        .collect();
    found.sort();
    Reply::Array(
        found
            .into_iter()
            .map(|key| Reply::Bulk(Bytes::copy_from_slice(key)))
            .collect(),
    )
}

pub fn scan(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&argv[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Reply::error("ERR invalid cursor");
    };
    let mut pattern: Option<&Bytes> = None;
    let mut count = 10usize;
    let mut type_name: Option<String> = None;
    let mut i = 2;
    while i < argv.len() {
        if i + 1 >= argv.len() {
            return Reply::syntax_error();
        }
        let value = &argv[i + 1];
        if is(&argv[i], "MATCH") {
            pattern = Some(value);
        } else if is(&argv[i], "COUNT") {
            match non_negative(value) {
                Ok(0) | Err(_) => return Reply::syntax_error(),
                Ok(n) => count = n.min(MAX_COUNT as u64) as usize,
            }
        } else if is(&argv[i], "TYPE") {
            type_name = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
        } else {
            return Reply::syntax_error();
        }
        i += 2;
    }
    let mut candidates: Vec<(u64, &[u8], &str)> = ctx
        .data
        .keyspace
        .live(ctx.now_ms)
        .map(|(key, entry)| (scan_position(key), key, entry.value.type_name()))
        .filter(|(pos, _, _)| *pos >= cursor)
        .collect();
    candidates.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    // Never split keys sharing a position across two pages.
    let mut end = count.min(candidates.len());
    while end < candidates.len() && end > 0 && candidates[end].0 == candidates[end - 1].0 {
        end += 1;
    }
    let next = candidates.get(end).map_or(0, |c| c.0);
    let page = candidates[..end]
        .iter()
        .filter(|(_, key, _)| pattern.is_none_or(|p| glob_match(p, key)))
        .filter(|(_, _, t)| type_name.as_deref().is_none_or(|want| want == *t))
        .map(|(_, key, _)| Reply::Bulk(Bytes::copy_from_slice(key)))
        .collect();
    Reply::Array(vec![
        Reply::bulk(next.to_string().into_bytes()),
        Reply::Array(page),
    ])
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::commands::testing::Harness;
    use crate::reply::Reply;

    #[test]
    fn del_exists_type_rename() {
        let mut h = Harness::new();
        h.run("SET a 1");
        h.run("SET b 2");
        assert_eq!(h.run("EXISTS a a b c"), Reply::Int(3));
        assert_eq!(h.run("TYPE a"), Reply::status("string"));
        assert_eq!(h.run("TYPE nope"), Reply::status("none"));
        assert_eq!(h.run("RENAME nope x"), Reply::error("ERR no such key"));
        assert_eq!(h.run("RENAMENX a b"), Reply::Int(0));
        h.run("EXPIRE a 50");
        assert_eq!(h.run("RENAME a c"), Reply::Ok);
        assert_eq!(h.run("TTL c"), Reply::Int(50), "RENAME carries the TTL");
        assert_eq!(h.run("DEL a b c d"), Reply::Int(2));
    }

    #[test]
    fn scan_visits_every_key_once() {
        let mut h = Harness::new();
        for i in 0..100 {
            h.run(&format!("SET key:{i} v"));
        }
        h.run("SET other v");
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = h.run(&format!("SCAN {cursor} MATCH key:* COUNT 7"));
            let Reply::Array(parts) = reply else {
                panic!("scan reply")
            };
            let (Reply::Bulk(next), Reply::Array(keys)) = (&parts[0], &parts[1]) else {
                panic!("scan parts")
            };
            for key in keys {
                if let Reply::Bulk(k) = key {
                    seen.push(k.clone());
                }
            }
            cursor = String::from_utf8(next.to_vec()).unwrap_or_default();
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100);
        assert!(!seen.contains(&Bytes::from_static(b"other")));
    }
}
