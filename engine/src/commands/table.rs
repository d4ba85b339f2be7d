//! The engine's command table: every command the engine executes (and the
//! ACL and SCRIPT subcommands the server or the script executor answer),
//! with arity, key positions, key access, flags, ACL categories and
//! handler. The server's registry adds the connection commands.

use std::collections::HashMap;

use crate::acl::Catalog;
use std::sync::OnceLock;

use super::{
    acl, expire, hashes, keys, limiter, lists, object, scripting, server, sets, streams, strings,
    zsets, CommandSpec, Handler, KeyAccess, KeySpec,
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
        CommandSpec {
            keys: KeySpec::range($first, $last, $step),
            ..CommandSpec::new($name, $arity, $flags, $cats, $handler)
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

static SPECS: &[CommandSpec] = &[
    // strings
    spec!("get", 2, RF, 1, 1, 1, STR_R, Rd(strings::get)),
    CommandSpec {
        access: KeyAccess::ByArgs(strings::set_only_overwrites),
        ..spec!("set", -3, W, 1, 1, 1, STR_W, Wr(strings::set))
    },
    spec!("setnx", 3, WF, 1, 1, 1, STR_WF, Wr(strings::setnx)),
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("setex", 4, W, 1, 1, 1, STR_W, Wr(strings::setex))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("psetex", 4, W, 1, 1, 1, STR_W, Wr(strings::psetex))
    },
    spec!("getset", 3, WF, 1, 1, 1, STR_WF, Wr(strings::getset)),
    spec!("getdel", 2, WN, 1, 1, 1, STR_WF, Wr(strings::getdel)),
    spec!("getex", -2, WN, 1, 1, 1, STR_WF, Wr(strings::getex)),
    spec!("mget", -2, RF, 1, -1, 1, STR_R, Rd(strings::mget)),
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("mset", -3, W, 1, -1, 2, STR_W, Wr(strings::mset))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("msetnx", -3, W, 1, -1, 2, STR_W, Wr(strings::msetnx))
    },
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
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("del", -2, &["write"], 1, -1, 1, KEY_WS, Wr(keys::del))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("unlink", -2, WN, 1, -1, 1, KEY_W, Wr(keys::del))
    },
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
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("expire", -3, WN, 1, 1, 1, KEY_W, Wr(expire::expire))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("pexpire", -3, WN, 1, 1, 1, KEY_W, Wr(expire::pexpire))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("expireat", -3, WN, 1, 1, 1, KEY_W, Wr(expire::expireat))
    },
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("pexpireat", -3, WN, 1, 1, 1, KEY_W, Wr(expire::pexpireat))
    },
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
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("persist", 2, WN, 1, 1, 1, KEY_W, Wr(expire::persist))
    },
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
    CommandSpec {
        keys: KeySpec::NumKeys { at: 1 },
        ..CommandSpec::new(
            "rl.mcheck",
            -5,
            &["write", "denyoom", "movablekeys"],
            LIM_W,
            Wr(limiter::rl_mcheck),
        )
    },
    spec!("rl.refund", 3, WF, 1, 1, 1, LIM_W, Wr(limiter::rl_refund)),
    CommandSpec {
        access: KeyAccess::Overwrite,
        ..spec!("rl.reset", 2, WN, 1, 1, 1, LIM_W, Wr(limiter::rl_reset))
    },
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
    // scripting: the leader's script executor runs EVAL & co.
    eval("eval", EVAL),
    eval("evalsha", EVAL),
    eval("eval_ro", EVAL_RO),
    eval("evalsha_ro", EVAL_RO),
    CommandSpec {
        subcommands: SCRIPT_SUBCOMMANDS,
        ..CommandSpec::new(
            "script",
            -2,
            &["noscript"],
            SCRIPTING,
            Handler::BySubcommand,
        )
    },
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
    // ACL: SETUSER, DELUSER and LOAD change the replicated user table;
    // GETUSER, LIST and USERS read it; the server answers the rest.
    CommandSpec {
        subcommands: ACL_SUBCOMMANDS,
        ..CommandSpec::new(
            "acl",
            -2,
            &["noscript", "loading", "stale"],
            &["slow"],
            Handler::BySubcommand,
        )
    },
    // membership: the leader's Raft node changes the membership
    CommandSpec::new(
        "raft.add",
        2,
        MEMBERSHIP_FLAGS,
        ADMIN,
        Handler::Membership(server::membership_in_log),
    ),
    CommandSpec::new(
        "raft.remove",
        2,
        MEMBERSHIP_FLAGS,
        ADMIN,
        Handler::Membership(server::membership_in_log),
    ),
    // connection commands: the server answers them (server/src/cmd/)
    local("ping", -1, FLAGS_FAST, CONN),
    local("echo", 2, FLAGS_FAST, CONN),
    local("hello", -1, FLAGS_NO_AUTH, CONN),
    local("auth", -2, FLAGS_NO_AUTH, CONN),
    local("select", 2, FLAGS_FAST, CONN),
    local("quit", -1, FLAGS_NO_AUTH, CONN),
    local("reset", 1, FLAGS_NO_AUTH, CONN),
    CommandSpec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..local("client", -2, FLAGS_SLOW, CONN_SLOW)
    },
    CommandSpec {
        subcommands: COMMAND_SUBCOMMANDS,
        ..local("command", -1, FLAGS_SLOW, CONN_SLOW)
    },
    local("info", -1, FLAGS_SLOW, &["slow", "dangerous"]),
    CommandSpec {
        subcommands: CONFIG_SUBCOMMANDS,
        ..local("config", -2, FLAGS_SLOW, ADMIN)
    },
    local("time", 1, FLAGS_FAST, &["fast"]),
    local("multi", 1, FLAGS_FAST, TXN),
    local("exec", 1, FLAGS_SLOW, &["slow", "transaction"]),
    local("discard", 1, FLAGS_FAST, TXN),
    local("unwatch", 1, FLAGS_FAST, TXN),
    local("role", 1, FLAGS_FAST, &["admin", "fast", "dangerous"]),
    local("raft.members", 1, FLAGS_SLOW, ADMIN),
    local("sentinel", -2, FLAGS_SLOW, ADMIN),
    local("wait", 3, FLAGS_SLOW, &["slow", "connection"]),
];

