//! The deterministic Redis model of raftlimit: the keyspace and its data
//! types, every replicated command, Lua scripting, ACL rules, replies,
//! de-duplication and the apply function that turns committed log entries
//! into state.
//!
//! This crate is an API boundary: the raft crate wraps [`AppliedState`] for
//! openraft, and the server routes commands by their [`CommandSpec`]. Nothing here
//! does I/O, reads a clock or draws a random number; the only time a command
//! sees is the one passed in (a log entry's stamp, or a script round's).
//! Modules are private; what other crates use is re-exported below.

mod acl;
mod commands;
mod error;
mod keyspace;
mod payload;
mod permission;
mod reply;
mod script;
mod state;

pub mod fuzz;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::Error;
pub use reply::{format_double, Reply};

// The log's payload and the applied state.
pub use payload::{
    ApplyResponse, LogPayload, LoggedArgv, Proposal, RequestId, ScriptRound, ScriptRun, Watch,
    WriteOp, SCRIPT_CONFLICT,
};
pub use state::{AppliedState, Capture as SnapshotCapture, IMAGE_VERSION, RETRY_HORIZON};

// Commands: the table, execution, and the argument helpers connection-level
// commands share.
pub use commands::args::{is, parse_i64};
pub use commands::limiter::{idempotency_token, parse_policy, Policy};
pub use commands::scripting::{is_script_kill, ScriptCall};
pub use commands::{
    all_specs, arity_ok, execute_read, execute_write, lookup, unknown_command, unknown_subcommand,
    CheckOutcome, CommandSpec, CommandTable, Dataset, Effect, Handler, KeyAccess, KeySpec, ReadCtx,
    ReadFn, Route, WriteCtx, WriteFn,
};
pub use keyspace::{glob_match, Value};

// ACL rules and users.
pub use acl::{
    hash_password, to_hex, valid_user_name, AclTable, AnyCommand, Catalog, CommandRef, RuleError,
    User, Users, CATEGORIES, DEFAULT_USER,
};
pub use commands::acl::{quote_rule, rule_error};
pub use permission::{permission, Denial};

// Scripting: the interpreter and the overlay the leader runs scripts on.
pub use script::{
    runs_on_executor, sha1_hex, Engine as ScriptEngine, Host as ScriptHost, Overlay, RunHost,
    RunRecord, FIRST_SCRIPT_OP, KILLED,
};
