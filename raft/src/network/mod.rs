//! Inter-node transport: a length-prefixed binary RPC over pooled TCP
//! connections, split as in openraft's examples into the message types, the
//! stream layer (where TLS plugs in), outbound RPC (openraft's
//! `RaftNetwork`), inbound RPC (the server side) and the client API that
//! followers use to forward commands to the leader.

pub mod client_api;
pub mod frame;
pub mod inbound;
pub mod message;
pub mod outbound;
pub mod peer;
pub mod transport;

pub use client_api::{ClientOutcome, MembershipChange};
pub use message::{RpcRequest, RpcResponse};
pub use peer::PeerClient;
pub use transport::{NetFilter, PlainTransport, Transport};
