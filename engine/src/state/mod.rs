//! The applied state and the apply function: what every replica computes
//! from the committed log, and nothing else.
//!
//! Architecture invariant: applying an entry depends only on the state and the
//! entry (including its stamp). No local clock, no randomness, no iteration
//! over unordered maps decides anything here.

mod dedup;
mod image;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::acl::{AclTable, Users};
use crate::commands::{execute_write, Dataset, Effect, WriteCtx};
use crate::error::Error;
use crate::payload::{LogPayload, Proposal, RequestId, ScriptRound, WriteOp, SCRIPT_CONFLICT};
use crate::reply::Reply;
use dedup::DedupTable;
pub use dedup::RETRY_HORIZON;
pub use image::{Capture, IMAGE_VERSION};

/// Everything the log has produced so far. The node shares it with readers
/// behind a lock; only apply and snapshot installation write it.
#[derive(Debug, Default)]
pub struct AppliedState {
    pub data: Dataset,
    /// The greatest stamp applied; time never goes below it.
    pub last_stamp_ns: u64,
    dedup: DedupTable,
    /// Bumped after every change of the user table, so connections can
    /// cache their user between changes. Shared across snapshot installs.
    acl_generation: Arc<AtomicU64>,
}

impl AppliedState {
    /// An empty state over the configured ACL users.
    pub fn with_acl_base(acl_base: Arc<Users>) -> Self {
        let mut state = AppliedState::default();
        state.data.acl = AclTable::new(acl_base);
        state
    }

    /// An empty state with the same configured users and generation counter.
    pub fn empty_like(&self) -> Self {
        let mut state = AppliedState::with_acl_base(self.data.acl.base().clone());
        state.acl_generation = self.acl_generation.clone();
        state
    }

    /// The counter bumped whenever the user table changes.
    pub fn acl_generation(&self) -> Arc<AtomicU64> {
        self.acl_generation.clone()
    }

    /// The time a read should use on this node: the replicated clock, or the
    /// local one if it is ahead (a key past its expiry is logically gone).
    pub fn read_now_ms(&self, wall_ns: u64) -> u64 {
        wall_ns.max(self.last_stamp_ns) / 1_000_000
    }

    /// Applies one log entry's payload at `log_index`: one reply per
    /// proposal. Limiter decisions are reported into `effects` when given.
    pub fn apply_payload(
        &mut self,
        log_index: u64,
        payload: &LogPayload,
        mut effects: Option<&mut Vec<Effect>>,
    ) -> Vec<Reply> {
        self.data.keyspace.set_clock(log_index);
        let now_ns = payload.stamp_ns.max(self.last_stamp_ns);
        self.last_stamp_ns = now_ns;
        let now_ms = now_ns / 1_000_000;
        let mut replies = Vec::with_capacity(payload.ops.len());
        for (op_index, op) in payload.ops.iter().enumerate() {
            let reply = match op {
                Proposal::Client { id, op } => {
                    if let Some(reply) = self.dedup.get(id) {
                        reply.clone()
                    } else {
                        let mut ctx = WriteCtx {
                            data: &mut self.data,
                            now_ms,
                            now_ns,
                            log_index,
                            op_index: op_index as u32,
                            effects: effects.as_deref_mut(),
                        };
                        let users_before = ctx.data.acl.changes();
                        let reply = apply_op(&mut ctx, op);
                        if self.data.acl.changes() != users_before {
                            self.acl_generation.fetch_add(1, Ordering::Release);
                        }
                        self.dedup.insert(*id, now_ns, reply.clone());
                        reply
                    }
                }
                Proposal::Sweep { max_keys } => {
                    let removed = self.data.keyspace.sweep(now_ms, *max_keys as usize);
                    Reply::Int(removed as i64)
                }
                Proposal::Scripts(round) => {
                    self.apply_scripts(round, now_ms, effects.as_deref_mut())
                }
            };
            replies.push(reply);
        }
        self.dedup.prune(now_ns);
        replies
    }

    /// A snapshot of this state, taken cheaply under the caller's lock and
    /// serialized afterwards (see [`AppliedState::restore`]).
    pub fn capture(&self) -> Result<Capture, Error> {
        Capture::of(self)
    }

    /// Replaces this state's content with a snapshot image of layout
    /// `version` ([`IMAGE_VERSION`], or an older one), keeping the configured
    /// users and the generation counter.
    pub fn restore(&mut self, version: u16, data: &[u8]) -> Result<(), Error> {
        image::restore(self, version, data)
    }

