//! The leader's script executor: runs EVAL and its kin once, on the leader,
//! and replicates what they did.
//!
//! Scripts run on a thread of their own (Lua is synchronous and a script may
//! be slow) in *rounds*. A round confirms leadership with a read barrier,
//! takes every script queued so far, runs them one after another against a
//! [`Overlay`] of the applied state at the round's time, and proposes their
//! effects as one [`ScriptRound`] entry. The entry's apply checks that what
//! each script read is unchanged, replays its writes, and answers with the
//! script's reply; a run whose reads changed meanwhile is run again in the
//! next round. So a script is atomic and linearizable without stopping
//! anything else: plain commands keep flowing while a script runs, and only
//! other scripts wait for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::clock::Clock;
use super::proposer::Proposer;
use super::read_barrier::{BarrierError, ReadBarrier};
use crate::commands::args::{is, parse_i64};
use crate::network::ClientOutcome;
use crate::payload::{Proposal, RequestId, ScriptRound, ScriptRun, SCRIPT_CONFLICT};
use crate::reply::Reply;
use crate::script::{Engine, Overlay, RunHost, KILLED};
use crate::storage::AppliedState;

/// Scripts taken into one round at most.
const MAX_ROUND: usize = 256;

/// How often a script whose reads keep changing is run again before the
/// client is told to retry.
const MAX_ATTEMPTS: u32 = 50;

/// After this long a running script makes other scripts answer BUSY, as
/// Redis's `busy-reply-threshold` (`lua-time-limit`) does.
pub const BUSY_AFTER: Duration = Duration::from_secs(5);

struct Job {
    id: RequestId,
    /// The ACL user the script runs as; `None` is unrestricted.
    user: Option<String>,
    argv: Vec<Bytes>,
    reply: oneshot::Sender<ClientOutcome>,
    attempts: u32,
}

impl Job {
    fn answer(self, reply: Reply) {
        let _ = self.reply.send(ClientOutcome::Reply(reply));
    }
}

/// Handle to the executor thread.
pub struct ScriptExecutor {
    tx: mpsc::Sender<Job>,
    kill: Arc<AtomicBool>,
    /// When the script now running started.
    running_since: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for ScriptExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptExecutor").finish()
    }
}

/// What the executor thread works with.
struct Context {
    state: Arc<RwLock<AppliedState>>,
    proposer: Proposer,
    barrier: ReadBarrier,
    /// The node's clock: a script's time (TIME, expiries it sets).
    clock: Clock,
    runtime: Handle,
    kill: Arc<AtomicBool>,
    running_since: Arc<Mutex<Option<Instant>>>,
}

impl ScriptExecutor {
    /// Starts the executor thread. Must be called inside the node's runtime.
    pub fn spawn(
        state: Arc<RwLock<AppliedState>>,
        proposer: Proposer,
        barrier: ReadBarrier,
        clock: Clock,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let kill = Arc::new(AtomicBool::new(false));
        let running_since = Arc::new(Mutex::new(None));
        let context = Context {
            state,
            proposer,
            barrier,
            clock,
            runtime: Handle::current(),
            kill: kill.clone(),
            running_since: running_since.clone(),
        };
        std::thread::Builder::new()
            .name("scripts".into())
            .spawn(move || run(rx, context))?;
        Ok(ScriptExecutor {
            tx,
            kill,
            running_since,
        })
    }

    /// Queues a script command (see [`crate::script::runs_on_executor`]).
    /// SCRIPT KILL and the BUSY refusal are answered at once.
    pub fn submit(
        &self,
        id: RequestId,
        user: Option<String>,
        argv: Vec<Bytes>,
    ) -> oneshot::Receiver<ClientOutcome> {
        let (reply, rx) = oneshot::channel();
        let running = *self.running_since.lock();
        let immediate = if is_kill(&argv) {
            Some(match running {
                Some(_) => {
                    self.kill.store(true, Ordering::Release);
                    Reply::Ok
                }
                None => Reply::error("NOTBUSY No scripts in execution right now."),
            })
        } else if running.is_some_and(|since| since.elapsed() >= BUSY_AFTER) {
            Some(Reply::error(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            ))
        } else {
            None
        };
        match immediate {
            Some(answer) => {
                let _ = reply.send(ClientOutcome::Reply(answer));
            }
            None => {
                let job = Job {
                    id,
                    user,
                    argv,
                    reply,
                    attempts: 0,
                };
                if let Err(mpsc::SendError(job)) = self.tx.send(job) {
                    let _ = job
                        .reply
                        .send(ClientOutcome::Unknown("script executor stopped".into()));
                }
            }
        }
        rx
    }
}

