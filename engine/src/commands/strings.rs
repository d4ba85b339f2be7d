//! String commands: GET/SET and friends, counters, APPEND, STRLEN.

use bytes::{Bytes, BytesMut};

use super::args::{format_f64, int, is, parse_f64, parse_i64};
use super::{ReadCtx, WriteCtx};
use crate::keyspace::{Keyspace, Value};
use crate::reply::Reply;

/// Redis's `proto-max-bulk-len` default: no string may grow past it.
pub const MAX_STRING_LEN: usize = 512 * 1024 * 1024;

/// The string under `key`: `Ok(None)` if absent, `Err(WRONGTYPE)` if another type.
fn get_str(ks: &Keyspace, key: &[u8], now_ms: u64) -> Result<Option<Bytes>, Reply> {
    match ks.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Str(data) => Ok(Some(data.clone())),
            _ => Err(Reply::wrong_type()),
        },
    }
}

pub fn get(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    match get_str(&ctx.data.keyspace, &argv[1], ctx.now_ms) {
        Ok(value) => Reply::bulk_or_nil(value),
        Err(err) => err,
    }
}

pub fn strlen(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    match get_str(&ctx.data.keyspace, &argv[1], ctx.now_ms) {
        Ok(value) => Reply::Int(value.map_or(0, |v| v.len() as i64)),
        Err(err) => err,
    }
}

pub fn mget(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    Reply::Array(
        argv[1..]
            .iter()
            .map(|key| match get_str(&ctx.data.keyspace, key, ctx.now_ms) {
                Ok(Some(value)) => Reply::Bulk(value),
                _ => Reply::Nil,
            })
            .collect(),
    )
}

/// An absolute expiry parsed from `EX|PX|EXAT|PXAT` arguments.
pub(super) fn expiry_from(
    unit: &[u8],
    arg: &[u8],
    now_ms: u64,
    command: &str,
) -> Result<u64, Reply> {
    let value = int(arg)?;
    let invalid = || Reply::error(format!("ERR invalid expire time in '{command}' command"));
    if value <= 0 {
        return Err(invalid());
    }
    let value = value as u64;
    let at = if is(unit, "EX") {
        value
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(now_ms))
    } else if is(unit, "PX") {
        value.checked_add(now_ms)
    } else if is(unit, "EXAT") {
        value.checked_mul(1000)
    } else {
        Some(value)
    };
    // Redis keeps expiries within i64 milliseconds.
    at.filter(|&at| at <= i64::MAX as u64).ok_or_else(invalid)
}

#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expire_at_ms: Option<u64>,
}

fn parse_set_options(args: &[Bytes], now_ms: u64) -> Result<SetOptions, Reply> {
    let mut opts = SetOptions::default();
    let mut has_expiry = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if is(arg, "NX") && !opts.xx {
            opts.nx = true;
        } else if is(arg, "XX") && !opts.nx {
            opts.xx = true;
        } else if is(arg, "GET") {
            opts.get = true;
        } else if is(arg, "KEEPTTL") && !has_expiry {
            opts.keep_ttl = true;
            has_expiry = true;
        } else if ["EX", "PX", "EXAT", "PXAT"].iter().any(|k| is(arg, k))
            && !has_expiry
            && i + 1 < args.len()
        {
            opts.expire_at_ms = Some(expiry_from(arg, &args[i + 1], now_ms, "set")?);
            has_expiry = true;
            i += 1;
        } else {
            return Err(Reply::syntax_error());
        }
        i += 1;
    }
    Ok(opts)
}

/// Whether a SET only overwrites its key (no GET option), for `%W~` patterns.
pub fn set_only_overwrites(argv: &[Bytes]) -> bool {
    !argv.iter().skip(3).any(|a| is(a, "GET"))
}

pub fn set(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let opts = match parse_set_options(&argv[3..], ctx.now_ms) {
        Ok(opts) => opts,
        Err(err) => return err,
    };
    let ks = &mut ctx.data.keyspace;
    let key = &argv[1];
    let old = if opts.get {
        match get_str(ks, key, ctx.now_ms) {
            Ok(old) => Some(old),
            Err(err) => return err,
        }
    } else {
        None
    };
    let exists = ks.contains(key, ctx.now_ms);
    if (opts.nx && exists) || (opts.xx && !exists) {
        return match old {
            Some(old) => Reply::bulk_or_nil(old),
            None => Reply::Nil,
        };
    }
    let value = Value::Str(argv[2].clone());
    if opts.keep_ttl {
        ks.insert_keep_ttl(key.clone(), value, ctx.now_ms);
    } else {
        ks.insert(key.clone(), value, opts.expire_at_ms);
    }
    match old {
        Some(old) => Reply::bulk_or_nil(old),
        None => Reply::Ok,
    }
}

pub fn setnx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    if ks.contains(&argv[1], ctx.now_ms) {
        return Reply::Int(0);
    }
    ks.insert(argv[1].clone(), Value::Str(argv[2].clone()), None);
    Reply::Int(1)
}

