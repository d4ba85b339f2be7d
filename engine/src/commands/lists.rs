//! List commands: LPUSH/RPUSH and their X forms, LPOP/RPOP with a count,
//! LRANGE, LINDEX, LLEN, LTRIM, LREM, LSET, LINSERT.

use bytes::Bytes;

use super::args::{int, is, positive};
use super::{clamp_range, read_as, respond, write_as, ReadCtx, WriteCtx};
use crate::keyspace::List;
use crate::reply::Reply;

#[derive(Clone, Copy, PartialEq)]
enum End {
    Head,
    Tail,
}

fn push(ctx: &mut WriteCtx<'_>, argv: &[Bytes], end: End, only_if_exists: bool) -> Reply {
    respond(|| {
        let len = write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            !only_if_exists,
            |list| {
                for element in &argv[2..] {
                    match end {
                        End::Head => list.push_front(element.clone()),
                        End::Tail => list.push_back(element.clone()),
                    }
                }
                list.len()
            },
        )?;
        Ok(Reply::Int(len.unwrap_or(0) as i64))
    })
}

pub fn lpush(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    push(ctx, argv, End::Head, false)
}

pub fn rpush(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    push(ctx, argv, End::Tail, false)
}

pub fn lpushx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    push(ctx, argv, End::Head, true)
}

pub fn rpushx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    push(ctx, argv, End::Tail, true)
}

/// LPOP/RPOP `key [count]`: one bulk without a count, an array with one.
fn pop(ctx: &mut WriteCtx<'_>, argv: &[Bytes], end: End, name: &str) -> Reply {
    respond(|| {
        if argv.len() > 3 {
            return Err(Reply::wrong_arity(name));
        }
        let count = argv.get(2).map(|arg| positive(arg)).transpose()?;
        let popped = write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |list| {
                // Never more than the list holds, whatever the count claims.
                let n = count.unwrap_or(1).min(list.len() as u64) as usize;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let element = match end {
                        End::Head => list.pop_front(),
                        End::Tail => list.pop_back(),
                    };
                    out.extend(element);
                }
                out
            },
        )?;
        Ok(match (popped, count) {
            (None, None) => Reply::Nil,
            (None, Some(_)) => Reply::NilArray,
            (Some(mut one), None) => Reply::bulk_or_nil(one.pop()),
            (Some(many), Some(_)) => Reply::Array(many.into_iter().map(Reply::Bulk).collect()),
        })
    })
}

pub fn lpop(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    pop(ctx, argv, End::Head, "lpop")
}

pub fn rpop(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    pop(ctx, argv, End::Tail, "rpop")
}

pub fn lrange(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let start = int(&argv[2])?;
        let stop = int(&argv[3])?;
        let Some(list) = read_as::<List>(&ctx.data.keyspace, &argv[1], ctx.now_ms)? else {
            return Ok(Reply::empty_array());
        };
        let Some((start, stop)) = clamp_range(start, stop, list.len()) else {
            return Ok(Reply::empty_array());
        };
        Ok(Reply::Array(
            list.range(start..=stop).cloned().map(Reply::Bulk).collect(),
        ))
    })
}

/// A list index (negative counts from the tail) as a position, if in range.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let index = if index < 0 { len + index } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

pub fn lindex(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let Some(list) = read_as::<List>(&ctx.data.keyspace, &argv[1], ctx.now_ms)? else {
            return Ok(Reply::Nil);
        };
        let index = int(&argv[2])?;
        Ok(Reply::bulk_or_nil(
            position(index, list.len()).and_then(|i| list.get(i).cloned()),
        ))
    })
}

pub fn llen(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let list = read_as::<List>(&ctx.data.keyspace, &argv[1], ctx.now_ms)?;
        Ok(Reply::Int(list.map_or(0, |l| l.len() as i64)))
    })
}

pub fn ltrim(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let start = int(&argv[2])?;
        let stop = int(&argv[3])?;
        write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |list| match clamp_range(start, stop, list.len()) {
                None => list.clear(),
                Some((start, stop)) => {
                    list.truncate(stop + 1);
                    list.drain(..start);
                }
            },
        )?;
        Ok(Reply::Ok)
    })
}

pub fn lrem(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let count = int(&argv[2])?;
        let element = &argv[3];
        let removed = write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |list| {
                let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
                let matches: Vec<usize> = list
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| *e == element)
                    .map(|(i, _)| i)
                    .collect();
                // Which matches go: the first `limit` from the head (count > 0),
                // from the tail (count < 0), or all of them (count = 0).
                let doomed: &[usize] = if count == 0 || limit >= matches.len() {
                    &matches
                } else if count > 0 {
                    &matches[..limit]
                } else {
                    &matches[matches.len() - limit..]
                };
                let mut next = doomed.iter().peekable();
                let mut index = 0;
                list.retain(|_| {
                    let remove = next.next_if_eq(&&index).is_some();
                    index += 1;
                    !remove
                });
                doomed.len()
            },
        )?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn lset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let outcome = write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |list| {
                let index = int(&argv[2])?;
                let slot = position(index, list.len())
                    .and_then(|i| list.get_mut(i))
                    .ok_or_else(|| Reply::error("ERR index out of range"))?;
                *slot = argv[3].clone();
                Ok(Reply::Ok)
            },
        )?;
        outcome.unwrap_or_else(|| Err(Reply::error("ERR no such key")))
    })
}

