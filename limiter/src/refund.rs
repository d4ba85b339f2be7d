//! Giving units back to a key, for requests that turned out not to count.

use crate::fixed::FixedWindow;
use crate::gcra::Gcra;
use crate::params::{Algo, Params};
use crate::sliding::SlidingWindow;
use crate::state::LimiterState;

/// Returns `n` units to the key under its stored policy, never beyond full.
///
/// * GCRA moves the TAT back by `n` emission intervals, but not before now.
/// * Fixed subtracts from the current window's count; a window that has
///   already ended is full anyway.
/// * Sliding subtracts from the current window's count first, then from the
///   previous window's.
///
/// The result is what to store; its TTL is
/// [`LimiterState::expires_at_ns`] and the reply to `RL.REFUND` is
/// [`LimiterState::remaining`].
pub fn refund(state: &LimiterState, n: u64, now_ns: u64) -> LimiterState {
    // The counters decide the algorithm, should the two ever disagree.
    let params = Params {
        algo: state.algo(),
        ..state.params.clamped()
    };
    match params.algo {
        Algo::Gcra => Gcra::new(&params).refund(state, n, now_ns),
        Algo::Sliding => SlidingWindow::at(&params, Some(state), now_ns).refund(n),
        Algo::Fixed => FixedWindow::at(&params, Some(state), now_ns).refund(n),
    }
}
