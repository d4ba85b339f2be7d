//! Integration tests of the raft crate's pure parts (and the engine's commands): the fuzz corpora
//! replayed through the fuzz targets' own entry points, and the regressions
//! the fuzzers found.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz_corpus;

use std::path::PathBuf;

/// The committed seed inputs of a fuzz target (`fuzz/corpus/<target>/`).
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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
