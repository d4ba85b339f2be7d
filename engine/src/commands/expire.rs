//! TTL commands: EXPIRE family, TTL/PTTL, EXPIRETIME, PERSIST.

use bytes::Bytes;

use super::args::{int, is};
use super::{ReadCtx, WriteCtx};
use crate::reply::Reply;

#[derive(Clone, Copy, PartialEq)]
enum Condition {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

fn parse_condition(args: &[Bytes]) -> Result<Condition, Reply> {
    let mut cond = Condition::Always;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for arg in args {
        if is(arg, "NX") {
            nx = true;
            cond = Condition::Nx;
        } else if is(arg, "XX") {
            xx = true;
            cond = Condition::Xx;
        } else if is(arg, "GT") {
            gt = true;
            cond = Condition::Gt;
        } else if is(arg, "LT") {
            lt = true;
            cond = Condition::Lt;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(arg)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    // XX combined with GT/LT behaves like GT/LT (both need a TTL or compare).
    if xx && gt {
        cond = Condition::Gt;
    } else if xx && lt {
        cond = Condition::Lt;
    }
    Ok(cond)
}

/// Shared body of EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
fn expire_generic(
    ctx: &mut WriteCtx<'_>,
    argv: &[Bytes],
    unit_ms: u64,
    absolute: bool,
    command: &str,
) -> Reply {
    let amount = match int(&argv[2]) {
        Ok(v) => v,
        Err(err) => return err,
    };
    let cond = match parse_condition(&argv[3..]) {
        Ok(c) => c,
        Err(err) => return err,
    };
    let invalid = || Reply::error(format!("ERR invalid expire time in '{command}' command"));
    let base = if absolute { 0 } else { ctx.now_ms as i64 };
    let Some(at) = amount
        .checked_mul(unit_ms as i64)
        .and_then(|ms| ms.checked_add(base))
    else {
        return invalid();
    };
    let ks = &mut ctx.data.keyspace;
    let Some(entry) = ks.get(&argv[1], ctx.now_ms) else {
        return Reply::Int(0);
    };
    let current = entry.expire_at_ms;
    let allowed = match cond {
        Condition::Always => true,
        Condition::Nx => current.is_none(),
        Condition::Xx => current.is_some(),
        // No TTL counts as infinite: GT never beats it, LT always does.
        Condition::Gt => current.is_some_and(|c| at > c as i64),
        Condition::Lt => current.is_none_or(|c| at < c as i64),
    };
    if !allowed {
        return Reply::Int(0);
    }
    if at <= ctx.now_ms as i64 {
        ks.remove(&argv[1], ctx.now_ms);
    } else {
        ks.set_expire(&argv[1], Some(at as u64), ctx.now_ms);
    }
    Reply::Int(1)
}

pub fn expire(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    expire_generic(ctx, argv, 1000, false, "expire")
}

pub fn pexpire(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    expire_generic(ctx, argv, 1, false, "pexpire")
}

pub fn expireat(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    expire_generic(ctx, argv, 1000, true, "expireat")
}

pub fn pexpireat(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    expire_generic(ctx, argv, 1, true, "pexpireat")
}

/// Shared body of TTL, PTTL, EXPIRETIME and PEXPIRETIME.
fn ttl_generic(ctx: &ReadCtx<'_>, argv: &[Bytes], millis: bool, absolute: bool) -> Reply {
    let Some(entry) = ctx.data.keyspace.get(&argv[1], ctx.now_ms) else {
        return Reply::Int(-2);
    };
    let Some(at) = entry.expire_at_ms else {
        return Reply::Int(-1);
    };
    let value = if absolute {
        at
    } else {
        at.saturating_sub(ctx.now_ms)
    };
    // Redis rounds seconds to the nearest whole second.
    Reply::Int(if millis { value } else { (value + 500) / 1000 } as i64)
}

pub fn ttl(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    ttl_generic(ctx, argv, false, false)
}

pub fn pttl(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    ttl_generic(ctx, argv, true, false)
}

pub fn expiretime(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    ttl_generic(ctx, argv, false, true)
}

pub fn pexpiretime(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    ttl_generic(ctx, argv, true, true)
}

pub fn persist(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    let has_ttl = ks
        .get(&argv[1], ctx.now_ms)
        .is_some_and(|e| e.expire_at_ms.is_some());
    if has_ttl {
        ks.set_expire(&argv[1], None, ctx.now_ms);
    }
    Reply::Int(has_ttl as i64)
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testing::Harness;

    #[test]
    fn expire_conditions() {
        let mut h = Harness::new();
        h.run("SET k v");
        assert_eq!(h.run("EXPIRE k 100 XX"), Reply::Int(0));
        assert_eq!(h.run("EXPIRE k 100 GT"), Reply::Int(0));
        assert_eq!(h.run("EXPIRE k 100 NX"), Reply::Int(1));
        assert_eq!(h.run("EXPIRE k 50 NX"), Reply::Int(0));
        assert_eq!(h.run("EXPIRE k 50 GT"), Reply::Int(0));
        assert_eq!(h.run("EXPIRE k 200 GT"), Reply::Int(1));
        assert_eq!(h.run("EXPIRE k 10 LT"), Reply::Int(1));
        assert_eq!(h.run("TTL k"), Reply::Int(10));
        assert_eq!(
            h.run("EXPIRE k 10 NX XX"),
            Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible")
        );
        assert_eq!(
            h.run("EXPIRE k 10 FOO"),
            Reply::error("ERR Unsupported option FOO")
        );
        assert_eq!(h.run("EXPIRE missing 10"), Reply::Int(0));
        assert_eq!(h.run("PERSIST k"), Reply::Int(1));
        assert_eq!(h.run("PERSIST k"), Reply::Int(0));
        assert_eq!(h.run("EXPIRE k -1"), Reply::Int(1));
        assert_eq!(h.run("EXISTS k"), Reply::Int(0), "a past expiry deletes");
    }

    #[test]
    fn absolute_times() {
        let mut h = Harness::new();
        h.run("SET k v");
        let at = h.now_ms + 5_000;
        assert_eq!(h.run(&format!("PEXPIREAT k {at}")), Reply::Int(1));
        assert_eq!(h.run("PEXPIRETIME k"), Reply::Int(at as i64));
        assert_eq!(h.run("EXPIRETIME k"), Reply::Int((at / 1000) as i64));
        assert_eq!(h.run("PTTL k"), Reply::Int(5_000));
        assert_eq!(h.run("EXPIRETIME nope"), Reply::Int(-2));
        assert_eq!(
            h.run("EXPIRE k 9223372036854775807"),
            Reply::error("ERR invalid expire time in 'expire' command")
        );
    }
}
