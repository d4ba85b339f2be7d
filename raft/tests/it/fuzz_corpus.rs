//! Replays the seed corpora of the `commands` and `raft_rpc` fuzz targets
//! through the functions those targets call.

use raftlimit_engine::fuzz::command_sequence;
use raftlimit_engine::Reply;
use raftlimit_raft::fuzz::rpc_frames;

use crate::corpus;

#[test]
fn commands_corpus_replays() {
    let inputs = corpus("commands");
    assert!(inputs.len() >= 5, "the seed corpus is missing");
    let (mut ok, mut errors) = (0, 0);
    for (path, input) in &inputs {
        let replies = std::panic::catch_unwind(|| command_sequence(input))
            .unwrap_or_else(|_| panic!("{} fails", path.display()));
        for reply in replies {
            match reply {
                Reply::Error(_) => errors += 1,
                _ => ok += 1,
            }
        }
    }
    // The seeds drive real commands, and their error paths too.
    assert!(ok > 50, "only {ok} commands succeeded");
    assert!(errors > 5, "only {errors} commands failed");
}

#[test]
fn rpc_corpus_replays() {
    let inputs = corpus("raft_rpc");
    assert!(inputs.len() >= 5, "the seed corpus is missing");
    let mut decoded = 0;
    for (path, input) in &inputs {
        decoded += std::panic::catch_unwind(|| rpc_frames(input))
            .unwrap_or_else(|_| panic!("{} fails", path.display()));
    }
    assert!(decoded >= inputs.len(), "only {decoded} messages decoded");
}
