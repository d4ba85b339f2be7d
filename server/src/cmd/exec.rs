//! EXEC: the queued keyspace commands go to the log as one transaction,
//! applied atomically; queued connection commands run here, in their place.
//! The router awaits it after the connection's earlier replies are out.

use std::sync::Arc;

use raftlimit_engine::{lookup, Reply, Route};

use super::{binding, Run};
use crate::session::Session;
use crate::shared::Shared;

pub async fn exec(shared: &Arc<Shared>, session: &mut Session) -> Reply {
    let Some(queued) = session.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    let watch = session.watch.take();
    if std::mem::take(&mut session.multi_failed) {
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let mut keyspace_commands = Vec::new();
    let mut slots = Vec::with_capacity(queued.len());
    for argv in queued {
        let local = lookup(&argv[0])
            .filter(|spec| spec.route(&argv) == Route::Local)
            .and_then(binding)
            .and_then(|b| match b.run {
                Run::Session(run) | Run::Authenticate { run, .. } => Some(run),
                Run::Exec | Run::Watch => None,
            });
        match local {
            Some(run) => slots.push(Some((run, argv))),
            None => {
                slots.push(None);
                keyspace_commands.push(argv);
            }
        }
    }
    let mut results = match shared.node.transaction(watch, keyspace_commands).await {
        Reply::Array(results) => results.into_iter(),
        // A watched key changed (nil), or the cluster could not take it.
        other => return other,
    };
    let replies = slots
        .into_iter()
        .map(|slot| match slot {
            Some((run, argv)) => run(session, shared, &argv),
            None => results
                .next()
                .unwrap_or_else(|| Reply::error("ERR missing transaction reply")),
        })
        .collect();
    Reply::Array(replies)
}
