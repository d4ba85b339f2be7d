//! Time units and the integer rounding rules shared by every algorithm.
//!
//! All arithmetic widens to `u128` before multiplying so no product of two
//! validated quantities can overflow, and narrows back with saturation.

/// Nanoseconds in one millisecond.
pub const NS_PER_MS: u64 = 1_000_000;
/// Nanoseconds in one second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NS_PER_MIN: u64 = 60 * NS_PER_SEC;
/// Nanoseconds in one hour.
pub const NS_PER_HOUR: u64 = 60 * NS_PER_MIN;
/// Nanoseconds in one day.
pub const NS_PER_DAY: u64 = 24 * NS_PER_HOUR;

/// Narrows to `u64`, saturating at `u64::MAX`.
pub(crate) fn sat_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Converts to `i64` for a RESP integer, saturating at `i64::MAX`.
pub(crate) fn sat_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Nanoseconds to milliseconds, rounded up: a client that waits the reported
/// number of milliseconds is never early.
pub(crate) fn ms_ceil(ns: u128) -> u64 {
    sat_u64(ns.div_ceil(u128::from(NS_PER_MS)))
}

/// Start of the window of length `period_ns` containing `now_ns`; windows are
/// aligned to multiples of the period since the UNIX epoch, so every replica
/// and every key with the same period agrees on the boundaries.
pub(crate) fn window_start(now_ns: u64, period_ns: u64) -> u64 {
    now_ns - now_ns % period_ns.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(ms_ceil(0), 0);
        assert_eq!(ms_ceil(1), 1);
        assert_eq!(ms_ceil(1_000_000), 1);
        assert_eq!(ms_ceil(1_000_001), 2);
        assert_eq!(ms_ceil(u128::MAX), u64::MAX);
        assert_eq!(sat_i64(u64::MAX), i64::MAX);
        assert_eq!(sat_u64(u128::from(u64::MAX) + 1), u64::MAX);
    }

    #[test]
    fn windows_align_to_epoch_multiples() {
        assert_eq!(window_start(0, 10), 0);
        assert_eq!(window_start(9, 10), 0);
        assert_eq!(window_start(10, 10), 10);
        assert_eq!(window_start(25, 10), 20);
        assert_eq!(window_start(u64::MAX, 2), u64::MAX - 1);
    }
}
