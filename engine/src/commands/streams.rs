//! Stream commands without consumer groups: XADD (NOMKSTREAM, MAXLEN/MINID
//! trimming, `*`, `<ms>-*` and explicit IDs), XLEN, XRANGE, XREVRANGE, XDEL,
//! XTRIM.
//!
//! `*` takes its milliseconds from the log entry's stamp, so every replica
//! assigns the same ID; a stream's IDs never go backwards because the stamp
//! never does and the last ID is kept even when the newest entry is deleted.
//! Approximate trimming (`~`) trims exactly, up to its LIMIT: Redis removes
//! whole radix-tree nodes only, which would depend on an encoding raftlimit
//! does not have.

use bytes::Bytes;

use super::args::{int, is, parse_i64};
use super::{read_as, respond, write_as, ReadCtx, WriteCtx};
use crate::keyspace::{Stream, StreamId};
use crate::reply::Reply;

/// Redis's `100 * stream-node-max-entries`: the default LIMIT of a `~` trim.
const APPROX_TRIM_LIMIT: u64 = 10_000;

fn invalid_id() -> Reply {
    Reply::error("ERR Invalid stream ID specified as stream command argument")
}

fn not_above_top() -> Reply {
    Reply::error("ERR The ID specified in XADD is equal or smaller than the target stream top item")
}

fn read<'a>(ctx: &'a ReadCtx<'_>, key: &[u8]) -> Result<Option<&'a Stream>, Reply> {
    read_as::<Stream>(&ctx.data.keyspace, key, ctx.now_ms)
}

/// Redis's `string2ull`: a canonical integer, or what C's `strtoull` takes
/// (leading white space, a sign, leading zeros; a negative sign wraps).
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(value) = parse_i64(text) {
        return u64::try_from(value).ok();
    }
    let start = text
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let (negative, digits) = match text[start] {
        b'-' => (true, &text[start + 1..]),
        b'+' => (false, &text[start + 1..]),
        _ => (false, &text[start..]),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// How an ID argument may be written.
#[derive(Clone, Copy)]
struct IdSyntax {
    /// `-` and `+` stand for the smallest and largest IDs.
    extremes: bool,
    /// `<ms>-*` asks for the next sequence number (XADD).
    auto_seq: bool,
    /// The sequence number of a bare `<ms>`.
    missing_seq: u64,
}

const STRICT: IdSyntax = IdSyntax {
    extremes: false,
    auto_seq: false,
    missing_seq: 0,
};

/// A parsed ID; `seq` is `None` for `<ms>-*`.
fn parse_id(arg: &[u8], syntax: IdSyntax) -> Result<(u64, Option<u64>), Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" | b"+" if !syntax.extremes => return Err(invalid_id()),
        b"-" => return Ok((0, Some(0))),
        b"+" => return Ok((u64::MAX, Some(u64::MAX))),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&c| c == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms).ok_or_else(invalid_id)?;
    let seq = match seq {
        None => Some(syntax.missing_seq),
        Some(b"*") if syntax.auto_seq => None,
        Some(seq) => Some(parse_u64(seq).ok_or_else(invalid_id)?),
    };
    Ok((ms, seq))
}

fn strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    let (ms, seq) = parse_id(arg, STRICT)?;
    Ok(StreamId {
        ms,
        seq: seq.unwrap_or(0),
    })
}

enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// The trimming options of XADD and XTRIM.
struct TrimArgs {
    strategy: Option<Trim>,
    /// Most entries one trim may remove; 0 is no limit.
    limit: u64,
}

/// What XADD asks for: `None` is `*`, else the ID with `None` for `<ms>-*`.
type RequestedId = Option<(u64, Option<u64>)>;

