//! Decoding of client requests: the RESP multibulk and inline formats, with
//! every length and count checked against its limit before anything is
//! stored, so a hostile length prefix cannot make the server allocate.
//!
//! The server reads every client byte through [`RequestDecoder`]; replies are
//! encoded in the server crate. [`fuzz`] holds the entry point that the
//! `resp_decoder` fuzz target and the corpus replay test share.

mod decoder;
mod error;
pub mod fuzz;
mod inline;

pub use decoder::{
    Limits, RequestDecoder, MAX_INLINE_LEN, UNAUTHENTICATED_MAX_BULK_LEN,
    UNAUTHENTICATED_MAX_MULTIBULK_LEN,
};
pub use error::ProtocolError;