    /// When the de-duplication table next has ids to forget: the leader then
    /// proposes an entry (an empty sweep) so an idle cluster forgets them too.
    pub fn dedup_expiry_ns(&self) -> Option<u64> {
        self.dedup.next_expiry_ns()
    }

    /// How many request ids the de-duplication table holds.
    pub fn dedup_len(&self) -> usize {
        self.dedup.len()
    }

    /// The reply already given to request `id`, if it was applied recently.
    pub fn applied_reply(&self, id: &RequestId) -> Option<&Reply> {
        self.dedup.get(id)
    }

    /// Applies a round of script effects (see [`ScriptRound`]): one reply
    /// per run, [`SCRIPT_CONFLICT`] for runs whose premises changed.
    fn apply_scripts(
        &mut self,
        round: &ScriptRound,
        now_ms: u64,
        mut effects: Option<&mut Vec<Effect>>,
    ) -> Reply {
        for body in &round.loads {
            self.data
                .scripts
                .insert(crate::commands::scripting::sha1_hex(body), body.clone());
        }
        let at_ms = round.at_ns / 1_000_000;
        let mut chain_holds = true;
        let mut replies = Vec::with_capacity(round.runs.len());
        for run in &round.runs {
            if let Some(reply) = self.dedup.get(&run.id) {
                // Applied in an earlier entry: later runs may have read this
                // run's writes as the leader computed them again, so they
                // are run once more rather than trusted.
                replies.push(reply.clone());
                chain_holds = false;
                continue;
            }
            let ks = &self.data.keyspace;
            let premises_hold = chain_holds
                && run.reads.iter().all(|key| {
                    !ks.changed_since(key, round.base_index)
                        && ks.contains(key, at_ms) == ks.contains(key, now_ms)
                });
            if !premises_hold {
                chain_holds = false;
                replies.push(Reply::error(SCRIPT_CONFLICT));
                continue;
            }
            for (op_index, argv) in &run.effects {
                let mut ctx = WriteCtx {
                    data: &mut self.data,
                    now_ms: at_ms,
                    now_ns: round.at_ns,
                    log_index: round.base_index,
                    op_index: *op_index,
                    effects: effects.as_deref_mut(),
                };
                execute_write(&mut ctx, argv);
            }
            // The keys written carry this entry's index as their version
            // (the keyspace clock), so WATCH and later rounds see the change.
            self.dedup.insert(run.id, round.at_ns, run.reply.clone());
            replies.push(run.reply.clone());
        }
        Reply::Array(replies)
    }
}

