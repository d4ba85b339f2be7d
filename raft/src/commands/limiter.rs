//! Native limiter commands: RL.CHECK, RL.MCHECK, RL.REFUND, RL.RESET,
//! RL.ACQUIRE, RL.RELEASE, RL.POLICY and redis-cell's CL.THROTTLE.
//!
//! The arithmetic lives in the `raftlimit-limiter` crate; this module parses
//! arguments, loads and stores state in the keyspace, and shapes replies. All
//! of it runs inside apply with the entry's stamp as "now", so every replica
//! reaches the same decision and a failover cannot admit more than the limit.

use std::collections::HashSet;

use bytes::Bytes;
use raftlimit_limiter::{
    check, parse_duration, refund, throttle, Algo, Decision, LeaseSet, LimiterError, LimiterState,
    Params,
};
use serde::{Deserialize, Serialize};

use super::args::{is, parse_i64};
use super::{ReadCtx, WriteCtx};
use crate::keyspace::{Keyspace, Value};
use crate::reply::Reply;

/// A named limit, set in the config file or with RL.POLICY SET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub params: Params,
    /// Evaluate and count, but always allow: for trying a limit on live traffic.
    pub shadow: bool,
}

/// Most limits one RL.MCHECK may name.
const MAX_MCHECK_KEYS: usize = 64;

fn limiter_error(err: LimiterError) -> Reply {
    Reply::error(format!("ERR {err}"))
}

fn positive(arg: &[u8], name: &str) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(n) if n > 0 => Ok(n as u64),
        _ => Err(Reply::error(format!(
            "ERR {name} must be a positive integer"
        ))),
    }
}

fn non_negative(arg: &[u8], name: &str) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Reply::error(format!(
            "ERR {name} must be a non-negative integer"
        ))),
    }
}

/// The limit a check is evaluated against, and under which label it is counted.
struct Resolved {
    params: Params,
    shadow: bool,
    label: String,
}

/// A limit as the command spells it, before a policy name is looked up.
#[derive(Debug, Clone, PartialEq)]
enum LimitSpec {
    Inline(Params),
    Policy(String),
}

impl LimitSpec {
    fn resolve(self, ctx: &WriteCtx<'_>) -> Result<Resolved, Reply> {
        match self {
            LimitSpec::Inline(params) => Ok(Resolved {
                params,
                shadow: false,
                label: "inline".into(),
            }),
            LimitSpec::Policy(name) => {
                let policy = ctx
                    .data
                    .policies
                    .get(&name)
                    .ok_or_else(|| Reply::error(format!("ERR no such policy '{name}'")))?;
                Ok(Resolved {
                    params: policy.params,
                    shadow: policy.shadow,
                    label: name,
                })
            }
        }
    }
}

/// Parses `limit period [BURST n] [ALGO a]` or `POLICY name` starting at
/// `args[0]`; returns the limit and how many arguments it used. Stops at any
/// keyword in `stop`.
fn parse_limit(args: &[Bytes], stop: &[&str]) -> Result<(LimitSpec, usize), Reply> {
    let first = args.first().ok_or_else(Reply::syntax_error)?;
    if is(first, "POLICY") {
        let name = args.get(1).ok_or_else(Reply::syntax_error)?;
        let name = String::from_utf8_lossy(name).into_owned();
        return Ok((LimitSpec::Policy(name), 2));
    }
    let limit = positive(first, "limit")?;
    let period =
        parse_duration(args.get(1).ok_or_else(Reply::syntax_error)?).map_err(limiter_error)?;
    let (mut burst, mut algo) = (None, Algo::Gcra);
    let mut used = 2;
    while let Some(arg) = args.get(used) {
        if stop.iter().any(|k| is(arg, k)) {
            break;
        }
        let value = args.get(used + 1).ok_or_else(Reply::syntax_error)?;
        if is(arg, "BURST") {
            burst = Some(positive(value, "burst")?);
        } else if is(arg, "ALGO") {
            algo = Algo::parse(value).map_err(limiter_error)?;
        } else {
            return Err(Reply::syntax_error());
        }
        used += 2;
    }
    let params = Params::new(limit, period, burst, algo).map_err(limiter_error)?;
    Ok((LimitSpec::Inline(params), used))
}

