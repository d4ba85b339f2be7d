//! Fuzzes the command table's argument parsers and handlers against fresh
//! in-memory datasets, checking that two replicas stay identical.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    raftlimit_engine::fuzz::command_sequence(data);
});
