//! Hostile headers allocate nothing up front: the heap is measured around decoding each one.
//!
//! The server-level test (`security::huge_declared_lengths_allocate_nothing`)
//! watches the process's memory, where one header's reservation is lost in
//! the noise of everything else running; here the decoder is alone with a
//! counting allocator, so even a few megabytes reserved for a claimed
//! argument count show.

use bytes::BytesMut;
use raftlimit_resp::{Limits, RequestDecoder};

use crate::ALLOCATOR;

/// Far above what a few buffered bytes need, far below what any claimed
/// length below would cost if it were believed.
const BUDGET: usize = 1 << 20;

fn limits() -> Limits {
    Limits {
        max_bulk_len: 512 * 1024 * 1024,
        max_multibulk_len: 1024 * 1024,
        unauthenticated: false,
    }
}

/// Heap bytes allocated (net) while decoding `input`, which must be incomplete.
fn cost_of(input: &[u8]) -> usize {
    let mut decoder = RequestDecoder::default();
    let mut buf = BytesMut::from(input);
    let before = ALLOCATOR.allocated();
    let decoded = decoder.decode(&mut buf, &limits());
    let grown = ALLOCATOR.allocated().saturating_sub(before);
    assert!(matches!(decoded, Ok(None)), "{input:?}: {decoded:?}");
    drop(decoder);
    grown
}

#[test]
fn a_claimed_argument_count_reserves_nothing() {
    // 1,048,576 arguments claimed, one sent: believing the count would
    // reserve 32 MiB of argument slots.
    let grown = cost_of(b"*1048576\r\n$3\r\nGET\r\n");
    assert!(
        grown < BUDGET,
        "{grown} bytes for a header claiming 1,048,576 arguments"
    );
}

#[test]
fn a_claimed_bulk_length_reserves_nothing() {
    let grown = cost_of(b"*1\r\n$536870000\r\nabc");
    assert!(
        grown < BUDGET,
        "{grown} bytes for a header claiming a 512 MiB argument"
    );
}