/// Longest `ID` token accepted: room for a UUID or a hash, not for a payload.
const MAX_ID_LEN: usize = 128;

/// The trailing options of RL.CHECK and RL.MCHECK: `[COST n] [PEEK] [ID token]`.
#[derive(Debug, Clone, PartialEq)]
struct Trailer {
    cost: u64,
    peek: bool,
    /// The client's idempotency token; the node turns it into the request
    /// id (see [`idempotency_token`]), so apply itself ignores it.
    id: Option<Bytes>,
}

fn parse_trailer(args: &[Bytes]) -> Result<Trailer, Reply> {
    let mut trailer = Trailer {
        cost: 1,
        peek: false,
        id: None,
    };
    let mut i = 0;
    while i < args.len() {
        if is(&args[i], "PEEK") {
            trailer.peek = true;
            i += 1;
        } else if is(&args[i], "COST") && i + 1 < args.len() {
            trailer.cost = non_negative(&args[i + 1], "cost")?;
            i += 2;
        } else if is(&args[i], "ID") && i + 1 < args.len() {
            let token = &args[i + 1];
            if token.is_empty() || token.len() > MAX_ID_LEN {
                return Err(Reply::error(format!(
                    "ERR ID must be 1 to {MAX_ID_LEN} bytes"
                )));
            }
            trailer.id = Some(token.clone());
            i += 2;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    Ok(trailer)
}

/// Keywords that end an inline limit in RL.CHECK.
const CHECK_STOP: &[&str] = &["COST", "PEEK", "ID"];
/// Keywords that end an inline limit in RL.MCHECK.
const MCHECK_STOP: &[&str] = &["LIMIT", "POLICY", "COST", "PEEK", "ID"];

/// RL.CHECK's arguments after the key.
fn parse_check(argv: &[Bytes]) -> Result<(LimitSpec, Trailer), Reply> {
    let args = argv.get(2..).ok_or_else(Reply::syntax_error)?;
    let (limit, used) = parse_limit(args, CHECK_STOP)?;
    Ok((limit, parse_trailer(&args[used..])?))
}

/// RL.MCHECK's keys, one limit per key, and the trailer.
fn parse_mcheck(argv: &[Bytes]) -> Result<(&[Bytes], Vec<LimitSpec>, Trailer), Reply> {
    let numkeys = match argv.get(1).and_then(|n| parse_i64(n)) {
        Some(n) if n >= 1 && n as usize <= MAX_MCHECK_KEYS => n as usize,
        _ => {
            return Err(Reply::error(format!(
                "ERR numkeys must be between 1 and {MAX_MCHECK_KEYS}"
            )))
        }
    };
    let keys = argv.get(2..2 + numkeys).ok_or_else(Reply::syntax_error)?;
    let mut distinct = HashSet::new();
    if !keys.iter().all(|k| distinct.insert(k)) {
        return Err(Reply::error("ERR a key may appear only once in RL.MCHECK"));
    }
    let mut pos = 2 + numkeys;
    let mut limits = Vec::with_capacity(numkeys);
    for _ in 0..numkeys {
        let arg = argv.get(pos).ok_or_else(Reply::syntax_error)?;
        let (limit, used) = if is(arg, "LIMIT") {
            let (limit, used) = parse_limit(&argv[pos + 1..], MCHECK_STOP)?;
            (limit, used + 1)
        } else if is(arg, "POLICY") {
            parse_limit(&argv[pos..], &[])?
        } else {
            return Err(Reply::syntax_error());
        };
        limits.push(limit);
        pos += used;
    }
    Ok((keys, limits, parse_trailer(&argv[pos..])?))
}

/// The `ID token` of a well-formed RL.CHECK or RL.MCHECK, if it has one.
///
/// Why a token and not the node's own request id: a client whose connection
/// died cannot know whether its check was applied, and a plain resend would
/// charge it twice. With a token the resend, to any node and within the
/// de-duplication window, carries the same request id and is answered with
/// the first reply instead of being applied again.
pub fn idempotency_token(argv: &[Bytes]) -> Option<Bytes> {
    let name = argv.first()?;
    let trailer = if is(name, "RL.CHECK") {
        parse_check(argv).ok()?.1
    } else if is(name, "RL.MCHECK") {
        parse_mcheck(argv).ok()?.2
    } else {
        return None;
    };
    trailer.id
}

fn limiter_state<'a>(
    ks: &'a Keyspace,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a LimiterState>, Reply> {
    match ks.get(key, now_ms).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Limiter(state)) => Ok(Some(state)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// The key's TTL is the time until it is full again: idle keys vanish.
fn store_state(ctx: &mut WriteCtx<'_>, key: &Bytes, state: LimiterState, expires_at_ns: u64) {
    let expire_ms = expires_at_ns.div_ceil(1_000_000).max(ctx.now_ms + 1);
    ctx.data.keyspace.insert(
        key.clone(),
        Value::Limiter(Box::new(state)),
        Some(expire_ms),
    );
}

fn count_decision(ctx: &WriteCtx<'_>, label: &str, decision: &Decision, shadow: bool) {
    if !ctx.observe {
        return;
    }
    let outcome = match (decision.allowed, shadow) {
        (true, _) => "allowed",
        (false, false) => "denied",
        (false, true) => "shadow_denied",
    };
    metrics::counter!("raftlimit_limiter_checks_total", "policy" => label.to_owned(), "outcome" => outcome)
        .increment(1);
}

fn decision_reply(d: &Decision) -> Reply {
    Reply::Decision(Box::new(*d))
}

/// `RL.CHECK key (limit period [BURST n] [ALGO a] | POLICY name) [COST n] [PEEK] [ID token]`
pub fn rl_check(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let result = (|| {
        let (limit, trailer) = parse_check(argv)?;
        let limit = limit.resolve(ctx)?;
        let (cost, peek) = (trailer.cost, trailer.peek);
        let key = &argv[1];
        let state = limiter_state(&ctx.data.keyspace, key, ctx.now_ms)?.cloned();
        let outcome = check(state.as_ref(), &limit.params, cost, ctx.now_ns, peek);
        if let Some(new_state) = outcome.new_state {
            store_state(ctx, key, new_state, outcome.expires_at_ns);
        }
        count_decision(ctx, &limit.label, &outcome.decision, limit.shadow);
        let decision = if limit.shadow {
            outcome.decision.shadowed()
        } else {
            outcome.decision
        };
        Ok(decision_reply(&decision))
    })();
    result.unwrap_or_else(|err: Reply| err)
}

/// `RL.MCHECK numkeys key [key ...] (LIMIT limit period [BURST n] [ALGO a] |
/// POLICY name) per key [COST n] [PEEK] [ID token]`: all or nothing.
pub fn rl_mcheck(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let result = (|| {
        let (keys, specs, trailer) = parse_mcheck(argv)?;
        let limits = specs
            .into_iter()
            .map(|spec| spec.resolve(ctx))
            .collect::<Result<Vec<_>, _>>()?;
        let (cost, peek) = (trailer.cost, trailer.peek);
        // Evaluate every limit without consuming; shadow limits never block.
        let mut outcomes = Vec::with_capacity(keys.len());
        for (key, limit) in keys.iter().zip(&limits) {
            let state = limiter_state(&ctx.data.keyspace, key, ctx.now_ms)?.cloned();
            outcomes.push((
                state.clone(),
                check(state.as_ref(), &limit.params, cost, ctx.now_ns, true),
            ));
        }
        let allowed = outcomes
            .iter()
            .zip(&limits)
            .all(|((_, o), l)| o.decision.allowed || l.shadow);
        let retry_after_ms = outcomes
            .iter()
            .zip(&limits)
            .filter(|((_, o), l)| !o.decision.allowed && !l.shadow)
            .map(|((_, o), _)| o.decision.retry_after_ms)
            .max()
            .unwrap_or(-1);
        let mut replies = Vec::with_capacity(keys.len());
        for ((key, limit), (state, peeked)) in keys.iter().zip(&limits).zip(outcomes) {
            let decision = if allowed && !peek && peeked.decision.allowed {
                let outcome = check(state.as_ref(), &limit.params, cost, ctx.now_ns, false);
                if let Some(new_state) = outcome.new_state {
                    store_state(ctx, key, new_state, outcome.expires_at_ns);
                }
                outcome.decision
            } else {
                peeked.decision
            };
            count_decision(ctx, &limit.label, &decision, limit.shadow);
            replies.push(if limit.shadow {
                decision.shadowed()
            } else {
                decision
            });
        }
        let resp2 = Reply::Array(vec![
            Reply::Int(i64::from(allowed)),
            Reply::Int(retry_after_ms),
            Reply::Array(
                replies
                    .iter()
                    .map(|d| Reply::Array(d.to_resp2().iter().map(|&n| Reply::Int(n)).collect()))
                    .collect(),
            ),
        ]);
        let resp3 = Reply::Map(vec![
            (Reply::bulk("allowed"), Reply::Bool(allowed)),
            (Reply::bulk("retry_after_ms"), Reply::Int(retry_after_ms)),
            (
                Reply::bulk("limits"),
                Reply::Array(replies.iter().map(Reply::decision_resp3).collect()),
            ),
        ]);
        Ok(Reply::ByProtocol {
            resp2: Box::new(resp2),
            resp3: Box::new(resp3),
        })
    })();
    result.unwrap_or_else(|err: Reply| err)
}

/// `RL.REFUND key n`: gives back `n` tokens; replies with what remains, or
/// nil when the key does not exist (nothing to refund).
pub fn rl_refund(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let n = match non_negative(&argv[2], "count") {
        Ok(n) => n,
        Err(err) => return err,
    };
    let state = match limiter_state(&ctx.data.keyspace, &argv[1], ctx.now_ms) {
        Ok(Some(state)) => state.clone(),
        Ok(None) => return Reply::Nil,
        Err(err) => return err,
    };
    let refunded = refund(&state, n, ctx.now_ns);
    let remaining = refunded.remaining(ctx.now_ns);
    let expires = refunded.expires_at_ns(ctx.now_ns);
    store_state(ctx, &argv[1], refunded, expires);
    Reply::Int(remaining as i64)
}

/// `RL.RESET key`: forgets a limiter or lease key (1 if it existed).
pub fn rl_reset(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let ks = &mut ctx.data.keyspace;
    match ks.get(&argv[1], ctx.now_ms).map(|e| &e.value) {
        None => Reply::Int(0),
        Some(Value::Limiter(_) | Value::Leases(_)) => {
            ks.remove(&argv[1], ctx.now_ms);
            Reply::Int(1)
        }
        Some(_) => Reply::wrong_type(),
    }
}

fn leases_mut<'a>(
    ks: &'a Keyspace,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a LeaseSet>, Reply> {
    match ks.get(key, now_ms).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Leases(set)) => Ok(Some(set)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

fn store_leases(ctx: &mut WriteCtx<'_>, key: &Bytes, set: LeaseSet) {
    if set.is_empty() {
        ctx.data.keyspace.remove(key, ctx.now_ms);
    } else {
        let expire_ms = set.expires_at_ns().div_ceil(1_000_000).max(ctx.now_ms + 1);
        ctx.data
            .keyspace
            .insert(key.clone(), Value::Leases(set), Some(expire_ms));
    }
}

/// `RL.ACQUIRE key limit ttl`: takes a concurrency lease while fewer than
/// `limit` are held. Lease ids come from the log position, so every replica
/// hands out the same id.
pub fn rl_acquire(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let result = (|| {
        let limit = positive(&argv[2], "limit")?;
        let ttl = parse_duration(&argv[3]).map_err(limiter_error)?;
        let mut set = leases_mut(&ctx.data.keyspace, &argv[1], ctx.now_ms)?
            .cloned()
            .unwrap_or_default();
        let id = format!("{:x}-{:x}", ctx.log_index, ctx.op_index);
        let outcome = set.acquire(limit, ttl, ctx.now_ns, id);
        let (acquired, lease, held) = match outcome {
            Ok((id, held)) => (true, Reply::bulk(id.into_bytes()), held),
            Err(held) => (false, Reply::Nil, held),
        };
        if ctx.observe {
            let outcome = if acquired { "acquired" } else { "denied" };
            metrics::counter!("raftlimit_leases_total", "outcome" => outcome).increment(1);
        }
        store_leases(ctx, &argv[1], set);
        let resp2 = Reply::Array(vec![
            Reply::Int(i64::from(acquired)),
            lease.clone(),
            Reply::Int(held as i64),
            Reply::Int(limit as i64),
        ]);
        let resp3 = Reply::Map(vec![
            (Reply::bulk("acquired"), Reply::Bool(acquired)),
            (Reply::bulk("lease"), lease),
            (Reply::bulk("held"), Reply::Int(held as i64)),
            (Reply::bulk("limit"), Reply::Int(limit as i64)),
        ]);
        Ok(Reply::ByProtocol {
            resp2: Box::new(resp2),
            resp3: Box::new(resp3),
        })
    })();
    result.unwrap_or_else(|err: Reply| err)
}

/// `RL.RELEASE key lease_id`: 1 if the lease was held, 0 otherwise.
pub fn rl_release(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let mut set = match leases_mut(&ctx.data.keyspace, &argv[1], ctx.now_ms) {
        Ok(Some(set)) => set.clone(),
        Ok(None) => return Reply::Int(0),
        Err(err) => return err,
    };
    let released = set.release(&String::from_utf8_lossy(&argv[2]), ctx.now_ns);
    store_leases(ctx, &argv[1], set);
    Reply::Int(i64::from(released))
}

/// `RL.LEASES key`: how many leases are held now.
pub fn rl_leases(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    match ctx
        .data
        .keyspace
        .get(&argv[1], ctx.now_ms)
        .map(|e| &e.value)
    {
        None => Reply::Int(0),
        Some(Value::Leases(set)) => Reply::Int(set.held(ctx.now_ms * 1_000_000) as i64),
        Some(_) => Reply::wrong_type(),
    }
}

fn policy_reply(name: &str, policy: &Policy) -> Reply {
    let p = &policy.params;
    Reply::Map(vec![
        (
            Reply::bulk("name"),
            Reply::bulk(name.to_owned().into_bytes()),
        ),
        (Reply::bulk("limit"), Reply::Int(p.limit as i64)),
        (
            Reply::bulk("period"),
            Reply::bulk(raftlimit_limiter::format_duration(p.period_ns).into_bytes()),
        ),
        (Reply::bulk("burst"), Reply::Int(p.burst as i64)),
        (Reply::bulk("algo"), Reply::bulk(p.algo.as_str())),
        (Reply::bulk("shadow"), Reply::Int(i64::from(policy.shadow))),
    ])
}

/// Parses `name limit period [BURST n] [ALGO a] [SHADOW]`.
pub fn parse_policy(args: &[Bytes]) -> Result<(String, Policy), Reply> {
    let name = args.first().ok_or_else(Reply::syntax_error)?;
    if name.is_empty() || name.len() > 128 {
        return Err(Reply::error("ERR policy names are 1 to 128 bytes"));
    }
    let limit = positive(args.get(1).ok_or_else(Reply::syntax_error)?, "limit")?;
    let period =
        parse_duration(args.get(2).ok_or_else(Reply::syntax_error)?).map_err(limiter_error)?;
    let (mut burst, mut algo, mut shadow) = (None, Algo::Gcra, false);
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "SHADOW") {
            shadow = true;
            i += 1;
        } else if is(&args[i], "BURST") && i + 1 < args.len() {
            burst = Some(positive(&args[i + 1], "burst")?);
            i += 2;
        } else if is(&args[i], "ALGO") && i + 1 < args.len() {
            algo = Algo::parse(&args[i + 1]).map_err(limiter_error)?;
            i += 2;
        } else {
            return Err(Reply::syntax_error());
        }
    }
    let params = Params::new(limit, period, burst, algo).map_err(limiter_error)?;
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        Policy { params, shadow },
    ))
}

