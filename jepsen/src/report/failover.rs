//! Failover time: from a fault that took the leader away to the first successful write after it.
//!
//! Faults that hit the leader (kill, pause, isolation, or its turn in a
//! rolling restart) start a measurement; it ends at the completion of the
//! first `ok` write invoked after the fault began. The old leader is down,
//! frozen or cut off, so that write was committed by a new leader (or by the
//! old one after it came back, which is still when clients could write
//! again). A fault with no such write before the next fault began counts as
//! unrecovered.

use serde::{Deserialize, Serialize};

use crate::history::{Pair, F};
use crate::nemesis::FaultWindow;

/// Functions that change state, i.e. need a leader.
const WRITES: [F; 7] = [
    F::Write,
    F::Swap,
    F::Add,
    F::Check,
    F::Acquire,
    F::Release,
    F::Append,
];

/// Failover times of one run, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// One sample per leader fault that recovered, in fault order.
    pub samples_ms: Vec<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile (nearest rank).
    pub p99_ms: Option<f64>,
    /// Longest.
    pub max_ms: Option<f64>,
    /// Leader faults with no successful write before the next fault.
    pub unrecovered: usize,
}

impl Failover {
    /// Measures every leader fault in `faults` against the history.
    pub fn compute(pairs: &[Pair], faults: &[FaultWindow]) -> Self {
        let mut writes: Vec<(u64, u64)> = pairs
            .iter()
            .filter(|p| p.is_ok() && WRITES.contains(&p.f))
            .filter_map(|p| p.complete_ns.map(|c| (p.invoke_ns, c)))
            .collect();
        writes.sort_unstable();
        let mut starts: Vec<u64> = faults.iter().map(|f| f.start_ns).collect();
        starts.sort_unstable();
        let mut out = Self::default();
        for fault in faults.iter().filter(|f| f.hit_leader) {
            let next_fault = starts
                .iter()
                .copied()
                .find(|&s| s > fault.start_ns)
                .unwrap_or(u64::MAX);
            let first = writes
                .iter()
                .filter(|(invoke, _)| *invoke >= fault.start_ns)
                .map(|(_, complete)| *complete)
                .min();
            match first {
                Some(done) if done < next_fault => {
                    out.samples_ms.push((done - fault.start_ns) as f64 / 1e6)
                }
                _ => out.unrecovered += 1,
            }
        }
        let mut sorted = out.samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        out.p50_ms = percentile(&sorted, 50.0);
        out.p99_ms = percentile(&sorted, 99.0);
        out.max_ms = sorted.last().copied();
        out
    }

    /// `p50/p99/max` in milliseconds, or `n/a` without samples.
    pub fn describe(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
        let mut text = if self.samples_ms.is_empty() {
            "n/a".to_owned()
        } else {
            format!(
                "p50 {} / p99 {} / max {} ms (n={})",
                ms(self.p50_ms),
                ms(self.p99_ms),
                ms(self.max_ms),
                self.samples_ms.len()
            )
        };
        if self.unrecovered > 0 {
            text.push_str(&format!(", {} unrecovered", self.unrecovered));
        }
        text
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Outcome, Value};
    use crate::nemesis::FaultKind;

    fn write(invoke: u64, complete: u64) -> Pair {
        Pair {
            index: 0,
            completion_index: Some(1),
            process: 0,
            f: F::Write,
            key: "k".into(),
            args: Value::Nil,
            outcome: Outcome::Ok,
            result: Value::Nil,
            invoke_ns: invoke,
            complete_ns: Some(complete),
            node: None,
            error: None,
        }
    }

    fn fault(start: u64, hit_leader: bool) -> FaultWindow {
        FaultWindow {
            kind: FaultKind::Kill,
            description: String::new(),
            nodes: vec![1],
            hit_leader,
            start_ns: start,
            end_ns: start + 1,
        }
    }

    #[test]
    fn measures_from_fault_to_first_write_invoked_after_it() {
        let ms = 1_000_000;
        let pairs = vec![
            write(0, 10 * ms),           // before the fault
            write(95 * ms, 700 * ms),    // in flight at the fault: not counted
            write(150 * ms, 600 * ms),   // the first write after it
            write(2000 * ms, 2001 * ms), // after the second fault, which hit no leader
        ];
        let f = Failover::compute(&pairs, &[fault(100 * ms, true), fault(1000 * ms, false)]);
        assert_eq!(f.samples_ms, vec![500.0]);
        assert_eq!(
            (f.p50_ms, f.max_ms, f.unrecovered),
            (Some(500.0), Some(500.0), 0)
        );
        let none = Failover::compute(&pairs, &[fault(2500 * ms, true)]);
        assert_eq!((none.samples_ms.len(), none.unrecovered), (0, 1));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 99.0), Some(4.0));
    }
}
