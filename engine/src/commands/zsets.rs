//! Sorted-set commands: ZADD (NX XX GT LT CH INCR), ZINCRBY, ZREM, ZCARD,
//! ZCOUNT, ZSCORE, ZRANK/ZREVRANK, ZRANGE (BYSCORE BYLEX REV LIMIT
//! WITHSCORES), ZRANGEBYSCORE/ZREVRANGEBYSCORE, ZREMRANGEBYSCORE,
//! ZREMRANGEBYRANK, ZPOPMIN/ZPOPMAX, ZSCAN.
//!
//! Elements are ordered as in Redis: by score, then by member bytes. Scores
//! are replied as doubles (`Reply::Double`: a RESP3 double, or a bulk string
//! formatted like Redis in RESP2); ZSCAN gives them as bulk strings.

use bytes::Bytes;

use super::args::{int, is, positive, score};
use super::cursor::scan_elements;
use super::{clamp_range, read_as, respond, write_as, ReadCtx, WriteCtx};
use crate::keyspace::{Score, ScoreBound, ZSet};
use crate::reply::{format_double, Reply};

fn read<'a>(ctx: &'a ReadCtx<'_>, key: &[u8]) -> Result<Option<&'a ZSet>, Reply> {
    read_as::<ZSet>(&ctx.data.keyspace, key, ctx.now_ms)
}

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What adding one element did.
enum Added {
    /// A new member.
    New(f64),
    /// An existing member whose score changed.
    Updated(f64),
    /// An existing member left with the same score (still "processed").
    Same(f64),
    /// Skipped because of NX, XX, GT or LT.
    Skipped,
}

/// Redis's `zsetAdd`: one score/member pair under the given flags. `Err` when
/// an increment produces NaN (`inf` + `-inf`).
fn add_one(zset: &mut ZSet, score: f64, member: &Bytes, flags: AddFlags) -> Result<Added, Reply> {
    let nan = || Reply::error("ERR resulting score is not a number (NaN)");
    match zset.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok(Added::Skipped);
            }
            let next = if flags.incr { score + current } else { score };
            let next = Score::new(next).ok_or_else(nan)?;
            let value = next.get();
            if (flags.lt && value >= current) || (flags.gt && value <= current) {
                return Ok(Added::Skipped);
            }
            if value == current {
                return Ok(Added::Same(value));
            }
            zset.insert(member.clone(), next);
            Ok(Added::Updated(value))
        }
        None if flags.xx => Ok(Added::Skipped),
        None => {
            let value = Score::new(score).ok_or_else(nan)?;
            zset.insert(member.clone(), value);
            Ok(Added::New(score))
        }
    }
}

/// ZADD and ZINCRBY (which is ZADD with INCR forced on).
fn add_generic(ctx: &mut WriteCtx<'_>, argv: &[Bytes], mut flags: AddFlags) -> Reply {
    respond(|| {
        let mut first = 2;
        while let Some(arg) = argv.get(first) {
            if is(arg, "NX") {
                flags.nx = true;
            } else if is(arg, "XX") {
                flags.xx = true;
            } else if is(arg, "CH") {
                flags.ch = true;
            } else if is(arg, "INCR") {
                flags.incr = true;
            } else if is(arg, "GT") {
                flags.gt = true;
            } else if is(arg, "LT") {
                flags.lt = true;
            } else {
                break;
            }
            first += 1;
        }
        let rest = &argv[first..];
        if rest.is_empty() || rest.len() % 2 == 1 {
            return Err(Reply::syntax_error());
        }
        if flags.nx && flags.xx {
            return Err(Reply::error(
                "ERR XX and NX options at the same time are not compatible",
            ));
        }
        if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
            return Err(Reply::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if flags.incr && rest.len() > 2 {
            return Err(Reply::error(
                "ERR INCR option supports a single increment-element pair",
            ));
        }
        // Every score is checked before anything changes.
        let pairs = rest
            .chunks_exact(2)
            .map(|pair| Ok((score(&pair[0])?, &pair[1])))
            .collect::<Result<Vec<_>, Reply>>()?;
        let outcome = write_as::<ZSet, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            !flags.xx,
            |zset| {
                let (mut added, mut updated, mut last) = (0, 0, None);
                for (score, member) in &pairs {
                    match add_one(zset, *score, member, flags)? {
                        Added::New(s) => {
                            added += 1;
                            last = Some(s);
                        }
                        Added::Updated(s) => {
                            updated += 1;
                            last = Some(s);
                        }
                        Added::Same(s) => last = Some(s),
                        Added::Skipped => {}
                    }
                }
                Ok((added, updated, last))
            },
        )?;
        let (added, updated, last) = outcome.unwrap_or(Ok((0, 0, None)))?;
        Ok(if flags.incr {
            last.map_or(Reply::Nil, Reply::Double)
        } else if flags.ch {
            Reply::Int(added + updated)
        } else {
            Reply::Int(added)
        })
    })
}

