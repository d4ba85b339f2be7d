//! Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT): the sandboxed
//! interpreter, Redis's value conversions and libraries, and the overlay
//! scripts run against.
//!
//! Architecture invariant: a script runs once, on the leader (see
//! `node::script_executor`); what it wrote is replicated as a
//! [`crate::payload::ScriptRound`], never the script. `TIME`, random picks
//! and the time limit are resolved on the leader, so replicas cannot
//! diverge whatever a script does.

mod convert;
mod engine;
mod libs;
mod overlay;

use bytes::Bytes;
use sha1::{Digest, Sha1};

pub use engine::{Engine, Host, KILLED};
pub use overlay::{Overlay, RunHost, RunRecord, FIRST_SCRIPT_OP};

use crate::commands::args::is;
use crate::commands::EVAL_COMMANDS;
use crate::payload::WriteOp;

/// Lower-case hex SHA-1 of a script body: its id for EVALSHA.
pub fn sha1_hex(body: &[u8]) -> String {
    Sha1::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The commands the leader's script executor serves instead of the log:
/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD and SCRIPT KILL, with
/// the ACL user they run as (`None`: unrestricted).
pub fn runs_on_executor(op: &WriteOp) -> Option<(Option<&str>, &[Bytes])> {
    let (user, argv) = match op {
        WriteOp::Script { user, argv } => (Some(user.as_str()), argv),
        WriteOp::Command(argv) => (None, argv),
        WriteOp::Transaction { .. } => return None,
    };
    let name = argv.first()?;
    let on_executor = EVAL_COMMANDS.iter().any(|n| is(name, n))
        || (is(name, "SCRIPT")
            && argv
                .get(1)
                .is_some_and(|sub| is(sub, "LOAD") || is(sub, "KILL")));
    on_executor.then_some((user, argv.as_slice()))
}