fn is_kill(argv: &[Bytes]) -> bool {
    is(&argv[0], "SCRIPT") && argv.get(1).is_some_and(|sub| is(sub, "KILL"))
}

fn run(rx: mpsc::Receiver<Job>, context: Context) {
    let mut engine = match Engine::new(context.kill.clone()) {
        Ok(engine) => engine,
        Err(err) => {
            tracing::error!(%err, "scripting is unavailable");
            while let Ok(job) = rx.recv() {
                job.answer(Reply::error(format!("ERR scripting is unavailable: {err}")));
            }
            return;
        }
    };
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        while queue.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        let jobs: Vec<Job> = queue.drain(..).collect();
        queue.extend(round(&mut engine, &context, jobs));
    }
}

/// A parsed script command.
enum Call {
    Eval {
        body: Option<Bytes>,
        sha: String,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        read_only: bool,
    },
    Load(Bytes),
}

fn parse(argv: &[Bytes]) -> Result<Call, Reply> {
    let name = argv[0].to_ascii_lowercase();
    if name == b"script" {
        return match argv.get(1) {
            Some(sub) if is(sub, "LOAD") && argv.len() == 3 => Ok(Call::Load(argv[2].clone())),
            _ => Err(Reply::error(
                "ERR wrong number of arguments for 'script|load' command",
            )),
        };
    }
    if argv.len() < 3 {
        return Err(Reply::wrong_arity(&String::from_utf8_lossy(&name)));
    }
    let (by_sha, read_only) = match &name[..] {
        b"eval" => (false, false),
        b"evalsha" => (true, false),
        b"eval_ro" => (false, true),
        _ => (true, true),
    };
    let numkeys = parse_i64(&argv[2]).ok_or_else(Reply::not_integer)?;
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let numkeys = numkeys as usize;
    if numkeys > argv.len() - 3 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let keys = argv[3..3 + numkeys].to_vec();
    let args = argv[3 + numkeys..].to_vec();
    let (body, sha) = if by_sha {
        (None, String::from_utf8_lossy(&argv[1]).to_ascii_lowercase())
    } else {
        (Some(argv[1].clone()), crate::script::sha1_hex(&argv[1]))
    };
    Ok(Call::Eval {
        body,
        sha,
        keys,
        args,
        read_only,
    })
}

