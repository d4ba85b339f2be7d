//! The fuzzing entry point for commands, shared by the `commands` fuzz
//! target in `fuzz/` and the corpus replay tests, so a crash the fuzzer
//! finds replays through the same code in `cargo test`.
//!
//! Each takes arbitrary bytes and panics only on a bug: a panic in a command
//! or a decoder, or a broken property that the cluster relies on.

use bytes::Bytes;

use crate::commands::{execute_bare, lookup, Dataset};
use crate::reply::Reply;

/// Apply time of the first command; each further command runs 250 ms later,
/// so short expiries pass within one input.
const START_MS: u64 = 1_700_000_000_000;
const STEP_MS: u64 = 250;
/// Keys physically removed after each command, as a `Sweep` entry would.
const SWEEP_KEYS: usize = 16;

/// Runs `data` as a sequence of commands against two fresh datasets, the way
/// apply and the read path run them, and panics if a command panics or the
/// two replicas answer differently (the state machine must be deterministic).
///
/// Format: one command per line (`\n`), arguments separated by single
/// spaces; every other byte is literal, so arguments can hold any binary
/// value but a space or a newline. Returns the replies.
pub fn command_sequence(data: &[u8]) -> Vec<Reply> {
    let commands: Vec<Vec<Bytes>> = data
        .split(|&b| b == b'\n')
        .map(|line| {
            line.split(|&b| b == b' ')
                .map(Bytes::copy_from_slice)
                .collect::<Vec<_>>()
        })
        .filter(|argv| argv.first().is_some_and(|name| !name.is_empty()))
        .collect();
    let mut replicas = [Dataset::default(), Dataset::default()];
    let mut replies = Vec::with_capacity(commands.len());
    for (index, argv) in commands.iter().enumerate() {
        check_key_positions(argv);
        let now_ms = START_MS + index as u64 * STEP_MS;
        let [first, second] = &mut replicas;
        let reply = run(first, argv, index as u64 + 1, now_ms);
        let again = run(second, argv, index as u64 + 1, now_ms);
        // Debug text, not `==`: a NaN double must still compare equal.
        assert_eq!(
            format!("{reply:?}"),
            format!("{again:?}"),
            "replicas diverged on command {index}"
        );
        replies.push(reply);
    }
    replies
}

/// Routes one command as the server does: writes through apply, reads
/// against the applied state. Then sweeps, as the leader's `Sweep` would.
fn run(data: &mut Dataset, argv: &[Bytes], log_index: u64, now_ms: u64) -> Reply {
    let reply = execute_bare(data, argv, log_index, now_ms);
    data.keyspace.sweep(now_ms, SWEEP_KEYS);
    reply
}

/// The key positions the server uses for ACL checks must name arguments
/// that exist, for any argument count the arity admits.
fn check_key_positions(argv: &[Bytes]) {
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else {
        return;
    };
    if !spec.arity_ok(argv.len()) {
        return;
    }
    for key in spec.keys(argv).into_iter().chain(spec.acl_keys(argv)) {
        assert!(
            argv[1..].iter().any(|arg| std::ptr::eq(arg, key)),
            "{} names a key that is not one of its arguments",
            spec.name
        );
    }
    let _ = spec.key_access(argv);
}
