//! What a run reports besides checker verdicts: operation counts, failover times, the plot, and the `docs/chaos.md` table.

mod failover;
mod plot;
mod table;

use serde::{Deserialize, Serialize};

pub use failover::Failover;
pub use plot::plot;
pub use table::{ChaosTable, MatrixRow};

use crate::history::{Outcome, Pair};

/// Operations of a history by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail`.
    pub fail: u64,
    /// Indeterminate, or never completed.
    pub info: u64,
}

impl OpCounts {
    /// Counts the paired operations.
    pub fn of(pairs: &[Pair]) -> Self {
        let mut c = Self::default();
        for p in pairs {
            match p.outcome {
                Outcome::Ok => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Info => c.info += 1,
            }
        }
        c
    }

    /// All operations.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}
