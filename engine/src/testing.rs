//! A harness that runs command lines against a bare dataset, the way apply
//! and the read path would: for unit tests here and, behind the `testing`
//! feature, other crates' tests.

use bytes::Bytes;

use crate::commands::{execute_read, execute_write, lookup, Dataset, ReadCtx, WriteCtx};
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
        let spec = lookup(&argv[0]);
        self.index += 1;
        if spec.is_some_and(|s| s.writes(argv)) {
            let mut ctx = WriteCtx {
                data: &mut self.data,
                now_ms: self.now_ms,
                now_ns: self.now_ms * 1_000_000,
                log_index: self.index,
                op_index: 0,
                effects: None,
            };
            execute_write(&mut ctx, argv)
        } else {
            let ctx = ReadCtx {
                data: &self.data,
                now_ms: self.now_ms,
                applied_index: self.index,
            };
            execute_read(&ctx, argv)
        }
    }
}
