//! The fuzzing entry point for Raft RPC decoding, shared by the `raft_rpc`
//! fuzz target in `fuzz/` and the corpus replay tests, so a crash the fuzzer
//! finds replays through the same code in `cargo test`. (Commands are fuzzed
//! in the engine crate.)
//!
//! Each takes arbitrary bytes and panics only on a bug: a panic in a command
//! or a decoder, or a broken property that the cluster relies on.

use futures::executor::block_on;
use raftlimit_engine::LogPayload;

use crate::network::frame::{decode, encode, read_frame};
use crate::network::message::Envelope;
use crate::network::{RpcRequest, RpcResponse};

/// Decodes `data` the way a node reads its Raft RPC connections, and panics
/// if decoding panics or a decoded message does not re-encode stably.
///
/// `data` is tried both as one frame payload (requests, responses and log
/// payloads) and as a stream of length-prefixed frames read through
/// [`read_frame`]. Returns how many messages decoded.
pub fn rpc_frames(data: &[u8]) -> usize {
    let mut decoded = decode_payload(data);
    let mut stream = data;
    // Reading from a byte slice never waits, so a trivial executor is
    // enough and the target needs no runtime.
    while let Ok(Some(frame)) = block_on(read_frame(&mut stream)) {
        decoded += decode_payload(&frame);
    }
    decoded
}

fn decode_payload(payload: &[u8]) -> usize {
    let mut decoded = 0;
    if let Ok(request) = decode::<Envelope<RpcRequest>>(payload) {
        check_reencoding(&request);
        decoded += 1;
    }
    if let Ok(response) = decode::<Envelope<RpcResponse>>(payload) {
        check_reencoding(&response);
        decoded += 1;
    }
    if let Ok(entry) = decode::<LogPayload>(payload) {
        check_reencoding(&entry);
        decoded += 1;
    }
    decoded
}

/// What decoded must encode, and its encoding must decode to the same
/// message (compared by encoding: not every message type is `PartialEq`).
fn check_reencoding<T: serde::Serialize + serde::de::DeserializeOwned>(message: &T) {
    let encoded = match encode(message) {
        Ok(encoded) => encoded,
        Err(err) => panic!("a decoded message does not encode: {err}"),
    };
    match decode::<T>(&encoded) {
        Ok(again) => assert_eq!(
            encode(&again).ok(),
            Some(encoded),
            "a message changes when re-encoded"
        ),
        Err(err) => panic!("an encoded message does not decode: {err}"),
    }
}
