//! Recorded histories: the operation log a run writes and every checker reads.
//!
//! A history is a JSON-lines file, one [`Op`] per line, in the order the runner
//! recorded them. [`History::pairs`] joins each invocation with its completion
//! and validates the recording rules the checkers depend on:
//!
//! 1. A logical process is single-threaded: it has at most one operation in
//!    flight, and its records alternate invocation, completion, invocation, …
//! 2. A completion names the same function and key as the invocation it ends.
//! 3. A process's timestamps never decrease.
//! 4. **After an indeterminate (`Info`) result the process is finished.** The
//!    request may still be in flight (or be retried inside the cluster) and take
//!    effect later, so the operation stays concurrent with everything after it.
//!    If the same process id issued another operation, that process would have
//!    two overlapping operations, breaking rule 1. A worker whose operation went
//!    indeterminate therefore carries on as a *new* logical process, by
//!    convention [`History::next_process`]: `process + workers`, so that
//!    `process % workers` still names the worker.
//!
//! An invocation with no completion at all (the run stopped first) is treated
//! exactly like an `Info` completion.

mod op;
mod pair;
mod value;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

pub use op::{Op, OpKind, F};
pub use pair::{Outcome, Pair};
pub use value::{Algo, LeaseArgs, LimitArgs, Value, Verdict};

use crate::Error;

/// An ordered log of operation records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Op>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps records already in recording order.
    pub fn from_ops(ops: Vec<Op>) -> Self {
        Self { ops }
    }

    /// Appends a record. The runner calls this under a lock, so the order of
    /// records is the order in which they were observed.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// The records, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Mutable access to the records (used to plant faults in tests).
    pub fn ops_mut(&mut self) -> &mut Vec<Op> {
        &mut self.ops
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The process id a worker continues under after `process` ended with an
    /// indeterminate result, for a run with `workers` workers.
    pub fn next_process(process: u64, workers: u64) -> u64 {
        process.saturating_add(workers.max(1))
    }

    /// Reads a JSON-lines history file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::read_jsonl(file)
    }

    /// Parses JSON lines from a reader. Blank lines are skipped; a torn or
    /// otherwise unparsable line is an error rather than silently dropped,
    /// because dropping a completion would change what the checkers conclude.
    pub fn read_jsonl(reader: impl Read) -> Result<Self, Error> {
        let mut ops = Vec::new();
        for (n, line) in BufReader::new(reader).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op = serde_json::from_str(&line).map_err(|source| Error::Json {
                line: n + 1,
                source,
            })?;
            ops.push(op);
        }
        Ok(Self { ops })
    }

    /// Writes a JSON-lines history file, replacing any existing file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io_err)?;
        let mut out = BufWriter::new(file);
        self.write_jsonl(&mut out)?;
        out.flush().map_err(io_err)?;
        out.get_ref().sync_all().map_err(io_err)
    }

    /// Writes one JSON object per line.
    pub fn write_jsonl(&self, mut writer: impl Write) -> Result<(), Error> {
        for (index, op) in self.ops.iter().enumerate() {
            serde_json::to_writer(&mut writer, op)
                .map_err(|source| Error::Serialize { index, source })?;
            writer.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Joins every invocation with its completion, in invocation order.
    ///
    /// Fails with [`Error::Malformed`] when a recording rule (module docs) is
    /// broken: checking a history whose operations cannot be told apart would
    /// mean guessing, and a guess can turn into a false pass.
    pub fn pairs(&self) -> Result<Vec<Pair>, Error> {
        let mut out: Vec<Pair> = Vec::new();
        // process -> position in `out` of its in-flight operation
        let mut pending: HashMap<u64, usize> = HashMap::new();
        // processes that ended with an indeterminate result
        let mut retired: HashSet<u64> = HashSet::new();
        let mut last_time: HashMap<u64, u64> = HashMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            let malformed = |reason: String| Error::Malformed { index, reason };
            if let Some(&previous) = last_time.get(&op.process) {
                if op.time_ns < previous {
                    return Err(malformed(format!(
                        "time of process {} went backwards ({} < {})",
                        op.process, op.time_ns, previous
                    )));
                }
            }
            last_time.insert(op.process, op.time_ns);
            match op.kind {
                OpKind::Invoke => {
                    if retired.contains(&op.process) {
                        return Err(malformed(format!(
                            "process {} invoked again after an indeterminate result; \
                             the worker must continue as a new process",
                            op.process
                        )));
                    }
                    if let Some(&slot) = pending.get(&op.process) {
                        let earlier = out.get(slot).map_or(0, |p| p.index);
                        return Err(malformed(format!(
                            "process {} invoked while op {} is still in flight",
                            op.process, earlier
                        )));
                    }
                    pending.insert(op.process, out.len());
                    out.push(Pair {
                        index,
                        completion_index: None,
                        process: op.process,
                        f: op.f,
                        key: op.key.clone(),
                        args: op.value.clone(),
                        outcome: Outcome::Info,
                        result: Value::Nil,
                        invoke_ns: op.time_ns,
                        complete_ns: None,
                        node: op.node.clone(),
                        error: None,
                    });
                }
                kind => {
                    let pair = pending
                        .remove(&op.process)
                        .and_then(|slot| out.get_mut(slot))
                        .ok_or_else(|| {
                            malformed(format!(
                                "completion of process {} without an invocation",
                                op.process
                            ))
                        })?;
                    if pair.f != op.f || pair.key != op.key {
                        return Err(malformed(format!(
                            "completion {:?} {:?} does not match invocation {} ({:?} {:?})",
                            op.f, op.key, pair.index, pair.f, pair.key
                        )));
                    }
                    pair.outcome = match kind {
                        OpKind::Ok => Outcome::Ok,
                        OpKind::Fail => Outcome::Fail,
                        _ => Outcome::Info,
                    };
                    if pair.outcome == Outcome::Info {
                        retired.insert(op.process);
                    }
                    pair.completion_index = Some(index);
                    pair.result = op.value.clone();
                    pair.complete_ns = Some(op.time_ns);
                    if op.node.is_some() {
                        pair.node = op.node.clone();
                    }
                    pair.error = op.error.clone();
                }
            }
        }
        Ok(out)
    }
}
