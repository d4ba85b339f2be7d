//! The typed values a key can hold.

use bytes::Bytes;
use raftlimit_limiter::{LeaseSet, LimiterState};
use serde::{Deserialize, Serialize};

/// A key's value. Each variant is one Redis type as `TYPE` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Str(Bytes),
    /// Rate-limiter state written by RL.CHECK and friends.
    Limiter(Box<LimiterState>),
    /// Concurrency leases written by RL.ACQUIRE.
    Leases(LeaseSet),
}

impl Value {
    /// The name `TYPE` and `SCAN … TYPE` use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Limiter(_) => "ratelimit",
            Value::Leases(_) => "ratelease",
        }
    }

    /// An approximation of the heap bytes this value holds (MEMORY USAGE, INFO).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(data) => data.len(),
            Value::Limiter(_) => std::mem::size_of::<LimiterState>(),
            Value::Leases(set) => set.leases.keys().map(|id| id.len() + 32).sum(),
        }
    }
}
