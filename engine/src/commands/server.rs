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