fn set_with_ttl(ctx: &mut WriteCtx<'_>, argv: &[Bytes], unit: &str, command: &str) -> Reply {
    let at = match expiry_from(unit.as_bytes(), &argv[2], ctx.now_ms, command) {
        Ok(at) => at,
        Err(err) => return err,
    };
    ctx.data
        .keyspace
        .insert(argv[1].clone(), Value::Str(argv[3].clone()), Some(at));
    Reply::Ok
}

pub fn setex(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    set_with_ttl(ctx, argv, "EX", "setex")
}

pub fn psetex(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    set_with_ttl(ctx, argv, "PX", "psetex")
}

pub fn getset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    match get_str(ks, &argv[1], ctx.now_ms) {
        Ok(old) => {
            ks.insert(argv[1].clone(), Value::Str(argv[2].clone()), None);
            Reply::bulk_or_nil(old)
        }
        Err(err) => err,
    }
}

pub fn getdel(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    match get_str(ks, &argv[1], ctx.now_ms) {
        Ok(Some(old)) => {
            ks.remove(&argv[1], ctx.now_ms);
            Reply::Bulk(old)
        }
        Ok(None) => Reply::Nil,
        Err(err) => err,
    }
}

pub fn getex(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    enum Change {
        Keep,
        Persist,
        At(u64),
    }
    let mut change = Change::Keep;
    let mut i = 2;
    while i < argv.len() {
        let arg = &argv[i];
        let unset = matches!(change, Change::Keep);
        if is(arg, "PERSIST") && unset {
            change = Change::Persist;
        } else if ["EX", "PX", "EXAT", "PXAT"].iter().any(|k| is(arg, k))
            && unset
            && i + 1 < argv.len()
        {
            match expiry_from(arg, &argv[i + 1], ctx.now_ms, "getex") {
                Ok(at) => change = Change::At(at),
                Err(err) => return err,
            }
            i += 1;
        } else {
            return Reply::syntax_error();
        }
        i += 1;
    }
    let ks = &mut ctx.data.keyspace;
    let value = match get_str(ks, &argv[1], ctx.now_ms) {
        Ok(Some(value)) => value,
        Ok(None) => return Reply::Nil,
        Err(err) => return err,
    };
    match change {
        Change::Keep => {}
        Change::Persist => {
            ks.set_expire(&argv[1], None, ctx.now_ms);
        }
        Change::At(at) if at <= ctx.now_ms => {
            ks.remove(&argv[1], ctx.now_ms);
        }
        Change::At(at) => {
            ks.set_expire(&argv[1], Some(at), ctx.now_ms);
        }
    }
    Reply::Bulk(value)
}

pub fn mset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return Reply::wrong_arity("mset");
    }
    for pair in argv[1..].chunks_exact(2) {
        ctx.data
            .keyspace
            .insert(pair[0].clone(), Value::Str(pair[1].clone()), None);
    }
    Reply::Ok
}

pub fn msetnx(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    if argv.len().is_multiple_of(2) {
        return Reply::wrong_arity("msetnx");
    }
    let ks = &mut ctx.data.keyspace;
    if argv[1..]
        .chunks_exact(2)
        .any(|pair| ks.contains(&pair[0], ctx.now_ms))
    {
        return Reply::Int(0);
    }
    for pair in argv[1..].chunks_exact(2) {
        ks.insert(pair[0].clone(), Value::Str(pair[1].clone()), None);
    }
    Reply::Int(1)
}

/// Adds `delta` to the integer under `key`, keeping its TTL.
fn incr_by(ctx: &mut WriteCtx<'_>, key: &Bytes, delta: i64) -> Reply {
    let ks = &mut ctx.data.keyspace;
    let current = match get_str(ks, key, ctx.now_ms) {
        Ok(None) => 0,
        Ok(Some(value)) => match parse_i64(&value) {
            Some(n) => n,
            None => return Reply::not_integer(),
        },
        Err(err) => return err,
    };
    let Some(next) = current.checked_add(delta) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    ks.insert_keep_ttl(
        key.clone(),
        Value::Str(Bytes::from(next.to_string())),
        ctx.now_ms,
    );
    Reply::Int(next)
}

pub fn incr(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    incr_by(ctx, &argv[1], 1)
}

pub fn decr(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    incr_by(ctx, &argv[1], -1)
}

pub fn incrby(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    match int(&argv[2]) {
        Ok(delta) => incr_by(ctx, &argv[1], delta),
        Err(err) => err,
    }
}

pub fn decrby(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    match int(&argv[2]) {
        Ok(i64::MIN) => Reply::error("ERR decrement would overflow"),
        Ok(delta) => incr_by(ctx, &argv[1], -delta),
        Err(err) => err,
    }
}

pub fn incrbyfloat(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let not_float = || Reply::error("ERR value is not a valid float");
    let Some(delta) = parse_f64(&argv[2]) else {
        return not_float();
    };
    let ks = &mut ctx.data.keyspace;
    let current = match get_str(ks, &argv[1], ctx.now_ms) {
        Ok(None) => 0.0,
        Ok(Some(value)) => match parse_f64(&value) {
            Some(n) => n,
            None => return not_float(),
        },
        Err(err) => return err,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Reply::error("ERR increment would produce NaN or Infinity");
    }
    let text = Bytes::from(format_f64(next));
    ks.insert_keep_ttl(argv[1].clone(), Value::Str(text.clone()), ctx.now_ms);
    Reply::Bulk(text)
}