/// Parses `[NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]` from
/// `argv[2..]`, as Redis's `streamParseAddOrTrimArgsOrReply`. For XADD it
/// stops at the ID and returns its position, whether NOMKSTREAM was given,
/// and the ID.
fn parse_trim(argv: &[Bytes], xadd: bool) -> Result<(TrimArgs, usize, bool, RequestedId), Reply> {
    let mut strategy = None;
    let mut approx = false;
    let mut limit: Option<u64> = None;
    let mut no_mkstream = false;
    let mut id = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i];
        if xadd && &opt[..] == b"*" {
            break;
        } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
            if strategy.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let marker = &argv[i + 1][..];
            if more >= 2 && (marker == b"~" || marker == b"=") {
                approx = marker == b"~";
                i += 1;
            }
            let threshold = &argv[i + 1];
            strategy = Some(if is(opt, "MAXLEN") {
                let max_len = int(threshold)?;
                if max_len < 0 {
                    return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(max_len as u64)
            } else {
                Trim::MinId(strict_id(threshold)?)
            });
            i += 1;
        } else if is(opt, "LIMIT") && more > 0 {
            let count = int(&argv[i + 1])?;
            if count < 0 {
                return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(count as u64);
            i += 1;
        } else if xadd && is(opt, "NOMKSTREAM") {
            no_mkstream = true;
        } else if xadd {
            let syntax = IdSyntax {
                auto_seq: true,
                ..STRICT
            };
            id = Some(parse_id(opt, syntax)?);
            break;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && strategy.is_none() {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(Reply::syntax_error());
    }
    let limit = match limit {
        Some(_) if !approx => {
            return Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ))
        }
        Some(limit) => limit,
        None if approx => APPROX_TRIM_LIMIT,
        None => 0,
    };
    Ok((TrimArgs { strategy, limit }, i, no_mkstream, id))
}

fn trim(stream: &mut Stream, args: &TrimArgs) -> u64 {
    match args.strategy {
        Some(Trim::MaxLen(max_len)) => stream.trim_max_len(max_len, args.limit),
        Some(Trim::MinId(min_id)) => stream.trim_min_id(min_id, args.limit),
        None => 0,
    }
}

/// The ID XADD assigns, as Redis's `streamAppendItem` picks it.
fn next_id(stream: &Stream, requested: RequestedId, now_ms: u64) -> Result<StreamId, Reply> {
    let last = stream.last_id();
    let id = match requested {
        Some((ms, Some(seq))) => StreamId { ms, seq },
        Some((ms, None)) if ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(not_above_top());
            }
            StreamId {
                ms,
                seq: last.seq + 1,
            }
        }
        Some((ms, None)) => StreamId { ms, seq: 0 },
        // The entry's stamp, or the last ID's next one if the stamp is not
        // past it: IDs never go backwards.
        None if now_ms > last.ms => StreamId { ms: now_ms, seq: 0 },
        None => last.next().ok_or_else(not_above_top)?,
    };
    if id <= last {
        return Err(not_above_top());
    }
    Ok(id)
}

pub fn xadd(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let (trim_args, id_pos, no_mkstream, requested) = parse_trim(argv, true)?;
        let fields = argv.get(id_pos + 1..).unwrap_or_default();
        if fields.len() < 2 || fields.len() % 2 == 1 {
            return Err(Reply::wrong_arity("xadd"));
        }
        if requested == Some((0, Some(0))) {
            return Err(Reply::error(
                "ERR The ID specified in XADD must be greater than 0-0",
            ));
        }
        let now_ms = ctx.now_ms;
        let added = write_as::<Stream, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            now_ms,
            !no_mkstream,
            |stream| {
                if stream.last_id() == StreamId::MAX {
                    return Err(Reply::error(
                        "ERR The stream has exhausted the last possible ID, unable to add more items",
                    ));
                }
                let id = next_id(stream, requested, now_ms)?;
                if !stream.append(id, fields.to_vec()) {
                    return Err(not_above_top());
                }
                trim(stream, &trim_args);
                Ok(id)
            },
        )?;
        match added {
            None => Ok(Reply::Nil),
            Some(id) => Ok(Reply::bulk(id?.to_string().into_bytes())),
        }
    })
}

