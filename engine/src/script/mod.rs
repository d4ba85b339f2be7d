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

pub use engine::{Engine, Host, KILLED};
pub use overlay::{Overlay, RunHost, RunRecord, FIRST_SCRIPT_OP};

use crate::commands::{lookup, Route};
use crate::payload::WriteOp;

pub use crate::commands::scripting::sha1_hex;

/// The commands the leader's script executor serves instead of the log:
/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD and SCRIPT KILL, with
/// the ACL user they run as (`None`: unrestricted).
pub fn runs_on_executor(op: &WriteOp) -> Option<(Option<&str>, &[Bytes])> {
    let (user, argv) = match op {
        WriteOp::Script { user, argv } => (Some(user.as_str()), argv),
        WriteOp::Command(argv) => (None, argv),
        WriteOp::Transaction { .. } => return None,
    };
    let spec = lookup(argv.first()?)?;
    (spec.route(argv) == Route::Script).then_some((user, argv.as_slice()))
}