const CONN: &[&str] = &["connection", "fast"];
const CONN_SLOW: &[&str] = &["connection", "slow"];
const ADMIN: &[&str] = &["admin", "slow", "dangerous"];
const TXN: &[&str] = &["fast", "transaction"];
const FLAGS_FAST: &[&str] = &["fast", "loading", "stale"];
const FLAGS_SLOW: &[&str] = &["loading", "stale"];
/// Commands a client may run before it authenticates.
const FLAGS_NO_AUTH: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const MEMBERSHIP_FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];

/// A command the server's connection answers.
const fn local(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    categories: &'static [&'static str],
) -> CommandSpec {
    CommandSpec::new(name, arity, flags, categories, Handler::Local)
}

/// Subcommands ACL rules may name (`+client|list`); the command's own
/// handler parses them.
const fn named(name: &'static str, categories: &'static [&'static str]) -> CommandSpec {
    sub(name, -2, categories, Handler::Local)
}

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    named("getname", CONN_SLOW),
    named("help", CONN_SLOW),
    named("id", CONN_SLOW),
    named("info", CONN_SLOW),
    named("list", CONN_SLOW),
    named("no-evict", CONN_SLOW),
    named("no-touch", CONN_SLOW),
    named("reply", CONN_SLOW),
    named("setinfo", CONN_SLOW),
    named("setname", CONN_SLOW),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    named("get", ADMIN),
    named("help", ADMIN),
    named("resetstat", ADMIN),
    named("set", ADMIN),
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    named("count", CONN_SLOW),
    named("docs", CONN_SLOW),
    named("help", CONN_SLOW),
    named("info", CONN_SLOW),
    named("list", CONN_SLOW),
];

/// EVAL and its kin: keys counted at argument 2, run by the script executor.
const fn eval(name: &'static str, flags: &'static [&'static str]) -> CommandSpec {
    CommandSpec {
        keys: KeySpec::NumKeys { at: 2 },
        ..CommandSpec::new(
            name,
            -3,
            flags,
            SCRIPTING,
            Handler::Script(scripting::eval_in_transaction),
        )
    }
}

/// A subcommand: its name, arity (counting the command), categories and handler.
const fn sub(
    name: &'static str,
    arity: i32,
    categories: &'static [&'static str],
    handler: Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, &[], categories, handler)
}

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    sub("exists", -3, SCRIPTING, Rd(scripting::script_read)),
    sub("flush", -2, SCRIPTING, Wr(scripting::script_write)),
    sub("help", 2, SCRIPTING, Rd(scripting::script_read)),
    sub(
        "kill",
        2,
        SCRIPTING,
        Handler::Script(scripting::script_in_transaction),
    ),
    sub(
        "load",
        3,
        SCRIPTING,
        Handler::Script(scripting::script_in_transaction),
    ),
];

const ACL_ADMIN: &[&str] = ADMIN;
const ACL_SLOW: &[&str] = &["slow"];

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    sub("cat", -2, ACL_SLOW, Handler::Local),
    sub("deluser", -3, ACL_ADMIN, Wr(acl::acl_write)),
    sub("dryrun", -4, ACL_ADMIN, Handler::Local),
    sub("genpass", -2, ACL_SLOW, Handler::Local),
    sub("getuser", 3, ACL_ADMIN, Rd(acl::acl_read)),
    sub("help", 2, ACL_SLOW, Handler::Local),
    sub("list", 2, ACL_ADMIN, Rd(acl::acl_read)),
    sub("load", 2, ACL_ADMIN, Wr(acl::acl_write)),
    sub("log", -2, ACL_ADMIN, Handler::Local),
    sub("save", 2, ACL_ADMIN, Handler::Local),
    sub("setuser", -3, ACL_ADMIN, Wr(acl::acl_write)),
    sub("users", 2, ACL_ADMIN, Rd(acl::acl_read)),
    sub("whoami", 2, ACL_SLOW, Handler::Local),
];

fn index() -> &'static HashMap<&'static str, &'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    INDEX.get_or_init(|| SPECS.iter().map(|spec| (spec.name, spec)).collect())
}

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    // Command names are short; anything longer cannot match.
    if name.len() > 32 {
        return None;
    }
    let lower = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    index().get(lower.as_str()).copied()
}

/// The command table as ACL rules see it: a rule naming a command or a
/// subcommand that does not exist is refused (on the node that receives it).
#[derive(Debug, Clone, Copy)]
pub struct CommandTable;

impl Catalog for CommandTable {
    fn has_command(&self, name: &str) -> bool {
        lookup(name.as_bytes()).is_some()
    }

    fn has_subcommand(&self, name: &str, sub: &str) -> bool {
        // Commands without subcommands accept a first-argument rule
        // (`+select|0`), as Redis does.
        lookup(name.as_bytes()).is_none_or(|spec| {
            spec.subcommands.is_empty() || spec.subcommands.iter().any(|s| s.name == sub)
        })
    }
}

/// Every command, for COMMAND, COMMAND DOCS and ACL CAT.
pub fn all_specs() -> &'static [CommandSpec] {
    SPECS
}
