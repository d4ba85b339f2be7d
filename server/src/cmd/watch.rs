//! WATCH: observes the keys through a linearizable read (the engine's WATCH
//! replies with the applied log index) and remembers the index they were
//! seen at; EXEC aborts if any changed after it.

use std::sync::Arc;

use bytes::Bytes;
use raftlimit_engine::{Reply, Watch};

use crate::session::Session;
use crate::shared::Shared;

pub async fn watch(shared: &Arc<Shared>, session: &mut Session, argv: Vec<Bytes>) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    if argv.len() < 2 {
        return Reply::wrong_arity("watch");
    }
    let keys = argv[1..].to_vec();
    match shared.node.read(argv).await {
        Reply::Int(index) => {
            let index = index.max(0) as u64;
            let watch = session.watch.get_or_insert(Watch {
                index,
                keys: Vec::new(),
            });
            // Several WATCH calls: the earliest observation covers them all.
            watch.index = watch.index.min(index);
            watch.keys.extend(keys);
            Reply::Ok
        }
        other => other,
    }
}