pub fn zadd(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    add_generic(ctx, argv, AddFlags::default())
}

pub fn zincrby(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add_generic(ctx, argv, flags)
}

pub fn zrem(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let removed = write_as::<ZSet, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |zset| {
                argv[2..]
                    .iter()
                    .filter(|member| zset.remove(member).is_some())
                    .count()
            },
        )?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn zcard(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let zset = read(ctx, &argv[1])?;
        Ok(Reply::Int(zset.map_or(0, |z| z.len() as i64)))
    })
}

pub fn zscore(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let zset = read(ctx, &argv[1])?;
        Ok(zset
            .and_then(|z| z.score(&argv[2]))
            .map_or(Reply::Nil, Reply::Double))
    })
}

/// One end of a score range as `zslParseRange` reads it: `(` makes it
/// exclusive; the rest goes through `strtod`, which skips leading spaces,
/// reads `inf`/`-inf`, and turns an empty string into 0.
fn parse_score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let (exclusive, text) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let text = std::str::from_utf8(text).ok()?;
    let value = if text.is_empty() {
        0.0
    } else {
        text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
            .parse::<f64>()
            .ok()?
    };
    (!value.is_nan()).then_some(ScoreBound { value, exclusive })
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), Reply> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(Reply::error("ERR min or max is not a float")),
    }
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq)]
enum Lex {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

fn parse_lex(arg: &Bytes) -> Option<Lex> {
    match arg.first()? {
        b'-' if arg.len() == 1 => Some(Lex::Min),
        b'+' if arg.len() == 1 => Some(Lex::Max),
        b'[' => Some(Lex::Inclusive(arg.slice(1..))),
        b'(' => Some(Lex::Exclusive(arg.slice(1..))),
        _ => None,
    }
}

fn lex_at_least(member: &[u8], min: &Lex) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Inclusive(m) => member >= &m[..],
        Lex::Exclusive(m) => member > &m[..],
    }
}

fn lex_at_most(member: &[u8], max: &Lex) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Inclusive(m) => member <= &m[..],
        Lex::Exclusive(m) => member < &m[..],
    }
}

pub fn zcount(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let (min, max) = parse_score_range(&argv[2], &argv[3])?;
        let zset = read(ctx, &argv[1])?;
        Ok(Reply::Int(
            zset.map_or(0, |z| z.range_by_score(min, max).count() as i64),
        ))
    })
}

fn rank_generic(ctx: &ReadCtx<'_>, argv: &[Bytes], reverse: bool, name: &str) -> Reply {
    respond(|| {
        if argv.len() > 4 {
            return Err(Reply::wrong_arity(name));
        }
        let with_score = match argv.get(3) {
            None => false,
            Some(arg) if is(arg, "WITHSCORE") => true,
            Some(_) => return Err(Reply::syntax_error()),
        };
        let missing = if with_score {
            Reply::NilArray
        } else {
            Reply::Nil
        };
        let Some(zset) = read(ctx, &argv[1])? else {
            return Ok(missing);
        };
        let (Some(rank), Some(score)) = (zset.rank(&argv[2]), zset.score(&argv[2])) else {
            return Ok(missing);
        };
        let rank = if reverse { zset.len() - 1 - rank } else { rank } as i64;
        Ok(if with_score {
            Reply::Array(vec![Reply::Int(rank), Reply::Double(score)])
        } else {
            Reply::Int(rank)
        })
    })
}

pub fn zrank(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    rank_generic(ctx, argv, false, "zrank")
}

pub fn zrevrank(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    rank_generic(ctx, argv, true, "zrevrank")
}

/// Elements at ranks `start..=stop` (0-based, already clamped), counted from
/// the lowest score or, with `reverse`, from the highest. Walks in from
/// whichever end of the set is nearer.
fn by_rank(zset: &ZSet, start: usize, stop: usize, reverse: bool) -> Vec<(&Bytes, f64)> {
    let (len, n) = (zset.len(), stop - start + 1);
    let near_front = start <= len / 2;
    let mut out: Vec<(&Bytes, f64)> = match (reverse, near_front) {
        (false, true) => zset.iter().skip(start).take(n).collect(),
        (false, false) => zset.iter().rev().skip(len - 1 - stop).take(n).collect(),
        (true, true) => zset.iter().rev().skip(start).take(n).collect(),
        (true, false) => zset.iter().skip(len - 1 - stop).take(n).collect(),
    };
    if !near_front {
        out.reverse();
    }
    out
}

