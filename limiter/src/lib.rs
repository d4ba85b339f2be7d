//! Deterministic rate-limiting algorithms for raftlimit.
//!
//! Nothing here reads a clock, touches the network or draws a random number:
//! every function takes `now_ns`, the nanoseconds since the UNIX epoch
//! recorded in the Raft log entry being applied, so every replica computes
//! byte-identical results. All arithmetic is on integers (widened to `u128`
//! and saturating), with no floating point and no accumulated rounding.
//!
//! * [`check`] evaluates `RL.CHECK` against a key with GCRA, a sliding-window
//!   counter or a fixed window, [`check_all`] does so for `RL.MCHECK`, and
//!   [`refund`] gives units back.
//! * [`throttle`] is redis-cell's `CL.THROTTLE`.
//! * [`LeaseSet`] implements `RL.ACQUIRE`/`RL.RELEASE` concurrency leases.
//! * [`parse_duration`], [`Algo::parse`] and [`Params::new`] validate command
//!   arguments, with [`LimiterError`] messages ready for a `-ERR` reply.
//!
//! See `docs/limiter.md` for the algorithms, reply fields and commands.

mod cell;
mod check;
mod decision;
mod error;
mod fixed;
mod gcra;
mod lease;
mod multi;
mod params;
mod period;
mod refund;
mod sliding;
mod state;
pub mod units;

pub use cell::{throttle, CellOutcome, CELL_MAX_BURST, CELL_MAX_PERIOD_S};
pub use check::check;
pub use decision::{Decision, Outcome};
pub use error::LimiterError;
pub use lease::LeaseSet;
pub use multi::{check_all, MultiOutcome};
pub use params::{Algo, Params, MAX_LIMIT, MAX_PERIOD_NS, MAX_REFILL_NS, MIN_PERIOD_NS};
pub use period::{format_duration, parse_duration};
pub use refund::refund;
pub use state::{LimiterState, StateKind};
