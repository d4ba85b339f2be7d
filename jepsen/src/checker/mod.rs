//! Checkers: pure functions from a paired history to a verdict.
//!
//! Every checker is built to be *sound*: it reports `Invalid` only when no
//! correct execution could have produced the history, so a red run is always
//! a real bug. When a checker cannot decide it says `Unknown`, which a run
//! treats as a failure too; nothing is ever rounded up to `Valid`.
//!
//! Each checker picks the keys it owns by the commands used on them, so one
//! history can mix workloads as long as each key belongs to one workload.

mod counter;
mod intervals;
mod lease;
mod limiter;
mod linearizable;
mod list_append;
mod result;

use std::collections::BTreeMap;

pub use counter::Counter;
pub use lease::Leases;
pub use limiter::Limiter;
pub use linearizable::{KeyReport, Linearizable, Violation};
pub use list_append::ListAppend;
pub use result::{CheckResult, Validity};

use crate::history::{History, Pair, F};
use crate::Error;

/// A property checked over a whole history.
pub trait Checker {
    /// Stable name, used as [`CheckResult::name`].
    fn name(&self) -> &'static str;

    /// Judges the paired operations of one history (see [`History::pairs`]).
    fn check(&self, ops: &[Pair]) -> CheckResult;
}

/// Pairs `history` once and runs every checker over it.
pub fn check_history(
    history: &History,
    checkers: &[&dyn Checker],
) -> Result<Vec<CheckResult>, Error> {
    let ops = history.pairs()?;
    Ok(checkers.iter().map(|c| c.check(&ops)).collect())
}

/// Operations grouped by key (in invocation order within a key). Keys are
/// ordered so reports are deterministic.
fn by_key(ops: &[Pair]) -> BTreeMap<&str, Vec<&Pair>> {
    let mut keys: BTreeMap<&str, Vec<&Pair>> = BTreeMap::new();
    for op in ops {
        keys.entry(op.key.as_str()).or_default().push(op);
    }
    keys
}

/// Whether any op on a key uses one of `fs`.
fn uses(ops: &[&Pair], fs: &[F]) -> bool {
    ops.iter().any(|op| fs.contains(&op.f))
}

/// Appends an anomaly unless `limit` have been recorded already; the count of
/// all anomalies still goes into the stats, so capping only shortens reports.
fn push_capped(anomalies: &mut Vec<String>, limit: usize, anomaly: String) {
    if anomalies.len() < limit {
        anomalies.push(anomaly);
    }
}
