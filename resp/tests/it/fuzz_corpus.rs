//! Replays the committed seed corpus of the `resp_decoder` fuzz target
//! (`fuzz/corpus/resp_decoder/`) through [`decode_stream`], the function the
//! target calls, so `cargo test` checks the same properties on every input.

use std::path::PathBuf;

use raftlimit_resp::fuzz::decode_stream;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn seed_corpus_replays() {
    let inputs = corpus("resp_decoder");
    assert!(inputs.len() >= 5, "the seed corpus is missing");
    let mut commands = 0;
    for (path, input) in &inputs {
        let decoded = std::panic::catch_unwind(|| decode_stream(input))
            .unwrap_or_else(|_| panic!("{} fails", path.display()));
        commands += decoded.len();
    }
    // Half the seeds are hostile and decode nothing; the rest are traffic.
    assert!(commands >= 10, "only {commands} commands decoded");
}

#[test]
fn first_byte_selects_the_limits() {
    // The entry point sees limits from the first byte: 0 selects a 64-byte
    // bulk limit, so this declared length is refused, not decoded.
    let decoded = decode_stream(b"\x00*1\r\n$65\r\n");
    assert!(decoded.is_empty());
    let decoded = decode_stream(b"\x00*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n");
    assert_eq!(decoded.len(), 2);
}