/// Runs one round; returns the jobs to run again in the next one.
fn round(engine: &mut Engine, context: &Context, jobs: Vec<Job>) -> Vec<Job> {
    if let Err(err) = context.runtime.block_on(context.barrier.wait()) {
        let outcome = match err {
            BarrierError::NotLeader(leader) => ClientOutcome::NotLeader { leader },
            BarrierError::Timeout => ClientOutcome::Unknown("leadership not confirmed".into()),
        };
        for job in jobs {
            let _ = job.reply.send(outcome.clone());
        }
        return Vec::new();
    }
    let (base_index, at_ns, mut overlay) = {
        let state = context.state.read();
        let base_index = state.last_applied.map_or(0, |l| l.index);
        let at_ns = context.clock.now_ns().max(state.last_stamp_ns);
        (base_index, at_ns, Overlay::new(&state))
    };
    let mut loads: Vec<Bytes> = Vec::new();
    let mut runs: Vec<ScriptRun> = Vec::new();
    let mut waiting: Vec<Job> = Vec::new();
    // Jobs left for the next round because a killed script spoiled the overlay.
    let mut deferred: Vec<Job> = Vec::new();
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        if let Some(reply) = context.state.read().applied_reply(&job.id).cloned() {
            job.answer(reply);
            continue;
        }
        let call = match parse(&job.argv) {
            Ok(call) => call,
            Err(reply) => {
                job.answer(reply);
                continue;
            }
        };
        let (sha, keys, args, read_only) = match call {
            Call::Load(body) => match engine.compile(&body) {
                Ok(sha) => {
                    note_load(context, &mut loads, &sha, body);
                    runs.push(ScriptRun {
                        id: job.id,
                        reads: Vec::new(),
                        effects: Vec::new(),
                        reply: Reply::bulk(sha),
                    });
                    waiting.push(job);
                    continue;
                }
                Err(reply) => {
                    job.answer(reply);
                    continue;
                }
            },
            Call::Eval {
                body,
                sha,
                keys,
                args,
                read_only,
            } => {
                let body = body.or_else(|| cached_body(context, &loads, &sha));
                let Some(body) = body else {
                    job.answer(Reply::error(
                        "NOSCRIPT No matching script. Please use EVAL.",
                    ));
                    continue;
                };
                if let Err(reply) = engine.compile(&body) {
                    job.answer(reply);
                    continue;
                }
                note_load(context, &mut loads, &sha, body);
                (sha, keys, args, read_only)
            }
        };
        let user = match job.user.as_deref() {
            None => None,
            Some(name) => {
                let found = context.state.read().data.acl.user(name).cloned();
                if found.is_none() {
                    let text = format!(
                        "NOPERM User {name} has no permissions to run the '{}' command",
                        String::from_utf8_lossy(&job.argv[0]).to_ascii_lowercase()
                    );
                    job.answer(Reply::Error(text));
                    continue;
                }
                found
            }
        };
        let mut host = RunHost {
            overlay: &mut overlay,
            state: &context.state,
            user,
            at_ns,
            base_index,
            read_only,
            record: Default::default(),
        };
        *context.running_since.lock() = Some(Instant::now());
        let reply = engine.run(&sha, &keys, &args, &mut host);
        *context.running_since.lock() = None;
        let mut record = host.record;
        let killed = matches!(&reply, Reply::Error(text) if text == KILLED);
        if killed {
            // A killed script leaves no trace, unlike one that failed: its
            // writes are dropped, and the scripts after it run next round
            // on an overlay without them.
            record.effects.clear();
            deferred.extend(jobs.by_ref());
        }
        runs.push(ScriptRun {
            id: job.id,
            reads: record.reads,
            effects: record.effects,
            reply,
        });
        waiting.push(job);
    }
    if runs.iter().all(|run| run.effects.is_empty()) && loads.is_empty() {
        // Nothing was written, so every script saw the applied state as the
        // barrier left it: the replies stand without a log entry.
        for (job, run) in waiting.into_iter().zip(runs) {
            job.answer(run.reply);
        }
        return deferred;
    }
    let proposal = Proposal::Scripts(ScriptRound {
        base_index,
        at_ns,
        loads,
        runs,
    });
    let outcome = context
        .proposer
        .submit(proposal)
        .blocking_recv()
        .unwrap_or_else(|_| ClientOutcome::Unknown("proposer stopped".into()));
    let replies = match outcome {
        ClientOutcome::Reply(Reply::Array(replies)) if replies.len() == waiting.len() => replies,
        ClientOutcome::Reply(_) => {
            let outcome = ClientOutcome::Unknown("malformed script round reply".into());
            for job in waiting {
                let _ = job.reply.send(outcome.clone());
            }
            return deferred;
        }
        other => {
            for job in waiting {
                let _ = job.reply.send(other.clone());
            }
            return deferred;
        }
    };
    metrics::histogram!("raftlimit_script_round_runs").record(replies.len() as f64);
    let mut again = Vec::new();
    for (mut job, reply) in waiting.into_iter().zip(replies) {
        let conflicted = matches!(&reply, Reply::Error(text) if text == SCRIPT_CONFLICT);
        if conflicted {
            metrics::counter!("raftlimit_script_conflicts_total").increment(1);
        }
        if !conflicted {
            job.answer(reply);
        } else if job.attempts + 1 >= MAX_ATTEMPTS {
            job.answer(Reply::error(
                "TRYAGAIN the keys this script reads kept changing; it was not applied",
            ));
        } else {
            job.attempts += 1;
            again.push(job);
        }
    }
    again.extend(deferred);
    again
}

/// The body of a cached script: replicated, or loaded earlier in this round.
fn cached_body(context: &Context, loads: &[Bytes], sha: &str) -> Option<Bytes> {
    if let Some(body) = context.state.read().data.scripts.get(sha) {
        return Some(body.clone());
    }
    loads
        .iter()
        .find(|body| crate::script::sha1_hex(body) == sha)
        .cloned()
}

/// Adds `body` to the round's cache loads unless the cache already has it.
fn note_load(context: &Context, loads: &mut Vec<Bytes>, sha: &str, body: Bytes) {
    let known = context.state.read().data.scripts.contains_key(sha)
        || loads
            .iter()
            .any(|loaded| crate::script::sha1_hex(loaded) == sha);
    if !known {
        loads.push(body);
    }
}
