//! The `raftlimit` command-line tool.
fn main() {}
