//! Fuzzes the client request decoder: limits, split reads, re-encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    raftlimit_resp::fuzz::decode_stream(data);
});
