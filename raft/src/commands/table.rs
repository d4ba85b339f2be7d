//! The keyspace command table: names, arity, key positions, flags, ACL
//! categories and handlers.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{expire, keys, limiter, server, strings, Handler, Spec};

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
const LIM_W: &[&str] = &["limiter", "write", "fast"];
const LIM_R: &[&str] = &["limiter", "read", "fast"];

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
        Wr(limiter::rl_policy_write)
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
