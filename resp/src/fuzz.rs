//! The fuzzing entry point for the request decoder, shared by the
//! `resp_decoder` fuzz target and the corpus replay test.
//!
//! Beyond "never panics", it checks what the server relies on: the limits
//! hold for every decoded command, decoding does not depend on how the bytes
//! were split across reads, and a decoded command re-encoded as a multibulk
//! decodes to itself.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{
    Limits, ProtocolError, RequestDecoder, MAX_INLINE_LEN, UNAUTHENTICATED_MAX_BULK_LEN,
    UNAUTHENTICATED_MAX_MULTIBULK_LEN,
};

/// Limits no stream in memory can reach (lengths are parsed as `i64`).
const UNLIMITED: Limits = Limits {
    max_bulk_len: i64::MAX as usize,
    max_multibulk_len: i64::MAX as usize,
    unauthenticated: false,
};

/// Everything decoded from one input: the commands, then how it ended
/// (`Ok(())`: waiting for more bytes, or an error that closes the client).
type Decoded = (Vec<Vec<Bytes>>, Result<(), ProtocolError>);

/// Decodes `data` as a client's byte stream and panics if any property of
/// the decoder does not hold.
///
/// The first byte picks the limits (small ones, so the fuzzer reaches them,
/// and whether the client is authenticated) and the split points of the
/// chunked replay; the rest is the stream.
pub fn decode_stream(data: &[u8]) -> Vec<Vec<Bytes>> {
    let Some((&knobs, stream)) = data.split_first() else {
        return Vec::new();
    };
    let limits = Limits {
        max_bulk_len: [64, 1024, 1 << 20, 512 << 20][usize::from(knobs & 3)],
        max_multibulk_len: [4, 16, 1024, 1 << 20][usize::from((knobs >> 2) & 3)],
        unauthenticated: knobs & 0x10 != 0,
    };
    let whole = decode_in_chunks(stream, &limits, stream.len().max(1));
    let chunk = usize::from(knobs >> 5) + 1;
    let chunked = decode_in_chunks(stream, &limits, chunk);
    assert_eq!(
        whole, chunked,
        "decoding depends on how the input is split ({chunk}-byte reads)"
    );
    let (commands, _) = whole;
    for command in &commands {
        check_limits(command, &limits);
        let mut encoded = BytesMut::new();
        encode_multibulk(&mut encoded, command);
        // Inline commands are bounded by the line length, not by the
        // multibulk limits, so their re-encoding may exceed those.
        let reencoded = decode_in_chunks(&encoded, &UNLIMITED, encoded.len());
        assert_eq!(
            reencoded,
            (vec![command.clone()], Ok(())),
            "a decoded command does not survive re-encoding"
        );
    }
    commands
}

/// Feeds `stream` to one decoder `chunk` bytes at a time, as reads from a
/// socket would, decoding after each read.
fn decode_in_chunks(stream: &[u8], limits: &Limits, chunk: usize) -> Decoded {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf, limits) {
                Ok(Some(command)) => commands.push(command),
                Ok(None) => break,
                Err(err) => return (commands, Err(err)),
            }
        }
    }
    (commands, Ok(()))
}

/// A command too large to have come from an inline line came from a
/// multibulk, so it obeys the configured limits.
fn check_limits(command: &[Bytes], limits: &Limits) {
    assert!(!command.is_empty(), "an empty command was returned");
    let total: usize = command.iter().map(Bytes::len).sum();
    if total <= MAX_INLINE_LEN {
        return;
    }
    let (max_args, max_bulk) = if limits.unauthenticated {
        (
            limits
                .max_multibulk_len
                .min(UNAUTHENTICATED_MAX_MULTIBULK_LEN as usize),
            limits
                .max_bulk_len
                .min(UNAUTHENTICATED_MAX_BULK_LEN as usize),
        )
    } else {
        (limits.max_multibulk_len, limits.max_bulk_len)
    };
    assert!(
        command.len() <= max_args,
        "{} arguments exceed the multibulk limit",
        command.len()
    );
    for arg in command {
        assert!(
            arg.len() <= max_bulk,
            "a {}-byte argument exceeds the bulk limit",
            arg.len()
        );
    }
}

fn encode_multibulk(out: &mut BytesMut, command: &[Bytes]) {
    out.put_slice(format!("*{}\r\n", command.len()).as_bytes());
    for arg in command {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}
