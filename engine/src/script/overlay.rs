//! The scratch dataset a round of scripts runs against, and the [`Host`]
//! that executes their commands there.
//!
//! Scripts never touch the applied state. The first time a script names a
//! key, the key is copied from the applied state into the overlay and
//! recorded as one of the run's reads; every command then runs against the
//! overlay with the round's time, and each successful write is recorded as
//! an effect. Later scripts of the same round see earlier ones' writes.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::engine::Host;
use crate::acl::User;
use crate::commands::{self, execute_read, execute_write, Dataset, ReadCtx, WriteCtx};
use crate::permission::permission;
use crate::reply::Reply;
use crate::state::AppliedState;

/// Op indexes of script effects start here, far above the positions of
/// commands in an entry, so ids derived from `(log index, op index)` (lease
/// ids) never collide with those of ordinary commands.
pub const FIRST_SCRIPT_OP: u32 = 1 << 31;

/// Keys and policies copied from the applied state for one round.
#[derive(Debug, Default)]
pub struct Overlay {
    data: Dataset,
    copied: HashSet<Bytes>,
    next_op: u32,
}

impl Overlay {
    /// An empty overlay with the applied state's limiter policies.
    pub fn new(state: &AppliedState) -> Self {
        let mut data = Dataset::default();
        data.policies = state.data.policies.clone();
        Overlay {
            data,
            copied: HashSet::new(),
            next_op: FIRST_SCRIPT_OP,
        }
    }
}

/// What one script did: the keys it read from the applied state and the
/// writes it made, in order, with their op indexes.
#[derive(Debug, Default)]
pub struct RunRecord {
    pub reads: Vec<Bytes>,
    pub effects: Vec<(u32, Vec<Bytes>)>,
}

/// Executes one script's commands against the round's overlay. `S` is the
/// node's shared state, which holds the applied state.
pub struct RunHost<'a, S> {
    pub overlay: &'a mut Overlay,
    pub state: &'a RwLock<S>,
    /// Whose permissions each command must pass; `None` is unrestricted.
    pub user: Option<Arc<User>>,
    pub at_ns: u64,
    pub base_index: u64,
    /// EVAL_RO / EVALSHA_RO: writes are refused.
    pub read_only: bool,
    pub record: RunRecord,
}

impl<S: Borrow<AppliedState>> RunHost<'_, S> {
    fn at_ms(&self) -> u64 {
        self.at_ns / 1_000_000
    }

    /// Copies `keys` from the applied state unless the overlay has them.
    fn bring_in(&mut self, keys: &[&Bytes]) {
        let fresh: Vec<&Bytes> = keys
            .iter()
            .copied()
            .filter(|key| !self.overlay.copied.contains(*key))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let at_ms = self.at_ms();
        let guard = self.state.read();
        let state: &AppliedState = (*guard).borrow();
        for key in fresh {
            if let Some(entry) = state.data.keyspace.get(key, at_ms) {
                self.overlay.data.keyspace.insert(
                    key.clone(),
                    entry.value.clone(),
                    entry.expire_at_ms,
                );
            }
            self.overlay.copied.insert(key.clone());
            self.record.reads.push(key.clone());
        }
    }
}

impl<S: Borrow<AppliedState>> Host for RunHost<'_, S> {
    fn call(&mut self, argv: Vec<Bytes>) -> Reply {
        let name = argv[0].to_ascii_lowercase();
        match &name[..] {
            b"time" => {
                let micros = self.at_ns / 1_000;
                return Reply::Array(vec![
                    Reply::bulk((micros / 1_000_000).to_string()),
                    Reply::bulk((micros % 1_000_000).to_string()),
                ]);
            }
            b"ping" if argv.len() <= 2 => {
                return argv
                    .get(1)
                    .map_or(Reply::status("PONG"), |m| Reply::Bulk(m.clone()));
            }
            _ => {}
        }
        let Some(spec) = commands::lookup(&argv[0]) else {
            return Reply::error("ERR Unknown Redis command called from script");
        };
        if !spec.allowed_in_scripts() {
            return Reply::error("ERR This Redis command is not allowed from script");
        }
        if !spec.arity_ok(argv.len()) {
            return Reply::wrong_arity(spec.name);
        }
        if let Some(user) = &self.user {
            if let Err(denial) = permission(user, spec, &argv) {
                return Reply::Error(denial.message(&user.name));
            }
        }
        self.bring_in(&spec.acl_keys(&argv));
        if spec.writes(&argv) {
            if self.read_only {
                return Reply::error("ERR Write commands are not allowed from read-only scripts.");
            }
            let op_index = self.overlay.next_op;
            self.overlay.next_op = self.overlay.next_op.wrapping_add(1).max(FIRST_SCRIPT_OP);
            let mut ctx = WriteCtx {
                data: &mut self.overlay.data,
                now_ms: self.at_ns / 1_000_000,
                now_ns: self.at_ns,
                log_index: self.base_index,
                op_index,
                effects: None,
            };
            let reply = execute_write(&mut ctx, &argv);
            // A command that fails changes nothing, so it needs no replay.
            if !reply.is_error() {
                self.record.effects.push((op_index, argv));
            }
            reply
        } else {
            let ctx = ReadCtx {
                data: &self.overlay.data,
                now_ms: self.at_ms(),
                applied_index: self.base_index,
            };
            execute_read(&ctx, &argv)
        }
    }
}
