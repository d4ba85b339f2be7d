//! Integration tests of the history model and every checker, on planted and simulated histories.

// A failed unwrap in a test is a test failure with a backtrace, which is
// exactly what a test wants; the workspace lint is aimed at library code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checker;
mod counter;
mod docker;
mod harness;
mod history;
mod lease;
mod limiter;
mod linearizable;
mod list_append;
mod real_server;
mod support;
