//! Open-loop arithmetic: when each request is due, and the measurement window.
//!
//! An open-loop run sends at a fixed aggregate rate whatever the server
//! does, and measures each request's latency from the moment it was *due*,
//! not from when it went out (the coordinated-omission correction of wrk2).
//! A server that stalls for 100 ms then shows 100 ms of latency on every
//! request due during the stall, as a real client population would see it,
//! instead of one slow request followed by a quiet gap.
//!
//! Request `k` of the whole run (all connections together) is due at
//! `k / rate` seconds after the start, and belongs to connection
//! `k mod connections`, so the connections interleave evenly. Everything is
//! integer nanoseconds, so the schedule never drifts over a long run.

use std::time::Duration;

/// The global request schedule at `rate` requests per second over `connections`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    connections: u64,
}

impl Schedule {
    /// A schedule; `rate` must be positive and finite, `connections` ≥ 1.
    pub fn new(rate: f64, connections: usize) -> Option<Self> {
        (rate.is_finite() && rate > 0.0 && connections > 0).then_some(Self {
            rate,
            connections: connections as u64,
        })
    }

    /// Nanoseconds after the start at which global request `k` is due.
    pub fn due_ns(&self, k: u64) -> u64 {
        // Computed from k each time (never by adding intervals), so rounding
        // cannot accumulate; f64's relative error of 1e-16 stays far below a
        // nanosecond for any run length.
        (k as f64 * 1e9 / self.rate).round() as u64
    }

    /// How many requests are due by `elapsed_ns` (those with `due_ns(k) ≤ elapsed_ns`).
    pub fn due_by(&self, elapsed_ns: u64) -> u64 {
        let mut k = (elapsed_ns as f64 * self.rate / 1e9).floor() as u64 + 1;
        // Settle rounding at the boundary against due_ns itself.
        while k > 0 && self.due_ns(k - 1) > elapsed_ns {
            k -= 1;
        }
        while self.due_ns(k) <= elapsed_ns {
            k += 1;
        }
        k
    }

    /// The global index of connection `conn`'s `i`-th request.
    pub fn global_index(&self, conn: usize, i: u64) -> u64 {
        i * self.connections + conn as u64
    }

    /// How many of the first `released` global requests belong to connection `conn`.
    pub fn released_for(&self, conn: usize, released: u64) -> u64 {
        let conn = conn as u64;
        if released <= conn {
            0
        } else {
            (released - conn - 1) / self.connections + 1
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// The part of a run that is measured: from `warmup` to `warmup + duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, in nanoseconds after the run's start.
    pub start_ns: u64,
    /// End (exclusive), in nanoseconds after the run's start.
    pub end_ns: u64,
}

impl Window {
    /// The window after `warmup`, lasting `duration`.
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        let start_ns = warmup.as_nanos() as u64;
        Self {
            start_ns,
            end_ns: start_ns + duration.as_nanos() as u64,
        }
    }

    /// Whether a request started (or due) at `t_ns` is measured.
    pub fn contains(&self, t_ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&t_ns)
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced_and_exact() {
        let s = Schedule::new(40_000.0, 50).unwrap();
        assert_eq!(s.due_ns(0), 0);
        assert_eq!(s.due_ns(1), 25_000);
        assert_eq!(s.due_ns(40_000), 1_000_000_000);
        // No drift after an hour's worth of requests.
        assert_eq!(s.due_ns(40_000 * 3600), 3600 * 1_000_000_000);
        let third = Schedule::new(3.0, 1).unwrap();
        assert_eq!(third.due_ns(1), 333_333_333);
        assert_eq!(third.due_ns(2), 666_666_667);
        assert_eq!(third.due_ns(3), 1_000_000_000);
    }

    #[test]
    fn due_by_counts_requests_due_up_to_and_including_now() {
        let s = Schedule::new(1000.0, 4).unwrap();
        assert_eq!(s.due_by(0), 1);
        assert_eq!(s.due_by(999_999), 1);
        assert_eq!(s.due_by(1_000_000), 2);
        assert_eq!(s.due_by(1_000_000_000), 1001);
        let odd = Schedule::new(3.0, 2).unwrap();
        for t in [
            0,
            333_333_332,
            333_333_333,
            666_666_666,
            666_666_667,
            999_999_999,
            1_000_000_000,
        ] {
            let n = odd.due_by(t);
            assert!(odd.due_ns(n - 1) <= t && odd.due_ns(n) > t, "t={t} n={n}");
        }
    }

    #[test]
    fn connections_interleave_and_release_counts_add_up() {
        let s = Schedule::new(100.0, 3).unwrap();
        assert_eq!(s.global_index(0, 0), 0);
        assert_eq!(s.global_index(2, 0), 2);
        assert_eq!(s.global_index(1, 4), 13);
        for released in 0..50u64 {
            let per: Vec<u64> = (0..3).map(|c| s.released_for(c, released)).collect();
            assert_eq!(per.iter().sum::<u64>(), released, "released={released}");
            for (c, &n) in per.iter().enumerate() {
                // The connection's last released request is below the global count.
                if n > 0 {
                    assert!(s.global_index(c, n - 1) < released);
                }
                assert!(s.global_index(c, n) >= released);
            }
        }
    }

    #[test]
    fn schedule_rejects_nonsense() {
        assert!(Schedule::new(0.0, 1).is_none());
        assert!(Schedule::new(-5.0, 1).is_none());
        assert!(Schedule::new(f64::NAN, 1).is_none());
        assert!(Schedule::new(f64::INFINITY, 1).is_none());
        assert!(Schedule::new(10.0, 0).is_none());
    }

    #[test]
    fn window_is_half_open_after_warmup() {
        let w = Window::new(Duration::from_millis(500), Duration::from_secs(2));
        assert!(!w.contains(499_999_999));
        assert!(w.contains(500_000_000));
        assert!(w.contains(2_499_999_999));
        assert!(!w.contains(2_500_000_000));
        assert_eq!(w.seconds(), 2.0);
    }
}
