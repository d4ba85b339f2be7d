//! Fuzzes the Raft RPC frame reader and message decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    raftlimit_raft::fuzz::rpc_frames(data);
});
