//! Hash commands: HSET/HMSET/HSETNX, HGET/HMGET/HGETALL, HDEL, HEXISTS, HLEN,
//! HSTRLEN, HKEYS, HVALS, HINCRBY, HINCRBYFLOAT, HSCAN.
//!
//! Fields are kept in byte order, so HGETALL, HKEYS and HVALS answer in the
//! same order on every node.

use bytes::Bytes;

use super::args::{format_f64, int, parse_f64, parse_i64};
use super::cursor::scan_elements;
use super::{read_as, respond, write_as, ReadCtx, WriteCtx};
use crate::keyspace::Hash;
use crate::reply::Reply;

fn read<'a>(ctx: &'a ReadCtx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, Reply> {
    read_as::<Hash>(&ctx.data.keyspace, key, ctx.now_ms)
}

/// Stores every field/value pair of `argv[2..]`; the number of new fields.
fn set_pairs(ctx: &mut WriteCtx<'_>, argv: &[Bytes], name: &str) -> Result<i64, Reply> {
    if argv.len() % 2 == 1 {
        return Err(Reply::wrong_arity(name));
    }
    let added = write_as::<Hash, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, true, |hash| {
        argv[2..]
            .chunks_exact(2)
            .filter(|pair| hash.insert(pair[0].clone(), pair[1].clone()).is_none())
            .count()
    })?;
    Ok(added.unwrap_or(0) as i64)
}

pub fn hset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| set_pairs(ctx, argv, "hset").map(Reply::Int))
}

pub fn hmset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| set_pairs(ctx, argv, "hmset").map(|_| Reply::Ok))
}

pub fn hsetnx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let added =
            write_as::<Hash, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, true, |hash| {
                if hash.contains_key(&argv[2]) {
                    return false;
                }
                hash.insert(argv[2].clone(), argv[3].clone());
                true
            })?;
        Ok(Reply::Int(i64::from(added.unwrap_or(false))))
    })
}

pub fn hget(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::bulk_or_nil(
            hash.and_then(|h| h.get(&argv[2])).cloned(),
        ))
    })
}

pub fn hmget(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            argv[2..]
                .iter()
                .map(|field| Reply::bulk_or_nil(hash.and_then(|h| h.get(field)).cloned()))
                .collect(),
        ))
    })
}

pub fn hgetall(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Map(
            hash.into_iter()
                .flatten()
                .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                .collect(),
        ))
    })
}

pub fn hkeys(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            hash.into_iter()
                .flat_map(|h| h.keys())
                .cloned()
                .map(Reply::Bulk)
                .collect(),
        ))
    })
}

pub fn hvals(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Array(
            hash.into_iter()
                .flat_map(|h| h.values())
                .cloned()
                .map(Reply::Bulk)
                .collect(),
        ))
    })
}

pub fn hdel(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let removed = write_as::<Hash, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |hash| {
                argv[2..]
                    .iter()
                    .filter(|field| hash.remove(*field).is_some())
                    .count()
            },
        )?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn hexists(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Int(i64::from(
            hash.is_some_and(|h| h.contains_key(&argv[2])),
        )))
    })
}

pub fn hlen(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Int(hash.map_or(0, |h| h.len() as i64)))
    })
}

pub fn hstrlen(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let hash = read(ctx, &argv[1])?;
        Ok(Reply::Int(
            hash.and_then(|h| h.get(&argv[2]))
                .map_or(0, |v| v.len() as i64),
        ))
    })
}

pub fn hincrby(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let delta = int(&argv[3])?;
        let outcome =
            write_as::<Hash, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, true, |hash| {
                let current = match hash.get(&argv[2]) {
                    None => 0,
                    Some(value) => parse_i64(value)
                        .ok_or_else(|| Reply::error("ERR hash value is not an integer"))?,
                };
                let next = current
                    .checked_add(delta)
                    .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
                hash.insert(argv[2].clone(), Bytes::from(next.to_string()));
                Ok(Reply::Int(next))
            })?;
        outcome.unwrap_or(Ok(Reply::Nil))
    })
}

