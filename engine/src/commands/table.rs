//! The keyspace command table: names, arity, key positions, flags, ACL
//! categories and handlers.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{
    acl, expire, hashes, keys, limiter, lists, object, scripting, server, sets, streams, strings,
    zsets, Handler, Spec,
};

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WN: &[&str] = &["write", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];

const STR_W: &[&str] = &["write", "string", "slow"];
const STR_WF: &[&str] = &["write", "string", "fast"];
const STR_R: &[&str] = &["read", "string", "fast"];
const KEY_W: &[&str] = &["keyspace", "write", "fast"];
const KEY_WS: &[&str] = &["keyspace", "write", "slow"];
const KEY_R: &[&str] = &["keyspace", "read", "fast"];
const KEY_RS: &[&str] = &["keyspace", "read", "slow", "dangerous"];

const LIST_WF: &[&str] = &["write", "list", "fast"];
const LIST_WS: &[&str] = &["write", "list", "slow"];
const LIST_RF: &[&str] = &["read", "list", "fast"];
const LIST_RS: &[&str] = &["read", "list", "slow"];
const HASH_WF: &[&str] = &["write", "hash", "fast"];
const HASH_RF: &[&str] = &["read", "hash", "fast"];
const HASH_RS: &[&str] = &["read", "hash", "slow"];
const SET_WF: &[&str] = &["write", "set", "fast"];
const SET_RF: &[&str] = &["read", "set", "fast"];
const SET_RS: &[&str] = &["read", "set", "slow"];
const ZSET_WF: &[&str] = &["write", "sortedset", "fast"];
const ZSET_WS: &[&str] = &["write", "sortedset", "slow"];
const ZSET_RF: &[&str] = &["read", "sortedset", "fast"];
const ZSET_RS: &[&str] = &["read", "sortedset", "slow"];
const STREAM_WF: &[&str] = &["write", "stream", "fast"];
const STREAM_WS: &[&str] = &["write", "stream", "slow"];
const STREAM_RF: &[&str] = &["read", "stream", "fast"];
const STREAM_RS: &[&str] = &["read", "stream", "slow"];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $cats:expr, $handler:expr) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            categories: $cats,
            handler: $handler,
        }
    };
}

use Handler::{Read as Rd, Write as Wr};

const EVAL: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "may_replicate",
    "no_mandatory_keys",
    "movablekeys",
];
const EVAL_RO: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "movablekeys",
];
const SCRIPTING: &[&str] = &["slow", "scripting"];

const LIM_W: &[&str] = &["limiter", "write", "fast"];
const LIM_R: &[&str] = &["limiter", "read", "fast"];