/// Executes one client write: a command, or a transaction all at once.
fn apply_op(ctx: &mut WriteCtx<'_>, op: &WriteOp) -> Reply {
    match op {
        WriteOp::Command(argv) => execute_write(ctx, argv),
        WriteOp::Script { .. } => Reply::error("ERR scripts run on the leader, not in the log"),
        WriteOp::Transaction { watch, commands } => {
            if let Some(watch) = watch {
                let ks = &ctx.data.keyspace;
                if watch
                    .keys
                    .iter()
                    .any(|key| ks.changed_since(key, watch.index))
                {
                    return Reply::NilArray;
                }
            }
            Reply::Array(
                commands
                    .iter()
                    .map(|argv| execute_write(ctx, argv))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{hash_password, to_hex, AnyCommand};
    use bytes::Bytes;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn client(seq: u64, line: &str) -> Proposal {
        Proposal::Client {
            id: RequestId { origin: 1, seq },
            op: WriteOp::Command(argv(line)),
        }
    }

    fn run(seq: u64, reads: &[&str], effects: &[&str], reply: Reply) -> crate::payload::ScriptRun {
        crate::payload::ScriptRun {
            id: RequestId { origin: 2, seq },
            reads: reads.iter().map(|k| Bytes::from(k.to_string())).collect(),
            effects: effects
                .iter()
                .enumerate()
                .map(|(i, line)| (crate::script::FIRST_SCRIPT_OP + i as u32, argv(line)))
                .collect(),
            reply,
        }
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    fn payload(stamp_ns: u64, ops: Vec<Proposal>) -> LogPayload {
        LogPayload {
            stamp_ns,
            ops: Arc::new(ops),
        }
    }

    #[test]
    fn script_rounds_replay_effects_at_the_round_time() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        state.apply_payload(1, &payload(T0, vec![client(1, "SET a 1")]), None);
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0 + 1_000_000,
            loads: vec![Bytes::from_static(b"return 1")],
            runs: vec![run(
                1,
                &["a"],
                &["INCR a", "SET b x PX 1000"],
                Reply::Int(2),
            )],
        };
        // The entry is stamped later than the round ran: effects still use the round's time.
        let replies = state.apply_payload(
            2,
            &payload(T0 + 500_000_000, vec![Proposal::Scripts(round.clone())]),
            None,
        );
        assert_eq!(replies, vec![Reply::Array(vec![Reply::Int(2)])]);
        let now = (T0 + 500_000_000) / 1_000_000;
        let b = state.data.keyspace.get(b"b", now).map(|e| e.expire_at_ms);
        assert_eq!(b, Some(Some(T0 / 1_000_000 + 1 + 1000)));
        assert!(state
            .data
            .scripts
            .contains_key(&crate::script::sha1_hex(b"return 1")));
        // The same round again (a retried proposal) is answered from the dedup table.
        let again = state.apply_payload(
            3,
            &payload(T0 + 600_000_000, vec![Proposal::Scripts(round)]),
            None,
        );
        assert_eq!(again, vec![Reply::Array(vec![Reply::Int(2)])]);
        let a = state.data.keyspace.get(b"a", now).map(|e| e.value.clone());
        assert_eq!(
            a,
            Some(crate::keyspace::Value::Str(Bytes::from_static(b"2")))
        );
    }

    #[test]
    fn a_script_whose_reads_changed_is_not_applied_nor_are_later_runs() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        state.apply_payload(1, &payload(T0, vec![client(1, "SET a 1")]), None);
        // Another client's write lands between the scripts' reads and their round.
        state.apply_payload(2, &payload(T0, vec![client(2, "SET a 10")]), None);
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0,
            loads: Vec::new(),
            runs: vec![
                run(1, &["a"], &["INCR a"], Reply::Int(2)),
                run(2, &[], &["INCR a"], Reply::Int(3)),
            ],
        };
        let replies = state.apply_payload(3, &payload(T0, vec![Proposal::Scripts(round)]), None);
        let conflict = Reply::error(SCRIPT_CONFLICT);
        assert_eq!(
            replies,
            vec![Reply::Array(vec![conflict.clone(), conflict])]
        );
        let a = state
            .data
            .keyspace
            .get(b"a", T0 / 1_000_000)
            .map(|e| e.value.clone());
        assert_eq!(
            a,
            Some(crate::keyspace::Value::Str(Bytes::from_static(b"10")))
        );
    }

    #[test]
    fn a_key_that_expired_after_the_round_ran_is_a_conflict() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        let t0_ms = T0 / 1_000_000;
        state.apply_payload(
            1,
            &payload(T0, vec![client(1, &format!("SET a 1 PXAT {}", t0_ms + 5))]),
            None,
        );
        let round = ScriptRound {
            base_index: 1,
            at_ns: T0,
            loads: Vec::new(),
            runs: vec![run(1, &["a"], &["INCR a"], Reply::Int(2))],
        };
        // Applied 10 ms later: the script saw `a` alive, the replica would not.
        let replies = state.apply_payload(
            2,
            &payload(T0 + 10_000_000, vec![Proposal::Scripts(round)]),
            None,
        );
        assert_eq!(
            replies,
            vec![Reply::Array(vec![Reply::error(SCRIPT_CONFLICT)])]
        );
    }

    #[test]
    fn snapshot_image_carries_acl_changes_as_hashes() {
        let mut state = AppliedState::with_acl_base(Arc::new(Users::new()));
        let hash = to_hex(&hash_password(b"s3cret-pass"));
        assert!(state
            .data
            .acl
            .set_user(
                "alice",
                &["on", &format!("#{hash}"), "~app:*", "+get"],
                &AnyCommand
            )
            .is_ok());
        assert!(state
            .data
            .acl
            .set_user("default", &["resetpass", ">another-pass"], &AnyCommand)
            .is_ok());
        let data = state
            .capture()
            .and_then(|capture| capture.image_bytes())
            .unwrap_or_default();
        assert!(!data.windows(11).any(|w| w == b"s3cret-pass"));
        assert!(!data.windows(12).any(|w| w == b"another-pass"));
        let mut fresh = state.empty_like();
        assert!(fresh.restore(IMAGE_VERSION, &data).is_ok());
        let alice = fresh.data.acl.user("alice").cloned();
        assert!(alice.is_some_and(|u| u.check_password(b"s3cret-pass") && u.enabled));
        let default = fresh.data.acl.user("default").cloned();
        assert!(default.is_some_and(|u| !u.nopass && u.check_password(b"another-pass")));
    }
}