/// Applies `LIMIT offset count` as Redis does: a negative offset selects
/// nothing, a negative count means "all the rest".
fn limit<'a>(
    items: impl Iterator<Item = (&'a Bytes, f64)>,
    offset: i64,
    count: i64,
) -> Vec<(&'a Bytes, f64)> {
    if offset < 0 {
        return Vec::new();
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    items.skip(offset).take(count).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum RangeKind {
    /// ZRANGE before its options are read: by rank unless BYSCORE/BYLEX.
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE, ZRANGEBYSCORE and ZREVRANGEBYSCORE (Redis's
/// `zrangeGenericCommand`). `reverse` is `None` for ZRANGE, where `REV` may
/// set it.
fn range_generic(
    ctx: &ReadCtx<'_>,
    argv: &[Bytes],
    mut kind: RangeKind,
    mut reverse: Option<bool>,
) -> Reply {
    respond(|| {
        let mut with_scores = false;
        let (mut offset, mut count) = (0i64, -1i64);
        let mut j = 4;
        while j < argv.len() {
            let left = argv.len() - j - 1;
            let arg = &argv[j];
            if is(arg, "WITHSCORES") {
                with_scores = true;
            } else if is(arg, "LIMIT") && left >= 2 {
                offset = int(&argv[j + 1])?;
                count = int(&argv[j + 2])?;
                j += 2;
            } else if reverse.is_none() && is(arg, "REV") {
                reverse = Some(true);
            } else if kind == RangeKind::Auto && is(arg, "BYLEX") {
                kind = RangeKind::Lex;
            } else if kind == RangeKind::Auto && is(arg, "BYSCORE") {
                kind = RangeKind::Score;
            } else {
                return Err(Reply::syntax_error());
            }
            j += 1;
        }
        let reverse = reverse.unwrap_or(false);
        if kind == RangeKind::Auto {
            kind = RangeKind::Rank;
        }
        if count != -1 && kind == RangeKind::Rank {
            return Err(Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && kind == RangeKind::Lex {
            return Err(Reply::error(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // Reversed score and lex ranges are given as `max min`.
        let (min, max) = if reverse && kind != RangeKind::Rank {
            (&argv[3], &argv[2])
        } else {
            (&argv[2], &argv[3])
        };
        enum Parsed {
            Rank(i64, i64),
            Score(ScoreBound, ScoreBound),
            Lex(Lex, Lex),
        }
        let parsed = match kind {
            RangeKind::Score => {
                let (min, max) = parse_score_range(min, max)?;
                Parsed::Score(min, max)
            }
            RangeKind::Lex => match (parse_lex(min), parse_lex(max)) {
                (Some(min), Some(max)) => Parsed::Lex(min, max),
                _ => return Err(Reply::error("ERR min or max not valid string range item")),
            },
            _ => Parsed::Rank(int(min)?, int(max)?),
        };
        let Some(zset) = read(ctx, &argv[1])? else {
            return Ok(Reply::empty_array());
        };
        let items = match parsed {
            Parsed::Rank(start, stop) => match clamp_range(start, stop, zset.len()) {
                Some((start, stop)) => by_rank(zset, start, stop, reverse),
                None => Vec::new(),
            },
            Parsed::Score(min, max) => {
                let range = zset.range_by_score(min, max);
                if reverse {
                    limit(range.rev(), offset, count)
                } else {
                    limit(range, offset, count)
                }
            }
            Parsed::Lex(min, max) => {
                if reverse {
                    let items = zset
                        .iter()
                        .rev()
                        .skip_while(|(m, _)| !lex_at_most(m, &max))
                        .take_while(|(m, _)| lex_at_least(m, &min));
                    limit(items, offset, count)
                } else {
                    let items = zset
                        .iter()
                        .skip_while(|(m, _)| !lex_at_least(m, &min))
                        .take_while(|(m, _)| lex_at_most(m, &max));
                    limit(items, offset, count)
                }
            }
        };
        Ok(scored_reply(items, with_scores))
    })
}

/// Members, or member/score pairs when `with_scores`.
fn scored_reply(items: Vec<(&Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            items
                .into_iter()
                .map(|(m, s)| (Reply::Bulk(m.clone()), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(
            items
                .into_iter()
                .map(|(m, _)| Reply::Bulk(m.clone()))
                .collect(),
        )
    }
}

pub fn zrange(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    range_generic(ctx, argv, RangeKind::Auto, None)
}

pub fn zrangebyscore(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    range_generic(ctx, argv, RangeKind::Score, Some(false))
}

pub fn zrevrangebyscore(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    range_generic(ctx, argv, RangeKind::Score, Some(true))
}

/// Removes the given members; the number removed.
fn remove_members(zset: &mut ZSet, members: Vec<Bytes>) -> i64 {
    members
        .iter()
        .filter(|member| zset.remove(member).is_some())
        .count() as i64
}

pub fn zremrangebyscore(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let (min, max) = parse_score_range(&argv[2], &argv[3])?;
        let removed = write_as::<ZSet, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |zset| {
                let doomed = zset
                    .range_by_score(min, max)
                    .map(|(m, _)| m.clone())
                    .collect();
                remove_members(zset, doomed)
            },
        )?;
        Ok(Reply::Int(removed.unwrap_or(0)))
    })
}

pub fn zremrangebyrank(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let start = int(&argv[2])?;
        let stop = int(&argv[3])?;
        let removed = write_as::<ZSet, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |zset| {
                let Some((start, stop)) = clamp_range(start, stop, zset.len()) else {
                    return 0;
                };
                let doomed = by_rank(zset, start, stop, false)
                    .into_iter()
                    .map(|(m, _)| m.clone())
                    .collect();
                remove_members(zset, doomed)
            },
        )?;
        Ok(Reply::Int(removed.unwrap_or(0)))
    })
}

/// ZPOPMIN/ZPOPMAX `key [count]`: a flat `[member, score]` without a count;
/// with one, pairs (nested arrays in RESP3).
fn pop_generic(ctx: &mut WriteCtx<'_>, argv: &[Bytes], highest: bool) -> Reply {
    respond(|| {
        if argv.len() > 3 {
            return Err(Reply::syntax_error());
        }
        let count = argv.get(2).map(|arg| positive(arg)).transpose()?;
        let popped = write_as::<ZSet, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |zset| {
                // Never more than the set holds, whatever the count claims.
                let n = count.unwrap_or(1).min(zset.len() as u64) as usize;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    let element = if highest {
                        zset.pop_last()
                    } else {
                        zset.pop_first()
                    };
                    out.extend(element);
                }
                out
            },
        )?;
        let popped = popped.unwrap_or_default();
        let pairs = popped
            .into_iter()
            .map(|(m, s)| (Reply::Bulk(m), Reply::Double(s)));
        Ok(match count {
            Some(_) => Reply::Pairs(pairs.collect()),
            None => Reply::Array(pairs.flat_map(|(m, s)| [m, s]).collect()),
        })
    })
}

pub fn zpopmin(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    pop_generic(ctx, argv, false)
}

pub fn zpopmax(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    pop_generic(ctx, argv, true)
}

pub fn zscan(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let items = read(ctx, &argv[1]).map(|zset| zset.map(|z| z.by_member()));
    scan_elements(argv, items, |member, score, out| {
        out.push(Reply::Bulk(member.clone()));
        out.push(Reply::bulk(format_double(score).into_bytes()));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bulk, bulks, Harness};

    fn scored(items: &[(&str, f64)]) -> Reply {
        Reply::Pairs(
            items
                .iter()
                .map(|(m, s)| (bulk(m), Reply::Double(*s)))
                .collect(),
        )
    }

    #[test]
    fn zadd_basics_and_order() {
        let mut h = Harness::new();
        assert_eq!(h.run("ZADD z 1 b 1 a 2 c -inf lo +inf hi"), Reply::Int(5));
        assert_eq!(h.run("ZADD z 5 a"), Reply::Int(0));
        assert_eq!(h.run("ZADD z CH 6 a 1 b 7 d"), Reply::Int(2));
        assert_eq!(h.run("ZCARD z"), Reply::Int(6));
        assert_eq!(h.run("ZCARD nope"), Reply::Int(0));
        assert_eq!(
            h.run("ZRANGE z 0 -1"),
            bulks(&["lo", "b", "c", "a", "d", "hi"])
        );
        assert_eq!(h.run("ZSCORE z a"), Reply::Double(6.0));
        assert_eq!(h.run("ZSCORE z hi"), Reply::Double(f64::INFINITY));
        assert_eq!(h.run("ZSCORE z nope"), Reply::Nil);
        assert_eq!(h.run("ZSCORE nope a"), Reply::Nil);
        assert_eq!(h.run("TYPE z"), Reply::status("zset"));
        h.run("ZADD ties 0 c 0 a 0 b");
        assert_eq!(h.run("ZRANGE ties 0 -1"), bulks(&["a", "b", "c"]));
    }

    #[test]
    fn zadd_errors() {
        let mut h = Harness::new();
        assert_eq!(h.run("ZADD z"), Reply::wrong_arity("zadd"));
        assert_eq!(h.run("ZADD z 1"), Reply::wrong_arity("zadd"));
        assert_eq!(h.run("ZADD z NX 1"), Reply::syntax_error());
        assert_eq!(h.run("ZADD z 1 a 2"), Reply::syntax_error());
        assert_eq!(h.run("ZADD z x a"), Reply::not_float());
        assert_eq!(h.run("ZADD z nan a"), Reply::not_float());
        assert_eq!(h.run("ZADD z 1 a x b"), Reply::not_float());
        assert_eq!(
            h.run("EXISTS z"),
            Reply::Int(0),
            "a bad score changes nothing"
        );
        assert_eq!(
            h.run("ZADD z NX XX 1 a"),
            Reply::error("ERR XX and NX options at the same time are not compatible")
        );
        let clash =
            Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
        assert_eq!(h.run("ZADD z GT LT 1 a"), clash);
        assert_eq!(h.run("ZADD z NX GT 1 a"), clash);
        assert_eq!(h.run("ZADD z LT NX 1 a"), clash);
        assert_eq!(
            h.run("ZADD z INCR 1 a 2 b"),
            Reply::error("ERR INCR option supports a single increment-element pair")
        );
        h.run("SET s v");
        assert_eq!(h.run("ZADD s 1 a"), Reply::wrong_type());
        assert_eq!(h.run("ZADD s XX 1 a"), Reply::wrong_type());
        assert_eq!(
            h.run("ZADD s x a"),
            Reply::not_float(),
            "scores are parsed first"
        );
    }

    #[test]
    fn zadd_conditions() {
        let mut h = Harness::new();
        assert_eq!(h.run("ZADD z XX 1 m"), Reply::Int(0));
        assert_eq!(h.run("EXISTS z"), Reply::Int(0), "XX never creates the key");
        assert_eq!(h.run("ZADD z XX INCR 1 m"), Reply::Nil);
        assert_eq!(h.run("ZADD z 5 m"), Reply::Int(1));
        assert_eq!(h.run("ZADD z NX 9 m 1 n"), Reply::Int(1));
        assert_eq!(h.run("ZSCORE z m"), Reply::Double(5.0));
        assert_eq!(h.run("ZADD z XX 6 m 1 o"), Reply::Int(0));
        assert_eq!(h.run("ZSCORE z m"), Reply::Double(6.0));
        assert_eq!(h.run("ZSCORE z o"), Reply::Nil);
        assert_eq!(
            h.run("ZADD z LT CH 7 m"),
            Reply::Int(0),
            "LT keeps the lower score"
        );
        assert_eq!(h.run("ZADD z LT CH 3 m"), Reply::Int(1));
        assert_eq!(h.run("ZADD z GT CH 2 m"), Reply::Int(0));
        assert_eq!(h.run("ZADD z GT CH 4 m"), Reply::Int(1));
        assert_eq!(
            h.run("ZADD z GT CH 4 m"),
            Reply::Int(0),
            "same score is no change"
        );
        assert_eq!(
            h.run("ZADD z GT 10 new"),
            Reply::Int(1),
            "GT still adds new members"
        );
        assert_eq!(h.run("ZADD z XX GT CH 20 new 1 ghost"), Reply::Int(1));
        assert_eq!(h.run("ZSCORE z new"), Reply::Double(20.0));
    }

    #[test]
    fn incr_and_zincrby() {
        let mut h = Harness::new();
        assert_eq!(h.run("ZADD z INCR 2.5 m"), Reply::Double(2.5));
        assert_eq!(h.run("ZINCRBY z 1.5 m"), Reply::Double(4.0));
        assert_eq!(h.run("ZINCRBY z -10 n"), Reply::Double(-10.0));
        assert_eq!(h.run("ZADD z NX INCR 1 m"), Reply::Nil);
        assert_eq!(h.run("ZADD z GT INCR -1 m"), Reply::Nil);
        assert_eq!(h.run("ZADD z LT INCR -1 m"), Reply::Double(3.0));
        assert_eq!(h.run("ZINCRBY z x m"), Reply::not_float());
        assert_eq!(h.run("ZINCRBY z inf m"), Reply::Double(f64::INFINITY));
        assert_eq!(
            h.run("ZINCRBY z -inf m"),
            Reply::error("ERR resulting score is not a number (NaN)")
        );
        assert_eq!(h.run("ZSCORE z m"), Reply::Double(f64::INFINITY));
        assert_eq!(h.run("ZADD z INCR 0 fresh"), Reply::Double(0.0));
        h.run("SET s v");
        assert_eq!(h.run("ZINCRBY s 1 m"), Reply::wrong_type());
    }

    #[test]
    fn remove_count_and_rank() {
        let mut h = Harness::new();
        h.run("ZADD z 1 a 2 b 3 c 4 d");
        assert_eq!(h.run("ZCOUNT z 2 3"), Reply::Int(2));
        assert_eq!(h.run("ZCOUNT z (2 3"), Reply::Int(1));
        assert_eq!(h.run("ZCOUNT z -inf +inf"), Reply::Int(4));
        assert_eq!(h.run("ZCOUNT z (4 +inf"), Reply::Int(0));
        assert_eq!(h.run("ZCOUNT z 3 2"), Reply::Int(0));
        assert_eq!(h.run("ZCOUNT nope 0 1"), Reply::Int(0));
        assert_eq!(
            h.run("ZCOUNT z x 1"),
            Reply::error("ERR min or max is not a float")
        );
        assert_eq!(
            h.run("ZCOUNT z 1 (x"),
            Reply::error("ERR min or max is not a float")
        );
        assert_eq!(
            h.run("ZCOUNT z nan 1"),
            Reply::error("ERR min or max is not a float")
        );
        assert_eq!(h.run("ZRANK z a"), Reply::Int(0));
        assert_eq!(h.run("ZRANK z d"), Reply::Int(3));
        assert_eq!(h.run("ZREVRANK z d"), Reply::Int(0));
        assert_eq!(h.run("ZREVRANK z a"), Reply::Int(3));
        assert_eq!(h.run("ZRANK z nope"), Reply::Nil);
        assert_eq!(h.run("ZRANK nope a"), Reply::Nil);
        assert_eq!(
            h.run("ZRANK z c WITHSCORE"),
            Reply::Array(vec![Reply::Int(2), Reply::Double(3.0)])
        );
        assert_eq!(
            h.run("ZREVRANK z c withscore"),
            Reply::Array(vec![Reply::Int(1), Reply::Double(3.0)])
        );
        assert_eq!(h.run("ZRANK z nope WITHSCORE"), Reply::NilArray);
        assert_eq!(h.run("ZRANK z a WITHSCORES"), Reply::syntax_error());
        assert_eq!(h.run("ZRANK z a WITHSCORE x"), Reply::wrong_arity("zrank"));
        assert_eq!(h.run("ZREM z a x"), Reply::Int(1));
        assert_eq!(h.run("ZREM nope a"), Reply::Int(0));
        assert_eq!(h.run("ZREM z b c d"), Reply::Int(3));
        assert_eq!(
            h.run("EXISTS z"),
            Reply::Int(0),
            "an emptied zset is deleted"
        );
    }

    #[test]
    fn zrange_by_rank() {
        let mut h = Harness::new();
        h.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(h.run("ZRANGE z 0 1"), bulks(&["a", "b"]));
        assert_eq!(h.run("ZRANGE z -2 -1"), bulks(&["d", "e"]));
        assert_eq!(h.run("ZRANGE z 3 100"), bulks(&["d", "e"]));
        assert_eq!(h.run("ZRANGE z -100 0"), bulks(&["a"]));
        assert_eq!(h.run("ZRANGE z 3 1"), bulks(&[]));
        assert_eq!(h.run("ZRANGE z 5 6"), bulks(&[]));
        assert_eq!(h.run("ZRANGE z 0 1 REV"), bulks(&["e", "d"]));
        assert_eq!(h.run("ZRANGE z 3 4 REV"), bulks(&["b", "a"]));
        assert_eq!(h.run("ZRANGE z 1 3"), bulks(&["b", "c", "d"]));
        assert_eq!(h.run("ZRANGE z 3 4"), bulks(&["d", "e"]));
        assert_eq!(h.run("ZRANGE z 0 0 WITHSCORES"), scored(&[("a", 1.0)]));
        assert_eq!(
            h.run("ZRANGE z 0 1 REV WITHSCORES"),
            scored(&[("e", 5.0), ("d", 4.0)])
        );
        assert_eq!(h.run("ZRANGE nope 0 -1"), bulks(&[]));
        assert_eq!(h.run("ZRANGE z a 1"), Reply::not_integer());
        assert_eq!(
            h.run("ZRANGE z 0 1 LIMIT 0 1"),
            Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
            )
        );
        assert_eq!(h.run("ZRANGE z 0 1 LIMIT 0 -1"), bulks(&["a", "b"]));
        assert_eq!(h.run("ZRANGE z 0 1 REV REV"), Reply::syntax_error());
        assert_eq!(h.run("ZRANGE z 0 1 BYSCORE BYLEX"), Reply::syntax_error());
        assert_eq!(h.run("ZRANGE z 0 1 FOO"), Reply::syntax_error());
        assert_eq!(h.run("ZRANGE z 0 1 LIMIT 0"), Reply::syntax_error());
    }

    #[test]
    fn zrange_by_score() {
        let mut h = Harness::new();
        h.run("ZADD z 1 a 2 b 2 c 3 d 1.5 x");
        assert_eq!(h.run("ZRANGEBYSCORE z 2 3"), bulks(&["b", "c", "d"]));
        assert_eq!(h.run("ZRANGEBYSCORE z (1 (3"), bulks(&["x", "b", "c"]));
        assert_eq!(
            h.run("ZRANGEBYSCORE z -inf +inf LIMIT 1 2"),
            bulks(&["x", "b"])
        );
        assert_eq!(
            h.run("ZRANGEBYSCORE z -inf +inf LIMIT 2 -1"),
            bulks(&["b", "c", "d"])
        );
        assert_eq!(h.run("ZRANGEBYSCORE z -inf +inf LIMIT -1 2"), bulks(&[]));
        assert_eq!(h.run("ZRANGEBYSCORE z -inf +inf LIMIT 9 2"), bulks(&[]));
        assert_eq!(h.run("ZRANGEBYSCORE z -inf +inf LIMIT 0 0"), bulks(&[]));
        assert_eq!(
            h.run("ZRANGEBYSCORE z 1 1.5 WITHSCORES"),
            scored(&[("a", 1.0), ("x", 1.5)])
        );
        assert_eq!(h.run("ZREVRANGEBYSCORE z 3 2"), bulks(&["d", "c", "b"]));
        assert_eq!(
            h.run("ZREVRANGEBYSCORE z (3 -inf LIMIT 1 2"),
            bulks(&["b", "x"])
        );
        assert_eq!(h.run("ZREVRANGEBYSCORE z 2 3"), bulks(&[]));
        assert_eq!(h.run("ZRANGE z 2 3 BYSCORE"), bulks(&["b", "c", "d"]));
        assert_eq!(h.run("ZRANGE z 3 2 BYSCORE REV"), bulks(&["d", "c", "b"]));
        assert_eq!(
            h.run("ZRANGE z (1 +inf BYSCORE LIMIT 0 2 WITHSCORES"),
            scored(&[("x", 1.5), ("b", 2.0)])
        );
        assert_eq!(h.run("ZRANGEBYSCORE z 1 2 REV"), Reply::syntax_error());
        assert_eq!(h.run("ZRANGEBYSCORE z 1 2 BYLEX"), Reply::syntax_error());
        assert_eq!(
            h.run("ZRANGEBYSCORE z a 2"),
            Reply::error("ERR min or max is not a float")
        );
        assert_eq!(h.run("ZRANGEBYSCORE z 1 2 LIMIT x 1"), Reply::not_integer());
        assert_eq!(
            h.run("ZRANGEBYSCORE z 1e400 inf"),
            bulks(&[]),
            "strtod overflow is inf"
        );
        let empty_min = [
            Bytes::from_static(b"ZRANGEBYSCORE"),
            Bytes::from_static(b"z"),
            Bytes::from_static(b""),
            Bytes::from_static(b"1"),
        ];
        assert_eq!(h.run_argv(&empty_min), bulks(&["a"]), "an empty bound is 0");
        assert_eq!(h.run("ZRANGEBYSCORE nope 1 2"), bulks(&[]));
    }

    #[test]
    fn zrange_by_lex() {
        let mut h = Harness::new();
        h.run("ZADD z 0 a 0 b 0 c 0 d 0 e");
        assert_eq!(
            h.run("ZRANGE z - + BYLEX"),
            bulks(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(h.run("ZRANGE z [b (d BYLEX"), bulks(&["b", "c"]));
        assert_eq!(h.run("ZRANGE z (b [d BYLEX"), bulks(&["c", "d"]));
        assert_eq!(h.run("ZRANGE z [d [b BYLEX"), bulks(&[]));
        assert_eq!(h.run("ZRANGE z + - BYLEX"), bulks(&[]));
        assert_eq!(
            h.run("ZRANGE z + - BYLEX REV"),
            bulks(&["e", "d", "c", "b", "a"])
        );
        assert_eq!(
            h.run("ZRANGE z [d (a BYLEX REV LIMIT 1 2"),
            bulks(&["c", "b"])
        );
        assert_eq!(h.run("ZRANGE z - [c BYLEX LIMIT 1 5"), bulks(&["b", "c"]));
        assert_eq!(
            h.run("ZRANGE z a c BYLEX"),
            Reply::error("ERR min or max not valid string range item")
        );
        assert_eq!(
            h.run("ZRANGE z -a + BYLEX"),
            Reply::error("ERR min or max not valid string range item")
        );
        assert_eq!(
            h.run("ZRANGE z - + BYLEX WITHSCORES"),
            Reply::error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
    }

    #[test]
    fn remove_ranges() {
        let mut h = Harness::new();
        h.run("ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(h.run("ZREMRANGEBYSCORE z (1 2"), Reply::Int(1));
        assert_eq!(h.run("ZREMRANGEBYSCORE z 10 20"), Reply::Int(0));
        assert_eq!(
            h.run("ZREMRANGEBYSCORE z x 1"),
            Reply::error("ERR min or max is not a float")
        );
        assert_eq!(h.run("ZREMRANGEBYSCORE nope 1 2"), Reply::Int(0));
        assert_eq!(h.run("ZRANGE z 0 -1"), bulks(&["a", "c", "d", "e"]));
        assert_eq!(h.run("ZREMRANGEBYRANK z -2 -1"), Reply::Int(2));
        assert_eq!(h.run("ZREMRANGEBYRANK z 5 9"), Reply::Int(0));
        assert_eq!(h.run("ZREMRANGEBYRANK z x 1"), Reply::not_integer());
        assert_eq!(h.run("ZRANGE z 0 -1"), bulks(&["a", "c"]));
        assert_eq!(h.run("ZREMRANGEBYRANK z 0 -1"), Reply::Int(2));
        assert_eq!(h.run("EXISTS z"), Reply::Int(0));
        h.run("ZADD y 1 a");
        assert_eq!(h.run("ZREMRANGEBYSCORE y -inf +inf"), Reply::Int(1));
        assert_eq!(h.run("EXISTS y"), Reply::Int(0));
    }

    #[test]
    fn pops() {
        let mut h = Harness::new();
        h.run("ZADD z 1 a 2 b 3 c 4 d");
        assert_eq!(
            h.run("ZPOPMIN z"),
            Reply::Array(vec![bulk("a"), Reply::Double(1.0)])
        );
        assert_eq!(
            h.run("ZPOPMAX z"),
            Reply::Array(vec![bulk("d"), Reply::Double(4.0)])
        );
        assert_eq!(h.run("ZPOPMAX z 0"), scored(&[]));
        assert_eq!(h.run("ZPOPMIN z 10"), scored(&[("b", 2.0), ("c", 3.0)]));
        assert_eq!(h.run("EXISTS z"), Reply::Int(0));
        assert_eq!(h.run("ZPOPMIN z"), Reply::empty_array());
        assert_eq!(h.run("ZPOPMIN z 2"), scored(&[]));
        assert_eq!(
            h.run("ZPOPMIN z -1"),
            Reply::error("ERR value is out of range, must be positive")
        );
        assert_eq!(h.run("ZPOPMIN z 1 2"), Reply::syntax_error());
        h.run("ZADD y 1 a 2 b");
        assert_eq!(h.run("ZPOPMAX y 1"), scored(&[("b", 2.0)]));
        h.run("SET s v");
        assert_eq!(h.run("ZPOPMIN s 0"), Reply::wrong_type());
    }

    #[test]
    fn zscan_and_wrong_types() {
        let mut h = Harness::new();
        h.run("ZADD z 1.5 a 2 b -inf c");
        let Reply::Array(parts) = h.run("ZSCAN z 0 COUNT 100") else {
            panic!("zscan reply")
        };
        assert_eq!(parts[0], bulk("0"));
        let Reply::Array(items) = &parts[1] else {
            panic!("items")
        };
        let mut pairs: Vec<(Reply, Reply)> = items
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        pairs.sort_by_key(|(m, _)| format!("{m:?}"));
        assert_eq!(
            pairs,
            vec![
                (bulk("a"), bulk("1.5")),
                (bulk("b"), bulk("2")),
                (bulk("c"), bulk("-inf"))
            ]
        );
        h.run("HSET hash f v");
        for cmd in [
            "ZADD hash 1 a",
            "ZINCRBY hash 1 a",
            "ZREM hash a",
            "ZCARD hash",
            "ZCOUNT hash 0 1",
            "ZSCORE hash a",
            "ZRANK hash a",
            "ZREVRANK hash a",
            "ZRANGE hash 0 1",
            "ZRANGEBYSCORE hash 0 1",
            "ZREVRANGEBYSCORE hash 1 0",
            "ZREMRANGEBYSCORE hash 0 1",
            "ZREMRANGEBYRANK hash 0 1",
            "ZPOPMIN hash",
            "ZPOPMAX hash 2",
            "ZSCAN hash 0",
        ] {
            assert_eq!(h.run(cmd), Reply::wrong_type(), "{cmd}");
        }
    }

    #[test]
    fn negative_zero_and_ties() {
        let mut h = Harness::new();
        h.run("ZADD z 0 b -0 a");
        assert_eq!(
            h.run("ZRANGE z 0 -1"),
            bulks(&["a", "b"]),
            "-0 and 0 tie, member order decides"
        );
        assert_eq!(
            h.run("ZADD z CH 0 a"),
            Reply::Int(0),
            "0 is not a change from -0"
        );
        assert_eq!(h.run("ZCOUNT z 0 0"), Reply::Int(2));
        assert_eq!(h.run("ZCOUNT z (-0 0"), Reply::Int(0));
    }
}
