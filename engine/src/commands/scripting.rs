//! The scripting commands as the command table sees them: SCRIPT EXISTS and
//! SCRIPT FLUSH run here; EVAL and its kin, SCRIPT LOAD and SCRIPT KILL are
//! served by the leader's script executor (`crate::script`) and only land
//! here when queued inside MULTI, which scripts do not support.

use bytes::Bytes;

use super::args::is;
use super::{ReadCtx, WriteCtx};
use crate::reply::Reply;

/// EVAL, EVALSHA, EVAL_RO and EVALSHA_RO reached apply: only a transaction
/// does that, since the node hands every other invocation to the executor.
pub fn eval_in_transaction(_ctx: &mut WriteCtx<'_>, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR scripts cannot run inside MULTI in raftlimit; send EVAL on its own")
}

/// Whether a SCRIPT invocation changes anything (EXISTS and HELP only read).
pub fn script_writes(argv: &[Bytes]) -> bool {
    !argv
        .get(1)
        .is_some_and(|sub| is(sub, "EXISTS") || is(sub, "HELP"))
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