pub fn linsert(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let after = if is(&argv[2], "AFTER") {
            true
        } else if is(&argv[2], "BEFORE") {
            false
        } else {
            return Err(Reply::syntax_error());
        };
        let (pivot, element) = (&argv[3], &argv[4]);
        let len = write_as::<List, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |list| match list.iter().position(|e| e == pivot) {
                Some(i) => {
                    list.insert(i + usize::from(after), element.clone());
                    list.len() as i64
                }
                None => -1,
            },
        )?;
        Ok(Reply::Int(len.unwrap_or(0)))
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::reply::Reply;
    use crate::testing::{bulk, bulks, Harness};

    fn wrongtype() -> Reply {
        Reply::wrong_type()
    }

    #[test]
    fn push_and_range() {
        let mut h = Harness::new();
        assert_eq!(h.run("LPUSH l a b c"), Reply::Int(3));
        assert_eq!(h.run("RPUSH l d e"), Reply::Int(5));
        assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["c", "b", "a", "d", "e"]));
        assert_eq!(h.run("LRANGE l 1 2"), bulks(&["b", "a"]));
        assert_eq!(h.run("LRANGE l -2 -1"), bulks(&["d", "e"]));
        assert_eq!(
            h.run("LRANGE l -100 100"),
            bulks(&["c", "b", "a", "d", "e"])
        );
        assert_eq!(h.run("LRANGE l 3 1"), bulks(&[]));
        assert_eq!(h.run("LRANGE l 5 10"), bulks(&[]));
        assert_eq!(h.run("LRANGE l 0 -6"), bulks(&[]));
        assert_eq!(h.run("LRANGE nope 0 -1"), bulks(&[]));
        assert_eq!(h.run("LRANGE l x 1"), Reply::not_integer());
        assert_eq!(h.run("LLEN l"), Reply::Int(5));
        assert_eq!(h.run("LLEN nope"), Reply::Int(0));
        assert_eq!(h.run("TYPE l"), Reply::status("list"));
        assert_eq!(h.run("LPUSH l"), Reply::wrong_arity("lpush"));
    }

    #[test]
    fn pushx_only_touches_existing_lists() {
        let mut h = Harness::new();
        assert_eq!(h.run("LPUSHX l a"), Reply::Int(0));
        assert_eq!(h.run("RPUSHX l a"), Reply::Int(0));
        assert_eq!(h.run("EXISTS l"), Reply::Int(0));
        h.run("RPUSH l x");
        assert_eq!(h.run("LPUSHX l a b"), Reply::Int(3));
        assert_eq!(h.run("RPUSHX l z"), Reply::Int(4));
        assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["b", "a", "x", "z"]));
    }

    #[test]
    fn pops_with_and_without_count() {
        let mut h = Harness::new();
        h.run("RPUSH l a b c d e");
        assert_eq!(h.run("LPOP l"), bulk("a"));
        assert_eq!(h.run("RPOP l"), bulk("e"));
        assert_eq!(h.run("LPOP l 2"), bulks(&["b", "c"]));
        assert_eq!(h.run("LPOP l 0"), bulks(&[]));
        assert_eq!(h.run("RPUSH l x y"), Reply::Int(3));
        assert_eq!(h.run("RPOP l 2"), bulks(&["y", "x"]));
        assert_eq!(h.run("RPOP l 100"), bulks(&["d"]));
        assert_eq!(
            h.run("EXISTS l"),
            Reply::Int(0),
            "an emptied list is deleted"
        );
        assert_eq!(h.run("LPOP l"), Reply::Nil);
        assert_eq!(h.run("LPOP l 3"), Reply::NilArray);
        assert_eq!(h.run("LPOP l 0"), Reply::NilArray);
        assert_eq!(
            h.run("LPOP l -1"),
            Reply::error("ERR value is out of range, must be positive")
        );
        assert_eq!(h.run("LPOP l x"), Reply::not_integer());
        assert_eq!(h.run("LPOP l 1 2"), Reply::wrong_arity("lpop"));
        assert_eq!(h.run("RPOP l 1 2"), Reply::wrong_arity("rpop"));
        // A huge count allocates nothing up front.
        h.run("RPUSH big a");
        assert_eq!(h.run("LPOP big 9223372036854775807"), bulks(&["a"]));
    }

    #[test]
    fn index_set_and_insert() {
        let mut h = Harness::new();
        h.run("RPUSH l a b c");
        assert_eq!(h.run("LINDEX l 0"), bulk("a"));
        assert_eq!(h.run("LINDEX l -1"), bulk("c"));
        assert_eq!(h.run("LINDEX l 3"), Reply::Nil);
        assert_eq!(h.run("LINDEX l -4"), Reply::Nil);
        assert_eq!(h.run("LINDEX l x"), Reply::not_integer());
        assert_eq!(
            h.run("LINDEX nope x"),
            Reply::Nil,
            "the key is looked up first"
        );
        assert_eq!(h.run("LSET l 1 B"), Reply::Ok);
        assert_eq!(h.run("LSET l -1 C"), Reply::Ok);
        assert_eq!(h.run("LSET l 3 x"), Reply::error("ERR index out of range"));
        assert_eq!(h.run("LSET l x x"), Reply::not_integer());
        assert_eq!(h.run("LSET nope 0 x"), Reply::error("ERR no such key"));
        assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["a", "B", "C"]));
        assert_eq!(h.run("LINSERT l BEFORE B x"), Reply::Int(4));
        assert_eq!(h.run("LINSERT l after C y"), Reply::Int(5));
        assert_eq!(h.run("LINSERT l AFTER zz y"), Reply::Int(-1));
        assert_eq!(h.run("LINSERT nope AFTER a y"), Reply::Int(0));
        assert_eq!(h.run("LINSERT l MIDDLE a y"), Reply::syntax_error());
        assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["a", "x", "B", "C", "y"]));
    }

    #[test]
    fn trim_and_remove() {
        let mut h = Harness::new();
        h.run("RPUSH l a b c d e");
        assert_eq!(h.run("LTRIM l 1 -2"), Reply::Ok);
        assert_eq!(h.run("LRANGE l 0 -1"), bulks(&["b", "c", "d"]));
        assert_eq!(h.run("LTRIM l 0 100"), Reply::Ok);
        assert_eq!(h.run("LLEN l"), Reply::Int(3));
        assert_eq!(h.run("LTRIM nope 0 1"), Reply::Ok);
        assert_eq!(h.run("LTRIM l 2 1"), Reply::Ok);
        assert_eq!(
            h.run("EXISTS l"),
            Reply::Int(0),
            "trimmed to nothing deletes"
        );

        h.run("RPUSH r a x a y a z a");
        assert_eq!(h.run("LREM r 2 a"), Reply::Int(2));
        assert_eq!(h.run("LRANGE r 0 -1"), bulks(&["x", "y", "a", "z", "a"]));
        h.run("LPUSH r a");
        assert_eq!(h.run("LREM r -2 a"), Reply::Int(2));
        assert_eq!(h.run("LRANGE r 0 -1"), bulks(&["a", "x", "y", "z"]));
        assert_eq!(h.run("LREM r 0 q"), Reply::Int(0));
        assert_eq!(h.run("LREM r -9223372036854775808 a"), Reply::Int(1));
        assert_eq!(h.run("LREM nope 0 a"), Reply::Int(0));
        assert_eq!(h.run("LREM r x a"), Reply::not_integer());
        h.run("RPUSH s k k");
        assert_eq!(h.run("LREM s 0 k"), Reply::Int(2));
        assert_eq!(h.run("EXISTS s"), Reply::Int(0));
    }

    #[test]
    fn ttl_survives_changes_and_types_are_enforced() {
        let mut h = Harness::new();
        h.run("RPUSH l a b");
        h.run("EXPIRE l 100");
        h.run("RPUSH l c");
        h.run("LPOP l");
        assert_eq!(h.run("TTL l"), Reply::Int(100));
        h.run("SET s v");
        for cmd in [
            "LPUSH s a",
            "RPUSH s a",
            "LPUSHX s a",
            "RPUSHX s a",
            "LPOP s",
            "RPOP s 2",
            "LRANGE s 0 1",
            "LINDEX s 0",
            "LLEN s",
            "LTRIM s 0 1",
            "LREM s 0 a",
            "LSET s 0 a",
            "LINSERT s BEFORE a b",
        ] {
            assert_eq!(h.run(cmd), wrongtype(), "{cmd}");
        }
        for cmd in [
            "GET l",
            "INCR l",
            "APPEND l x",
            "STRLEN l",
            "GETDEL l",
            "SET l v GET",
        ] {
            assert_eq!(h.run(cmd), wrongtype(), "{cmd}");
        }
        assert_eq!(h.run("MGET l s"), Reply::Array(vec![Reply::Nil, bulk("v")]));
        assert_eq!(h.run("SET l v"), Reply::Ok, "SET overwrites any type");
        assert_eq!(h.run("TYPE l"), Reply::status("string"));
    }

    #[test]
    fn binary_and_empty_elements() {
        let mut h = Harness::new();
        let argv = [
            Bytes::from_static(b"RPUSH"),
            Bytes::from_static(b"l"),
            Bytes::from_static(b""),
            Bytes::from_static(b"\x00\xff"),
        ];
        assert_eq!(h.run_argv(&argv), Reply::Int(2));
        assert_eq!(
            h.run("LRANGE l 0 -1"),
            Reply::Array(vec![Reply::bulk(&b""[..]), Reply::bulk(&b"\x00\xff"[..])])
        );
    }
}