static SPECS: &[Spec] = &[
    // strings
    spec!("get", 2, RF, 1, 1, 1, STR_R, Rd(strings::get)),
    spec!("set", -3, W, 1, 1, 1, STR_W, Wr(strings::set)),
    spec!("setnx", 3, WF, 1, 1, 1, STR_WF, Wr(strings::setnx)),
    spec!("setex", 4, W, 1, 1, 1, STR_W, Wr(strings::setex)),
    spec!("psetex", 4, W, 1, 1, 1, STR_W, Wr(strings::psetex)),
    spec!("getset", 3, WF, 1, 1, 1, STR_WF, Wr(strings::getset)),
    spec!("getdel", 2, WN, 1, 1, 1, STR_WF, Wr(strings::getdel)),
    spec!("getex", -2, WN, 1, 1, 1, STR_WF, Wr(strings::getex)),
    spec!("mget", -2, RF, 1, -1, 1, STR_R, Rd(strings::mget)),
    spec!("mset", -3, W, 1, -1, 2, STR_W, Wr(strings::mset)),
    spec!("msetnx", -3, W, 1, -1, 2, STR_W, Wr(strings::msetnx)),
    spec!("incr", 2, WF, 1, 1, 1, STR_WF, Wr(strings::incr)),
    spec!("incrby", 3, WF, 1, 1, 1, STR_WF, Wr(strings::incrby)),
    spec!("decr", 2, WF, 1, 1, 1, STR_WF, Wr(strings::decr)),
    spec!("decrby", 3, WF, 1, 1, 1, STR_WF, Wr(strings::decrby)),
    spec!(
        "incrbyfloat",
        3,
        WF,
        1,
        1,
        1,
        STR_WF,
        Wr(strings::incrbyfloat)
    ),
    spec!("append", 3, WF, 1, 1, 1, STR_WF, Wr(strings::append)),
    spec!("strlen", 2, RF, 1, 1, 1, STR_R, Rd(strings::strlen)),
    // keys
    spec!("del", -2, &["write"], 1, -1, 1, KEY_WS, Wr(keys::del)),
    spec!("unlink", -2, WN, 1, -1, 1, KEY_W, Wr(keys::del)),
    spec!("exists", -2, RF, 1, -1, 1, KEY_R, Rd(keys::exists)),
    spec!("type", 2, RF, 1, 1, 1, KEY_R, Rd(keys::type_)),
    spec!("rename", 3, &["write"], 1, 2, 1, KEY_WS, Wr(keys::rename)),
    spec!("renamenx", 3, WN, 1, 2, 1, KEY_W, Wr(keys::renamenx)),
    spec!("keys", 2, R, 0, 0, 0, KEY_RS, Rd(keys::keys)),
    spec!(
        "scan",
        -2,
        R,
        0,
        0,
        0,
        &["keyspace", "read", "slow"],
        Rd(keys::scan)
    ),
    // expiry
    spec!("expire", -3, WN, 1, 1, 1, KEY_W, Wr(expire::expire)),
    spec!("pexpire", -3, WN, 1, 1, 1, KEY_W, Wr(expire::pexpire)),
    spec!("expireat", -3, WN, 1, 1, 1, KEY_W, Wr(expire::expireat)),
    spec!("pexpireat", -3, WN, 1, 1, 1, KEY_W, Wr(expire::pexpireat)),
    spec!("ttl", 2, RF, 1, 1, 1, KEY_R, Rd(expire::ttl)),
    spec!("pttl", 2, RF, 1, 1, 1, KEY_R, Rd(expire::pttl)),
    spec!("expiretime", 2, RF, 1, 1, 1, KEY_R, Rd(expire::expiretime)),
    spec!(
        "pexpiretime",
        2,
        RF,
        1,
        1,
        1,
        KEY_R,
        Rd(expire::pexpiretime)
    ),
    spec!("persist", 2, WN, 1, 1, 1, KEY_W, Wr(expire::persist)),
    // lists
    spec!("lpush", -3, WF, 1, 1, 1, LIST_WF, Wr(lists::lpush)),
    spec!("rpush", -3, WF, 1, 1, 1, LIST_WF, Wr(lists::rpush)),
    spec!("lpushx", -3, WF, 1, 1, 1, LIST_WF, Wr(lists::lpushx)),
    spec!("rpushx", -3, WF, 1, 1, 1, LIST_WF, Wr(lists::rpushx)),
    spec!("lpop", -2, WN, 1, 1, 1, LIST_WF, Wr(lists::lpop)),
    spec!("rpop", -2, WN, 1, 1, 1, LIST_WF, Wr(lists::rpop)),
    spec!("lrange", 4, R, 1, 1, 1, LIST_RS, Rd(lists::lrange)),
    spec!("lindex", 3, R, 1, 1, 1, LIST_RS, Rd(lists::lindex)),
    spec!("llen", 2, RF, 1, 1, 1, LIST_RF, Rd(lists::llen)),
    spec!("ltrim", 4, &["write"], 1, 1, 1, LIST_WS, Wr(lists::ltrim)),
    spec!("lrem", 4, &["write"], 1, 1, 1, LIST_WS, Wr(lists::lrem)),
    spec!("lset", 4, W, 1, 1, 1, LIST_WS, Wr(lists::lset)),
    spec!("linsert", 5, W, 1, 1, 1, LIST_WS, Wr(lists::linsert)),
    // hashes
    spec!("hset", -4, WF, 1, 1, 1, HASH_WF, Wr(hashes::hset)),
    spec!("hmset", -4, WF, 1, 1, 1, HASH_WF, Wr(hashes::hmset)),
    spec!("hsetnx", 4, WF, 1, 1, 1, HASH_WF, Wr(hashes::hsetnx)),
    spec!("hget", 3, RF, 1, 1, 1, HASH_RF, Rd(hashes::hget)),
    spec!("hmget", -3, RF, 1, 1, 1, HASH_RF, Rd(hashes::hmget)),
    spec!("hgetall", 2, R, 1, 1, 1, HASH_RS, Rd(hashes::hgetall)),
    spec!("hkeys", 2, R, 1, 1, 1, HASH_RS, Rd(hashes::hkeys)),
    spec!("hvals", 2, R, 1, 1, 1, HASH_RS, Rd(hashes::hvals)),
    spec!("hdel", -3, WN, 1, 1, 1, HASH_WF, Wr(hashes::hdel)),
    spec!("hexists", 3, RF, 1, 1, 1, HASH_RF, Rd(hashes::hexists)),
    spec!("hlen", 2, RF, 1, 1, 1, HASH_RF, Rd(hashes::hlen)),
    spec!("hstrlen", 3, RF, 1, 1, 1, HASH_RF, Rd(hashes::hstrlen)),
    spec!("hincrby", 4, WF, 1, 1, 1, HASH_WF, Wr(hashes::hincrby)),
    spec!(
        "hincrbyfloat",
        4,
        WF,
        1,
        1,
        1,
        HASH_WF,
        Wr(hashes::hincrbyfloat)
    ),
    spec!("hscan", -3, R, 1, 1, 1, HASH_RS, Rd(hashes::hscan)),
    // sets
    spec!("sadd", -3, WF, 1, 1, 1, SET_WF, Wr(sets::sadd)),
    spec!("srem", -3, WN, 1, 1, 1, SET_WF, Wr(sets::srem)),
    spec!("smembers", 2, R, 1, 1, 1, SET_RS, Rd(sets::smembers)),
    spec!("sismember", 3, RF, 1, 1, 1, SET_RF, Rd(sets::sismember)),
    spec!("smismember", -3, RF, 1, 1, 1, SET_RF, Rd(sets::smismember)),
    spec!("scard", 2, RF, 1, 1, 1, SET_RF, Rd(sets::scard)),
    spec!("spop", -2, WN, 1, 1, 1, SET_WF, Wr(sets::spop)),
    spec!("sscan", -3, R, 1, 1, 1, SET_RS, Rd(sets::sscan)),
    // sorted sets
    spec!("zadd", -4, WF, 1, 1, 1, ZSET_WF, Wr(zsets::zadd)),
    spec!("zincrby", 4, WF, 1, 1, 1, ZSET_WF, Wr(zsets::zincrby)),
    spec!("zrem", -3, WN, 1, 1, 1, ZSET_WF, Wr(zsets::zrem)),
    spec!("zcard", 2, RF, 1, 1, 1, ZSET_RF, Rd(zsets::zcard)),
    spec!("zcount", 4, RF, 1, 1, 1, ZSET_RF, Rd(zsets::zcount)),
    spec!("zscore", 3, RF, 1, 1, 1, ZSET_RF, Rd(zsets::zscore)),
    spec!("zrank", -3, RF, 1, 1, 1, ZSET_RF, Rd(zsets::zrank)),
    spec!("zrevrank", -3, RF, 1, 1, 1, ZSET_RF, Rd(zsets::zrevrank)),
    spec!("zrange", -4, R, 1, 1, 1, ZSET_RS, Rd(zsets::zrange)),
    spec!(
        "zrangebyscore",
        -4,
        R,
        1,
        1,
        1,
        ZSET_RS,
        Rd(zsets::zrangebyscore)
    ),
    spec!(
        "zrevrangebyscore",
        -4,
        R,
        1,
        1,
        1,
        ZSET_RS,
        Rd(zsets::zrevrangebyscore)
    ),
    spec!(
        "zremrangebyscore",
        4,
        &["write"],
        1,
        1,
        1,
        ZSET_WS,
        Wr(zsets::zremrangebyscore)
    ),
    spec!(
        "zremrangebyrank",
        4,
        &["write"],
        1,
        1,
        1,
        ZSET_WS,
        Wr(zsets::zremrangebyrank)
    ),
    spec!("zpopmin", -2, WN, 1, 1, 1, ZSET_WF, Wr(zsets::zpopmin)),
    spec!("zpopmax", -2, WN, 1, 1, 1, ZSET_WF, Wr(zsets::zpopmax)),
    spec!("zscan", -3, R, 1, 1, 1, ZSET_RS, Rd(zsets::zscan)),
    // streams (no consumer groups)
    spec!("xadd", -5, W, 1, 1, 1, STREAM_WF, Wr(streams::xadd)),
    spec!("xlen", 2, RF, 1, 1, 1, STREAM_RF, Rd(streams::xlen)),
    spec!("xrange", -4, R, 1, 1, 1, STREAM_RS, Rd(streams::xrange)),
    spec!(
        "xrevrange",
        -4,
        R,
        1,
        1,
        1,
        STREAM_RS,
        Rd(streams::xrevrange)
    ),
    spec!("xdel", -3, WN, 1, 1, 1, STREAM_WF, Wr(streams::xdel)),
    spec!(
        "xtrim",
        -4,
        &["write"],
        1,
        1,
        1,
        STREAM_WS,
        Wr(streams::xtrim)
    ),
    // introspection: Redis containers whose subcommands take the key second
    spec!(
        "object",
        -2,
        R,
        2,
        2,
        1,
        &["keyspace", "read", "slow"],
        Rd(object::object)
    ),
    spec!(
        "memory",
        -2,
        R,
        2,
        2,
        1,
        &["read", "slow"],
        Rd(object::memory)
    ),
    // native limiter
    spec!("rl.check", -4, WF, 1, 1, 1, LIM_W, Wr(limiter::rl_check)),
    spec!(
        "rl.mcheck",
        -5,
        &["write", "denyoom", "movablekeys"],
        0,
        0,
        0,
        LIM_W,
        Wr(limiter::rl_mcheck)
    ),
    spec!("rl.refund", 3, WF, 1, 1, 1, LIM_W, Wr(limiter::rl_refund)),
    spec!("rl.reset", 2, WN, 1, 1, 1, LIM_W, Wr(limiter::rl_reset)),
    spec!("rl.acquire", 4, WF, 1, 1, 1, LIM_W, Wr(limiter::rl_acquire)),
    spec!("rl.release", 3, WN, 1, 1, 1, LIM_W, Wr(limiter::rl_release)),
    spec!("rl.leases", 2, RF, 1, 1, 1, LIM_R, Rd(limiter::rl_leases)),
    spec!(
        "rl.policy",
        -2,
        W,
        0,
        0,
        0,
        &["limiter", "admin", "slow"],
        Handler::Split {
            read: limiter::rl_policy_read,
            write: limiter::rl_policy_write,
            writes: limiter::policy_writes,
        }
    ),
    spec!(
        "cl.throttle",
        -5,
        WF,
        1,
        1,
        1,
        LIM_W,
        Wr(limiter::cl_throttle)
    ),
    // scripting: the node hands EVAL & co. to the leader's script executor
    spec!(
        "eval",
        -3,
        EVAL,
        0,
        0,
        0,
        SCRIPTING,
        Wr(scripting::eval_in_transaction)
    ),
    spec!(
        "evalsha",
        -3,
        EVAL,
        0,
        0,
        0,
        SCRIPTING,
        Wr(scripting::eval_in_transaction)
    ),
    spec!(
        "eval_ro",
        -3,
        EVAL_RO,
        0,
        0,
        0,
        SCRIPTING,
        Wr(scripting::eval_in_transaction)
    ),
    spec!(
        "evalsha_ro",
        -3,
        EVAL_RO,
        0,
        0,
        0,
        SCRIPTING,
        Wr(scripting::eval_in_transaction)
    ),
    spec!(
        "script",
        -2,
        &["noscript"],
        0,
        0,
        0,
        SCRIPTING,
        Handler::Split {
            read: scripting::script_read,
            write: scripting::script_write,
            writes: scripting::script_writes,
        }
    ),
    // transactions: WATCH observes through the read path
    spec!(
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast"],
        1,
        -1,
        1,
        &["fast", "transaction"],
        Rd(server::watch)
    ),
    // whole database
    spec!(
        "dbsize",
        1,
        RF,
        0,
        0,
        0,
        &["keyspace", "read", "fast"],
        Rd(server::dbsize)
    ),
    spec!(
        "flushdb",
        -1,
        &["write"],
        0,
        0,
        0,
        &["keyspace", "write", "slow", "dangerous"],
        Wr(server::flush)
    ),
    spec!(
        "flushall",
        -1,
        &["write"],
        0,
        0,
        0,
        &["keyspace", "write", "slow", "dangerous"],
        Wr(server::flush)
    ),
    // ACL: the node-local subcommands (WHOAMI, LOG, CAT, …) are answered by
    // the server; these are the replicated ones.
    spec!(
        "acl",
        -2,
        &["noscript", "loading", "stale"],
        0,
        0,
        0,
        &["slow"],
        Handler::Split {
            read: acl::acl_read,
            write: acl::acl_write,
            writes: acl::writes,
        }
    ),
];

fn index() -> &'static HashMap<&'static str, &'static Spec> {
    static INDEX: OnceLock<HashMap<&'static str, &'static Spec>> = OnceLock::new();
    INDEX.get_or_init(|| SPECS.iter().map(|spec| (spec.name, spec)).collect())
}

/// Finds a keyspace command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    // Command names are short; anything longer cannot match.
    if name.len() > 32 {
        return None;
    }
    let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    index().get(lower.as_str()).copied()
}

/// Every keyspace command, for COMMAND and COMMAND DOCS.
pub fn all_specs() -> &'static [Spec] {
    SPECS
}
