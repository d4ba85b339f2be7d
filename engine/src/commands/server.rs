//! Whole-database commands that go through the keyspace: DBSIZE, FLUSHDB, FLUSHALL.

use bytes::Bytes;

use super::args::is;
use super::{ReadCtx, WriteCtx};
use crate::reply::Reply;

/// WATCH, as the read path sees it: replies with the applied log index at
/// which the keys were observed. The connection keeps it and hands it to
/// EXEC, which aborts if a watched key changed after it.
pub fn watch(ctx: &ReadCtx<'_>, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.applied_index as i64)
}

pub fn dbsize(ctx: &ReadCtx<'_>, _argv: &[Bytes]) -> Reply {
    Reply::Int(ctx.data.keyspace.len() as i64)
}

pub fn flush(ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    match argv.get(1) {
        None => {}
        Some(mode) if argv.len() == 2 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
        Some(_) => return Reply::syntax_error(),
    }
    ctx.data.keyspace.clear();
    Reply::Ok
}

/// RAFT.ADD or RAFT.REMOVE reached apply: the leader's node turns them into
/// membership changes before the log, so only a transaction or a script gets
/// here.
pub fn membership_in_log(_ctx: &mut WriteCtx<'_>, argv: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR {} cannot run inside a transaction or a script",
        String::from_utf8_lossy(&argv[0]).to_ascii_uppercase()
    ))
}