/// `RL.POLICY SET|DEL ...` (writes).
pub fn rl_policy_write(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let sub = &argv[1];
    if is(sub, "SET") {
        match parse_policy(&argv[2..]) {
            Ok((name, policy)) => {
                ctx.data.policies.insert(name, policy);
                Reply::Ok
            }
            Err(err) => err,
        }
    } else if is(sub, "DEL") && argv.len() == 3 {
        let name = String::from_utf8_lossy(&argv[2]).into_owned();
        Reply::Int(i64::from(ctx.data.policies.remove(&name).is_some()))
    } else if is(sub, "GET") || is(sub, "LIST") {
        let read = ReadCtx {
            data: ctx.data,
            now_ms: ctx.now_ms,
            applied_index: ctx.log_index,
        };
        rl_policy_read(&read, argv)
    } else {
        Reply::error(format!(
            "ERR unknown subcommand '{}'. Try RL.POLICY SET|GET|DEL|LIST.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// `RL.POLICY GET name` and `RL.POLICY LIST` (reads).
pub fn rl_policy_read(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let sub = &argv[1];
    if is(sub, "GET") && argv.len() == 3 {
        let name = String::from_utf8_lossy(&argv[2]).into_owned();
        ctx.data
            .policies
            .get(&name)
            .map_or(Reply::Nil, |p| policy_reply(&name, p))
    } else if is(sub, "LIST") && argv.len() == 2 {
        Reply::Array(
            ctx.data
                .policies
                .keys()
                .map(|name| Reply::bulk(name.clone().into_bytes()))
                .collect(),
        )
    } else {
        Reply::syntax_error()
    }
}

/// Whether an RL.POLICY invocation only reads.
pub fn policy_is_read(argv: &[Bytes]) -> bool {
    argv.get(1)
        .is_some_and(|sub| is(sub, "GET") || is(sub, "LIST"))
}

/// `CL.THROTTLE key max_burst count period [quantity]`, exactly as
/// redis-cell: the key holds the theoretical arrival time in nanoseconds as a
/// string, as redis-cell stores it.
pub fn cl_throttle(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let result = (|| {
        let max_burst = non_negative(&argv[2], "max_burst")?;
        let count = positive(&argv[3], "count")?;
        let period = positive(&argv[4], "period")?;
        let quantity = match argv.get(5) {
            Some(q) => non_negative(q, "quantity")?,
            None => 1,
        };
        let tat = match ctx
            .data
            .keyspace
            .get(&argv[1], ctx.now_ms)
            .map(|e| &e.value)
        {
            None => None,
            Some(Value::Str(text)) => Some(
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(Reply::wrong_type)?,
            ),
            Some(_) => return Err(Reply::wrong_type()),
        };
        let outcome =
            throttle(tat, max_burst, count, period, quantity, ctx.now_ns).map_err(limiter_error)?;
        if let Some(new_tat) = outcome.new_tat_ns {
            let expire_ms = outcome
                .expires_at_ns
                .div_ceil(1_000_000)
                .max(ctx.now_ms + 1);
            ctx.data.keyspace.insert(
                argv[1].clone(),
                Value::Str(Bytes::from(new_tat.to_string())),
                Some(expire_ms),
            );
        }
        if ctx.observe {
            let outcome = if outcome.reply[0] == 0 {
                "allowed"
            } else {
                "denied"
            };
            metrics::counter!("raftlimit_limiter_checks_total", "policy" => "cl.throttle", "outcome" => outcome)
                .increment(1);
        }
        Ok(Reply::Array(
            outcome.reply.iter().map(|&n| Reply::Int(n)).collect(),
        ))
    })();
    result.unwrap_or_else(|err: Reply| err)
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::Harness;
    use crate::reply::Reply;

    fn ints(reply: Reply) -> Vec<i64> {
        let reply = reply.for_protocol(false).into_owned();
        match reply {
            Reply::Array(items) => items
                .into_iter()
                .map(|r| match r {
                    Reply::Int(n) => n,
                    other => panic!("not an int: {other:?}"),
                })
                .collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn id_is_accepted_and_names_the_request() {
        use super::idempotency_token;
        let argv = |line: &str| -> Vec<bytes::Bytes> {
            line.split(' ')
                .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
                .collect()
        };
        let mut h = Harness::new();
        assert_eq!(ints(h.run("RL.CHECK k 5 1s ID req-1"))[0], 1);
        assert_eq!(ints(h.run("RL.CHECK k 5 1s COST 2 ID req-2 PEEK"))[2], 2);
        assert_eq!(
            h.run("RL.MCHECK 2 a b LIMIT 5 1s POLICY missing ID x"),
            Reply::error("ERR no such policy 'missing'")
        );
        let long = "x".repeat(129);
        assert_eq!(
            h.run(&format!("RL.CHECK k 5 1s ID {long}")),
            Reply::error("ERR ID must be 1 to 128 bytes")
        );
        assert_eq!(h.run("RL.CHECK k 5 1s ID"), Reply::syntax_error());
        assert_eq!(
            idempotency_token(&argv("RL.CHECK k 5 1s ALGO fixed ID t1")).as_deref(),
            Some(&b"t1"[..])
        );
        assert_eq!(
            idempotency_token(&argv("rl.mcheck 2 a b LIMIT 5 1s POLICY p COST 3 ID t2")).as_deref(),
            Some(&b"t2"[..])
        );
        // A policy or key called ID is not a token.
        assert_eq!(idempotency_token(&argv("RL.CHECK k POLICY ID PEEK")), None);
        assert_eq!(idempotency_token(&argv("RL.CHECK ID 5 1s")), None);
        // Malformed commands have none: apply answers their error.
        assert_eq!(idempotency_token(&argv("RL.CHECK k 5 1s ID t COST")), None);
        assert_eq!(idempotency_token(&argv("SET k ID")), None);
    }

    #[test]
    fn check_allows_exactly_the_limit_in_a_window() {
        let mut h = Harness::new();
        let mut allowed = 0;
        for _ in 0..20 {
            allowed += ints(h.run("RL.CHECK k 10 1m ALGO fixed"))[0];
        }
        assert_eq!(allowed, 10);
        assert_eq!(h.run("TYPE k"), Reply::status("ratelimit"));
        assert_eq!(h.run("GET k"), Reply::wrong_type());
        let Reply::Int(ttl) = h.run("PTTL k") else {
            panic!("ttl")
        };
        assert!(ttl > 0 && ttl <= 60_000);
    }

    #[test]
    fn gcra_replies_and_peek() {
        let mut h = Harness::new();
        // PEEK answers exactly what a real check would, without charging.
        assert_eq!(ints(h.run("RL.CHECK g 5 1s PEEK")), vec![1, 5, 4, -1, 200]);
        assert_eq!(h.run("EXISTS g"), Reply::Int(0), "PEEK writes nothing");
        assert_eq!(
            ints(h.run("RL.CHECK g 5 1s COST 5")),
            vec![1, 5, 0, -1, 1000]
        );
        assert_eq!(ints(h.run("RL.CHECK g 5 1s")), vec![0, 5, 0, 200, 1000]);
        h.now_ms += 200;
        assert_eq!(ints(h.run("RL.CHECK g 5 1s"))[0], 1);
        assert_eq!(
            ints(h.run("RL.CHECK big 1000000 1s"))[..3],
            [1, 1_000_000, 999_999]
        );
    }

    #[test]
    fn mcheck_denial_consumes_nothing() {
        let mut h = Harness::new();
        assert_eq!(ints(h.run("RL.CHECK ip 1 1m COST 1"))[0], 1);
        let reply = h.run("RL.MCHECK 2 user ip LIMIT 10 1m LIMIT 1 1m");
        let Reply::ByProtocol { resp2, .. } = reply else {
            panic!("shape")
        };
        let Reply::Array(parts) = *resp2 else {
            panic!("array")
        };
        assert_eq!(parts[0], Reply::Int(0));
        assert_eq!(
            h.run("EXISTS user"),
            Reply::Int(0),
            "denied call charged nothing"
        );
        let reply = h.run("RL.MCHECK 2 user ip2 LIMIT 10 1m LIMIT 1 1m");
        let Reply::ByProtocol { resp2, .. } = reply else {
            panic!("shape")
        };
        let Reply::Array(parts) = *resp2 else {
            panic!("array")
        };
        assert_eq!(parts[0], Reply::Int(1));
        // One unit charged by the allowed call; PEEK shows the next one too.
        assert_eq!(ints(h.run("RL.CHECK user 10 1m PEEK"))[2], 8);
        assert!(h.run("RL.MCHECK 2 a a LIMIT 1 1s LIMIT 1 1s").is_error());
    }

    #[test]
    fn policies_and_shadow() {
        let mut h = Harness::new();
        assert_eq!(h.run("RL.POLICY SET api 2 1m ALGO fixed SHADOW"), Reply::Ok);
        for _ in 0..3 {
            assert_eq!(
                ints(h.run("RL.CHECK s POLICY api"))[0],
                1,
                "shadow always allows"
            );
        }
        assert_eq!(
            ints(h.run("RL.CHECK s POLICY api PEEK"))[2],
            0,
            "but it counts"
        );
        assert_eq!(h.run("RL.POLICY SET api 3 1m ALGO fixed"), Reply::Ok);
        assert_eq!(
            ints(h.run("RL.CHECK s POLICY api"))[0],
            1,
            "change keeps state: 3rd of 3"
        );
        assert_eq!(ints(h.run("RL.CHECK s POLICY api"))[0], 0);
        assert_eq!(
            h.run("RL.POLICY LIST"),
            Reply::Array(vec![Reply::bulk("api")])
        );
        assert_eq!(h.run("RL.POLICY DEL api"), Reply::Int(1));
        assert_eq!(
            h.run("RL.CHECK s POLICY api"),
            Reply::error("ERR no such policy 'api'")
        );
    }

    #[test]
    fn refund_and_reset() {
        let mut h = Harness::new();
        h.run("RL.CHECK r 3 1h COST 3");
        assert_eq!(h.run("RL.REFUND r 2"), Reply::Int(2));
        assert_eq!(h.run("RL.REFUND nope 2"), Reply::Nil);
        assert_eq!(h.run("RL.RESET r"), Reply::Int(1));
        assert_eq!(h.run("RL.RESET r"), Reply::Int(0));
        h.run("SET str v");
        assert_eq!(h.run("RL.CHECK str 1 1s"), Reply::wrong_type());
    }

    #[test]
    fn leases_expire_and_release() {
        let mut h = Harness::new();
        let first = ints_or_ids(h.run("RL.ACQUIRE c 2 10s"));
        assert_eq!(first.0, 1);
        let second = ints_or_ids(h.run("RL.ACQUIRE c 2 10s"));
        assert_eq!(second.0, 1);
        assert_ne!(first.1, second.1);
        assert_eq!(ints_or_ids(h.run("RL.ACQUIRE c 2 10s")).0, 0);
        assert_eq!(h.run(&format!("RL.RELEASE c {}", first.1)), Reply::Int(1));
        assert_eq!(h.run(&format!("RL.RELEASE c {}", first.1)), Reply::Int(0));
        assert_eq!(h.run("RL.LEASES c"), Reply::Int(1));
        h.now_ms += 10_001;
        assert_eq!(
            h.run("RL.LEASES c"),
            Reply::Int(0),
            "leases expire at their TTL"
        );
        assert_eq!(ints_or_ids(h.run("RL.ACQUIRE c 2 10s")).0, 1);
    }

    fn ints_or_ids(reply: Reply) -> (i64, String) {
        let Reply::ByProtocol { resp2, .. } = reply else {
            panic!("shape")
        };
        let Reply::Array(parts) = *resp2 else {
            panic!("array")
        };
        let id = match &parts[1] {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let Reply::Int(ok) = parts[0] else {
            panic!("int")
        };
        (ok, id)
    }

    #[test]
    fn cl_throttle_matches_redis_cell() {
        let mut h = Harness::new();
        assert_eq!(
            ints(h.run("CL.THROTTLE user123 15 30 60 1")),
            vec![0, 16, 15, -1, 2]
        );
        assert_eq!(
            ints(h.run("CL.THROTTLE big 1000 1000 60"))[..3],
            [0, 1001, 1000]
        );
        assert!(h.run("CL.THROTTLE k x 30 60").is_error());
    }
}
