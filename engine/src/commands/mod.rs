//! Redis keyspace commands as the state machine executes them.
//!
//! Every command is a plain function of the dataset, its arguments and a time
//! passed in by the caller. Writes run inside the state machine's apply with
//! the log entry's stamp; reads run against the applied state after a
//! linearizable read barrier. Connection-level commands (PING, HELLO, CLIENT,
//! INFO, …) live in the server crate, not here.

pub mod acl;
pub mod args;
mod cursor;
mod expire;
mod hashes;
mod keys;
pub mod limiter;
mod lists;
mod object;
pub mod scripting;
mod server;
mod sets;
mod spec;
mod streams;
mod strings;
mod table;
mod zsets;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::acl::AclTable;
use crate::keyspace::{Aggregate, Keyspace};
use crate::reply::Reply;
pub use spec::{arity_ok, unknown_subcommand, CommandSpec, Handler, KeyAccess, KeySpec, Route};
pub use table::{all_specs, lookup, CommandTable};

/// The replicated dataset that commands operate on.
#[derive(Debug, Default)]
pub struct Dataset {
    pub keyspace: Keyspace,
    /// Named limiter policies (RL.POLICY), replicated like keys.
    pub policies: BTreeMap<String, limiter::Policy>,
    /// ACL users: the configured ones plus replicated changes.
    pub acl: AclTable,
    /// The script cache (SCRIPT LOAD and EVAL), by lower-case SHA-1 hex.
    pub scripts: BTreeMap<String, Bytes>,
}

/// What a read command sees.
pub struct ReadCtx<'a> {
    pub data: &'a Dataset,
    pub now_ms: u64,
    /// The last log index reflected in `data`.
    pub applied_index: u64,
}

/// What a write command sees: the dataset and the log entry's stamp.
pub struct WriteCtx<'a> {
    pub data: &'a mut Dataset,
    pub now_ms: u64,
    pub now_ns: u64,
    /// Index of the log entry being applied and of the command within it:
    /// together a deterministic source of unique ids.
    pub log_index: u64,
    pub op_index: u32,
    /// Where limiter decisions are reported, for the node's metrics; `None`
    /// where nobody counts them (followers, so each decision is counted
    /// once, and script overlays). Never affects state.
    pub effects: Option<&'a mut Vec<Effect>>,
}

/// What applying a command did besides changing state and replying: data
/// the node turns into metrics, so the engine has no global side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A limiter decision (RL.CHECK, RL.MCHECK, CL.THROTTLE) under a policy
    /// label (the policy's name, or the command for inline limits).
    Check {
        policy: String,
        outcome: CheckOutcome,
    },
    /// An RL.ACQUIRE that got a lease, or was refused one.
    Lease { acquired: bool },
}

/// The outcome of one limiter decision, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Allowed,
    Denied,
    /// Denied by a policy in shadow mode: the client was admitted anyway.
    ShadowDenied,
}

impl CheckOutcome {
    /// The metrics label value.
    pub fn label(self) -> &'static str {
        match self {
            CheckOutcome::Allowed => "allowed",
            CheckOutcome::Denied => "denied",
            CheckOutcome::ShadowDenied => "shadow_denied",
        }
    }
}

pub type ReadFn = fn(&ReadCtx<'_>, &[Bytes]) -> Reply;
pub type WriteFn = fn(&mut WriteCtx<'_>, &[Bytes]) -> Reply;

/// Redis's reply to an unknown command, quoting up to the first arguments.
pub fn unknown_command(argv: &[Bytes]) -> Reply {
    let name = argv.first().map(|n| lossy(n, 128)).unwrap_or_default();
    let mut text = format!("ERR unknown command '{name}', with args beginning with: ");
    for arg in argv.iter().skip(1).take(16) {
        text.push_str(&format!("'{}' ", lossy(arg, 128)));
    }
    Reply::Error(text)
}

fn lossy(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

/// Runs a command body written with `?`, where an `Err` is the reply too.
pub(crate) fn respond(body: impl FnOnce() -> Result<Reply, Reply>) -> Reply {
    body().unwrap_or_else(|err| err)
}

/// The aggregate `T` under `key`: `Ok(None)` if absent, WRONGTYPE if the key
/// holds another type.
pub(crate) fn read_as<'a, T: Aggregate>(
    ks: &'a Keyspace,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a T>, Reply> {
    match ks.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => T::of(&entry.value).map(Some).ok_or_else(Reply::wrong_type),
    }
}

/// Runs `change` on the aggregate `T` under `key`, keeping the key's TTL.
///
/// An absent key gives `Ok(None)` without running `change`, unless `create`:
/// then `change` runs on an empty `T`, which is stored only if it ends up
/// non-empty. A key of another type gives WRONGTYPE. An aggregate that
/// `change` leaves empty deletes its key, as in Redis.
pub(crate) fn write_as<T: Aggregate, R>(
    ks: &mut Keyspace,
    key: &Bytes,
    now_ms: u64,
    create: bool,
    change: impl FnOnce(&mut T) -> R,
) -> Result<Option<R>, Reply> {
    let (result, emptied) = match ks.value_mut(key, now_ms) {
        Some(value) => {
            let inner = T::of_mut(value).ok_or_else(Reply::wrong_type)?;
            let result = change(inner);
            (result, inner.is_empty())
        }
        None if !create => return Ok(None),
        None => {
            let mut inner = T::default();
            let result = change(&mut inner);
            if !inner.is_empty() {
                ks.insert(key.clone(), inner.wrap(), None);
            }
            return Ok(Some(result));
        }
    };
    if emptied {
        ks.remove(key, now_ms);
    }
    Ok(Some(result))
}

/// Redis's clamping of a `start`/`stop` index pair (LRANGE, LTRIM, ZRANGE,
/// ZREMRANGEBYRANK): negative indexes count from the end; `None` when the
/// range selects nothing, else inclusive `(start, stop)` within `len`.
pub(crate) fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// Runs a write command inside apply. Unknown commands and arity errors are
/// answered here too, so a malformed forwarded command cannot break apply.
pub fn execute_write(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else {
        return unknown_command(argv);
    };
    if !spec.arity_ok(argv.len()) {
        return Reply::wrong_arity(spec.name);
    }
    spec.run_write(ctx, argv)
}

/// Runs a read command against the applied state.
pub fn execute_read(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else {
        return unknown_command(argv);
    };
    if !spec.arity_ok(argv.len()) {
        return Reply::wrong_arity(spec.name);
    }
    spec.run_read(ctx, argv)
}

/// Runs a command against a bare dataset the way a node routes it: a write
/// as apply runs it (at `log_index`, time `now_ms`), a read against the
/// dataset. For the fuzz target and the test harness; a node goes through
/// the log and the read barrier instead.
pub fn execute_bare(data: &mut Dataset, argv: &[Bytes], log_index: u64, now_ms: u64) -> Reply {
    let writes = argv
        .first()
        .and_then(|name| lookup(name))
        .is_some_and(|spec| spec.writes(argv));
    if writes {
        let mut ctx = WriteCtx {
            data,
            now_ms,
            now_ns: now_ms * 1_000_000,
            log_index,
            op_index: 0,
            effects: None,
        };
        execute_write(&mut ctx, argv)
    } else {
        let ctx = ReadCtx {
            data,
            now_ms,
            applied_index: log_index,
        };
        execute_read(&ctx, argv)
    }
}
