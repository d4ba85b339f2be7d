//! The typed values a key can hold.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A key's value. Each variant is one Redis type as `TYPE` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Str(Bytes),
}

impl Value {
    /// The name `TYPE` and `SCAN … TYPE` use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// An approximation of the heap bytes this value holds (MEMORY USAGE, INFO).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(data) => data.len(),
        }
    }
}
