//! A harness that runs command lines against a bare dataset, the way apply
//! and the read path would: for unit tests here and, behind the `testing`
//! feature, other crates' tests.

use bytes::Bytes;

use crate::commands::{execute_bare, Dataset};
use crate::reply::Reply;

/// A dataset, a clock and a log index that advance as commands run.
pub struct Harness {
    pub data: Dataset,
    pub now_ms: u64,
    pub index: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            data: Dataset::default(),
            now_ms: 1_700_000_000_000,
            index: 0,
        }
    }

    pub fn run(&mut self, line: &str) -> Reply {
        let argv: Vec<Bytes> = line
            .split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        self.run_argv(&argv)
    }

    pub fn run_argv(&mut self, argv: &[Bytes]) -> Reply {
        self.index += 1;
        execute_bare(&mut self.data, argv, self.index, self.now_ms)
    }
}

/// A bulk string reply, for comparing against.
pub fn bulk(s: &str) -> Reply {
    Reply::bulk(s.as_bytes().to_vec())
}

/// An array of bulk strings, for comparing against.
pub fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}
