//! Integration tests of the request decoder: the fuzz corpus replayed
//! through the fuzz target's own entry point, the regressions it found, and
//! what hostile headers cost in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allocation;
mod fuzz_corpus;

/// Counts live heap bytes, for `allocation`.
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);
