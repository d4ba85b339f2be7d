//! The node's clock: where the proposer's entry stamps, the script
//! executor's script time and the time reads evaluate expiry at come from.
//!
//! It is a handle in [`crate::NodeConfig`] rather than a free function so
//! that the time a node believes can be moved without touching the machine's
//! clock: a test advances it to expire a key or a lease instead of sleeping,
//! and a clock fault skews one node by an offset. Apply never reads it (the
//! state machine's only time is the entry's stamp), so a skewed or advanced
//! clock changes what a leader proposes, never how a replica applies.
//!
//! Both kinds of clock share one representation, a base plus an offset:
//! [`Clock::system`] reads the wall clock as its base, [`Clock::manual`]
//! keeps a fixed base that only [`Clock::advance`] moves. Clones share the
//! same state, so the harness keeps a clone of every node's clock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch by this machine's clock.
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64)
}

#[derive(Debug)]
enum Base {
    /// The machine's wall clock.
    System,
    /// A fixed instant (nanoseconds since the epoch).
    Manual(AtomicU64),
}

#[derive(Debug)]
struct Inner {
    base: Base,
    /// Added to the base; may be negative (a clock running behind).
    offset_ns: AtomicI64,
}

/// A shared, adjustable clock; see the module docs.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The machine's wall clock, with no offset: what a production node uses.
    pub fn system() -> Clock {
        Clock::with_base(Base::System)
    }

    /// A clock standing still at `start_ns` (nanoseconds since the epoch)
    /// until [`Clock::advance`] moves it.
    pub fn manual(start_ns: u64) -> Clock {
        Clock::with_base(Base::Manual(AtomicU64::new(start_ns)))
    }

    fn with_base(base: Base) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                base,
                offset_ns: AtomicI64::new(0),
            }),
        }
    }

    /// Nanoseconds since the Unix epoch by this clock.
    pub fn now_ns(&self) -> u64 {
        let base = match &self.inner.base {
            Base::System => wall_clock_ns(),
            Base::Manual(at) => at.load(Ordering::Acquire),
        };
        base.saturating_add_signed(self.inner.offset_ns.load(Ordering::Acquire))
    }

    /// Milliseconds since the Unix epoch by this clock.
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    /// Moves the clock forward by `by`, for every clone of it.
    pub fn advance(&self, by: Duration) {
        let by = by.as_nanos().min(i64::MAX as u128) as i64;
        match &self.inner.base {
            Base::Manual(at) => {
                at.fetch_add(by as u64, Ordering::AcqRel);
            }
            Base::System => {
                self.inner.offset_ns.fetch_add(by, Ordering::AcqRel);
            }
        }
    }

    /// How far this clock is set from its base, in nanoseconds.
    pub fn offset_ns(&self) -> i64 {
        self.inner.offset_ns.load(Ordering::Acquire)
    }

    /// Sets the offset from the base (ahead when positive, behind when
    /// negative), replacing any earlier offset: a clock fault.
    pub fn set_offset_ns(&self, offset_ns: i64) {
        self.inner.offset_ns.store(offset_ns, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = Clock::manual(5_000_000);
        let clone = clock.clone();
        assert_eq!(clock.now_ns(), 5_000_000);
        clone.advance(Duration::from_millis(3));
        assert_eq!(clock.now_ms(), 8);
        clock.set_offset_ns(-1_000_000);
        assert_eq!(clone.now_ms(), 7);
    }

    #[test]
    fn a_system_clock_follows_the_wall_clock_plus_its_offset() {
        let clock = Clock::system();
        let before = wall_clock_ns();
        clock.advance(Duration::from_secs(3600));
        let now = clock.now_ns();
        assert!(now >= before + 3_600_000_000_000, "{now} vs {before}");
        assert!(now <= wall_clock_ns() + 3_600_000_000_000);
        assert_eq!(clock.offset_ns(), 3_600_000_000_000);
        clock.set_offset_ns(i64::MIN);
        assert_eq!(clock.now_ns(), 0, "saturates instead of wrapping");
    }
}