pub fn xtrim(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        let (trim_args, _, _, _) = parse_trim(argv, false)?;
        let removed = write_as::<Stream, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |stream| trim(stream, &trim_args),
        )?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn xdel(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        // Every ID is checked before anything is deleted.
        let ids = argv[2..]
            .iter()
            .map(|arg| strict_id(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let removed = write_as::<Stream, _>(
            &mut ctx.data.keyspace,
            &argv[1],
            ctx.now_ms,
            false,
            |stream| ids.iter().filter(|id| stream.remove(**id)).count(),
        )?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

pub fn xlen(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    respond(|| {
        Ok(Reply::Int(
            read(ctx, &argv[1])?.map_or(0, Stream::len) as i64
        ))
    })
}

/// One end of an XRANGE interval: `-`, `+`, `<ms>[-<seq>]`, or `(` before an
/// ID for an exclusive end.
fn interval_id(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, Reply> {
    let (exclusive, text) = match arg {
        [b'(', rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, arg),
    };
    let syntax = IdSyntax {
        extremes: !exclusive,
        auto_seq: false,
        missing_seq,
    };
    let (ms, seq) = parse_id(text, syntax)?;
    let id = StreamId {
        ms,
        seq: seq.unwrap_or(missing_seq),
    };
    match (exclusive, start) {
        (false, _) => Ok(id),
        (true, true) => id
            .next()
            .ok_or_else(|| Reply::error("ERR invalid start ID for the interval")),
        (true, false) => id
            .prev()
            .ok_or_else(|| Reply::error("ERR invalid end ID for the interval")),
    }
}

fn range(ctx: &ReadCtx<'_>, argv: &[Bytes], rev: bool) -> Reply {
    respond(|| {
        let (start_arg, end_arg) = if rev {
            (&argv[3], &argv[2])
        } else {
            (&argv[2], &argv[3])
        };
        let start = interval_id(start_arg, 0, true)?;
        let end = interval_id(end_arg, u64::MAX, false)?;
        let mut count: Option<u64> = None;
        let mut j = 4;
        while j < argv.len() {
            if is(&argv[j], "COUNT") && j + 1 < argv.len() {
                count = Some(int(&argv[j + 1])?.max(0) as u64);
                j += 2;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        let Some(stream) = read(ctx, &argv[1])? else {
            return Ok(Reply::empty_array());
        };
        if count == Some(0) {
            return Ok(Reply::NilArray);
        }
        let entry = |(id, fields): (&StreamId, &Vec<Bytes>)| {
            Reply::Array(vec![
                Reply::bulk(id.to_string().into_bytes()),
                Reply::Array(fields.iter().cloned().map(Reply::Bulk).collect()),
            ])
        };
        let take = count.map_or(usize::MAX, |n| n.min(usize::MAX as u64) as usize);
        let entries = stream.range(start, end);
        Ok(Reply::Array(if rev {
            entries.rev().take(take).map(entry).collect()
        } else {
            entries.take(take).map(entry).collect()
        }))
    })
}

pub fn xrange(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    range(ctx, argv, false)
}

pub fn xrevrange(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    range(ctx, argv, true)
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::{bulk, Harness};

    fn err(s: &str) -> Reply {
        Reply::error(s)
    }

    /// The IDs of an XRANGE/XREVRANGE reply.
    fn ids(reply: Reply) -> Vec<String> {
        let Reply::Array(entries) = reply else {
            panic!("{reply:?}")
        };
        entries
            .into_iter()
            .map(|e| match e {
                Reply::Array(parts) => match &parts[0] {
                    Reply::Bulk(id) => String::from_utf8_lossy(id).into_owned(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    const TOP: &str =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    const INVALID: &str = "ERR Invalid stream ID specified as stream command argument";

    #[test]
    fn xadd_ids_explicit_partial_and_from_the_stamp() {
        let mut h = Harness::new();
        assert_eq!(h.run("XADD s 5 f v"), bulk("5-0"));
        assert_eq!(h.run("XADD s 5 f v"), err(TOP));
        assert_eq!(h.run("XADD s 5-* f v"), bulk("5-1"));
        assert_eq!(h.run("XADD s 4-* a b"), err(TOP));
        assert_eq!(
            h.run("XADD s 0-0 a b"),
            err("ERR The ID specified in XADD must be greater than 0-0")
        );
        assert_eq!(h.run("XADD s abc a b"), err(INVALID));
        assert_eq!(
            h.run("XADD s 6-1 a"),
            err("ERR wrong number of arguments for 'xadd' command")
        );
        // `*` is the entry stamp's milliseconds.
        let now = h.now_ms;
        assert_eq!(h.run("XADD s * a b"), bulk(&format!("{now}-0")));
        assert_eq!(h.run("XADD s * a b"), bulk(&format!("{now}-1")));
        // A stamp behind the last ID never moves IDs backwards.
        h.now_ms -= 10;
        assert_eq!(h.run("XADD s * a b"), bulk(&format!("{now}-2")));
        h.now_ms += 20;
        assert_eq!(h.run("XADD s * a b"), bulk(&format!("{}-0", now + 10)));
        // strtoull's leniency, as Redis.
        assert_eq!(h.run("XADD t 00005-01 a b"), bulk("5-1"));
        assert_eq!(h.run("XADD t 7-+1 a b"), bulk("7-1"));
        assert_eq!(h.run("XADD t -7 a b"), err(INVALID));
        assert_eq!(h.run("XADD t 8- a b"), err(INVALID));
        assert_eq!(
            h.run("XADD t 9-18446744073709551615 a b"),
            bulk("9-18446744073709551615")
        );
        assert_eq!(h.run("XADD t 9-* a b"), err(TOP));
        assert_eq!(h.run("XADD t 18446744073709551616 a b"), err(INVALID));
        assert_eq!(
            h.run("XADD t 18446744073709551615-18446744073709551615 a b"),
            bulk("18446744073709551615-18446744073709551615")
        );
        assert_eq!(
            h.run("XADD t * a b"),
            err("ERR The stream has exhausted the last possible ID, unable to add more items")
        );
        assert_eq!(h.run("XADD x 0-* a b"), bulk("0-1"));
    }

    #[test]
    fn xadd_creates_keys_as_redis() {
        let mut h = Harness::new();
        assert_eq!(h.run("XADD n NOMKSTREAM * a b"), Reply::Nil);
        assert_eq!(h.run("EXISTS n"), Reply::Int(0));
        assert!(h.run("XADD z 0-0 a b").is_error());
        assert_eq!(
            h.run("EXISTS z"),
            Reply::Int(0),
            "a refused XADD creates nothing"
        );
        // Trimmed to nothing, the stream key still exists.
        assert!(matches!(h.run("XADD n MAXLEN 0 * a b"), Reply::Bulk(_)));
        assert_eq!(h.run("EXISTS n"), Reply::Int(1));
        assert_eq!(h.run("XLEN n"), Reply::Int(0));
        assert_eq!(h.run("TYPE n"), Reply::status("stream"));
        assert_eq!(h.run("OBJECT ENCODING n"), bulk("btree"));
        assert!(matches!(h.run("MEMORY USAGE n"), Reply::Int(_)));
        h.run("SET str x");
        assert_eq!(h.run("XADD str * a b"), Reply::wrong_type());
        assert_eq!(h.run("XLEN str"), Reply::wrong_type());
        assert_eq!(h.run("XRANGE str - +"), Reply::wrong_type());
        assert_eq!(h.run("LPUSH n x"), Reply::wrong_type());
        h.run("EXPIRE n 100");
        h.run("XADD n * c d");
        assert_eq!(h.run("TTL n"), Reply::Int(100), "XADD keeps the TTL");
    }

    #[test]
    fn xadd_and_xtrim_trimming() {
        let mut h = Harness::new();
        for ms in 1..=5 {
            h.run(&format!("XADD s {ms} f v"));
        }
        assert_eq!(h.run("XADD s MAXLEN = 3 6 f v"), bulk("6-0"));
        assert_eq!(ids(h.run("XRANGE s - +")), ["4-0", "5-0", "6-0"]);
        assert_eq!(h.run("XADD s MAXLEN ~ 1 LIMIT 1 7 f v"), bulk("7-0"));
        assert_eq!(h.run("XLEN s"), Reply::Int(3));
        assert_eq!(h.run("XTRIM s MINID 6"), Reply::Int(1));
        assert_eq!(h.run("XTRIM s MAXLEN 0"), Reply::Int(2));
        assert_eq!(h.run("XLEN s"), Reply::Int(0));
        assert_eq!(h.run("EXISTS s"), Reply::Int(1));
        assert_eq!(
            h.run("XADD s 7 f v"),
            err(TOP),
            "the last ID outlives its entry"
        );
        assert_eq!(h.run("XADD s2 MINID 7 6 a b"), bulk("6-0"));
        assert_eq!(h.run("XLEN s2"), Reply::Int(0));
        for (line, reply) in [
            (
                "XADD s MAXLEN 2 LIMIT 5 * a b",
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ),
            (
                "XADD s LIMIT 1 * a b",
                "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
            ),
            (
                "XADD s MAXLEN -1 * a b",
                "ERR The MAXLEN argument must be >= 0.",
            ),
            (
                "XADD s MAXLEN x * a b",
                "ERR value is not an integer or out of range",
            ),
            (
                "XADD s MAXLEN ~ 1 LIMIT -1 * a b",
                "ERR The LIMIT argument must be >= 0.",
            ),
            ("XADD s MINID - * a b", INVALID),
            (
                "XADD s MAXLEN 1 MINID 2 * a b",
                "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
            ),
            (
                "XADD s MAXLEN 1 *",
                "ERR wrong number of arguments for 'xadd' command",
            ),
            ("XTRIM s FOO 1", "ERR syntax error"),
            ("XTRIM s MINID 99 foo", "ERR syntax error"),
            (
                "XTRIM s MAXLEN = 1 LIMIT 1",
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ),
        ] {
            assert_eq!(h.run(line), err(reply), "{line}");
        }
        assert_eq!(h.run("XTRIM nope MAXLEN 0"), Reply::Int(0));
        assert_eq!(h.run("EXISTS nope"), Reply::Int(0));
    }

    #[test]
    fn ranges_and_deletes() {
        let mut h = Harness::new();
        for id in ["5-0", "5-1", "7-0", "9-3"] {
            h.run(&format!("XADD s {id} f {id}"));
        }
        assert_eq!(ids(h.run("XRANGE s - +")), ["5-0", "5-1", "7-0", "9-3"]);
        assert_eq!(ids(h.run("XRANGE s 5 5")), ["5-0", "5-1"]);
        assert_eq!(ids(h.run("XRANGE s (5 +")), ["5-1", "7-0", "9-3"]);
        assert_eq!(ids(h.run("XRANGE s 5-1 (9-3")), ["5-1", "7-0"]);
        assert_eq!(ids(h.run("XRANGE s - + COUNT 2")), ["5-0", "5-1"]);
        assert_eq!(ids(h.run("XREVRANGE s + - COUNT 1")), ["9-3"]);
        assert_eq!(ids(h.run("XREVRANGE s (9-3 (5-0")), ["7-0", "5-1"]);
        assert_eq!(ids(h.run("XRANGE s + -")), Vec::<String>::new());
        assert_eq!(h.run("XRANGE s - + COUNT 0"), Reply::NilArray);
        assert_eq!(h.run("XRANGE s - + COUNT -1"), Reply::NilArray);
        assert_eq!(ids(h.run("XRANGE s - + COUNT 0 COUNT 1")), ["5-0"]);
        assert_eq!(h.run("XRANGE nope - +"), Reply::empty_array());
        assert_eq!(
            h.run("XRANGE s 7 7"),
            Reply::Array(vec![Reply::Array(vec![
                bulk("7-0"),
                Reply::Array(vec![bulk("f"), bulk("7-0")])
            ])])
        );
        for (line, reply) in [
            ("XRANGE s (- +", INVALID),
            ("XREVRANGE s + (+", INVALID),
            ("XRANGE s x +", INVALID),
            ("XRANGE s - + COUNT", "ERR syntax error"),
            ("XRANGE s - + FOO 1", "ERR syntax error"),
            (
                "XRANGE s - + COUNT x",
                "ERR value is not an integer or out of range",
            ),
            (
                "XRANGE s (18446744073709551615-18446744073709551615 +",
                "ERR invalid start ID for the interval",
            ),
            ("XRANGE s - (0-0", "ERR invalid end ID for the interval"),
            ("XREVRANGE s (0-0 -", "ERR invalid end ID for the interval"),
        ] {
            assert_eq!(h.run(line), err(reply), "{line}");
        }
        assert_eq!(h.run("XDEL s 5-1 99 5-1"), Reply::Int(1));
        assert_eq!(h.run("XDEL s 7 -"), err(INVALID));
        assert_eq!(h.run("XLEN s"), Reply::Int(3), "a bad ID deletes nothing");
        assert_eq!(h.run("XDEL s 5 7 9-3"), Reply::Int(3));
        assert_eq!(h.run("EXISTS s"), Reply::Int(1));
        assert_eq!(h.run("XDEL nope 1"), Reply::Int(0));
    }
}
