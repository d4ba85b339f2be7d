//! Chaos harness library: recorded histories and the checkers that judge them.
//!
//! A run drives concurrent clients against a raftlimit cluster while nemeses
//! inject faults, and records every request as a pair of [`history::Op`]
//! records (invocation and completion) into a [`history::History`]. After the
//! run the history is paired ([`history::History::pairs`]) and handed to the
//! [`checker`]s, each of which answers `Valid`, `Invalid` or `Unknown`; a run
//! passes only if every checker says `Valid`.
//!
//! Everything in this crate is deterministic and does no I/O beyond reading
//! and writing history files, so checkers are tested on planted histories.

pub mod checker;
mod error;
pub mod history;

pub use error::Error;