pub fn hincrbyfloat(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let delta = parse_f64(&argv[3]).ok_or_else(Reply::not_float)?;
        if !delta.is_finite() {
            return Err(Reply::error("ERR value is NaN or Infinity"));
        }
        let outcome =
            write_as::<Hash, _>(&mut ctx.data.keyspace, &argv[1], ctx.now_ms, true, |hash| {
                let current = match hash.get(&argv[2]) {
                    None => 0.0,
                    Some(value) => parse_f64(value)
                        .ok_or_else(|| Reply::error("ERR hash value is not a float"))?,
                };
                let next = current + delta;
                if !next.is_finite() {
                    return Err(Reply::error("ERR increment would produce NaN or Infinity"));
                }
                let text = Bytes::from(format_f64(next));
                hash.insert(argv[2].clone(), text.clone());
                Ok(Reply::Bulk(text))
            })?;
        outcome.unwrap_or(Ok(Reply::Nil))
    })
}

pub fn hscan(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let items = read(ctx, &argv[1]).map(|hash| hash.map(|h| h.iter()));
    scan_elements(argv, items, |field, value, out| {
        out.push(Reply::Bulk(field.clone()));
        out.push(Reply::Bulk(value.clone()));
    })
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::{bulk, bulks, Harness};

    #[test]
    fn set_get_and_listings() {
        let mut h = Harness::new();
        assert_eq!(h.run("HSET h b 2 a 1"), Reply::Int(2));
        assert_eq!(h.run("HSET h a 10 c 3"), Reply::Int(1));
        assert_eq!(h.run("HSET h a"), Reply::wrong_arity("hset"));
        assert_eq!(h.run("HSET h a 1 b"), Reply::wrong_arity("hset"));
        assert_eq!(h.run("HMSET h d 4"), Reply::Ok);
        assert_eq!(h.run("HMSET h d 4 e"), Reply::wrong_arity("hmset"));
        assert_eq!(h.run("HSETNX h a x"), Reply::Int(0));
        assert_eq!(h.run("HSETNX h z 26"), Reply::Int(1));
        assert_eq!(h.run("HGET h a"), bulk("10"));
        assert_eq!(h.run("HGET h nope"), Reply::Nil);
        assert_eq!(h.run("HGET nope a"), Reply::Nil);
        assert_eq!(
            h.run("HMGET h a nope c"),
            Reply::Array(vec![bulk("10"), Reply::Nil, bulk("3")])
        );
        assert_eq!(
            h.run("HMGET nope a b"),
            Reply::Array(vec![Reply::Nil, Reply::Nil])
        );
        assert_eq!(
            h.run("HGETALL h"),
            Reply::Map(vec![
                (bulk("a"), bulk("10")),
                (bulk("b"), bulk("2")),
                (bulk("c"), bulk("3")),
                (bulk("d"), bulk("4")),
                (bulk("z"), bulk("26")),
            ])
        );
        assert_eq!(h.run("HGETALL nope"), Reply::Map(vec![]));
        assert_eq!(h.run("HKEYS h"), bulks(&["a", "b", "c", "d", "z"]));
        assert_eq!(h.run("HVALS h"), bulks(&["10", "2", "3", "4", "26"]));
        assert_eq!(h.run("HKEYS nope"), bulks(&[]));
        assert_eq!(h.run("HLEN h"), Reply::Int(5));
        assert_eq!(h.run("HLEN nope"), Reply::Int(0));
        assert_eq!(h.run("HEXISTS h a"), Reply::Int(1));
        assert_eq!(h.run("HEXISTS h x"), Reply::Int(0));
        assert_eq!(h.run("HSTRLEN h z"), Reply::Int(2));
        assert_eq!(h.run("HSTRLEN h x"), Reply::Int(0));
        assert_eq!(h.run("TYPE h"), Reply::status("hash"));
    }

    #[test]
    fn delete_empties_the_key() {
        let mut h = Harness::new();
        h.run("HSET h a 1 b 2");
        assert_eq!(h.run("HDEL h a x"), Reply::Int(1));
        assert_eq!(h.run("HDEL nope a"), Reply::Int(0));
        assert_eq!(h.run("HDEL h b"), Reply::Int(1));
        assert_eq!(h.run("EXISTS h"), Reply::Int(0));
        assert_eq!(h.run("HDEL h b"), Reply::Int(0));
    }

    #[test]
    fn increments() {
        let mut h = Harness::new();
        assert_eq!(h.run("HINCRBY h n 5"), Reply::Int(5));
        assert_eq!(h.run("HINCRBY h n -7"), Reply::Int(-2));
        assert_eq!(h.run("HINCRBY h n x"), Reply::not_integer());
        h.run("HSET h s abc big 9223372036854775807 f 1.5");
        assert_eq!(
            h.run("HINCRBY h s 1"),
            Reply::error("ERR hash value is not an integer")
        );
        assert_eq!(
            h.run("HINCRBY h big 1"),
            Reply::error("ERR increment or decrement would overflow")
        );
        assert_eq!(h.run("HINCRBYFLOAT h f 0.1"), bulk("1.6"));
        assert_eq!(h.run("HINCRBYFLOAT h g 10.5"), bulk("10.5"));
        assert_eq!(h.run("HINCRBYFLOAT h n 2"), bulk("0"));
        assert_eq!(h.run("HINCRBYFLOAT h g 1e3"), bulk("1010.5"));
        assert_eq!(
            h.run("HINCRBYFLOAT h s 1"),
            Reply::error("ERR hash value is not a float")
        );
        assert_eq!(h.run("HINCRBYFLOAT h g x"), Reply::not_float());
        assert_eq!(
            h.run("HINCRBYFLOAT h g inf"),
            Reply::error("ERR value is NaN or Infinity")
        );
        h.run("HSET h huge 1e308");
        assert_eq!(
            h.run("HINCRBYFLOAT h huge 1e308"),
            Reply::error("ERR increment would produce NaN or Infinity")
        );
        assert_eq!(
            h.run("HGET h huge"),
            bulk("1e308"),
            "a failed increment changes nothing"
        );
        assert_eq!(h.run("HINCRBY nope2 f x"), Reply::not_integer());
        assert_eq!(h.run("EXISTS nope2"), Reply::Int(0));
    }

    #[test]
    fn wrong_types() {
        let mut h = Harness::new();
        h.run("SET s v");
        h.run("HSET h f v");
        for cmd in [
            "HSET s f v",
            "HMSET s f v",
            "HSETNX s f v",
            "HGET s f",
            "HMGET s f",
            "HGETALL s",
            "HKEYS s",
            "HVALS s",
            "HDEL s f",
            "HEXISTS s f",
            "HLEN s",
            "HSTRLEN s f",
            "HINCRBY s f 1",
            "HINCRBYFLOAT s f 1",
            "HSCAN s 0",
        ] {
            assert_eq!(h.run(cmd), Reply::wrong_type(), "{cmd}");
        }
        for cmd in ["GET h", "INCR h", "LPUSH h a", "SADD h a", "ZADD h 1 a"] {
            assert_eq!(h.run(cmd), Reply::wrong_type(), "{cmd}");
        }
    }

    #[test]
    fn hscan_pages_through_every_field() {
        let mut h = Harness::new();
        for i in 0..50 {
            h.run(&format!("HSET h f{i} v{i}"));
        }
        let mut seen = std::collections::BTreeMap::new();
        let mut cursor = "0".to_string();
        loop {
            let Reply::Array(parts) = h.run(&format!("HSCAN h {cursor} COUNT 7")) else {
                panic!("hscan reply")
            };
            let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else {
                panic!("hscan parts")
            };
            for pair in items.chunks(2) {
                seen.insert(format!("{:?}", pair[0]), pair[1].clone());
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 50);
        assert_eq!(seen.get(&format!("{:?}", bulk("f7"))), Some(&bulk("v7")));
        let Reply::Array(parts) = h.run("HSCAN h 0 MATCH f1* COUNT 1000") else {
            panic!("hscan reply")
        };
        assert_eq!(parts[0], bulk("0"));
        let Reply::Array(items) = &parts[1] else {
            panic!("items")
        };
        assert_eq!(items.len(), 22, "f1 and f10..f19, with values");
        assert_eq!(
            h.run("HSCAN nope 0 COUNT x"),
            Reply::Array(vec![bulk("0"), bulks(&[])]),
            "options of an absent key are not checked"
        );
        assert_eq!(h.run("HSCAN h x"), Reply::error("ERR invalid cursor"));
        assert_eq!(h.run("HSCAN h 0 COUNT 0"), Reply::syntax_error());
        assert_eq!(h.run("HSCAN h 0 COUNT x"), Reply::not_integer());
        assert_eq!(h.run("HSCAN h 0 TYPE hash"), Reply::syntax_error());
        assert_eq!(h.run("HSCAN h 0 MATCH"), Reply::syntax_error());
    }
}
