//! Integration tests of the request decoder: the fuzz corpus replayed
//! through the fuzz target's own entry point, and the regressions it found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_corpus;
