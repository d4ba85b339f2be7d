//! The `raftlimit` command-line tool.
