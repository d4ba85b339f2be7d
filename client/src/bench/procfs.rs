//! CPU accounting from procfs: per-process CPU time and the machine's busy time.
//!
//! Two questions are answered from the same counters. "How many CPU
//! microseconds does one operation cost in each process?" is utime + stime
//! of the process (all its threads) over the measured window, divided by
//! the operations. "Was anything else running?" is the machine's busy time
//! from `/proc/stat` minus the time of every process the benchmark started
//! and its own: what remains belongs to others, and a run where others took
//! a noticeable share is not published.

use std::path::Path;

/// Kernel clock ticks per second for `/proc` CPU counters (`USER_HZ`). It is
/// 100 on every Linux architecture the project builds for; the kernel keeps
/// it fixed for user space whatever its internal tick rate.
pub const TICKS_PER_SEC: u64 = 100;

/// utime + stime of process `pid` in clock ticks, or `None` once it is gone.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_process_ticks(&stat)
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name (field
/// 2) is in parentheses and may itself contain spaces or parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state (3), ppid (4) … utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU time in clock ticks: busy (everything but idle and
/// iowait) and total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
}

/// Reads the aggregate `cpu` line of `/proc/stat`.
pub fn machine_ticks() -> Option<MachineTicks> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Parses the aggregate `cpu` line: user nice system idle iowait irq softirq
/// steal (guest time is already inside user and nice).
pub fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 8 {
        return None;
    }
    let idle = v[3] + v[4];
    let total: u64 = v.iter().sum();
    Some(MachineTicks {
        busy: total - idle,
        total,
    })
}

/// One sample of everything a cell needs: the machine and each watched process.
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    pub machine: MachineTicks,
    /// Ticks per watched pid, in the order asked for (`None`: process gone).
    pub processes: Vec<Option<u64>>,
}

impl CpuSample {
    /// Samples the machine and `pids`.
    pub fn take(pids: &[u32]) -> Self {
        Self {
            machine: machine_ticks().unwrap_or_default(),
            processes: pids.iter().map(|&p| process_ticks(p)).collect(),
        }
    }
}

/// CPU used between two samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuDelta {
    /// Ticks per watched process.
    pub processes: Vec<u64>,
    /// Busy ticks of the whole machine.
    pub machine_busy: u64,
    /// All ticks of the whole machine (CPUs × elapsed).
    pub machine_total: u64,
}

impl CpuDelta {
    /// The difference `after - before` (processes that vanished count 0).
    pub fn between(before: &CpuSample, after: &CpuSample) -> Self {
        let processes = before
            .processes
            .iter()
            .zip(&after.processes)
            .map(|(b, a)| match (b, a) {
                (Some(b), Some(a)) => a.saturating_sub(*b),
                _ => 0,
            })
            .collect();
        Self {
            processes,
            machine_busy: after.machine.busy.saturating_sub(before.machine.busy),
            machine_total: after.machine.total.saturating_sub(before.machine.total),
        }
    }

    /// Percent of the machine's capacity used by processes *not* watched.
    pub fn others_pct(&self) -> f64 {
        if self.machine_total == 0 {
            return 0.0;
        }
        let ours: u64 = self.processes.iter().sum();
        100.0 * self.machine_busy.saturating_sub(ours) as f64 / self.machine_total as f64
    }

    /// CPU microseconds per operation of watched process `i`.
    pub fn us_per_op(&self, i: usize, ops: u64) -> Option<f64> {
        let ticks = *self.processes.get(i)?;
        (ops > 0).then(|| ticks as f64 * 1e6 / TICKS_PER_SEC as f64 / ops as f64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn process_ticks_survive_odd_command_names() {
        let stat = "4242 (raft (node) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_process_ticks(stat), Some(325));
        assert_eq!(parse_process_ticks("garbage"), None);
        // Our own process is always readable.
        assert!(process_ticks(std::process::id()).is_some());
    }

    #[test]
    fn machine_ticks_exclude_idle_and_iowait() {
        let stat = "cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 50 2 25 400 10 1 1 5 0 0\n";
        assert_eq!(
            parse_machine_ticks(stat),
            Some(MachineTicks {
                busy: 170,
                total: 990
            })
        );
        assert!(machine_ticks().is_some());
    }

    #[test]
    fn others_are_the_busy_time_nobody_watched_used() {
        let before = CpuSample {
            machine: MachineTicks {
                busy: 1000,
                total: 5000,
            },
            processes: vec![Some(10), Some(20), None],
        };
        let after = CpuSample {
            machine: MachineTicks {
                busy: 1150,
                total: 5200,
            },
            processes: vec![Some(70), Some(60), Some(5)],
        };
        let d = CpuDelta::between(&before, &after);
        assert_eq!(d.processes, vec![60, 40, 0]);
        // 150 busy, 100 ours: 50 of 200 ticks were someone else's.
        assert_eq!(d.others_pct(), 25.0);
        // 60 ticks = 600 ms over 1000 ops = 600 µs each.
        assert_eq!(d.us_per_op(0, 1000), Some(600.0));
        assert_eq!(d.us_per_op(0, 0), None);
    }
}