pub fn append(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    let current = match get_str(ks, &argv[1], ctx.now_ms) {
        Ok(current) => current.unwrap_or_default(),
        Err(err) => return err,
    };
    let len = current.len() + argv[2].len();
    if len > MAX_STRING_LEN {
        return Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut joined = BytesMut::with_capacity(len);
    joined.extend_from_slice(&current);
    joined.extend_from_slice(&argv[2]);
    ks.insert_keep_ttl(argv[1].clone(), Value::Str(joined.freeze()), ctx.now_ms);
    Reply::Int(len as i64)
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::{bulk, Harness};

    #[test]
    fn set_options() {
        let mut h = Harness::new();
        assert_eq!(h.run("SET k v"), Reply::Ok);
        assert_eq!(h.run("SET k w NX"), Reply::Nil);
        assert_eq!(h.run("SET k w XX GET"), bulk("v"));
        assert_eq!(h.run("SET n w XX"), Reply::Nil);
        assert_eq!(h.run("SET k v NX XX"), Reply::syntax_error());
        assert_eq!(h.run("SET k v EX 10 PX 5"), Reply::syntax_error());
        assert_eq!(
            h.run("SET k v EX 0"),
            Reply::error("ERR invalid expire time in 'set' command")
        );
        assert_eq!(h.run("SET k v EX x"), Reply::not_integer());
        assert_eq!(h.run("SET k v EX 10"), Reply::Ok);
        assert_eq!(h.run("PTTL k"), Reply::Int(10_000));
        assert_eq!(h.run("SET k v2 KEEPTTL"), Reply::Ok);
        assert_eq!(h.run("PTTL k"), Reply::Int(10_000));
        assert_eq!(h.run("SET k v3"), Reply::Ok);
        assert_eq!(h.run("TTL k"), Reply::Int(-1));
    }

    #[test]
    fn expiry_exactly_at_the_boundary() {
        let mut h = Harness::new();
        h.run("SET k v PX 100");
        h.now_ms += 100;
        assert_eq!(h.run("GET k"), bulk("v"), "alive at exactly its expiry");
        assert_eq!(h.run("PTTL k"), Reply::Int(0));
        h.now_ms += 1;
        assert_eq!(h.run("GET k"), Reply::Nil);
        assert_eq!(h.run("PTTL k"), Reply::Int(-2));
        assert_eq!(h.run("EXISTS k"), Reply::Int(0));
    }

    #[test]
    fn counters() {
        let mut h = Harness::new();
        assert_eq!(h.run("INCR c"), Reply::Int(1));
        assert_eq!(h.run("INCRBY c 41"), Reply::Int(42));
        assert_eq!(h.run("DECRBY c 2"), Reply::Int(40));
        assert_eq!(h.run("DECR c"), Reply::Int(39));
        h.run("SET big 9223372036854775807");
        assert_eq!(
            h.run("INCR big"),
            Reply::error("ERR increment or decrement would overflow")
        );
        h.run("SET s abc");
        assert_eq!(h.run("INCR s"), Reply::not_integer());
        assert_eq!(h.run("INCRBYFLOAT f 10.5"), bulk("10.5"));
        assert_eq!(h.run("INCRBYFLOAT f 0.1"), bulk("10.6"));
        assert_eq!(
            h.run("INCRBYFLOAT s 1"),
            Reply::error("ERR value is not a valid float")
        );
        h.run("SET t 5 EX 100");
        h.run("INCR t");
        assert_eq!(h.run("TTL t"), Reply::Int(100), "INCR keeps the TTL");
    }

    #[test]
    fn multi_key() {
        let mut h = Harness::new();
        assert_eq!(h.run("MSET a 1 b 2"), Reply::Ok);
        assert_eq!(
            h.run("MGET a b c"),
            Reply::Array(vec![bulk("1"), bulk("2"), Reply::Nil])
        );
        assert_eq!(h.run("MSETNX c 3 a 9"), Reply::Int(0));
        assert_eq!(h.run("MSETNX c 3 d 4"), Reply::Int(1));
        assert_eq!(h.run("MSET a"), Reply::wrong_arity("mset"));
        assert_eq!(h.run("APPEND a xyz"), Reply::Int(4));
        assert_eq!(h.run("STRLEN a"), Reply::Int(4));
        assert_eq!(h.run("GETDEL a"), bulk("1xyz"));
        assert_eq!(h.run("GETSET b 5"), bulk("2"));
        assert_eq!(h.run("GETEX b EX 5"), bulk("5"));
        assert_eq!(h.run("TTL b"), Reply::Int(5));
        assert_eq!(h.run("GETEX b PERSIST"), bulk("5"));
        assert_eq!(h.run("TTL b"), Reply::Int(-1));
    }
}
