//! The scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//! SCRIPT EXISTS and SCRIPT FLUSH run here; EVAL and its kin, SCRIPT LOAD
//! and SCRIPT KILL are served by the leader's script executor (the raft
//! crate's `node::script_executor`, running `crate::script`), which parses
//! them with [`ScriptCall::parse`]; they only land in apply when queued
//! inside MULTI, which scripts do not support.

use bytes::Bytes;

use super::args::{is, parse_i64};
use super::{ReadCtx, WriteCtx};
use crate::reply::Reply;

/// Lower-case hex SHA-1 of a script body: its id for EVALSHA and the key of
/// the replicated script cache.
pub fn sha1_hex(body: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// EVAL, EVALSHA, EVAL_RO and EVALSHA_RO reached apply: only a transaction
/// does that, since the node hands every other invocation to the executor.
pub fn eval_in_transaction(_ctx: &mut WriteCtx<'_>, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR scripts cannot run inside MULTI in raftlimit; send EVAL on its own")
}

/// SCRIPT LOAD or SCRIPT KILL reached apply: only a transaction does that.
pub fn script_in_transaction(_ctx: &mut WriteCtx<'_>, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR SCRIPT LOAD and SCRIPT KILL cannot run inside MULTI")
}

/// SCRIPT EXISTS sha1 [sha1 ...] and SCRIPT HELP.
pub fn script_read(ctx: &ReadCtx<'_>, argv: &[Bytes]) -> Reply {
    let Some(sub) = argv.get(1) else {
        return Reply::wrong_arity("script");
    };
    if is(sub, "HELP") {
        return Reply::Array(
            HELP.iter()
                .map(|line| Reply::status(line.to_string()))
                .collect(),
        );
    }
    if argv.len() < 3 {
        return Reply::error("ERR wrong number of arguments for 'script|exists' command");
    }
    Reply::Array(
        argv[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Int(ctx.data.scripts.contains_key(&sha) as i64)
            })
            .collect(),
    )
}

/// SCRIPT FLUSH [ASYNC|SYNC], replicated. LOAD and KILL never get here
/// outside MULTI (the executor serves them).
pub fn script_write(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    let Some(sub) = argv.get(1) else {
        return Reply::wrong_arity("script");
    };
    if is(sub, "FLUSH") {
        match argv.get(2) {
            None => {}
            Some(mode) if argv.len() == 3 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
            Some(_) => return Reply::syntax_error(),
        }
        ctx.data.scripts.clear();
        return Reply::Ok;
    }
    if is(sub, "LOAD") || is(sub, "KILL") {
        return Reply::error("ERR SCRIPT LOAD and SCRIPT KILL cannot run inside MULTI");
    }
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try SCRIPT HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Print this help.",
];

/// A script command as the leader's script executor runs it.
pub enum ScriptCall {
    Eval {
        body: Option<Bytes>,
        sha: String,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
    },
    Load(Bytes),
}

impl ScriptCall {
    /// Parses EVAL, EVALSHA, EVAL_RO, EVALSHA_RO or SCRIPT LOAD.
    pub fn parse(argv: &[Bytes]) -> Result<ScriptCall, Reply> {
        parse(argv)
    }
}

/// Whether `argv` is SCRIPT KILL (the executor answers it at once).
pub fn is_script_kill(argv: &[Bytes]) -> bool {
    argv.first().is_some_and(|name| is(name, "SCRIPT"))
        && argv.get(1).is_some_and(|sub| is(sub, "KILL"))
}

fn parse(argv: &[Bytes]) -> Result<ScriptCall, Reply> {
    let name = argv[0].to_ascii_lowercase();
    if name == b"script" {
        return match argv.get(1) {
            Some(sub) if is(sub, "LOAD") && argv.len() == 3 => {
                Ok(ScriptCall::Load(argv[2].clone()))
            }
            _ => Err(Reply::error(
                "ERR wrong number of arguments for 'script|load' command",
            )),
        };
    }
    if argv.len() < 3 {
        return Err(Reply::wrong_arity(&String::from_utf8_lossy(&name)));
    }
    let (by_sha, read_only) = match &name[..] {
        b"eval" => (false, false),
        b"evalsha" => (true, false),
        b"eval_ro" => (false, true),
        _ => (true, true),
    };
    let numkeys = parse_i64(&argv[2]).ok_or_else(Reply::not_integer)?;
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let numkeys = numkeys as usize;
    if numkeys > argv.len() - 3 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let keys = argv[3..3 + numkeys].to_vec();
    let args = argv[3 + numkeys..].to_vec();
    let (body, sha) = if by_sha {
        (None, String::from_utf8_lossy(&argv[1]).to_ascii_lowercase())
    } else {
        (Some(argv[1].clone()), sha1_hex(&argv[1]))
    };
    Ok(ScriptCall::Eval {
        body,
        sha,
        keys,
        args,
        read_only,
    })
}
